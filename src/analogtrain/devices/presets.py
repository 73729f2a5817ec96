"""Named device presets, each with the paper (or simulator default) it comes from.

Cycle-to-cycle mode: aihwkit multiplies the per-pulse noise onto the step, dw (1 + sigma xi), unless a
preset sets ``mult_noise=False`` (its ReRAM array presets do); L1 eq. 2 writes it additively.  Each
preset below follows its source and says which it uses.

Not device fields here: the reference array of aihwkit's SoftBoundsReferenceDevice
(``subtract_symmetry_point``, ``reference_std``) belongs to the tile/algorithm layer, and presets
that carry it in aihwkit mention it in their description.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import ConfigError
from .base import Device
from .constant_step import ConstantStep, Ideal
from .exp_step import p2_exp
from .power_step import p2_power
from .soft_bounds import SoftBounds, ald


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    source: str
    build: Callable[[], Device]


def softbounds_reference(**kw) -> SoftBounds:
    """aihwkit SoftBoundsReferenceDevice defaults (papers.md §1.4), multiplicative c2c as aihwkit applies it."""
    params = dict(
        dw_min=0.001, dw_min_dtod=0.3, dw_min_std=0.3, c2c_mode="multiplicative", up_down=0.0,
        up_down_dtod=0.01, w_max=0.6, w_min=-0.6, w_max_dtod=0.3, w_min_dtod=0.3,
    )
    params.update(kw)
    return SoftBounds(**params)


def p1_mnist_device(tau: float) -> SoftBounds:
    """P1 §3(d): SoftBoundsReferenceDevice(w_max=tau, w_min=-tau), aihwkit defaults otherwise (30% d2d/c2c)."""
    return softbounds_reference(w_max=tau, w_min=-tau)


def _p2_states(tau: float) -> float:
    return 2 * tau / 1200  # P2 code [C]: 1200 states, dw_min = 2 tau / n_states


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "ideal", "ideal device: q = 1, unbounded, no variations (digital SGD limit), dw_min 1e-3",
            "P1 eq. 5 (digital SGD)", lambda: Ideal(dw_min=0.001),
        ),
        Preset(
            "gokmen-vlasov",
            "constant step, dw_min 0.0016 on [-1, 1] (1250 states), 30% d2d slope and bounds, 1% d2d up/down, "
            "30% multiplicative c2c",
            "Gokmen & Vlasov 2016 via aihwkit GokmenVlasovPresetDevice (papers.md §1.4)",
            lambda: ConstantStep(
                dw_min=0.0016, w_max=1.0, w_min=-1.0, dw_min_dtod=0.3, up_down_dtod=0.01, w_max_dtod=0.3,
                w_min_dtod=0.3, dw_min_std=0.3, c2c_mode="multiplicative",
            ),
        ),
        Preset(
            "reram-hfo2",
            "baseline HfO2 ReRAM array fit: soft bounds, ~4.3 states, log-normal 71% d2d slope, additive c2c "
            "0.22, write noise 0.58 dw_min (aihwkit also subtracts the symmetric point with a 5% reference "
            "error: a tile/algorithm setting, not part of this device)",
            "Gong & Rasch et al. IEDM 2022 via aihwkit ReRamArrayHfO2PresetDevice (papers.md §1.4; used by P5)",
            lambda: SoftBounds(
                dw_min=0.4622, w_max=1.0, w_min=-1.0, dw_min_dtod=0.7125, dtod_log_normal=True, up_down_dtod=0.01,
                w_max_dtod=0.4295, w_min_dtod=0.5990, dw_min_std=0.2174, c2c_mode="additive",
                write_noise_std=0.5841,
            ),
        ),
        Preset(
            "reram-om",
            "optimised-material ReRAM array fit: soft bounds, ~21 states, log-normal 78% d2d slope, additive c2c "
            "0.42, write noise 1.41 dw_min (aihwkit also subtracts the symmetric point with a 5% reference "
            "error: a tile/algorithm setting, not part of this device)",
            "Gong & Rasch et al. IEDM 2022 via aihwkit ReRamArrayOMPresetDevice (papers.md §1.4)",
            lambda: SoftBounds(
                dw_min=0.0949, w_max=1.0, w_min=-1.0, dw_min_dtod=0.7829, dtod_log_normal=True, up_down_dtod=0.01,
                w_max_dtod=0.3499, w_min_dtod=0.5695, dw_min_std=0.4158, c2c_mode="additive",
                write_noise_std=1.4113,
            ),
        ),
        Preset(
            "softbounds-reference",
            "aihwkit SoftBoundsReferenceDevice defaults: soft bounds +-0.6, dw_min 1e-3 (1200 states), 30% d2d "
            "slope and bounds, 1% d2d up/down, 30% multiplicative c2c (aihwkit's convention); its reference "
            "array (reference_mean/std, subtract_symmetry_point) is a tile setting, not part of this device",
            "aihwkit SoftBoundsReferenceDevice defaults (papers.md §1.4); P1/P2 experiments",
            softbounds_reference,
        ),
        Preset(
            "p1-ald",
            "asymmetric linear device tau = 3, dw_min 1e-4 (60000 states), no variations (P1 Fig. 1 toy)",
            "P1 §2.2 eq. 8 and App. I.1 (papers.md §3(d))",
            lambda: ald(3.0, dw_min=1e-4),
        ),
        Preset(
            "p1-mnist",
            "P1's MNIST device: softbounds-reference with w_max = -w_min = tau = 0.78 (set w_max/w_min for "
            "the other tau of P1's table: 0.70, 0.80)",
            "P1 §3(d) and Fig. 5 tables (papers.md §3(e))",
            lambda: p1_mnist_device(0.78),
        ),
        Preset(
            "l1-softbounds",
            "canonical soft-bounds model on [-1, 1] with 20 states; our choice of spreads where L1's text gives "
            "none here: log-normal 30% d2d slope, sigma_pm 0.1 (L1 Fig. 4), sigma_b 0.3, additive c2c 0.3",
            "L1 eq. 2-8 (Rasch et al. 2024; papers.md §1.3); n_states 20 from L1 Fig. 5B-D",
            lambda: SoftBounds(
                dw_min=0.1, w_max=1.0, w_min=-1.0, dw_min_dtod=0.3, dtod_log_normal=True, up_down_dtod=0.1,
                w_max_dtod=0.3, w_min_dtod=0.3, dw_min_std=0.3, c2c_mode="additive",
            ),
        ),
        Preset(
            "p2-power",
            "P2 power response gamma_res 0.5, tau 0.6, 1200 states (dw_min 1e-3), no variations (MNIST setting)",
            "P2 eq. 148, §4(d) 3-FC/CNN MNIST (papers.md §4(d)); 1200 states from the P2 code",
            lambda: p2_power(0.6, 0.5, dw_min=_p2_states(0.6)),
        ),
        Preset(
            "p2-exp",
            "P2 exponential response gamma_res 4, tau 0.1, 1200 states (dw_min 1.67e-4), no variations "
            "(ResNet/CIFAR setting, the only exp setting P2 states)",
            "P2 eq. 149, camera-ready Table 5 / v3 Table 3 (papers.md §4(d)); 1200 states from the P2 code",
            lambda: p2_exp(0.1, 4.0, dw_min=_p2_states(0.1)),
        ),
    ]
}


def list_presets() -> list[Preset]:
    """All presets, in registry order."""
    return list(PRESETS.values())


def get_preset(name: str) -> Preset:
    """The preset called ``name``; ConfigError listing the known names otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown device preset {name!r}; known presets: {', '.join(PRESETS)}") from None
