"""Device layer: response families, their paper parametrisations, presets, and ``make_device``.

Every family is a frozen dataclass derived from :class:`Device` (see ``base.py`` for the pulse model
and the rules for writing a response).  ``FAMILIES`` maps a family name to its class; ``make_device``
builds a device from a family or preset name plus field overrides.
"""

from __future__ import annotations

from ..errors import ConfigError
from .base import Device, DeviceParams, configure
from .constant_step import ConstantStep, Ideal
from .exp_step import ExpStep, p1_exp_step, p2_exp
from .piecewise import PiecewiseStep
from .power_step import PowerStep, p1_power_step, p2_power
from .presets import PRESETS, Preset, get_preset, list_presets, p1_mnist_device, softbounds_reference
from .soft_bounds import SoftBounds, ald, linear_step, p2_linear

FAMILIES: dict[str, type] = {
    cls.name: cls for cls in (SoftBounds, ConstantStep, Ideal, PowerStep, ExpStep, PiecewiseStep)
}


def make_device(name: str, **overrides) -> Device:
    """A device from a preset name (e.g. ``"reram-hfo2"``) or a family name (e.g. ``"power-step"``,
    built with the family's defaults), with fields changed by ``overrides`` through ``configure``
    (so ``n_states=N`` works, and an unknown field raises ConfigError naming it).

    Presets are looked up first; no preset shares a family's name except ``ideal``, which is the same.
    """
    if name in PRESETS:
        base = PRESETS[name].build()
    elif name in FAMILIES:
        base = FAMILIES[name]()
    else:
        raise ConfigError(
            f"unknown device {name!r}; families: {', '.join(FAMILIES)}; presets: {', '.join(PRESETS)}"
        )
    return configure(base, **overrides) if overrides else base


__all__ = [
    "ConfigError", "ConstantStep", "Device", "DeviceParams", "ExpStep", "FAMILIES", "Ideal", "PRESETS",
    "PiecewiseStep", "PowerStep", "Preset", "SoftBounds", "ald", "configure", "get_preset", "linear_step",
    "list_presets", "make_device", "p1_exp_step", "p1_mnist_device", "p1_power_step", "p2_exp", "p2_linear",
    "p2_power", "softbounds_reference",
]
