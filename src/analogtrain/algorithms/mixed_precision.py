"""Mixed precision (Nandakumar et al. 2020; papers.md §2.6): a digital accumulator in front of one array.

Per step the wanted change ``-lr * grad`` is added to a float matrix chi (digital, exact); then,
wherever ``|chi| >= dw_min``, W receives ``floor_0(chi / dw_min)`` single pulses of sign(chi) and chi
keeps the remainder (``chi - pulses * dw_min``):

    chi <- chi - lr grad,     n = trunc(chi / dw_min),     W <- W + n pulses,     chi <- chi - n dw_min.

W therefore only ever receives whole pulses, never a fraction lost to rounding, at the cost of
computing the outer product digitally (the high-cost upper baseline of P3).  ``max_pulses`` caps the
pulses per element per step (0 = no cap); what the cap holds back stays in chi.
"""

from __future__ import annotations

import torch

from .steps import ArrayAlgorithm, Gradient, Option, fire_pulses, threshold_pulses


class MixedPrecision(ArrayAlgorithm):
    """Digital accumulator chi + whole-pulse writes onto W (papers.md §2.6)."""

    name = "mixed-precision"
    OPTIONS = {"max_pulses": Option(0, lo=0, help=(
        "most pulses per element per step (0: no cap); the rest stays in chi"))}

    def make(self) -> None:
        self.W = self.new_tile("W", 0)
        self.new_buffer("chi")

    def mix(self):
        return [(1.0, self.W)]

    def program(self, w: torch.Tensor) -> None:
        self.W.program(w)
        self.buffers["chi"].zero_()

    def update(self, grad: Gradient, lr: float) -> None:
        chi = self.buffers["chi"] - lr * grad.to_matrix()  # the digital outer product
        n, self.buffers["chi"] = threshold_pulses(chi, self.W.device.dw_min, self.opts["max_pulses"])
        fire_pulses(self.W, n)
