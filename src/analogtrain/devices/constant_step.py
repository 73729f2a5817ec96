"""Constant step response and the ideal device.

    q_plus(w) = alpha_plus,  q_minus(w) = alpha_minus,      w clipped to [w_min, w_max],

i.e. every pulse moves the weight by the same amount until it hits a hard bound (Gokmen & Vlasov
2016's resistive processing unit, aihwkit's ConstantStepDevice; papers.md §1.4).  A run of n
same-sign pulses inside the range is exactly w + s n dw_min alpha_s, and n independent additive
per-pulse noises sum to one normal with std sqrt(n) (times dw_min sigma).  Clipping at the bound
commutes with the sum because a constant step moving one way stays clipped once it is at the bound.

``Ideal`` is the constant step with q = 1, unbounded range and no variations: a digital weight
whose pulse size dw_min is still the granularity in pulsed update modes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from .base import Device


def _q_up(w, a, w_max, w_min, c):
    return a + 0 * w  # "+ 0 * w" broadcasts the per-element slope to w's shape


def _q_down(w, a, w_max, w_min, c):
    return a + 0 * w


def _run_up(w, n, dw, a, w_max, w_min, c):
    return w + n * dw * a


def _run_down(w, n, dw, a, w_max, w_min, c):
    return w - n * dw * a


def _gain_up(n, dw, a, w_max, w_min, c):
    return n**0.5 + 0 * a


def _gain_down(n, dw, a, w_max, w_min, c):
    return n**0.5 + 0 * a


@dataclass(frozen=True)
class ConstantStep(Device):
    """Constant step with hard bounds: q_plus = alpha_plus, q_minus = alpha_minus."""

    name = "constant-step"
    source = "Gokmen & Vlasov 2016 (RPU); aihwkit ConstantStepDevice (papers.md §1.4)"

    q_up_fn = staticmethod(_q_up)
    q_down_fn = staticmethod(_q_down)
    run_up_fn = staticmethod(_run_up)
    run_down_fn = staticmethod(_run_down)
    gain_up_fn = staticmethod(_gain_up)
    gain_down_fn = staticmethod(_gain_down)

    def symmetric_point(self, p=None):
        """G = (alpha_minus - alpha_plus)/2 is constant, so no crossing exists in general.

        Alternating pulses drift to w_max if alpha_plus > alpha_minus and to w_min if below (that
        bound is where the drift stops, and what the bisection of the base class would return);
        with equal slopes every point is symmetric and we report 0 clipped into the range.
        """
        p = self._p(None, p)
        zero = torch.minimum(torch.maximum(torch.zeros_like(p.up), p.w_min), p.w_max)
        return torch.where(p.up > p.down, p.w_max, torch.where(p.up < p.down, p.w_min, zero))


@dataclass(frozen=True)
class Ideal(ConstantStep):
    """Ideal device: q == 1, no bounds, no variations (a digital weight with pulse size dw_min)."""

    name = "ideal"
    source = "digital SGD limit (P1 eq. 5); constant step with q = 1 and no bounds"

    w_max: float = math.inf
    w_min: float = -math.inf

    def __post_init__(self):
        super().__post_init__()
        # q == 1 exactly: any spread, bias or slope would make it a (non-ideal) constant step.
        fixed = {"w_max": math.inf, "w_min": -math.inf, "slope": 1.0, "up_down": 0.0, "dw_min_dtod": 0.0,
                 "up_down_dtod": 0.0, "w_max_dtod": 0.0, "w_min_dtod": 0.0, "dw_min_std": 0.0,
                 "write_noise_std": 0.0}
        for field, value in fixed.items():
            if getattr(self, field) != value:
                raise ConfigError(
                    f"{field} = {getattr(self, field)!r} is not allowed on the ideal device "
                    f"(must be {value:g}); "
                    "use constant-step for a device with bounds or variations"
                )
