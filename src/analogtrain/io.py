"""Periphery of an analog matrix-vector multiplication (MVM): DAC, ADC, noise and range management.

A crossbar tile computes ``y = W x`` (forward) or ``z = Wᵀ d`` (backward, transfer reads) in the analog
domain. The digital numbers only reach and leave the array through converters, and those are what
this module models (papers.md §1.6; defaults = P2 Table 4 = the AIHWKIT ``IOParameters`` defaults):

1. noise management ``abs_max``: each sample is divided by ``s_b = max|x_b|`` so the DAC range is used fully;
2. DAC: inputs are rounded to the DAC grid and clipped to ``±inp_bound``; optional Gaussian input noise;
3. the analog MVM itself (exact here: device effects live in the conductances, not in this module);
4. ADC: Gaussian output noise ``N(0, out_noise²)`` in normalised output units, rounding to the ADC grid,
   clipping to ``±out_bound``;
5. bound management ``iterative``: a sample whose output hit the ADC rail is re-run with its input halved,
   up to ``max_bm_rounds`` times, and the result multiplied back;
6. the noise-management scale is undone digitally.

Quantisation convention (both converters): ``inp_res``/``out_res`` is the step as a fraction of the *full*
range ``[-bound, bound]``, i.e. ``step = res · 2 · bound``. With ``inp_res = 1/(2**7 - 2)`` the range is cut
into 126 steps, so the DAC has ``2**7 - 1 = 127`` symmetric levels ``k·step``, ``k = -63..63`` (a 7-bit
sign-symmetric converter without the unused code); likewise ``out_res = 1/(2**9 - 2)`` gives 511 ADC levels.
This is the meaning of AIHWKIT's ``inp_res`` ("number of discretization steps ... or resolution
(1/steps)" over the input range, whose width is ``2·inp_bound``).
"""

from __future__ import annotations

import functools
import math
import operator
from dataclasses import dataclass

import torch

from analogtrain.errors import ConfigError, check_choice, check_finite, check_range, check_shape

NOISE_MANAGEMENT = ("abs_max", "none")
BOUND_MANAGEMENT = ("iterative", "none")
# 2**32 is far below any input the DAC could still resolve; more rounds would only waste time.
MAX_BM_ROUNDS = 32


@dataclass(frozen=True)
class IOConfig:
    """Periphery of one MVM direction (forward, backward or transfer read).

    Defaults are P2 Table 4 / AIHWKIT ``IOParameters`` (papers.md §1.6): 7-bit DAC on ``[-1, 1]``, 9-bit ADC on
    ``[-12, 12]``, output noise 0.06, ABS_MAX noise management, ITERATIVE bound management.
    """

    inp_bound: float = 1.0  # DAC input range [-inp_bound, inp_bound] after noise management
    inp_res: float = 1 / 126  # DAC step / (2·inp_bound): 7 bits -> 2**7-2 steps; 0 = no quantisation
    inp_noise: float = 0.0  # std of additive Gaussian noise on the normalised DAC output
    out_bound: float = 12.0  # ADC range [-out_bound, out_bound]; inf = no clipping
    out_res: float = 1 / 510  # ADC step / (2·out_bound): 9 bits -> 2**9-2 steps; 0 = no quantisation
    out_noise: float = 0.06  # std of additive Gaussian output noise (normalised output units)
    noise_management: str = "abs_max"  # "abs_max" | "none"
    bound_management: str = "iterative"  # "iterative" | "none"
    max_bm_rounds: int = 5  # how many times iterative bound management may halve the input

    def __post_init__(self) -> None:
        check_range("inp_bound", self.inp_bound, 0.0, lo_open=True, allow_inf=True)
        check_range("inp_res", self.inp_res, 0.0, 1.0)
        check_range("inp_noise", self.inp_noise, 0.0, math.inf, hi_open=True)
        check_range("out_bound", self.out_bound, 0.0, lo_open=True, allow_inf=True)
        check_range("out_res", self.out_res, 0.0, 1.0)
        check_range("out_noise", self.out_noise, 0.0, math.inf, hi_open=True)
        check_choice("noise_management", self.noise_management, NOISE_MANAGEMENT)
        check_choice("bound_management", self.bound_management, BOUND_MANAGEMENT)
        try:
            if isinstance(self.max_bm_rounds, bool):
                raise TypeError
            operator.index(self.max_bm_rounds)
        except TypeError:
            raise ConfigError(f"max_bm_rounds must be an integer, got {self.max_bm_rounds!r}") from None
        check_range("max_bm_rounds", self.max_bm_rounds, 0, MAX_BM_ROUNDS)
        # A grid step is a fraction of the range, so an unbounded range cannot be quantised.
        if self.inp_res > 0 and math.isinf(self.inp_bound):
            raise ConfigError("inp_res > 0 needs a finite inp_bound (the step is inp_res * 2 * inp_bound)")
        if self.out_res > 0 and math.isinf(self.out_bound):
            raise ConfigError("out_res > 0 needs a finite out_bound (the step is out_res * 2 * out_bound)")

    @classmethod
    def perfect(cls) -> IOConfig:
        """Ideal periphery: no quantisation, no noise, no bounds, no management (exact MVM)."""
        return cls(
            inp_bound=math.inf,
            inp_res=0.0,
            inp_noise=0.0,
            out_bound=math.inf,
            out_res=0.0,
            out_noise=0.0,
            noise_management="none",
            bound_management="none",
        )

    @functools.cached_property
    def is_perfect(self) -> bool:
        """True if every field is ideal, so :func:`mvm` may be the plain matmul (``max_bm_rounds`` is moot)."""
        p = IOConfig.perfect()
        return all(getattr(self, f) == getattr(p, f) for f in self.__dataclass_fields__ if f != "max_bm_rounds")

    @property
    def inp_step(self) -> float:
        """DAC step in normalised input units (0 = continuous)."""
        return self.inp_res * 2.0 * self.inp_bound if self.inp_res > 0 else 0.0

    @property
    def out_step(self) -> float:
        """ADC step in normalised output units (0 = continuous)."""
        return self.out_res * 2.0 * self.out_bound if self.out_res > 0 else 0.0


