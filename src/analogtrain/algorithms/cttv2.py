"""Chopped TT-v2 (c-TTv2, "TTv3"; Rasch et al. 2024 = L1, papers.md §2.4): TT-v2 with input choppers.

TT-v2 (``ttv2.py``: fast array P, programmed reference R, digital buffer H, threshold transfer onto W)
with a sign ``c_j in {+1, -1}`` per input column (buffer ``chop``, all +1 at the start):

    P <- P - alpha * grad diag(c)            (the pulsed update sees the chopped inputs  x_hat = c * x)
    z_k = c_k (P - R) e_k                    (the read of column k, sign-corrected)
    H[:, k] <- H[:, k] + beta z_k            (L1 eq. 10, as TT-v2)
    W[:, k] += trunc(H / threshold) pulses, H keeps the remainder

and after the read of column k its chopper flips with probability ``in_chop_prob`` (``in_chop_random``)
or every ``max(ceil(1 / in_chop_prob), 2)`` reads of that column (periodic; the count is per column
in buffer ``reads``).  A constant offset of P's reading (a reference error ``R != SP``, or the
device's drift towards its symmetric point) enters P's reading with a sign that the corrected read
flips at every chopper flip, so its contribution to H averages out while the gradient's does not
(L1: tolerates reference offsets up to ~25 % of the range).

Letters as in ``ttv2.py`` (L1's A is our P, lambda_A = alpha, lambda_H = beta; P accumulates the
negative gradient).  The effective weight is ``W + gamma P diag(c)`` (gamma = 0 by default as in L1;
with gamma > 0 the chopped array is read through the same choppers so that its contribution has the
right sign).  Output choppers (``out_chop_prob``) are not implemented.
"""

from __future__ import annotations

import numpy as np
import torch

from .steps import (Gradient, Option, advance_choppers, buffer_pulses, column_index, distinct_columns,
                    read_columns)
from .ttv2 import BUFFER_OPTIONS, TikiTakaV2

CHOP_OPTIONS = {
    **BUFFER_OPTIONS,
    "in_chop_prob": Option(0.1, lo=0.0, hi=1.0, help=(
        "p: a column's input chopper flips after a read with probability p")),
    "in_chop_random": Option(True, help="random flips (true) or every max(ceil(1/p), 2) reads of the column (false)"),
}


class ChoppedTTv2(TikiTakaV2):
    """c-TTv2: TT-v2 whose fast array sees chopped inputs and is read sign-corrected (papers.md §2.4)."""

    name = "cttv2"
    OPTIONS = CHOP_OPTIONS
    # on a symmetric device W must be able to follow: no cap on the pulses per transfer
    ideal_options = {"gamma": 0.4, "max_pulses": 0}

    def make(self) -> None:
        super().make()
        self.buffers["chop"] = torch.ones(self.shape[1], dtype=torch.float64, device=self.device)
        self.buffers["reads"] = torch.zeros(self.shape[1], dtype=torch.float64, device=self.device)

    def program(self, w) -> None:
        super().program(w)
        self.buffers["chop"].fill_(1.0)
        self.buffers["reads"].zero_()

    def mix(self):
        # gamma = 0 (the default): a scalar 0, which the mixed read skips without reducing a vector
        g = self.opts["gamma"]
        return [(1.0, self.W), (g * self.buffers["chop"] if g else 0.0, self.P)]

    def update(self, grad: Gradient, lr: float) -> None:
        super().update(grad.scaled_inputs(self.buffers["chop"]), lr)  # x_hat = c * x; transfers via transfer()

    def transfer(self, cols, beta: float) -> None:
        if not self._numpy_columns(cols):
            z = self.buffers["chop"][cols] * read_columns(self.P, cols).double()  # z_k = c_k (P - R) e_k
        else:  # the same product on numpy views of the CPU buffers (cheaper per call)
            z = self.buffers["chop"].numpy()[column_index(cols)] * read_columns(self.P, cols).numpy().astype(np.float64)
            z = torch.from_numpy(z)
        self.buffer_transfer(cols, z, beta)
        self.advance_choppers(cols)

    def _numpy_columns(self, cols) -> bool:
        """Whether the transfer of ``cols`` may work on numpy views of the buffers: CPU buffers and
        distinct columns (``steps.distinct_columns``), else the torch reference steps run."""
        return self.buffers["chop"].device.type == "cpu" and distinct_columns(cols, self.shape[1]) is not None

    # ---- the two steps c-TTv2 and AGAD share ------------------------------------------------------------
    def buffer_transfer(self, cols, z: torch.Tensor, beta: float) -> None:
        """TT-v2's buffer: H <- H + beta z; whole pulses onto W where |H| >= threshold (L1 eq. 10)."""
        buffer_pulses(self.W, self.buffers["H"], cols, z, beta, self.opts["threshold_scale"] * self.W.device.dw_min,
                      self.opts["max_pulses"], self.opts["forget_buffer"], self.opts["momentum"])

    def advance_choppers(self, cols) -> torch.Tensor:
        """Count the read of ``cols`` and flip their choppers (chopper step); returns the flip mask."""
        return advance_choppers(self.buffers["chop"], self.buffers["reads"], cols, self.opts["in_chop_prob"],
                                self.opts["in_chop_random"], self.generator)
