"""Analog layers, model conversion and the optimizer front (ARCHITECTURE.md, layer "layer")."""

from .layers import AnalogConv2d, AnalogLayerBase, AnalogLayerConfig, AnalogLinear, analog_layers, convert
from .optim import AnalogOptimizer

__all__ = ["AnalogConv2d", "AnalogLayerBase", "AnalogLayerConfig", "AnalogLinear", "AnalogOptimizer",
           "analog_layers", "convert"]
