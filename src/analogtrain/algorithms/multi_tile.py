"""Multi-tile residual learning (P3, papers.md §5(b)-(d); Algorithm 1, eq. 4-7, Theorem 3).

A weight is a geometric sum of N + 1 low-precision tiles, W^(0) the coarsest, W^(N) the finest:

    W_bar = sum_{n=0}^{N} gamma^n W^(n),        gamma in (0, 1)           (option ``n_tiles`` = N + 1 >= 2)

Each step (Algorithm 1, our sign convention = P3's):
  2. the gradient (taken at W_bar) is pulsed onto the finest tile:  W^(N) <- W^(N) - alpha grad   (eq. 6)
  4. for n = N-1 down to 0: if tile n+1 finished its inner loop (t_{n+1} mod T_{n+1} = 0), one column of
     W^(n+1) (cyclic pointer per source tile) is read and pulsed into W^(n):
         W^(n)[:, i] <- W^(n)[:, i] + beta W^(n+1)[:, i]   (eq. 7, open loop, at W^(n)'s response; beta is
                                                          the rate of the transfer out of W^(n+1), below)

Multi-timescale counters (eq. 7): tile n keeps ``t_n = floor(t / prod_{n'=n+1}^{N} T_{n'})`` (counters
``t0`` .. ``tN``; ``tN`` = t).  Options, in aihwkit's ``TransferCompound`` order (index i = 0 is the transfer
out of the gradient tile W^(N) into W^(N-1), i = N-1 the one into W^(0)):

* ``transfer_every``: the inner-loop lengths ``[T_N, T_{N-1}, ..., T_1]`` (list of N), or a scalar T_N with
  ``T_{N-i} = transfer_every * transfer_every_growth^i`` -- P3's MNIST setting ``[2 * 5^i]`` is the default
  (2, growth 5), its toy ``[2 * 2^i]`` is growth 2.  Transfer i happens after T_{N-i} updates of its source
  tile, i.e. every ``p_i = T_N T_{N-1} ... T_{N-i}`` optimizer steps (``periods``) [I: P3's counters
  t_n = floor(t / prod T) and Thm 3's T_n >= Theta(1/gamma) for every tile; at the Fig. 7 toy's rates the
  cascade is linearly unstable for 3+ tiles under either reading, see p3-fig7].  ``global_periods = true`` reads
  the list as those global periods, ``p_i = T_{N-i}`` steps, as aihwkit's ``TransferCompound`` and P3's
  public code count them [C].  (A list of N + 1 entries, aihwkit's layout, has its last one ignored.)
* ``transfer_lr``: a list of N rates (same order), or a scalar base with the transfer out of tile W^(m)
  at ``transfer_lr * transfer_lr_growth^m``, i.e. ``beta_i = transfer_lr * transfer_lr_growth^(N-i)``: the
  gradient tile's transfer is the fastest.  P3's ``transfer_lr_vec[n] = 0.1 * 1.2^n`` [V] with n the
  source tile, as its code writes it (aihwkit indexes the rate by the source device) [C]; not scaled by
  the optimizer lr (``scale_transfer_lr = false``).
* ``fast_lr`` / ``scale_fast_lr``: alpha of eq. 6 (default: the optimizer lr).
* ``n_columns``: columns read per transfer (P3: one).

Warm start (Algorithm 1 step 3, an experimental device of P3 not covered by its theory; off by
default, ``warm_start``): a tile pointer k starts at 0; while k < N, W^(N) is transferred onto tile k
(rate beta_0) instead of the cascade; when the loss plateaus k <- k + 1.  The plateau rule needs the loss:
``observe_loss(loss, per)``, which the trainer calls through ``AnalogOptimizer.observe_loss`` with the batch
loss before every update (``per = "step"``; ``step(closure)`` does the same) and with the epoch's mean
training loss at the end of every epoch (``per = "epoch"``).  The history and pointer are checkpointed with
the other buffers and counters; [I] the history restarts at every switch.  ``warm_start_rule``:

* ``"paper"`` (Algorithm 1 as written [V]): the batch loss of every step; the transfer every p_0 steps;
  LossPlateau for k <= 3 "aggressive" (the last loss exceeds the previous one), else "mild" (at least 2
  increases among the last 5 changes, needing >= 6 entries).  With noisy batch losses it switches within a
  few steps, so the warm start is brief.
* ``"code"`` (P3's public code [C]): the mean training loss of every epoch; the transfer every p_1 steps
  (the second transfer's period: transfer_every_vec[1] with ``global_periods``, as the code counts; its CPU
  path); aggressive: the loss rose by more than 1e-4; mild: at least 2 of the last 5 changes are rises or
  falls smaller than 0.01.  So while k <= 3 a switch waits for an epoch whose loss rises: with a steadily
  falling loss the warm start lasts many epochs (or the whole run), and the cascade starts late.  After
  tile N-1 the pointer also visits the gradient tile itself (k = N), where its self-transfer is a no-op:
  one more plateau passes, with no transfers, before the cascade starts.  The trainer logs the pointer
  as ``warm_stage`` in each epoch's metrics (N + 1: the cascade runs).

Stability [I, our derivation]: for the expected dynamics of one weight whose loss has curvature lambda, with
each transfer spread over the steps between reads of its column (per-step rate r = beta / (p * in_size)),
three tiles obey W2' = -alpha lambda e, W1' = r_1 W2, W0' = r_0 W1 with e = W0 + gamma W1 + gamma^2 W2 - w*,
whose characteristic polynomial s^3 + alpha lambda gamma^2 s^2 + alpha lambda gamma r_1 s + alpha lambda r_1 r_0
is stable (Routh-Hurwitz) iff ``alpha lambda gamma^3 > r_0``: the transfer into W^(0) must be slower than
the finest tile's own pull, scaled by gamma^3.  Flat directions (small lambda) break it first.  P3's Fig. 7
toy (alpha 0.01, lambda 2, gamma 0.1, r_0 = 0.01 / 4) misses it 125-fold; in P3's LeNet-5 setting (alpha
0.05, gamma 0.5, r_0 = 0.12 / (10 in_size)) it needs lambda > 3.7e-3 in the 512-input layer and 0.077 in the
25-input one.  Two tiles (s^2 + alpha lambda gamma s + alpha lambda r) are always stable.

``calibration = "zero-shift"`` zero-shifts every tile at build time (P3 Assumption 4 needs G(0) = 0 on
each tile).  Design rule (P3 App. J.3): gamma slightly above 1 / n_states of a tile.
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from .steps import ArrayAlgorithm, Gradient, Option, next_columns, pulse_gradient, read_columns, transfer_columns
from .tiki_taka import RESIDUAL_OPTIONS
from .zero_shift import calibrate


class ScalarOrList(Option):
    """An option that is a number or a list of numbers, each checked as the scalar option would be."""

    def check(self, name: str, value):
        if isinstance(value, (list, tuple)):
            if not value:
                raise ConfigError(f"{name} must not be an empty list")
            return tuple(Option.check(self, f"{name}[{i}]", v) for i, v in enumerate(value))
        return Option.check(self, name, value)

    def allowed(self) -> str:
        return f"{Option.allowed(self)}, or a list of them"


HISTORY = 6  # losses the plateau rule looks at


class MultiTile(ArrayAlgorithm):
    """P3 Algorithm 1: N + 1 tiles, composite sum gamma^n W^(n), multi-timescale cascade of transfers."""

    name = "multi-tile"
    OPTIONS = {
        **RESIDUAL_OPTIONS,
        "fast_lr": RESIDUAL_OPTIONS["fast_lr"].but(help=(
            "alpha, the rate of the gradient pulsed onto the finest tile (eq. 6)")),
        "n_columns": RESIDUAL_OPTIONS["n_columns"].but(help=(
            "columns read and transferred per transfer (cyclic; P3: 1)")),
        # at most 64: gamma^64 is below float64's resolution of W_bar
        "n_tiles": Option(3, lo=2, hi=64, help="N + 1 tiles, W_bar = sum gamma^n W^(n)"),
        "gamma": Option(0.5, lo=0.0, hi=1.0, lo_open=True, help=(
            "the geometric weight between tiles (P3 App. J.3: slightly above 1 / n_states)")),
        "transfer_every": ScalarOrList(2, lo=1, help=(
            "inner-loop lengths [T_N, ..., T_1], or T_N with T_(N-i) = T_N * transfer_every_growth^i")),
        "transfer_every_growth": Option(5, lo=1, help=(
            "growth of the inner-loop length per tile (scalar transfer_every)")),
        "global_periods": Option(False, help=(
            "read transfer_every as global periods in optimizer steps (aihwkit, P3's code)")),
        "transfer_lr": ScalarOrList(0.1, lo=0.0, lo_open=True, help=(
            "beta per transfer [out of W^(N), ..., into W^(0)], or a base: out of W^(m) at transfer_lr * growth^m")),
        "transfer_lr_growth": Option(1.2, lo=0.0, lo_open=True, help="growth of the transfer rate per source tile"),
        "scale_transfer_lr": RESIDUAL_OPTIONS["scale_transfer_lr"].but(default=False),
        "warm_start": Option(False, help="Algorithm 1 step 3: fill the tiles one by one, switching on loss plateaus"),
        "warm_start_rule": Option("paper", choices=("paper", "code"), help=(
            "plateaus of every step's batch loss (paper) or of each epoch's mean loss (code, P3's public code)")),
    }
    # two tiles with these settings are residual learning (tiki-taka, gamma 0.4)
    ideal_options = {"n_tiles": 2, "gamma": 0.4, "transfer_every": 1, "transfer_lr": 1.0, "transfer_lr_growth": 1.0,
                     "scale_transfer_lr": True}

    def make(self) -> None:
        o, self.N = self.opts, self.opts["n_tiles"] - 1
        if o["n_columns"] > self.shape[1]:
            raise ConfigError(f"n_columns = {o['n_columns']} is outside the allowed range [1, {self.shape[1]}]"
                              " (the layer's input size)")
        if o["gamma"] >= 1:
            raise ConfigError(f"gamma = {o['gamma']:g} is outside the allowed range (0, 1)")
        loops = self._per_transfer("transfer_every", o["transfer_every_growth"], int)  # T_N, T_{N-1}, ..., T_1
        self.periods = loops if o["global_periods"] else tuple(int(math.prod(loops[: i + 1])) for i in range(self.N))
        self.rates = self._per_transfer("transfer_lr", o["transfer_lr_growth"], float, source_exponent=True)
        self.tile_list = [self.new_tile(f"W{n}", n) for n in range(self.N + 1)]  # W0 coarsest, WN gradient tile
        code = o["warm_start_rule"] == "code"
        self.warm_stages = self.N + code  # the code's pointer visits W^(N) too
        self.warm_period = self.periods[min(1, self.N - 1) if code else 0]  # p_1 in the code, p_0 in Alg. 1
        self.counters.update(t=0, warm=0 if o["warm_start"] else self.warm_stages, n_losses=0,
                             **{f"t{n}": 0 for n in range(self.N + 1)}, **{f"ptr{i}": 0 for i in range(self.N)})
        self.buffers["losses"] = torch.zeros(HISTORY, dtype=torch.float64, device=self.device)
        self.calibration_pulses = 0
        if o["calibration"] == "zero-shift":
            for t in self.tile_list:
                self.calibration_pulses += calibrate(t, o["calibration_pulses"], o["calibration_mode"])

    def _per_transfer(self, name: str, growth, kind, source_exponent: bool = False) -> tuple:
        """Option ``name`` per transfer i = 0 .. N-1: its list, or ``v * growth^e`` with e = i (transfer i's
        place in the chain) or, if ``source_exponent``, e = N - i (the index of its source tile W^(N-i))."""
        v = self.opts[name]
        if not isinstance(v, tuple):
            return tuple(kind(v * growth ** (self.N - i if source_exponent else i)) for i in range(self.N))
        if len(v) not in (self.N, self.N + 1):
            raise ConfigError(f"{name} lists {len(v)} values; {self.N + 1} tiles need {self.N} (one per transfer)")
        return tuple(kind(x) for x in v[: self.N])

    @property
    def inner_loops(self) -> list[int]:
        """T_1 .. T_N of P3 (T_N = p_0, T_{N-i} = p_i / p_{i-1}), indexed by tile: ``inner_loops[n - 1] = T_n``."""
        T = [self.periods[0]] + [self.periods[i] // self.periods[i - 1] for i in range(1, self.N)]
        return T[::-1]

    def mix(self):
        g = self.opts["gamma"]
        return [(g ** n, t) for n, t in enumerate(self.tile_list)]

    def program(self, w: torch.Tensor) -> None:
        """W^(0) <- w, the finer tiles <- 0 (Algorithm 1's initialisation)."""
        self.tile_list[0].program(w)
        for t in self.tile_list[1:]:
            t.program(torch.zeros(self.shape))

    def update(self, grad: Gradient, lr: float) -> None:
        pulse_gradient(self.tile_list[self.N], grad, self.scaled_lr("fast_lr", lr))  # eq. 6
        c = self.counters
        c["t"] += 1
        c[f"t{self.N}"] = c["t"]
        if c["warm"] < self.warm_stages:  # step 3: warm start onto tile k (k = N: none)
            if c["warm"] < self.N and c["t"] % self.warm_period == 0:
                self.transfer(0, c["warm"], lr)
            return
        for i in range(self.N):  # step 4: n = N-1 down to 0, source n + 1 = N - i
            if c["t"] % self.periods[i] == 0:
                self.transfer(i, self.N - 1 - i, lr)

    def transfer(self, i: int, target: int, lr: float) -> None:
        """Transfer ``i`` (source W^(N-i)): one read of ``n_columns`` columns pulsed into ``target`` (eq. 7)."""
        src = self.tile_list[self.N - i]
        cols, self.counters[f"ptr{i}"] = next_columns(self.counters[f"ptr{i}"], self.opts["n_columns"], self.shape[1])
        beta = self.rates[i] * (lr if self.opts["scale_transfer_lr"] else 1.0)
        transfer_columns(self.tile_list[target], cols, read_columns(src, cols), beta)
        self.counters[f"t{target}"] += 1

    def epoch_log(self) -> dict:
        """What the trainer adds to each epoch's metrics: the warm-start pointer, if there is a warm start."""
        return {"warm_stage": self.counters["warm"]} if self.opts["warm_start"] else {}

    # ---- warm start ------------------------------------------------------------------------------------
    def observe_loss(self, loss: float, per: str = "step") -> None:
        """Feed the LossPlateau rule of the warm start (Algorithm 1 step 3) the loss of a step or an epoch.

        Only the losses its ``warm_start_rule`` reads count (``"paper"``: steps, ``"code"``: epochs); a no-op
        once the warm start is over.
        """
        c, code = self.counters, self.opts["warm_start_rule"] == "code"
        if c["warm"] >= self.warm_stages or per != ("epoch" if code else "step"):
            return
        h = self.buffers["losses"]
        h[:-1] = h[1:].clone()
        h[-1] = float(loss)
        c["n_losses"] += 1
        n = min(c["n_losses"], HISTORY)
        last = h[HISTORY - n:]
        rise, slow = (1e-4, -0.01) if code else (0.0, 0.0)  # a change counts as a rise / as no progress
        if c["warm"] <= 3:
            plateau = n >= 2 and bool(last[-1] - last[-2] > rise)
        else:
            plateau = n >= HISTORY and int((last[1:] - last[:-1] > slow).sum()) >= 2
        if plateau:
            c["warm"] += 1
            c["n_losses"] = 0
            h.zero_()
