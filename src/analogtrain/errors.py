"""Errors raised for bad user input.

Every check names the offending field and the allowed range, so a bad configuration fails
at the boundary with a readable message instead of deep inside torch.
"""

from __future__ import annotations

import math

import torch


class ConfigError(ValueError):
    """A configuration field (device, periphery, tile, algorithm, CLI option) has a bad value."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or inf; the last good checkpoint was kept."""


def check_range(
    field: str,
    value: float,
    lo: float = -math.inf,
    hi: float = math.inf,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    allow_inf: bool = False,
) -> float:
    """Return ``value`` as a float if it is a number inside the range, else raise ConfigError.

    ``lo_open``/``hi_open`` exclude the end point (e.g. ``dw_min`` must be > 0).  A string or a boolean is
    not a number here (a config file's ``"0.1"`` would otherwise pass and fail deep inside torch), and
    infinity only passes where ``allow_inf`` says it means something (e.g. an unbounded ADC range).
    """
    if isinstance(value, (str, bool)) or not hasattr(value, "__float__"):
        raise ConfigError(f"{field} must be a number, got {value!r}")
    v = float(value)
    if math.isnan(v):
        raise ConfigError(f"{field} must be a number, got NaN")
    if math.isinf(v) and not allow_inf:
        raise ConfigError(f"{field} must be finite, got {v:g}")
    below = v <= lo if lo_open else v < lo
    above = v >= hi if hi_open else v > hi
    if below or above:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        raise ConfigError(f"{field} = {v:g} is outside the allowed range {left}{lo:g}, {hi:g}{right}")
    return v


def check_int(field: str, value, lo: int = 0, hi: float = math.inf) -> int:
    """Return ``value`` if it is a whole number (not a boolean) in ``[lo, hi]``, else raise ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int):
        if not (isinstance(value, float) and value.is_integer()):
            raise ConfigError(f"{field} must be a whole number, got {value!r}")
    check_range(field, value, lo, hi)
    return int(value)


def check_bool(field: str, value) -> bool:
    """Return ``value`` if it is True or False, else raise ConfigError (``"no"`` would be true in Python)."""
    if not isinstance(value, bool):
        raise ConfigError(f"{field} must be true or false, got {value!r}")
    return value


def check_choice(field: str, value: str, choices) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ConfigError listing them."""
    if value not in choices:
        raise ConfigError(f"{field} = {value!r} is not one of: {', '.join(map(str, choices))}")
    return value


def check_finite(field: str, tensor: torch.Tensor) -> torch.Tensor:
    """Raise ConfigError if ``tensor`` holds NaN or inf (a silent NaN would poison the conductances).

    A sum is NaN or inf whenever an element is, and one reduction is far cheaper than an elementwise
    mask (this runs on every forward and backward input); only an overflowing sum of finite values
    falls through to the elementwise test."""
    if tensor.is_floating_point() and math.isfinite(float(tensor.sum())):
        return tensor
    if not torch.isfinite(tensor).all():
        raise ConfigError(f"{field} contains NaN or inf values")
    return tensor


def check_shape(field: str, tensor: torch.Tensor, expected: tuple) -> torch.Tensor:
    """Raise ConfigError unless ``tensor.shape`` matches ``expected`` (``None`` entries match any size)."""
    shape = tuple(tensor.shape)
    ok = len(shape) == len(expected) and all(e is None or e == s for e, s in zip(expected, shape))
    if not ok:
        want = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        raise ConfigError(f"{field} has shape {shape}, expected {want}")
    return tensor
