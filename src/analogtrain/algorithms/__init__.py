"""Training algorithms: plans for which pulses go to which arrays (one file per paper's algorithm)."""

from .sgd import ALGORITHMS, AnalogSGD, DigitalSGD, make_algorithm

__all__ = ["ALGORITHMS", "AnalogSGD", "DigitalSGD", "make_algorithm"]
