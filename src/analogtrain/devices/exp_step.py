"""Exponential step response, normalised so each side goes from 0 at its bound to alpha at the other.

    q_plus(w)  = alpha_plus  * (E**(kappa_up   * z_plus)  - 1) / (E**kappa_up   - 1),
    q_minus(w) = alpha_minus * (E**(kappa_down * z_minus) - 1) / (E**kappa_down - 1),
    z_plus = (w_max - w)/(w_max - w_min),  z_minus = (w - w_min)/(w_max - w_min).

Each factor is 0 at z = 0, 1 at z = 1 and positive between, for either sign of kappa: kappa < 0 is
concave (steps stay large until near the bound), kappa > 0 convex; kappa -> 0 is the linear
(soft-bounds) limit, which SoftBounds covers, so kappa = 0 is rejected.

P1 App. C.3 (papers.md §1.2 item 4), tau_min the signed lower bound:
    q_plus = 1 - exp(-g+ (tau_max - w)/(tau_max - tau_min)) = 1 - exp(-g+ z_plus).
Since (E**(-g z) - 1)/(E**(-g) - 1) = (1 - e^{-g z})/(1 - e^{-g}), P1's q_plus equals
(1 - e^{-g+}) times the normalised factor with kappa_up = -g+.  So w_max = tau_max, w_min = tau_min,
kappa_pm = -g_pm, alpha_pm = 1 - e^{-g_pm}, i.e. slope = (alpha_+ + alpha_-)/2 and
up_down = (alpha_+ - alpha_-)/2 (nonzero only when g+ != g-)  -> ``p1_exp_step``.

P2 eq. 149 ("exponential response", SP = 0, F(0) = 1):
    q_plus = (exp(g (1 - w/tau)) - 1)/(exp(g) - 1).
With w_max = tau, w_min = -tau, z_plus = (1 - w/tau)/2 so g (1 - w/tau) = 2 g z_plus, and
(e^{2g z} - 1)/(e^g - 1) = (e^{2g} - 1)/(e^g - 1) * normalised = (e^g + 1) * normalised.
So kappa_up = kappa_down = 2 g and slope = e^g + 1  -> ``p2_exp``.

(aihwkit's ExpStepDevice uses another parametrisation; papers.md §1.2 warns not to mix them.)
No closed form for a run of pulses; the symmetric point comes from the base class's bisection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError, check_range
from .base import Device

E = 2.718281828459045  # exp(x) written as E ** x so the same code runs in torch and numba


def _q_up(w, a, w_max, w_min, c):
    z = (w_max - w) / (w_max - w_min)
    z = (z + abs(z)) / 2  # max(z, 0): beyond the bound the factor would turn negative
    return a * (E ** (c[0] * z) - 1) / (E ** c[0] - 1)


def _q_down(w, a, w_max, w_min, c):
    z = (w - w_min) / (w_max - w_min)
    z = (z + abs(z)) / 2
    return a * (E ** (c[1] * z) - 1) / (E ** c[1] - 1)


@dataclass(frozen=True)
class ExpStep(Device):
    """Exponential step (normalised): kappa < 0 concave, kappa > 0 convex response towards each bound."""

    name = "exp-step"
    source = "P1 App. C.3 (exponential step); P2 eq. 149 (exponential response)"

    kappa_up: float = -1.0
    kappa_down: float = -1.0

    q_up_fn = staticmethod(_q_up)
    q_down_fn = staticmethod(_q_down)

    def __post_init__(self):
        super().__post_init__()
        for field in ("kappa_up", "kappa_down"):
            v = check_range(field, getattr(self, field), -500.0, 500.0)  # E**500 is still finite
            if v == 0:
                raise ConfigError(f"{field} = 0 is not allowed (the linear limit): use soft-bounds, or kappa != 0")
        if not (math.isfinite(self.w_min) and math.isfinite(self.w_max)):
            raise ConfigError(f"exp-step needs finite bounds, got w_min = {self.w_min:g}, w_max = {self.w_max:g}")

    def shape_constants(self) -> tuple:
        return (float(self.kappa_up), float(self.kappa_down))


def p1_exp_step(tau_max: float, tau_min: float, gamma_up: float, gamma_down: float, **kw) -> ExpStep:
    """P1 App. C.3: q_plus = 1 - exp(-g+ (tau_max - w)/(tau_max - tau_min)), q_minus likewise."""
    check_range("gamma_up", gamma_up, 0.0, lo_open=True)
    check_range("gamma_down", gamma_down, 0.0, lo_open=True)
    a_up, a_down = 1 - math.exp(-gamma_up), 1 - math.exp(-gamma_down)
    return ExpStep(
        w_max=tau_max, w_min=tau_min, kappa_up=-gamma_up, kappa_down=-gamma_down,
        slope=(a_up + a_down) / 2, up_down=(a_up - a_down) / 2, **kw,
    )


def p2_exp(tau: float, gamma_res: float, **kw) -> ExpStep:
    """P2 eq. 149: q_plus = (exp(g (1 - w/tau)) - 1)/(exp(g) - 1)  (kappa = 2 g, slope e^g + 1)."""
    check_range("gamma_res", gamma_res, 0.0, 250.0, lo_open=True)
    return ExpStep(
        w_max=tau, w_min=-tau, kappa_up=2 * gamma_res, kappa_down=2 * gamma_res, slope=math.exp(gamma_res) + 1, **kw
    )
