"""Power step response (P1 App. C.2; papers.md §1.2 items 3 and 5).

    q_plus(w)  = alpha_plus  * ((w_max - w) / (w_max - w_min)) ** gamma_up,
    q_minus(w) = alpha_minus * ((w - w_min) / (w_max - w_min)) ** gamma_down.

With alpha_pm = 1 this is P1 App. C.2 with tau_max = w_max, tau_min = w_min (signed lower bound)
-> ``p1_power_step``.  gamma = 1 gives a soft-bounds-like linear response; gamma < 1 is concave
(steps stay large until close to the bound), gamma > 1 convex.

P2 eq. 148 ("power response", SP = 0, F(0) = 1):  q_plus = (1 - w/tau)**g, q_minus = (1 + w/tau)**g.
With w_max = tau, w_min = -tau the normalised distance is (tau - w)/(2 tau) = (1 - w/tau)/2, so
    (1 - w/tau)**g = 2**g * ((w_max - w)/(w_max - w_min))**g,
i.e. P2's form is this family with w_max = tau, w_min = -tau, gamma_up = gamma_down = g and
slope = 2**g  -> ``p2_power``.

No closed form for a run of n pulses exists for general gamma, so runs go pulse by pulse.
The symmetric point comes from the base class's bisection (q_minus grows and q_plus shrinks in w).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError, check_range
from .base import Device


def _q_up(w, a, w_max, w_min, c):
    z = (w_max - w) / (w_max - w_min)
    z = (z + abs(z)) / 2  # max(z, 0): rounding at w = w_max must not give a negative base
    return a * z ** c[0]


def _q_down(w, a, w_max, w_min, c):
    z = (w - w_min) / (w_max - w_min)
    z = (z + abs(z)) / 2
    return a * z ** c[1]


@dataclass(frozen=True)
class PowerStep(Device):
    """Power step: the response falls to zero at each bound as a power of the distance to it."""

    name = "power-step"
    source = "P1 App. C.2 (power step); P2 eq. 148 (power response)"

    gamma_up: float = 1.0
    gamma_down: float = 1.0

    q_up_fn = staticmethod(_q_up)
    q_down_fn = staticmethod(_q_down)

    def __post_init__(self):
        super().__post_init__()
        check_range("gamma_up", self.gamma_up, 0.0, lo_open=True)
        check_range("gamma_down", self.gamma_down, 0.0, lo_open=True)
        if not (math.isfinite(self.w_min) and math.isfinite(self.w_max)):
            raise ConfigError(f"power-step needs finite bounds, got w_min = {self.w_min:g}, w_max = {self.w_max:g}")

    def shape_constants(self) -> tuple:
        return (float(self.gamma_up), float(self.gamma_down))


def p1_power_step(tau_max: float, tau_min: float, gamma_up: float, gamma_down: float, **kw) -> PowerStep:
    """P1 App. C.2: q_plus = ((tau_max - w)/(tau_max - tau_min))**g+, q_minus likewise (alpha = 1)."""
    return PowerStep(w_max=tau_max, w_min=tau_min, gamma_up=gamma_up, gamma_down=gamma_down, **kw)


def p2_power(tau: float, gamma_res: float, **kw) -> PowerStep:
    """P2 eq. 148: q_plus = (1 - w/tau)**g, q_minus = (1 + w/tau)**g  (slope 2**g, module docstring)."""
    check_range("gamma_res", gamma_res, 0.0, lo_open=True)
    return PowerStep(w_max=tau, w_min=-tau, slope=2.0**gamma_res, gamma_up=gamma_res, gamma_down=gamma_res, **kw)
