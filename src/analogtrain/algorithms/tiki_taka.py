"""Tiki-Taka v1 / Residual Learning: a fast residual array P and a main array W (papers.md §2.2, §4).

P2 eq. 10-11 (our convention is P2's: P accumulates the negative gradient, W moves by +beta P):

    W_bar_k = W_k + gamma P_k                                          (mixed weight; gradient taken here)
    P_{k+1} = P_k - alpha grad f(W_bar_k) * F(P_k) - alpha |grad f(W_bar_k)| * G(P_k)        (eq. 10)
    W_{k+1} = W_k + beta P_{k+1} * F(W_k) - beta |P_{k+1}| * G(W_k)                         (eq. 11)

P1's Tiki-Taka (TT-P)/(TT-W) is the gamma = 0 case with its letters swapped and P negated:
P1's beta (fast lr) is our alpha, P1's alpha (transfer lr) our beta, P1's P is our -P.

As executed (aihwkit's TT-v1, papers.md §2.2 and §4(c)): every optimizer step pulses the batch
gradient onto P; every ``transfer_every`` steps, ``n_columns`` consecutive columns of P (a cyclic
pointer) are read by one-hot MVMs through the transfer-read periphery and written onto the same
columns of W by a pulsed rank-one update.  With ``n_columns = in_size`` and ``transfer_every = 1`` this
is exactly eq. 10-11 (the theory's "whole P every step"; the papers' toys); the papers' networks
transfer one column per step.

The decay of P towards zero that makes Tiki-Taka converge comes from the device: random +-
gradient pulses pull P to its symmetric point (P1 eq. 11-13), which must read as zero -- on a device
with a shifted symmetric point use ``calibration = "zero-shift"`` (P5 Alg. 1) so that P reads
``conductance - estimate``.  On a symmetric device (no decay) gamma = 0 makes (P, W) an undamped
oscillator; gamma > 0 (P2's residual learning) damps it.

Learning rates.  The layer's lr (the optimizer group's, so schedulers act on it) scales both rates
unless told otherwise, as in aihwkit:

    alpha = fast_lr * (lr if scale_fast_lr else 1),    beta = transfer_lr * (lr if scale_transfer_lr else 1).

Defaults (1, scaled; 1, scaled) make the layer lr both the fast and the transfer lr.  P1's MNIST
setting "fast lr 0.01 absolute, transfer lr = the SGD lr 0.05" is ``fast_lr = 0.01,
scale_fast_lr = false, transfer_lr = 1, scale_transfer_lr = true`` with optimizer lr 0.05.

Forward/backward see ``W + gamma P``, read as one array through W's periphery (``mixed_read =
"summed"``, aihwkit's compound read) or as two MVMs, each through its array's own periphery, summed
digitally with weights 1 and gamma (``"separate"``); no read of P when gamma = 0.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from .steps import (MIXED_READS, ArrayAlgorithm, Gradient, Option, next_columns, pulse_gradient, read_columns,
                    transfer_columns)
from .zero_shift import CALIBRATION_OPTIONS, calibrate

RESIDUAL_OPTIONS = {
    "gamma": Option(0.0, lo=0.0, help="mixing weight: forward and backward see W + gamma P (P2 eq. 10; P1: 0)"),
    "fast_lr": Option(1.0, lo=0.0, lo_open=True, help="alpha, the rate of the gradient pulsed onto P"),
    "scale_fast_lr": Option(True, help="alpha = fast_lr * lr (true) or fast_lr itself (false)"),
    "transfer_lr": Option(1.0, lo=0.0, lo_open=True, help="beta, the rate of the transfer from P onto W"),
    "scale_transfer_lr": Option(True, help="beta = transfer_lr * lr (true) or transfer_lr itself (false)"),
    "transfer_every": Option(1, lo=1, help="optimizer steps between two transfers"),
    "n_columns": Option(1, lo=1, help="columns of P read and transferred per transfer (cyclic), at most in_size"),
    **CALIBRATION_OPTIONS,
    "mixed_read": Option("summed", choices=MIXED_READS, help=(
        "summed: the summed weight read as one array, one noise draw (aihwkit); separate: one MVM per array")),
}


class TikiTaka(ArrayAlgorithm):
    """TT-v1 / Residual Learning (P2 eq. 10-11; P1 (TT-P)/(TT-W) with gamma = 0).  See module docstring."""

    name = "tiki-taka"
    OPTIONS = RESIDUAL_OPTIONS
    ideal_options = {"gamma": 0.4}

    def make(self) -> None:
        if self.opts["n_columns"] > self.shape[1]:
            raise ConfigError(f"n_columns = {self.opts['n_columns']} is outside the allowed range [1, {self.shape[1]}]"
                              " (the layer's input size)")
        self.W = self.new_tile("W", 0)  # main (slow) array
        self.P = self.new_tile("P", 1)  # residual (fast) array: same TileConfig, its own seed
        self.counters.update(steps=0, pointer=0)
        self.calibration_pulses = 0
        if self.opts["calibration"] == "zero-shift":
            self.calibration_pulses = calibrate(self.P, self.opts["calibration_pulses"], self.opts["calibration_mode"])

    def mix(self):
        return [(1.0, self.W), (self.opts["gamma"], self.P)]

    def program(self, w: torch.Tensor) -> None:
        """W <- w and P <- 0 (reads zero: at its reference after calibration)."""
        self.W.program(w)
        self.P.program(torch.zeros(self.shape))

    def update(self, grad: Gradient, lr: float) -> None:
        alpha, beta = self.scaled_lr("fast_lr", lr), self.transfer_rate(lr)
        pulse_gradient(self.P, grad, alpha)  # eq. 10: P <- P - alpha grad (at P's response)
        self.counters["steps"] += 1
        if self.counters["steps"] % self.opts["transfer_every"] == 0:
            cols, self.counters["pointer"] = next_columns(self.counters["pointer"], self.opts["n_columns"],
                                                          self.shape[1])
            self.transfer(cols, beta)

    def transfer_rate(self, lr: float) -> float:
        """beta of the transfers (``scaled_lr`` rule)."""
        return self.scaled_lr("transfer_lr", lr)

    def transfer(self, cols: torch.Tensor, beta: float) -> None:
        """eq. 11 on the columns ``cols``: W <- W + beta P (at W's response)."""
        transfer_columns(self.W, cols, read_columns(self.P, cols), beta)
