"""Soft bounds / linear step response, with every paper's parametrisation mapped onto one form.

    q_plus(w)  = alpha_plus  * (1 - w / w_max),
    q_minus(w) = alpha_minus * (1 - w / w_min),        w_min < 0 < w_max,

which is L1 eq. 4-5 and P5 eq. 103-104 in the signed-bound form (papers.md §1.2 item 8), with
symmetric point w_sp = (alpha_plus - alpha_minus) / (alpha_plus / w_max - alpha_minus / w_min).

Mappings (alpha_pm = slope +- up_down):
* P1 §2.2 asymmetric linear device (ALD) with symmetric point w_sp and radius tau,
  q_pm = 1 -+ (w - w_sp)/tau:  w_max = w_sp + tau, w_min = w_sp - tau, up_down = w_sp/tau  -> ``ald``.
* P1 App. C.1 linear step with tau_max, tau_min (tau_min < 0):
  w_max = w_sp + tau_max, w_min = w_sp + tau_min, alpha_plus = w_max/tau_max, alpha_minus = w_min/tau_min
  -> ``linear_step``.
* P2 §1 linear device with symmetric-point shift c_Lin, q_pm = (1 +- c_Lin)(1 -+ w/tau):
  w_max = tau, w_min = -tau, up_down = c_Lin  -> ``p2_linear``.

A run of n up pulses has the exact closed form w_max - (w_max - w) r^n with r = max(1 - dw_min a / w_max, 0)
(likewise down; r = 0 when one pulse overshoots the bound, which clipping then holds), and additive
per-pulse noise sums to one normal scaled by sqrt(sum_k r^(2k)).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from .base import Device


def _q_up(w, a, w_max, w_min, c):
    return a * (1 - w / w_max)


def _q_down(w, a, w_max, w_min, c):
    return a * (1 - w / w_min)


# Per-pulse contraction factor of the distance to the bound.  One pulse larger than that distance
# (dw_min * a > |bound|, e.g. few-state ReRAM with a large sampled slope) would make r negative and the
# closed form oscillate; pulse by pulse the weight is clipped at the bound and stays there (q = 0 there),
# which is r = 0.  So r is clamped at 0 with max(r, 0) = (r + |r|) / 2.
def _run_up(w, n, dw, a, w_max, w_min, c):
    r = 1 - dw * a / w_max
    return w_max - (w_max - w) * ((r + abs(r)) / 2) ** n


def _run_down(w, n, dw, a, w_max, w_min, c):
    r = 1 + dw * a / w_min
    return w_min + (w - w_min) * ((r + abs(r)) / 2) ** n


def _gain_up(n, dw, a, w_max, w_min, c):
    r = 1 - dw * a / w_max
    r2 = ((r + abs(r)) / 2) ** 2
    return ((1 - r2**n) / (1 - r2 + 1e-300)) ** 0.5


def _gain_down(n, dw, a, w_max, w_min, c):
    r = 1 + dw * a / w_min
    r2 = ((r + abs(r)) / 2) ** 2
    return ((1 - r2**n) / (1 - r2 + 1e-300)) ** 0.5


@dataclass(frozen=True)
class SoftBounds(Device):
    """Soft-bounds (linear step) device: response falls linearly to zero at each bound."""

    name = "soft-bounds"
    source = "L1 eq. 2-8 (Rasch et al. 2024); P1 §2.2 / App. C.1; P2 §1; P5 eq. 103-104"

    q_up_fn = staticmethod(_q_up)
    q_down_fn = staticmethod(_q_down)
    run_up_fn = staticmethod(_run_up)
    run_down_fn = staticmethod(_run_down)
    gain_up_fn = staticmethod(_gain_up)
    gain_down_fn = staticmethod(_gain_down)

    def __post_init__(self):
        super().__post_init__()
        if not (self.w_min < 0 < self.w_max) or self.w_max == float("inf") or self.w_min == -float("inf"):
            raise ConfigError(
                f"soft-bounds needs finite bounds with w_min < 0 < w_max, got w_min = {self.w_min:g}, "
                f"w_max = {self.w_max:g}"
            )

    def symmetric_point(self, p=None):
        """Closed form (alpha_plus - alpha_minus) / (alpha_plus / w_max - alpha_minus / w_min)."""
        p = self._p(None, p)
        return (p.up - p.down) / (p.up / p.w_max - p.down / p.w_min)


def ald(tau: float, symmetric_point: float = 0.0, **kw) -> SoftBounds:
    """P1 §2.2 asymmetric linear device: q_pm(w) = 1 -+ (w - w_sp)/tau (P1 eq. 8 for w_sp = 0)."""
    return SoftBounds(
        w_max=symmetric_point + tau, w_min=symmetric_point - tau, up_down=symmetric_point / tau, **kw
    )


def linear_step(tau_max: float, tau_min: float, symmetric_point: float = 0.0, **kw) -> SoftBounds:
    """P1 App. C.1: q_plus = 1 - (w - w_sp)/tau_max, q_minus = 1 - (w - w_sp)/tau_min (tau_min < 0)."""
    if not (tau_min < 0 < tau_max):
        raise ConfigError(f"linear_step needs tau_min < 0 < tau_max, got {tau_min:g}, {tau_max:g}")
    w_max, w_min = symmetric_point + tau_max, symmetric_point + tau_min
    a_up, a_down = w_max / tau_max, w_min / tau_min
    return SoftBounds(
        w_max=w_max, w_min=w_min, slope=(a_up + a_down) / 2, up_down=(a_up - a_down) / 2, **kw
    )


def p2_linear(tau: float, c_lin: float = 0.0, **kw) -> SoftBounds:
    """P2 §1: q_plus = (1 + c_Lin)(1 - w/tau), q_minus = (1 - c_Lin)(1 + w/tau); SP = c_Lin * tau."""
    return SoftBounds(w_max=tau, w_min=-tau, up_down=c_lin, **kw)
