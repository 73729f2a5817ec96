"""Shared steps of the residual-learning family, written once (ARCHITECTURE.md, "Habits": optax-like).

Tiki-Taka, residual learning, TT-v2, RL-v2, mixed precision (and later c-TTv2, AGAD, RIDER/E-RIDER and
multi-tile residual learning) are compositions of the same few steps.  Each step is a small function
whose state is passed in and handed back explicitly (a buffer tensor, a column pointer), so an
algorithm class reads like its paper's pseudo-code and keeps all of its state where ``state_dict``
finds it.

Sign convention (ARCHITECTURE.md): the fast array P accumulates the NEGATIVE gradient
(``pulse_gradient`` writes ``-alpha * grad``), a slower array moves by ``+beta * read`` of the faster one
(``transfer_columns``, ``fire_pulses``), and the effective weight is ``W + gamma * P``.

Steps:

* ``Gradient`` -- the batch gradient an algorithm writes: rank-one rows (x, d) of a layer, or a full
  matrix (toys).  ``scaled_inputs`` / ``scaled`` are the hooks for input choppers (c-TTv2, L1) and a
  scalar chopper (E-RIDER, P5 eq. 18a).
* ``pulse_gradient`` -- pulsed update ``P <- P - alpha * grad`` at the tile's update fidelity (P2 eq. 10).
* ``next_columns`` -- cyclic column pointer (aihwkit's ``n_reads_per_transfer`` consecutive columns).
* ``read_columns`` -- one-hot reads of columns through the tile's transfer-read periphery.
* ``decay_filter`` -- ``H <- (1 - beta) H + beta * read`` (P2 eq. 14; also P5's running mean Q, eq. 12).
* ``accumulate`` -- ``H <- H + lam * read`` (TT-v2, L1 eq. 10).
* ``threshold_pulses`` -- whole pulses where ``|H| >= threshold``, remainder kept (P2 §5 Fix 2, TT-v2's
  floor rule, mixed precision).
* ``fire_pulses`` -- single device pulses of the given signed counts onto (columns of) an array.
* ``buffer_pulses`` -- ``accumulate`` (or ``decay_filter``) -> ``threshold_pulses`` -> ``fire_pulses`` on a
  buffer's columns in place (TT-v2, RL-v2, c-TTv2, AGAD); fused in numba for the usual few distinct columns.
* ``transfer_columns`` -- rank-one pulsed update with one-hot inputs so ``W[:, i] += beta * v`` (P2 eq. 11).
* ``program_reference`` -- set an array's reference so that it reads ``conductance - estimate``.
* ``chop_period`` / ``chopper_flips`` -- which choppers flip after a read or step: with probability
  ``prob`` (random) or every ``max(ceil(1/prob), 2)`` reads (periodic); c-TTv2, AGAD (L1), E-RIDER (P5 eq. 17).
  ``advance_choppers`` counts a read of some columns and flips their choppers in place.
  (The running means of AGAD and RIDER are ``decay_filter``.)

``ArrayAlgorithm`` is the plumbing the classes share: named tiles, digital buffers and counters,
the mixed read ``sum_i c_i * tile_i`` through each tile's periphery, options with validation, and
``state_dict``.  A term of ``mix()`` may also carry a per-column coefficient vector (input choppers:
``tile.forward(x * c)``) and/or a digital matrix instead of a tile (a digitally held reference, e.g.
RIDER's Q or AGAD's p_ref, applied exactly).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numba
import numpy as np
import torch

from .. import rng
from ..errors import ConfigError, check_choice, check_range
from ..io import IOConfig, mvm
from ..tile import AnalogTile, TileConfig


def derive_seed(seed: int, tag: int) -> int:
    """A 63-bit seed for the ``tag``-th array of an algorithm seeded ``seed`` (tag 0 is ``seed`` itself).

    Layers get consecutive seeds (``convert``: seed + i), so a second array must not simply use
    ``seed + 1`` -- it would share its device sample with the next layer's main array.
    """
    if tag == 0:
        return int(seed)
    z = int(rng.hash_torch(int(seed), torch.tensor(int(tag), dtype=torch.int64)).item())
    return z & ((1 << 63) - 1)


# =============================================================================================
# the gradient an algorithm writes
# =============================================================================================
@dataclass(frozen=True)
class Gradient:
    """The batch gradient: rank-one rows ``grad = d^T x`` (a layer's batch) or a full ``matrix`` (toys)."""

    x: torch.Tensor | None = None  # (B, in)
    d: torch.Tensor | None = None  # (B, out)
    matrix: torch.Tensor | None = None  # (out, in)

    @classmethod
    def rank_one(cls, x, d) -> "Gradient":
        return cls(x=x, d=d)

    @classmethod
    def dense(cls, grad) -> "Gradient":
        return cls(matrix=torch.as_tensor(grad))

    def to_matrix(self) -> torch.Tensor:
        """``d^T x`` summed over the batch (float64), or the matrix itself."""
        if self.matrix is not None:
            return self.matrix.double()
        return self.d.double().T @ self.x.double()

    def scaled_inputs(self, signs: torch.Tensor) -> "Gradient":
        """The gradient with column i multiplied by ``signs[i]`` (input chopper, c-TTv2)."""
        if self.matrix is not None:
            return Gradient(matrix=self.matrix * signs.to(self.matrix).view(1, -1))
        return Gradient(x=self.x * signs.to(self.x).view(1, -1), d=self.d)

    def scaled(self, c: float) -> "Gradient":
        """The gradient times a scalar (E-RIDER's chopper c_k)."""
        if self.matrix is not None:
            return Gradient(matrix=self.matrix * c)
        return Gradient(x=self.x, d=self.d * c)


def pulse_gradient(tile: AnalogTile, grad: Gradient, lr: float) -> None:
    """``P <- P - lr * grad`` by pulses, at the tile's update fidelity (P2 eq. 10 / P1 (TT-P)).

    A layer's batch goes through ``tile.update`` (in ``stochastic`` mode: pulse trains sample by
    sample, as the hardware writes it); a matrix through ``tile.apply``.
    """
    if lr == 0:
        return
    if grad.matrix is not None:
        tile.apply(-lr * grad.matrix.to(tile.conductance.dtype))
    else:
        tile.update(grad.x, grad.d, lr)


# =============================================================================================
# reads and digital buffers
# =============================================================================================
def next_columns(pointer: int, n: int, size: int, device=None) -> tuple[torch.Tensor, int]:
    """The ``n`` columns from ``pointer`` on, cyclically, and the advanced pointer."""
    cols = torch.tensor([(int(pointer) + i) % size for i in range(n)], dtype=torch.int64, device=device)
    return cols, int((pointer + n) % size)


def read_columns(tile: AnalogTile, cols: torch.Tensor) -> torch.Tensor:
    """Columns ``tile.weight[:, cols]`` read by one-hot MVMs through the transfer-read periphery: (out, k)."""
    return tile.read(cols)


def decay_filter(h: torch.Tensor, read: torch.Tensor, beta: float) -> torch.Tensor:
    """``(1 - beta) h + beta * read``: first-order low-pass (P2 eq. 14, RL-v2; P5 eq. 12, Lemma 3.10)."""
    return h + beta * (read.to(h) - h)


def accumulate(h: torch.Tensor, read: torch.Tensor, lam: float) -> torch.Tensor:
    """``h + lam * read``: TT-v2's buffer (L1 eq. 10, papers.md §2.3)."""
    return h + lam * read.to(h)


def threshold_pulses(
    h: torch.Tensor, threshold: float, max_pulses: int = 1, forget: bool = False, momentum: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole pulses where ``|h| >= threshold``; returns ``(signed counts, new h)``.

    ``counts = clamp(trunc(h / threshold), -max_pulses, max_pulses)`` (``max_pulses = 0``: no cap).
    Where a pulse fires, ``h`` gives up what was sent: ``h - (1 - momentum) * counts * threshold``, or
    with ``forget`` it is reset to ``momentum * h`` (aihwkit's ``forget_buffer``, papers.md §2.3).

    * RL-v2 (P2 §5, Fix 2): ``max_pulses = 1``, threshold ``dw_min`` -- at most one pulse per element
      and ``|h|`` drops by exactly the threshold, so it may fire again next time (papers.md §9.1 item 13).
    * TT-v2 (L1 eq. 10): ``floor_0(h)`` pulses clipped to the train length (usually 1).
    * mixed precision (papers.md §2.6): ``floor_0(chi / dw_min)`` pulses, no cap.
    """
    counts = torch.trunc(h.double() / threshold)
    if max_pulses:
        counts = counts.clamp(-max_pulses, max_pulses)
    if forget:
        new = torch.where(counts != 0, momentum * h, h)
    else:
        new = h - ((1 - momentum) * threshold * counts).to(h)
    return counts, new


# =============================================================================================
# writes onto slower arrays
# =============================================================================================
def fire_pulses(tile: AnalogTile, counts: torch.Tensor, cols: torch.Tensor | None = None) -> int:
    """Send ``|counts|`` single pulses of ``sign(counts)`` to each element (of ``cols`` if given).

    A pulse is a physical event, so this bypasses the tile's update mode: each element moves by
    ``dw_min * q_sign(w)`` per pulse (plus cycle noise), as ``pulses.apply_pulses`` models it.
    Returns the number of pulses sent (also added to ``tile.pulse_count``).
    """
    counts = counts.double()
    cl = distinct_columns(cols, tile.shape[1])
    if cl is not None:
        # Fast path (the usual transfer of a few distinct columns): only the elements of those columns
        # are looked at (a column is small: numpy's per-call cost is a fraction of torch's).
        s = torch.broadcast_to(counts, (tile.shape[0], len(cl))).detach().cpu().numpy()
        return _fire_columns(tile, s, cl)
    if cols is not None:  # reference: the full count matrix
        full = torch.zeros(tile.shape, dtype=torch.float64, device=counts.device)
        full[:, cols] = counts
        counts = full
    return tile.send_pulses(counts)


def distinct_columns(cols, n_in: int) -> list | None:
    """``cols`` as a list if it is a 1-d integer CPU tensor of distinct columns in ``[0, n_in)``, else None.

    The transfers' numpy fast paths need this (one column per step is the usual case); otherwise
    they take their torch reference paths.
    """
    if isinstance(cols, torch.Tensor) and cols.device.type != "cpu":
        return None
    if not (isinstance(cols, torch.Tensor) and cols.dim() == 1 and cols.dtype in (torch.int64, torch.int32)):
        return None
    cl = cols.tolist()
    if len(cl) == 1:
        return cl if 0 <= cl[0] < n_in else None
    return cl if all(0 <= c < n_in for c in cl) and len(set(cl)) == len(cl) else None


def _fire_columns(tile: AnalogTile, s: np.ndarray, cl: list) -> int:
    """``fire_pulses(tile, counts, cols)`` for distinct columns ``cl`` with the signed counts as a float64
    numpy array ``s`` of shape (out, len(cl)): the same pulses, random draws and draw order.

    The elements of the columns are enumerated in row-major order (columns sorted within a row), the
    order in which the full-matrix path draws their random numbers.
    """
    n_in, k = tile.shape[1], len(cl)
    if k > 1:
        order = sorted(range(k), key=cl.__getitem__)
        if order != list(range(k)):
            s = s[:, order]
    s = s.reshape(-1)
    hit = np.flatnonzero(np.abs(s) > 0)  # as send_pulses: elements with |counts| > 0
    if k == 1:
        idx = hit * n_in + cl[0]
    else:  # position r * k + i of s is element (r, sorted column i)
        idx = hit // k * n_in + np.array(sorted(cl), dtype=np.int64)[hit % k]
    dev = tile.conductance.device
    return tile._send_pulses_at(torch.from_numpy(idx).to(dev), torch.from_numpy(s[hit]).to(dev))


def buffer_pulses(tile: AnalogTile, h: torch.Tensor, cols: torch.Tensor, v: torch.Tensor, rate: float,
                  threshold: float, max_pulses: int = 1, forget: bool = False, momentum: float = 0.0,
                  decay: bool = False) -> int:
    """A buffered threshold transfer onto the columns ``cols`` of ``tile``; ``h`` (a float64 buffer of the
    tile's shape) is updated in place.  Returns the pulses sent.

    ``h[:, cols] <- accumulate(h[:, cols], v, rate)`` (``decay_filter`` if ``decay``), then the
    ``threshold_pulses`` counts are fired onto those columns and ``h`` keeps the remainder: the
    composition below, which is the reference.  For distinct columns of a CPU buffer the buffer steps
    run fused in one numba loop over the columns' elements (``_buffer_columns``: the same float64
    operations, element by element) and its pulses go to ``tile._send_pulses_at``: TT-v2, c-TTv2 and
    AGAD transfer one column per step, where torch's per-call cost of ~15 tiny operations would
    dominate.  Tests hold the two equal.
    """
    cl = distinct_columns(cols, tile.shape[1])
    if cl is None or h.device.type != "cpu" or h.dtype != torch.float64:  # the reference
        hc = decay_filter(h[:, cols], v, rate) if decay else accumulate(h[:, cols], v, rate)
        n, hc = threshold_pulses(hc, threshold, max_pulses, forget, momentum)
        h[:, cols] = hc
        return fire_pulses(tile, n, cols)
    n_out, k = tile.shape[0], len(cl)
    v = (v if v.shape == (n_out, k) else torch.broadcast_to(v, (n_out, k))).detach().numpy()
    if k > 1:  # the kernel walks the columns in ascending order (fire_pulses' element order)
        order = sorted(range(k), key=cl.__getitem__)
        cl, v = [cl[i] for i in order], v[:, order]
    v = np.ascontiguousarray(v, dtype=np.float64)  # as ``read.to(h)``
    idx, counts = np.empty(n_out * k, dtype=np.int64), np.empty(n_out * k, dtype=np.float64)
    m = _buffer_columns(h.numpy(), np.array(cl, dtype=np.int64), v, float(rate), float(threshold), int(max_pulses),
                        bool(forget), float(momentum), (1 - momentum) * threshold, bool(decay), idx, counts)
    idx, counts, dev = torch.from_numpy(idx[:m]), torch.from_numpy(counts[:m]), tile.conductance.device
    if dev.type != "cpu":
        idx, counts = idx.to(dev), counts.to(dev)
    return tile._send_pulses_at(idx, counts)


@numba.njit(cache=True)
def _buffer_columns(h, cols, v, rate, threshold, max_pulses, forget, momentum, sent_per_count, decay, idx, counts):
    """``buffer_pulses`` on the ascending distinct columns ``cols`` of ``h`` (in place), element by element
    with the float64 operations of ``accumulate`` / ``decay_filter`` and ``threshold_pulses``
    (``sent_per_count`` is their ``(1 - momentum) * threshold``).  The elements with a non-zero count
    are listed in row-major order, as ``fire_pulses`` enumerates them: flat indices into ``idx`` and
    signed counts into ``counts``; returns how many."""
    n_in = h.shape[1]
    m = 0
    for r in range(h.shape[0]):
        for t in range(cols.shape[0]):
            c = cols[t]
            x = h[r, c]
            x = x + rate * (v[r, t] - x) if decay else x + rate * v[r, t]
            n = np.trunc(x / threshold)
            if max_pulses:
                n = min(max(n, -max_pulses), max_pulses)
            if forget:
                h[r, c] = momentum * x if n != 0 else x
            else:
                h[r, c] = x - sent_per_count * n
            if abs(n) > 0:
                idx[m] = r * n_in + c
                counts[m] = n
                m += 1
    return m


def transfer_columns(tile: AnalogTile, cols: torch.Tensor, v: torch.Tensor, lr: float) -> None:
    """``W[:, cols] += lr * v`` as a pulsed rank-one update with one-hot inputs (P2 eq. 11).

    The tile's update is ``W -= lr * d^T x``; with ``x = e_i`` and ``d = -v_i`` (one row per column,
    written one after the other in ``stochastic`` mode) the array moves by ``+lr * v`` times its
    response, which is the transfer ``W + beta P * F(W) - beta |P| * G(W)``.
    """
    if lr == 0:
        return
    onehot = torch.zeros(cols.numel(), tile.shape[1], dtype=tile.conductance.dtype, device=v.device)
    onehot[torch.arange(cols.numel()), cols] = 1
    tile.update(onehot, -v.T.to(tile.conductance.dtype), lr)


def program_reference(tile: AnalogTile, estimate: torch.Tensor) -> None:
    """Make the array read ``conductance - estimate`` (a differential read against a reference array).

    Used after zero-shifting (P5 Alg. 1): the estimated symmetric point becomes the reference, so
    the array reads zero where its response is symmetric.  The copy is exact here; a reference
    error (P5's ``mu_r``, ``sigma_r``) can be added to ``estimate`` by the caller.
    """
    est = torch.as_tensor(estimate, dtype=tile.conductance.dtype, device=tile.conductance.device)
    tile.reference = torch.broadcast_to(est, tile.shape).clone()


def chop_period(prob: float) -> int:
    """Reads between flips of a periodic chopper: ``max(ceil(1/prob), 2)`` (``in_chop_random=False``); 0 if prob = 0."""
    return 0 if prob <= 0 else max(math.ceil(1.0 / prob - 1e-12), 2)


def chopper_flips(reads: torch.Tensor, prob: float, random: bool, generator: torch.Generator) -> torch.Tensor:
    """Which choppers flip now (bool, shape of ``reads``).

    ``reads`` counts each chopper's reads (or steps) including the current one.  ``random``: each flips
    independently with probability ``prob`` (L1 ``in_chop_prob``; P5 eq. 17, ``c_{k+1} = -c_k`` w.p. p);
    else a chopper flips every ``chop_period(prob)`` reads.  ``prob = 0``: never.
    """
    if prob <= 0:
        return torch.zeros(reads.shape, dtype=torch.bool, device=reads.device)
    if random:
        return torch.rand(reads.shape, generator=generator, dtype=torch.float64, device=reads.device) < prob
    return torch.remainder(reads.round().long(), chop_period(prob)) == 0


def column_index(cols: torch.Tensor):
    """A numpy index for the distinct CPU columns ``cols``: one column as a slice (a view, cheaper than a
    gather), else the column array."""
    if cols.numel() == 1:
        c = int(cols)
        return slice(c, c + 1)
    return cols.numpy()


def advance_choppers(chop: torch.Tensor, reads: torch.Tensor, cols: torch.Tensor, prob: float, random: bool,
                     generator: torch.Generator) -> torch.Tensor:
    """Count a read of the columns ``cols`` in ``reads`` and flip their input choppers ``chop`` (in place)
    where ``chopper_flips`` says so; returns the flip mask (c-TTv2, AGAD, E-RIDER: L1 in_chop, P5 eq. 17).

    For distinct columns of CPU buffers the same steps run on numpy views (a few elements: torch's
    per-call cost would dominate); the flips are drawn by torch from ``generator`` either way.
    """
    if chop.device.type != "cpu" or distinct_columns(cols, chop.numel()) is None:  # the reference
        r = reads[cols] + 1  # (same values as ``reads[cols] += 1`` then re-reading them)
        reads[cols] = r
        flips = chopper_flips(r, prob, random, generator)
        c = chop[cols]
        chop[cols] = torch.where(flips, -c, c)
        return flips
    at = column_index(cols)
    rn, cn = reads.numpy(), chop.numpy()
    r = rn[at] + 1
    rn[at] = r
    flips = chopper_flips(torch.from_numpy(r), prob, random, generator)
    c = cn[at]
    cn[at] = np.where(flips.numpy(), -c, c)
    return flips


# =============================================================================================
# options
# =============================================================================================
@dataclass(frozen=True)
class Option:
    """One hyper-parameter: default and allowed values (``kind`` float, int, bool or str), and what it does."""

    default: object
    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    choices: tuple = ()
    why: str = ""  # for a refused value that means something elsewhere: the reason (and where to go instead)
    help: str = ""  # one line for ``analogtrain algorithm show`` and docs/algorithms.md

    def but(self, **changes) -> "Option":
        """This option with some fields changed (an algorithm's own default or meaning of a shared option)."""
        return replace(self, **changes)

    def allowed(self) -> str:
        """The allowed values in words, as the error messages state them."""
        if isinstance(self.default, bool):
            return "true or false" if not self.choices else " or ".join(str(c).lower() for c in self.choices)
        if isinstance(self.default, str):
            return "one of: " + ", ".join(self.choices)
        kind = "whole number" if isinstance(self.default, int) else "number"
        if self.lo == -math.inf and self.hi == math.inf:
            return kind
        if self.hi == math.inf:
            return f"{kind} {'>' if self.lo_open else '>='} {self.lo:g}"
        return f"{kind} in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}]"

    def check(self, name: str, value):
        if isinstance(self.default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{name} must be true or false, got {value!r}")
            if self.choices and value not in self.choices:
                raise ConfigError(f"{name} = {str(value).lower()} is not supported: {self.why}")
            return value
        if isinstance(self.default, str):
            return check_choice(name, value, self.choices)
        if isinstance(value, bool):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        try:
            v = check_range(name, value, self.lo, self.hi, lo_open=self.lo_open)
        except ConfigError as exc:
            raise ConfigError(f"{exc}: {self.why}" if self.why else str(exc)) from None
        if isinstance(self.default, int):
            if not float(v).is_integer():
                raise ConfigError(f"{name} must be a whole number, got {value!r}")
            return int(v)
        return v


def resolve_options(algorithm: str, spec: dict, given: dict) -> dict:
    """Defaults of ``spec`` overridden by ``given``; unknown names and bad values raise ConfigError."""
    unknown = sorted(set(given) - set(spec))
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} for algorithm {algorithm!r}; "
                          f"known: {', '.join(sorted(spec)) or '(none)'}")
    return {k: o.check(k, given.get(k, o.default)) for k, o in spec.items()}


# =============================================================================================
# plumbing shared by the algorithm classes
# =============================================================================================
def _is_zero(c) -> bool:
    # A tensor coefficient costs a reduction here; algorithms whose option makes a term vanish return
    # a scalar 0 for it instead (e.g. c-TTv2's gamma * chop with gamma = 0).
    return not bool(torch.as_tensor(c).any()) if isinstance(c, torch.Tensor) else c == 0


def _is_one(c) -> bool:
    """A scalar coefficient of exactly 1 (``1.0 * v`` is ``v`` bit for bit, so the multiply is skipped)."""
    return not isinstance(c, torch.Tensor) and c == 1


def _matrix(t) -> torch.Tensor:
    return t if isinstance(t, torch.Tensor) else t.weight


def _coef(c, t):
    """A coefficient as a scalar or a per-column row (broadcast over the output dimension)."""
    if isinstance(c, torch.Tensor):
        return c.to(_matrix(t).dtype).view(1, -1)
    return c


def _term(c, t, v: torch.Tensor, direction: str) -> torch.Tensor:
    """``c * t`` applied to ``v``: a tile through its periphery, a digital matrix exactly.

    A per-column coefficient vector (length in_size) scales the inputs of a forward pass and the
    outputs of a backward pass (an input chopper: ``(M diag c) x``, ``(M diag c)^T d``).
    """
    cols = isinstance(c, torch.Tensor)
    if direction == "forward":
        x = v * c.to(v.dtype) if cols else v
        y = (x.to(t.dtype) @ t.T).to(v.dtype) if isinstance(t, torch.Tensor) else t.forward(x)
        return y if cols or _is_one(c) else c * y
    z = (v.to(t.dtype) @ t).to(v.dtype) if isinstance(t, torch.Tensor) else t.backward(v)
    return z * c.to(z.dtype) if cols else z if _is_one(c) else c * z


def _exact_read(t, direction: str) -> bool:
    """A term read without periphery effects: a digital matrix, or a tile whose periphery is perfect."""
    return isinstance(t, torch.Tensor) or getattr(t.config, direction).is_perfect


MIXED_READS = ("summed", "separate")  # how an effective weight of several arrays is read (ArrayAlgorithm._mixed)


class ArrayAlgorithm:
    """Named analog arrays + digital buffers + counters, with the algorithm interface of ``sgd.py``.

    A subclass defines ``name``, ``OPTIONS`` (name -> ``Option``), ``make`` (build its arrays and
    buffers into ``self``), ``mix()`` (the terms ``(coefficient, tile)`` of the effective weight),
    ``program`` and ``update(grad: Gradient, lr)``.  Everything in ``tiles``, ``buffers``,
    ``counters`` and ``generator`` is checkpointed, with the resolved options (``load_state_dict`` refuses a
    state written under other ones).

    ``ideal_options``: options under which the algorithm needs no device asymmetry to converge on a
    symmetric device (the shared invariant tests use them; e.g. Tiki-Taka with gamma = 0 relies on
    the asymmetry to decay P and oscillates on an ideal device).
    """

    name = "array-algorithm"
    OPTIONS: dict = {}
    ideal_options: dict = {}

    def __init__(self, out_size: int, in_size: int, config: TileConfig | None, seed: int, dtype, device,
                 options: dict, configs: dict | None = None):
        self.shape = (int(out_size), int(in_size))
        self.config = config or TileConfig()
        self.configs = dict(configs or {})  # per-array TileConfig overrides, by array name
        self.seed, self.dtype, self.device = int(seed), dtype, device
        self.opts = options
        self.tiles: dict[str, AnalogTile] = {}
        self.buffers: dict[str, torch.Tensor] = {}
        self.counters: dict[str, int] = {}
        # the algorithm's own random choices (choppers, random column order), never the global RNG
        self.generator = torch.Generator(device).manual_seed(derive_seed(self.seed, 1000))
        self.make()
        unknown = sorted(set(self.configs) - set(self.tiles))
        if unknown:
            raise ConfigError(f"configs names unknown array(s) {', '.join(unknown)}; {self.name} has "
                              f"{', '.join(self.tiles)}")

    @classmethod
    def build(cls, out_size: int, in_size: int, config: TileConfig | None = None, seed: int = 0,
              dtype=torch.float32, device="cpu", configs: dict | None = None, **hyper):
        """The algorithm with fresh arrays for an ``out_size x in_size`` layer; ``hyper`` = ``OPTIONS``.

        Every array is built from ``config`` unless ``configs`` names it (e.g. ``{"P": TileConfig(...)}``
        for a residual array on another device, as in P2 Fig. 2).
        """
        check_range("out_size", out_size, 1)
        check_range("in_size", in_size, 1)
        opts = resolve_options(cls.name, cls.OPTIONS, hyper)
        return cls(out_size, in_size, config, seed, dtype, device, opts, configs)

    # ---- to override ----------------------------------------------------------------------------
    def make(self) -> None:
        raise NotImplementedError

    def mix(self) -> list[tuple[float, AnalogTile]]:
        raise NotImplementedError

    def update(self, grad: Gradient, lr: float) -> None:
        raise NotImplementedError

    def program(self, w: torch.Tensor) -> None:
        raise NotImplementedError

    # ---- helpers for subclasses ---------------------------------------------------------------------
    def new_tile(self, name: str, tag: int) -> AnalogTile:
        """An array built from the layer's TileConfig (or ``configs[name]``), seeded by ``derive_seed(seed, tag)``."""
        t = AnalogTile(*self.shape, self.configs.get(name, self.config), seed=derive_seed(self.seed, tag),
                       dtype=self.dtype, device=self.device)
        self.tiles[name] = t
        return t

    def new_buffer(self, name: str) -> torch.Tensor:
        """A digital float64 buffer of the layer's shape, zero."""
        self.buffers[name] = torch.zeros(self.shape, dtype=torch.float64, device=self.device)
        return self.buffers[name]

    # ---- the algorithm interface (sgd.py) ------------------------------------------------------------
    @property
    def weight(self) -> torch.Tensor:
        """The effective weight ``sum_i c_i * tile_i.weight`` (what forward/backward see; a new tensor)."""
        terms = [(c, t) for c, t in self.mix() if not _is_zero(c)]
        c0, t0 = terms[0]
        if _is_one(c0):  # 1.0 * w is w: skip the multiply (a copy if it is the only term, never an alias)
            w = _matrix(t0) if len(terms) > 1 else _matrix(t0).clone()
        else:
            w = _coef(c0, t0) * _matrix(t0)
        for c, t in terms[1:]:
            w = w + _coef(c, t) * _matrix(t)
        return w

    def _mixed(self, v: torch.Tensor, direction: str) -> torch.Tensor:
        """``v`` through the effective weight ``sum_i c_i M_i`` (``mix()``); a zero coefficient costs no read.

        Option ``mixed_read`` (``MIXED_READS``): ``summed`` (default) reads the summed weight as one array
        through the periphery of the first array of ``mix()`` (the main one), with one set of converters
        and one noise draw, as aihwkit's compound devices do (they reduce their devices to one weight,
        ``reduceToWeights``, before each MVM; P3 and P5 ran on them); ``separate`` gives each array its own
        MVM through its own periphery and combines the outputs digitally (a chip with one ADC per array).
        Where every read is exact the two agree up to float rounding, and the one product is used.
        """
        terms = [(c, t) for c, t in self.mix() if not _is_zero(c)]
        if len(terms) == 1:
            return _term(*terms[0], v, direction)
        tiles = [t for _, t in terms if not isinstance(t, torch.Tensor)]
        summed = bool(tiles) and self.opts.get("mixed_read", "summed") == "summed"
        if summed or all(_exact_read(t, direction) for _, t in terms):
            w = self.weight
            main = tiles[0] if tiles else None
            cfg = IOConfig.perfect() if main is None else getattr(main.config, direction)
            y = mvm(w, v.to(w.dtype), cfg, None if main is None else main.generator,
                    transpose=direction == "backward", name="d" if direction == "backward" else "x")
            return y.to(v.dtype)
        out = None
        for c, t in terms:
            y = _term(c, t, v, direction)
            out = y if out is None else out + y
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._mixed(x, "forward")

    def backward(self, d: torch.Tensor) -> torch.Tensor:
        return self._mixed(d, "backward")

    def step(self, x: torch.Tensor, d: torch.Tensor, lr: float) -> None:
        """One optimizer step of a layer: the wanted SGD change is ``-lr * d^T x``."""
        self.update(Gradient.rank_one(x, d), float(lr))

    def step_gradient(self, grad: torch.Tensor, lr: float) -> None:
        """One step with a gradient matrix (least-squares toys)."""
        self.update(Gradient.dense(grad), float(lr))

    def scaled_lr(self, name: str, lr: float) -> float:
        """Option ``name`` times ``lr`` if option ``scale_<name>`` is set, else the option itself."""
        return self.opts[name] * (lr if self.opts.get(f"scale_{name}", False) else 1.0)

    @property
    def pulse_count(self) -> int:
        return sum(t.pulse_count for t in self.tiles.values())

    def state_dict(self) -> dict:
        return {
            "tiles": {k: t.state_dict() for k, t in self.tiles.items()},
            "buffers": {k: b.clone() for k, b in self.buffers.items()},
            "counters": dict(self.counters),
            "generator": self.generator.get_state(),
            "options": dict(self.opts),  # resolved, defaults included: a later change of a default shows
        }

    def load_state_dict(self, state: dict) -> None:
        if set(state["tiles"]) != set(self.tiles) or set(state["buffers"]) != set(self.buffers):
            raise ConfigError(f"state holds arrays {sorted(state['tiles'])} and buffers {sorted(state['buffers'])}; "
                              f"{self.name} has {sorted(self.tiles)} and {sorted(self.buffers)}")
        saved = state.get("options")  # absent in states written before options were saved
        if saved is not None and saved != self.opts:
            diff = "; ".join(f"{k}: {saved.get(k, '(unset)')!r} there, {self.opts.get(k, '(unset)')!r} now"
                             for k in sorted(set(saved) | set(self.opts)) if saved.get(k) != self.opts.get(k))
            raise ConfigError(f"the {self.name} state was written under other options ({diff}); continuing it "
                              "would change the run mid-way: pass the same options, or start a new run")
        for k, t in self.tiles.items():
            t.load_state_dict(state["tiles"][k])
        for k in self.buffers:
            self.buffers[k] = state["buffers"][k].to(self.buffers[k]).clone()
        self.counters = {k: int(v) for k, v in state["counters"].items()}
        self.generator.set_state(state["generator"])
