"""Training algorithms: plans for which pulses go to which arrays (one file per paper's algorithm)."""

from .sgd import ALGORITHMS, AnalogSGD, DigitalSGD

__all__ = ["ALGORITHMS", "AnalogSGD", "DigitalSGD"]
