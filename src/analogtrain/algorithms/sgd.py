"""Analog SGD and digital SGD on one tile (papers.md §2.1).

Both expose the same small interface, which the residual-learning family extends:
``build(out_size, in_size, config, seed, ...)`` (the arrays a layer needs), ``weight`` (what
forward/backward see), ``forward``/``backward`` through the tile's periphery, ``program(w)`` for
initial weights, ``step(x, d, lr)`` for a layer's rank-one batch update and
``step_gradient(grad, lr)`` for a gradient matrix (least-squares toys), ``pulse_count``, and
``state_dict``/``load_state_dict``.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ..tile import AnalogTile, TileConfig
from .steps import resolve_options
from .zero_shift import CALIBRATION_OPTIONS, calibrate


class AnalogSGD:
    """Analog (in-memory) SGD: the gradient step is written by pulses onto the single array.

    Model: ``W_{k+1} = W_k - a grad * F(W_k) - a |grad| * G(W_k)`` (P2 eq. 2; P1 eq. 3 for the ALD),
    realised at the fidelity of the tile's update mode (``expected``: exactly this model;
    ``pulses``: rounded single pulses, P2 eq. 29; ``stochastic``: pulse trains, papers.md §1.5).
    """

    name = "analog-sgd"
    # zero-shifting first (P5 Alg. 1) makes the array read zero at its symmetric point
    OPTIONS = CALIBRATION_OPTIONS

    def __init__(self, tile: AnalogTile):
        self.tile = tile
        self.calibration_pulses = 0

    @classmethod
    def build(cls, out_size: int, in_size: int, config: TileConfig | None = None, seed: int = 0,
              dtype=torch.float32, device="cpu", **hyper) -> "AnalogSGD":
        """The algorithm with freshly constructed arrays for an ``out_size x in_size`` layer."""
        opts = resolve_options(cls.name, cls.OPTIONS, hyper)
        algo = cls(AnalogTile(out_size, in_size, config, seed=seed, dtype=dtype, device=device))
        if opts.get("calibration") == "zero-shift":
            algo.calibration_pulses = calibrate(algo.tile, opts["calibration_pulses"], opts["calibration_mode"])
        return algo

    def program(self, w: torch.Tensor) -> None:
        self.tile.program(w)

    @property
    def pulse_count(self) -> int:
        return self.tile.pulse_count

    @property
    def weight(self) -> torch.Tensor:
        return self.tile.weight

    def forward(self, x):
        return self.tile.forward(x)

    def backward(self, d):
        return self.tile.backward(d)

    def step(self, x: torch.Tensor, d: torch.Tensor, lr: float) -> None:
        self.tile.update(x, d, lr)

    def step_gradient(self, grad: torch.Tensor, lr: float) -> None:
        self.tile.apply(-lr * grad)

    def state_dict(self) -> dict:
        return {"tile": self.tile.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.tile.load_state_dict(state["tile"])


class DigitalSGD(AnalogSGD):
    """Digital SGD baseline ``W_{k+1} = W_k - a grad`` (P1 eq. 5): the weight is a float array.

    The tile still provides the periphery for forward/backward (use ``TileConfig.perfect`` for
    exact floating point); its device and update mode are bypassed, so the weight is unbounded.
    """

    name = "digital-sgd"
    OPTIONS = {}

    def step(self, x, d, lr):
        self.step_gradient(d.T.double() @ x.double(), lr)

    def step_gradient(self, grad, lr):
        t = self.tile
        t.conductance = (t.conductance.double() - lr * grad.double()).to(t.conductance.dtype)


ALGORITHMS = {cls.name: cls for cls in (AnalogSGD, DigitalSGD)}


def make_algorithm(name: str, out_size: int, in_size: int, config: TileConfig | None = None, seed: int = 0,
                   **kw):
    """Build the algorithm registered as ``name`` for an ``out_size x in_size`` layer."""
    if name not in ALGORITHMS:
        raise ConfigError(f"unknown algorithm {name!r}; known: {', '.join(ALGORITHMS)}")
    return ALGORITHMS[name].build(out_size, in_size, config, seed, **kw)
