"""The device layer's base: a response family, its variations and its sampled per-element parameters.

Model (papers.md §1.1, P1 eq. 7, P2 eq. 5 and 26): one pulse of sign s moves a conductance w by

    w <- clip(w + s * dw_min * (q_s(w) + noise)),     q_s = q_plus for s > 0, q_minus for s < 0,

and the discrete-time *analog update* of a wanted change dW is U_q(w, dW) = w + dW * q_sign(dW)(w)
= w + dW * F(w) - |dW| * G(w) with F = (q_minus + q_plus)/2, G = (q_minus - q_plus)/2.

Each response family writes its response once, as plain arithmetic on (w, a, w_max, w_min, c), so
the same function runs on torch tensors (the reference path, any torch device) and, compiled by
numba, on scalars in the fused CPU update kernel (pulses.py).  Here ``a`` is the element's slope
multiplier alpha_plus or alpha_minus, ``w_max``/``w_min`` its bounds and ``c`` the family's shape
constants (a float64 vector).

Device-to-device variation (papers.md §1.3 = L1 eq. 2-8, and §1.4 for aihwkit's linear form) is
sampled once per element from an explicit ``torch.Generator``:
    alpha_plus, alpha_minus = gamma +- rho,  gamma = slope * (exp(s_d xi_1) | max(1 + s_d xi_1, 0)),
    rho = up_down + up_down_dtod * xi_2,  w_max += |w_max| s_b xi_3,  w_min += |w_min| s_b xi_4.
Cycle-to-cycle noise (``dw_min_std``) is per pulse, additive (q + alpha s xi: L1 eq. 2, where the element's
slope alpha_plus or alpha_minus scales the noise with the step) or multiplicative (q (1 + s xi), aihwkit's
convention); ``write_noise_std`` (in units of dw_min) perturbs what a read sees
and is redrawn for every element that receives a pulse.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np
import torch

from ..errors import ConfigError, check_bool, check_choice, check_range


@dataclass
class DeviceParams:
    """Per-element sampled parameters of one array (all float64, same shape as the array, or 0-d)."""

    up: torch.Tensor  # alpha_plus: slope multiplier of up pulses
    down: torch.Tensor  # alpha_minus: slope multiplier of down pulses
    w_max: torch.Tensor
    w_min: torch.Tensor

    def state_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_state_dict(cls, state: dict) -> "DeviceParams":
        return cls(**{f.name: state[f.name] for f in fields(cls)})

    def numpy_arrays(self, shape) -> tuple:
        """Contiguous float64 numpy views broadcast to ``shape`` (CPU), cached for the fast kernels."""
        key = (tuple(shape),) + tuple(id(getattr(self, f.name)) for f in fields(self))
        cache = self.__dict__.get("_numpy_cache")
        if cache is None or cache[0] != key:
            arrays = tuple(
                np.ascontiguousarray(torch.broadcast_to(getattr(self, f.name), shape).numpy()) for f in fields(self)
            )
            cache = (key, arrays)
            self.__dict__["_numpy_cache"] = cache
        return cache[1]

    def to(self, device) -> "DeviceParams":
        return DeviceParams(*(getattr(self, f.name).to(device) for f in fields(self)))


@dataclass(frozen=True)
class Device:
    """A response family with its nominal parameters and variation settings.

    Subclasses set ``name`` and ``shape_constants()`` and write the response as the static methods
    ``q_up_fn`` / ``q_down_fn`` (plain arithmetic, see the module docstring). Families with an exact
    closed form for a run of n same-sign pulses also write ``run_up_fn``/``run_down_fn`` (noise-free
    result) and ``gain_up_fn``/``gain_down_fn`` (the factor by which additive per-pulse noise adds up
    over the run, so one normal draw gives the run's exact noise); others leave them ``None`` and
    runs are applied pulse by pulse.
    """

    name: ClassVar[str] = "device"
    source: ClassVar[str] = ""
    derived_fields: ClassVar[dict] = {}  # field -> what sets it (configure refuses to set it directly)

    dw_min: float = 0.001
    w_max: float = 0.6
    w_min: float = -0.6
    slope: float = 1.0  # nominal gamma (alpha_plus = alpha_minus = slope without bias)
    up_down: float = 0.0  # nominal up/down bias rho
    dw_min_dtod: float = 0.0
    dtod_log_normal: bool = False
    up_down_dtod: float = 0.0
    w_max_dtod: float = 0.0
    w_min_dtod: float = 0.0
    dw_min_std: float = 0.0
    c2c_mode: str = "additive"
    write_noise_std: float = 0.0

    # ---- validation -------------------------------------------------------------------------
    def __post_init__(self):
        check_range("dw_min", self.dw_min, 0.0, lo_open=True)
        check_range("w_max", self.w_max, allow_inf=True)
        check_range("w_min", self.w_min, allow_inf=True)
        if not (self.w_min < self.w_max):
            raise ConfigError(f"w_min = {self.w_min:g} must be below w_max = {self.w_max:g}")
        check_range("slope", self.slope, 0.0, lo_open=True)
        for f in ("dw_min_dtod", "up_down_dtod", "w_max_dtod", "w_min_dtod", "dw_min_std", "write_noise_std"):
            check_range(f, getattr(self, f), 0.0)
        check_range("up_down", self.up_down, -self.slope, self.slope)
        check_choice("c2c_mode", self.c2c_mode, ("additive", "multiplicative"))
        check_bool("dtod_log_normal", self.dtod_log_normal)

    # ---- derived quantities -----------------------------------------------------------------
    @property
    def n_states(self) -> float:
        """Number of states (w_max - w_min) / dw_min (papers.md §1.3; P3 uses the same)."""
        return (self.w_max - self.w_min) / self.dw_min

    @property
    def has_noise(self) -> bool:
        return self.dw_min_std > 0

    def replace(self, **changes) -> "Device":
        """A copy with fields changed; ``n_states=N`` sets ``dw_min = (w_max - w_min) / N``."""
        return configure(self, **changes)

    # ---- the family's response (override in subclasses) --------------------------------------
    def shape_constants(self) -> tuple:
        """Shape constants ``c`` passed to the response functions (float64 vector)."""
        return (0.0,)

    q_up_fn: ClassVar = None
    q_down_fn: ClassVar = None
    run_up_fn: ClassVar = None
    run_down_fn: ClassVar = None
    gain_up_fn: ClassVar = None
    gain_down_fn: ClassVar = None

    @property
    def has_closed_form(self) -> bool:
        return self.run_up_fn is not None

    # ---- parameters ---------------------------------------------------------------------------
    def nominal(self, dtype=torch.float64, device=None) -> DeviceParams:
        """The nominal (variation-free) parameters as 0-d tensors."""
        t = lambda v: torch.tensor(v, dtype=dtype, device=device)  # noqa: E731
        return DeviceParams(
            t(self.slope + self.up_down), t(self.slope - self.up_down), t(self.w_max), t(self.w_min)
        )

    def sample(self, shape, generator: torch.Generator | None = None, device=None) -> DeviceParams:
        """Sample device-to-device variations for an array of ``shape`` (module docstring).

        Always draws four normal tensors in a fixed order, so changing one spread leaves the
        other elements' draws unchanged.
        """
        shape = tuple(shape)
        xi = torch.randn((4,) + shape, generator=generator, dtype=torch.float64, device=device)
        if self.dtod_log_normal:
            gamma = self.slope * torch.exp(self.dw_min_dtod * xi[0])
        else:
            gamma = self.slope * (1 + self.dw_min_dtod * xi[0]).clamp(min=0)
        rho = self.up_down + self.up_down_dtod * xi[1]
        up = (gamma + rho).clamp(min=0)
        down = (gamma - rho).clamp(min=0)
        w_max = self._vary(self.w_max, self.w_max_dtod, xi[2])
        w_min = self._vary(self.w_min, self.w_min_dtod, xi[3])
        if self.w_min < 0 < self.w_max:
            # keep the bounds on their side of zero (soft-bounds responses divide by them)
            w_max, w_min = w_max.clamp(min=self.dw_min), w_min.clamp(max=-self.dw_min)
        else:
            w_max = torch.maximum(w_max, w_min + self.dw_min)
        return DeviceParams(up, down, w_max, w_min)

    @staticmethod
    def _vary(value: float, spread: float, xi: torch.Tensor) -> torch.Tensor:
        if spread == 0 or not math.isfinite(value):
            return torch.full_like(xi, value)
        return value + abs(value) * spread * xi

    def constants(self, dtype=torch.float64, device=None) -> torch.Tensor:
        return torch.tensor(self.shape_constants(), dtype=dtype, device=device)

    # ---- response functions on tensors (reference path) ---------------------------------------
    def _p(self, w, p):
        """The given per-element parameters, or the nominal ones on ``w``'s torch device."""
        return self.nominal(device=None if w is None else w.device) if p is None else p

    def q_plus(self, w: torch.Tensor, p: DeviceParams | None = None) -> torch.Tensor:
        """Up-pulse response q_plus(w) (includes the element's slope multiplier)."""
        p = self._p(w, p)
        return type(self).q_up_fn(w, p.up, p.w_max, p.w_min, self.constants(device=w.device))

    def q_minus(self, w: torch.Tensor, p: DeviceParams | None = None) -> torch.Tensor:
        """Down-pulse response q_minus(w) (includes the element's slope multiplier)."""
        p = self._p(w, p)
        return type(self).q_down_fn(w, p.down, p.w_max, p.w_min, self.constants(device=w.device))

    def F(self, w, p=None):
        """Symmetric component (q_minus + q_plus) / 2 (P1 eq. 7, P2 eq. 5)."""
        return (self.q_minus(w, p) + self.q_plus(w, p)) / 2

    def G(self, w, p=None):
        """Asymmetric component (q_minus - q_plus) / 2 (P1 eq. 7, P2 eq. 5)."""
        return (self.q_minus(w, p) - self.q_plus(w, p)) / 2

    def symmetric_point(self, p: DeviceParams | None = None) -> torch.Tensor:
        """Point with G(w) = 0, per element (papers.md §1.1), by bisection on [w_min, w_max].

        Families with a closed form override this. G increases through zero on every family here
        (q_minus grows and q_plus shrinks with w); an element whose G has no sign change returns
        the bound where |G| is smallest.
        """
        p = self._p(None, p)
        lo = torch.maximum(p.w_min, torch.tensor(-1e6, dtype=torch.float64)).clone()
        hi = torch.minimum(p.w_max, torch.tensor(1e6, dtype=torch.float64)).clone()
        lo, hi = torch.broadcast_tensors(lo, hi)
        lo, hi = lo.clone(), hi.clone()
        for _ in range(80):
            mid = (lo + hi) / 2
            pos = self.G(mid, p) > 0
            hi = torch.where(pos, mid, hi)
            lo = torch.where(pos, lo, mid)
        return (lo + hi) / 2

    def clip(self, w: torch.Tensor, p: DeviceParams) -> torch.Tensor:
        return torch.minimum(torch.maximum(w, p.w_min), p.w_max)

    # ---- runs of pulses on tensors ----------------------------------------------------------------
    def run(
        self, w: torch.Tensor, n: torch.Tensor, sign: torch.Tensor, p: DeviceParams
    ) -> torch.Tensor:
        """Noise-free result of ``n`` pulses of ``sign`` (+1/-1) on every element (float64 math).

        Uses the family's closed form where it has one, else applies the pulses one at a time
        (vectorised over elements, looping over the largest n).
        """
        w = w.double()
        n = n.to(torch.float64)
        c = self.constants(device=w.device)
        cls = type(self)
        if self.has_closed_form:
            up = cls.run_up_fn(w, n, self.dw_min, p.up, p.w_max, p.w_min, c)
            down = cls.run_down_fn(w, n, self.dw_min, p.down, p.w_max, p.w_min, c)
            return self.clip(torch.where(n == 0, w, torch.where(sign > 0, up, down)), p)
        for k in range(int(n.max().item()) if n.numel() else 0):
            step = torch.where(sign > 0, self.q_plus(w, p), -self.q_minus(w, p)) * self.dw_min
            w = torch.where(n > k, self.clip(w + step, p), w)
        return w

    def noise_gain(self, n: torch.Tensor, sign: torch.Tensor, p: DeviceParams) -> torch.Tensor:
        """Std factor of the summed additive noise of a closed-form run (sqrt(n) for a constant step)."""
        n = n.to(torch.float64)
        c = self.constants(device=n.device)
        cls = type(self)
        up = cls.gain_up_fn(n, self.dw_min, p.up, p.w_max, p.w_min, c)
        down = cls.gain_down_fn(n, self.dw_min, p.down, p.w_max, p.w_min, c)
        return torch.where(sign > 0, up, down)

    def describe(self) -> dict:
        """Parameters and derived quantities, for ``analogtrain device show``."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        sp = self.symmetric_point().item()
        out.update(family=self.name, n_states=self.n_states, symmetric_point=sp)
        return out


def configure(device: Device, **changes) -> Device:
    """Return ``device`` with fields changed, naming any unknown field in the error.

    ``n_states=N`` is accepted as another way to set ``dw_min = (w_max - w_min) / N``.
    """
    names = {f.name for f in fields(device)}
    n_states = changes.pop("n_states", None)
    derived = sorted(set(changes) & set(device.derived_fields))
    if derived:
        raise ConfigError(f"{derived[0]} of {device.name} follows from {device.derived_fields[derived[0]]}; change "
                          "that instead")
    unknown = sorted(set(changes) - names)
    if unknown:
        raise ConfigError(
            f"unknown device field(s) {', '.join(unknown)} for {device.name}; "
            f"known: {', '.join(sorted(names | {'n_states'}))}"
        )
    out = dataclasses.replace(device, **changes)
    if n_states is not None:
        n = check_range("n_states", n_states, 1.0, 1e9)  # fewer than one step across the range is no device
        if not math.isfinite(out.w_max - out.w_min):
            raise ConfigError(f"n_states needs finite bounds, but {device.name} has [{out.w_min:g}, {out.w_max:g}]; "
                              "set dw_min instead")
        out = dataclasses.replace(out, dw_min=(out.w_max - out.w_min) / n)
    return out
