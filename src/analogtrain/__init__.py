"""analogtrain: gradient-based training on simulated analog in-memory computing hardware."""

__version__ = "0.1.0"
