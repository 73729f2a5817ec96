"""TT-v2 and Residual Learning v2: a digital buffer H between P and W, and threshold transfer.

Both add to Tiki-Taka (``tiki_taka.py``; same arrays, options, learning-rate rules and column
schedule) a float buffer ``H`` of W's shape, in W's weight units.  At a transfer, for the columns
``cols`` of the schedule (``v`` = the periphery read of P's columns, with its read noise eps):

* TT-v2 (Gokmen 2021 as recapped by L1 eq. 10 and P2 App. D; papers.md §2.3):
  ``H <- H + beta v``, gradient at W (``gamma = 0`` by default).
* RL-v2 (P2 §5, eq. 14 and "Fix 2"): ``H_{k+1/2} = (1 - beta) H_k + beta (P_{k+1} + eps)``, gradient at
  ``W_bar = W + gamma P`` (default gamma 0.4, P2's experiments).  ``beta`` must be <= 1.

then wherever ``|H| >= threshold`` (``threshold = threshold_scale * dw_min`` of W; P2: dw_min) W gets
``trunc(H / threshold)`` single pulses of sign(H), at most ``max_pulses`` (RL-v2: one), and H gives
up what was sent (``H - pulses * threshold``; or, with ``forget_buffer``, H <- momentum H where it
fired, aihwkit's TT-v2 variant).  Since ``W + H`` gains ``beta v`` per transfer (less the decay of the
sub-threshold remainder in RL-v2), W follows ``W + beta P`` in whole pulses: the buffer keeps what one
pulse cannot yet express, and RL-v2's decay averages the read noise out (P2 §5, Fix 1).

Buffer granularity (aihwkit's ``auto_granularity`` of its chopped/dynamic transfer compounds, used by
P5's TT-v2/AGAD/E-RIDER tables with value 1000): with ``auto_granularity = g > 0`` the buffer's rate is
``beta * in_size * transfer_every / g``: aihwkit counts its buffer in pulses of granularity
``dw_min g / (in_size transfer_every)`` (of the fast array; the batch size does not enter); ours is
in W's weight units with threshold ``threshold_scale * dw_min``, which is the same buffer when P and W
share a device.  ``g = 0`` (default): ``beta`` as it is.  ``transfer_every`` counts optimizer steps
(aihwkit's ``units_in_mbatch = true``: one transfer per mini-batch); aihwkit's per-MVM count
(``units_in_mbatch = false``: ``rows / transfer_every`` transfers per mini-batch, interleaved with the
samples' updates) is not modelled and is refused.

Letters: P2's alpha (fast lr) and beta (transfer / filter rate) are ours; L1's lambda_A is alpha and
lambda_H is beta (in weight units; aihwkit's buffer counts in pulses of W).
"""

from __future__ import annotations

from ..errors import ConfigError
from .steps import Option, buffer_pulses, read_columns
from .tiki_taka import RESIDUAL_OPTIONS, TikiTaka

BUFFER_OPTIONS = {
    **RESIDUAL_OPTIONS,
    "threshold_scale": Option(1.0, lo=0.0, lo_open=True, help="W is pulsed where |H| >= threshold_scale * W's dw_min"),
    "max_pulses": Option(1, lo=0, help="most pulses per element per transfer (0: no cap)"),
    "forget_buffer": Option(False, help="where W was pulsed, H <- momentum * H instead of H minus what was sent"),
    "momentum": Option(0.0, lo=0.0, hi=1.0, help="what H keeps where it fired, with forget_buffer"),
    "auto_granularity": Option(0.0, lo=0.0, help=(
        "aihwkit's buffer granularity g: the buffer's rate is beta * in_size * transfer_every / g (0: beta)")),
    "units_in_mbatch": Option(True, choices=(True,), why=(
        "transfer_every counts optimizer steps (one transfer per mini-batch); aihwkit's per-MVM count "
        "(rows / transfer_every transfers per mini-batch) is not modelled -- raise n_columns instead"),
        help="transfer_every counts optimizer steps (aihwkit's per-MVM count is not modelled)"),
}


def buffer_rate(opts: dict, beta: float, in_size: int) -> float:
    """The buffer's rate: ``beta``, or with ``auto_granularity`` g > 0 ``beta * in_size * transfer_every / g``
    (module docstring; no batch factor, as aihwkit's buffer granularity)."""
    g = opts["auto_granularity"]
    return beta * in_size * opts["transfer_every"] / g if g else beta


class TikiTakaV2(TikiTaka):
    """TT-v2: P -> digital accumulator H -> threshold pulses on W (papers.md §2.3)."""

    name = "ttv2"
    OPTIONS = BUFFER_OPTIONS
    ideal_options = {"gamma": 0.4}
    decay = False  # TT-v2 accumulates; RL-v2 low-pass filters

    def make(self) -> None:
        super().make()
        self.new_buffer("H")

    def transfer_rate(self, lr: float) -> float:
        return buffer_rate(self.opts, self.scaled_lr("transfer_lr", lr), self.shape[1])

    def program(self, w) -> None:
        super().program(w)
        self.buffers["H"].zero_()

    def transfer(self, cols, beta: float) -> None:
        if self.decay and beta > 1:
            raise ConfigError(f"transfer_lr = {self.opts['transfer_lr']:g} gives a filter rate beta = {beta:g}"
                              " outside the allowed range (0, 1] (RL-v2: H <- (1 - beta) H + beta P)")
        # H <- (1 - beta) H + beta v (P2 eq. 14) or H + beta v (L1 eq. 10), then sign(H) pulses onto W
        # where |H| >= threshold (P2 §5 Fix 2); buffer_pulses does the three steps in place
        buffer_pulses(self.W, self.buffers["H"], cols, read_columns(self.P, cols), beta,
                      self.opts["threshold_scale"] * self.W.device.dw_min, self.opts["max_pulses"],
                      self.opts["forget_buffer"], self.opts["momentum"], decay=self.decay)


class ResidualLearningV2(TikiTakaV2):
    """RL-v2 (P2 §5): gradient at W + gamma P, decaying buffer, at most one pulse per element."""

    name = "rlv2"
    OPTIONS = {**BUFFER_OPTIONS, "gamma": BUFFER_OPTIONS["gamma"].but(default=0.4),
               "transfer_lr": BUFFER_OPTIONS["transfer_lr"].but(
                   default=0.1, help="beta, the buffer's filter rate H <- (1 - beta) H + beta P, at most 1 (eq. 14)"),
               "scale_transfer_lr": BUFFER_OPTIONS["scale_transfer_lr"].but(default=False)}
    ideal_options = {}
    decay = True
