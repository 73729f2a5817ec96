"""Training algorithms: plans for which pulses go to which arrays (one file per paper's algorithm).

``steps.py`` holds the steps they share; ``ALGORITHMS`` maps each registered name to its class, and
``make_algorithm(name, out_size, in_size, config, seed, **hyper)`` builds one for a layer.
"""

from . import steps, zero_shift
from .mixed_precision import MixedPrecision
from .sgd import ALGORITHMS, AnalogSGD, DigitalSGD, make_algorithm
from .tiki_taka import TikiTaka
from .ttv2 import ResidualLearningV2, TikiTakaV2
from .cttv2 import ChoppedTTv2
from .agad import AGAD
from .rider import ERIDER, RIDER
from .multi_tile import MultiTile

for _cls in (TikiTaka, TikiTakaV2, ResidualLearningV2, MixedPrecision, ChoppedTTv2, AGAD, RIDER, ERIDER,
             MultiTile):
    ALGORITHMS[_cls.name] = _cls

__all__ = [
    "ALGORITHMS", "AnalogSGD", "DigitalSGD", "MixedPrecision", "ResidualLearningV2", "TikiTaka", "TikiTakaV2",
    "make_algorithm", "steps", "zero_shift",
]
