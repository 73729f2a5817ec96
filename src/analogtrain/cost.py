"""Hardware cost of in-memory training: update latency per sample and crossbar area.

The time model of L1 (Rasch et al. 2024, runtime comparison), reused by P3 App. I and, with a pulse count of
its own, by P2 App. E (Table 3); papers.md §5(e), §8 and §9.3. One training sample updates an ``N x N``
array; the quantities are

* ``t_pulse``: one update pulse; ``pulses``: pulses per element per update (L1's l_avg, P2's 32);
* ``t_mvm``: one analog read (MVM) of the array;
* ``throughput``: the digital flops per ns that one array gets (L1: 0.7 TFLOP/s shared by 4 arrays);
* ``transfer_every``: samples between two column reads and transfers (L1's n_s; P3's per-tile ratio);
* ``mp_batch``: samples between two pulse transfers of mixed precision's digital accumulator.

Per-sample update latency, ns:

=====================  ==========================================================================  ============
analog SGD             ``l t_p + 2N / thr`` (pulse train, then the inputs' digital preprocessing)     L1, P3
TT-v2, c-TTv2          ``(l + 1/n_s) t_p + t_MVM / n_s + (2N + 2N / n_s) / thr``                       L1, P3
AGAD                   ``(l + 1/n_s) t_p + t_MVM / n_s + (2N + 6N / n_s) / thr``                       L1
mixed precision        ``(2N^2 + N) / thr + (N / B) t_p`` (a digital rank-one update of all N^2)       L1, P3
multi-tile, T tiles    ``l t_p S_0 + t_MVM S_1 + 2N / thr``, ``S_k = sum_{k <= n < T} n_s^-n``        P3 [I]
Tiki-Taka / RL         ``l (1 + 1/n_s) t_p + t_MVM / n_s + (2N + 2N / n_s) / thr``                     P2 [I]
=====================  ==========================================================================  ============

For multi-tile, tile ``n`` passes what it learned to tile ``n + 1`` every ``n_s^(n+1)`` samples (one read and
one pulse train), so ``T -> inf`` gives P3's bound ``l t_p n_s / (n_s - 1) + t_MVM / (n_s - 1) + 2N / thr``
(App. I); the finite-T sum is our reading [I]. Tiki-Taka / residual learning transfers with a whole pulse
train (TT-v2's threshold fires at most one pulse); at ``n_s = 1`` the row is P2 Table 3's
``2 (l t_p + 2N / thr) + t_MVM``, both arrays pulsed and P read every sample, and the general ``n_s`` is our
reading in L1's accounting [I].

A network's latency is that of its largest array (its layers update in parallel, each on its own crossbar),
with ``N`` its larger side: this is how P3's LeNet-5 (N = 512) and ResNet-18 (N = 4608) rows follow from
the formulas. Area: a cross-point takes ``(0.4 um)^2`` (P3 App. I: ``(0.4 D um)^2`` per ``D x D`` tile).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from torch import nn

from .errors import ConfigError, check_int, check_range

CELL_AREA_UM2 = 0.4 ** 2  # um^2 per cross-point (P3 App. I)


@dataclass(frozen=True)
class Hardware:
    """Timing of the update path (defaults: L1 / P3 App. I)."""

    t_pulse: float = 5.0  # ns per update pulse
    t_mvm: float = 40.0  # ns per analog read
    pulses: float = 5.0  # mean pulses per element per update (l_avg)
    tflops: float = 0.7  # digital throughput of the chip, TFLOP/s ...
    arrays_sharing: int = 4  # ... shared by this many arrays
    transfer_every: float = 2.0  # n_s
    mp_batch: int = 100  # mixed precision's B

    def __post_init__(self):
        for name in ("t_pulse", "t_mvm", "pulses"):
            check_range(name, getattr(self, name), 0, math.inf, hi_open=True)
        for name in ("tflops", "transfer_every"):
            check_range(name, getattr(self, name), 0, math.inf, lo_open=True, hi_open=True)
        for name in ("arrays_sharing", "mp_batch"):
            check_int(name, getattr(self, name), 1)

    @property
    def throughput(self) -> float:
        """Digital flops per ns for one array (1 TFLOP/s = 1e3 flop/ns)."""
        return self.tflops * 1e3 / self.arrays_sharing


def hardware(**changes) -> Hardware:
    """``Hardware`` with some fields changed; an unknown field is a ConfigError naming it and the known ones."""
    known = [f.name for f in fields(Hardware)]
    unknown = sorted(set(changes) - set(known))
    if unknown:
        raise ConfigError(f"unknown hardware field(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return Hardware(**changes)


def _geometric(ratio: float, first: int, last: int) -> float:
    return sum(ratio ** -n for n in range(first, last))


def update_latency(algorithm: str, n: int, hw: Hardware = Hardware(), tiles: int | None = None) -> dict:
    """Per-sample update latency (ns) of an ``n x n`` array under ``algorithm``, split into its parts:
    ``{"pulses": ..., "reads": ..., "digital": ..., "total": ...}`` (formulas: module docstring).
    ``tiles``: multi-tile's number of tiles (None: P3's bound for infinitely many)."""
    check_range("n", n, 1, math.inf, hi_open=True)
    l, tp, ns, thr = hw.pulses, hw.t_pulse, hw.transfer_every, hw.throughput
    if algorithm == "analog-sgd":
        parts = (l * tp, 0.0, 2 * n / thr)
    elif algorithm in ("ttv2", "cttv2", "agad"):
        digital = 2 * n + (6 if algorithm == "agad" else 2) * n / ns
        parts = ((l + 1 / ns) * tp, hw.t_mvm / ns, digital / thr)
    elif algorithm == "mixed-precision":
        parts = (n / hw.mp_batch * tp, 0.0, (2 * n * n + n) / thr)
    elif algorithm == "multi-tile":
        if tiles is not None:
            check_int("tiles", tiles, 1, 1000)
        if tiles is None and ns <= 1:
            raise ConfigError(f"transfer_every = {ns:g} must exceed 1 for the multi-tile bound (tiles=None)")
        s0 = ns / (ns - 1) if tiles is None else _geometric(ns, 0, tiles)
        s1 = 1 / (ns - 1) if tiles is None else _geometric(ns, 1, tiles)
        parts = (l * tp * s0, hw.t_mvm * s1, 2 * n / thr)
    elif algorithm == "tiki-taka":
        parts = (l * (1 + 1 / ns) * tp, hw.t_mvm / ns, (2 * n + 2 * n / ns) / thr)
    else:
        raise ConfigError(f"algorithm = {algorithm!r} has no cost model; one of: {', '.join(ALGORITHMS)}")
    return dict(zip(("pulses", "reads", "digital"), parts), total=sum(parts))


ALGORITHMS = ("analog-sgd", "tiki-taka", "ttv2", "cttv2", "agad", "mixed-precision", "multi-tile")


def array_shapes(model: nn.Module) -> list[tuple[int, int]]:
    """``(rows, columns)`` of the crossbar each linear or convolutional layer of ``model`` maps onto, digital
    (``nn.Linear``, ``nn.Conv2d``) or analog (``AnalogLinear``, ``AnalogConv2d``); a convolution's columns are
    its ``in_channels / groups x kernel`` inputs."""
    from .nn import AnalogConv2d, AnalogLinear

    shapes = []
    for m in model.modules():
        if isinstance(m, (nn.Linear, AnalogLinear)):
            shapes.append((m.out_features, m.in_features))
        elif isinstance(m, (nn.Conv2d, AnalogConv2d)):
            k = m.kernel_size[0] * m.kernel_size[1]
            shapes.append((m.out_channels, m.in_channels // getattr(m, "groups", 1) * k))
    if not shapes:
        raise ConfigError("the model has no linear or convolutional layer to map onto crossbars")
    return shapes


def largest_side(shapes: list[tuple[int, int]]) -> int:
    """N of the network's latency: the larger side of its largest array."""
    return max(max(s) for s in shapes)


def area_mm2(shapes: list[tuple[int, int]]) -> float:
    """Cross-point area of one set of arrays, mm^2 (a differential pair or a reference doubles it)."""
    return sum(r * c for r, c in shapes) * CELL_AREA_UM2 * 1e-6


def network_costs(model: nn.Module, hw: Hardware = Hardware(), tiles: int | None = None) -> dict:
    """Every algorithm's per-sample update latency for ``model`` (set by its largest array), its arrays and the
    area of one set of them: ``{"n", "arrays", "area_mm2", "latency_ns": {algorithm: parts}}``."""
    shapes = array_shapes(model)
    n = largest_side(shapes)
    latency = {a: update_latency(a, n, hw, tiles if a == "multi-tile" else None) for a in ALGORITHMS}
    return {"n": n, "arrays": shapes, "area_mm2": area_mm2(shapes), "latency_ns": latency}