def _quantise(v: torch.Tensor, step: float) -> torch.Tensor:
    # Round to nearest (ties to even); the caller clips afterwards, which keeps the result inside the
    # bound even if the bound is not a whole number of steps.
    return v if step == 0 else torch.round(v / step) * step


def _randn(like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)


def _analog_pass(w: torch.Tensor, u: torch.Tensor, cfg: IOConfig, generator) -> torch.Tensor:
    """DAC -> analog MVM -> ADC on already normalised inputs ``u``; returns normalised ADC codes."""
    u = _quantise(u, cfg.inp_step).clamp(-cfg.inp_bound, cfg.inp_bound)
    if cfg.inp_noise > 0:
        u = u + cfg.inp_noise * _randn(u, generator)
    y = u @ w
    if cfg.out_noise > 0:
        y = y + cfg.out_noise * _randn(y, generator)
    return _quantise(y, cfg.out_step).clamp(-cfg.out_bound, cfg.out_bound)


def _saturated(y: torch.Tensor, cfg: IOConfig) -> torch.Tensor:
    # An ADC reading its full-scale code cannot tell "exactly at the bound" from "beyond it".
    return (y.abs() >= cfg.out_bound).any(dim=1)


def mvm(
    weight: torch.Tensor,
    x: torch.Tensor,
    cfg: IOConfig,
    generator: torch.Generator | None,
    transpose: bool = False,
    name: str = "x",
) -> torch.Tensor:
    """Analog MVM through the periphery: ``x @ weight.T`` (or ``x @ weight`` if ``transpose``).

    Args:
        weight: ``(out_size, in_size)`` tile weights.
        x: ``(B, n_in)`` batch, ``n_in = in_size`` (forward) or ``out_size`` (``transpose=True``).
        cfg: periphery of this direction.
        generator: source of all noise (never the global RNG); may be None only if ``cfg`` has no noise.
        name: what to call ``x`` in error messages (``"d"`` for a backward pass).

    Returns ``(B, n_out)`` in the units of the exact product. Output noise has std ``out_noise · s_b · 2**r``
    for a sample with noise-management scale ``s_b`` re-run ``r`` times by bound management.
    """
    check_shape("weight", weight, (None, None))
    n_in = weight.shape[0] if transpose else weight.shape[1]
    check_shape(name, x, (None, n_in))
    check_finite(name, x)
    w = weight if transpose else weight.T  # a view: no copy
    if cfg.is_perfect:
        return x @ w  # literally the matmul, so the ideal limit is bit-exact
    if generator is None and (cfg.inp_noise > 0 or cfg.out_noise > 0):
        raise ConfigError("generator is None but the IOConfig has inp_noise/out_noise > 0")

    absmax = x.abs().amax(dim=1, keepdim=True)
    # Choice: an all-zero input is never sent to the array (the digital side knows it is zero), so its
    # output is exactly 0 with no noise. This keeps e.g. a zero error signal from producing a noisy gradient.
    active = absmax > 0
    if cfg.noise_management == "abs_max":
        scale = torch.where(active, absmax, torch.ones_like(absmax))
    else:
        scale = torch.ones_like(absmax)

    out = _analog_pass(w, x / scale, cfg, generator)

    if cfg.bound_management == "iterative" and math.isfinite(cfg.out_bound):
        # Halving is exact in floating point, so re-running x / (scale·factor) only changes what the DAC sees.
        factor = torch.ones_like(scale)
        sat = _saturated(out, cfg) & active[:, 0]
        for _ in range(cfg.max_bm_rounds):
            idx = sat.nonzero()[:, 0]  # only the samples that hit the rail are redone
            if idx.numel() == 0:
                break
            factor[idx] *= 2
            redo = _analog_pass(w, x[idx] / (scale[idx] * factor[idx]), cfg, generator)
            out[idx] = redo
            sat[idx] = _saturated(redo, cfg)
        scale = scale * factor

    return torch.where(active, out * scale, torch.zeros_like(out))
