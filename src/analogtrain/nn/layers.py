"""Analog layers: torch modules whose weight lives in an algorithm's arrays (ARCHITECTURE.md, layer "layer").

Forward and backward run through ``algorithm.forward`` / ``algorithm.backward`` (the tile periphery,
papers.md §1.6). The bridge does not compute a digital weight gradient: it records the layer input
``x`` and the error ``d`` (gradient of the loss w.r.t. the pre-scale, pre-bias output ``W x``), and the
optimizer later hands them to ``algorithm.step(x, d, lr)`` -- the in-memory rank-one update
(papers.md §1.5, §2.1). Nothing is written to the arrays during backward.

Conventions:

- ``weight`` is an ``nn.Parameter`` *mirror* of the algorithm's effective weight, re-synced after every
  analog step and load. It is listed by ``parameters()`` (so the optimizer finds the layer) but its
  ``.grad`` stays None; writing to it does not change the arrays (use ``layer.program(w)``).
  Setting ``weight.requires_grad_(False)`` freezes the analog weight (nothing is recorded).
- Records are kept per backward call and concatenated in forward order at the step; a forward
  without a backward leaves no record. ``reset_records()`` drops pending ones.
- The full analog state (conductances, sampled device parameters, generator, counters) is the
  module's extra state, so ``model.state_dict()`` round trips bit for bit. Pending records are not
  part of it (checkpoint after a step).
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.weak import WeakIdKeyDictionary

from ..algorithms import ALGORITHMS, make_algorithm
from ..errors import ConfigError, check_choice, check_range
from ..tile import TileConfig

# weight parameter -> weakref to its layer; the optimizer finds analog layers through it.
# Layers re-register at every forward and load, so deep copies of a model are found too.
_LAYER_OF: WeakIdKeyDictionary = WeakIdKeyDictionary()


def layer_of(param: torch.Tensor) -> "AnalogLayerBase | None":
    """The analog layer whose weight mirror is ``param``, or None for a digital parameter."""
    ref = _LAYER_OF.get(param)
    return ref() if ref is not None else None


@dataclass(frozen=True)
class AnalogLayerConfig:
    """What an analog layer is made of: its tile, the training algorithm and its hyper-parameters.

    ``learn_out_scale`` adds a learnable scalar output scale after the analog MVM, trained digitally
    (papers.md §1.6, AIHWKIT ``learn_out_scaling``).

    ``weight_scaling_omega`` > 0 maps weights onto the arrays with a fixed digital output scale ``s``
    (aihwkit's ``MappingParameter.weight_scaling_omega``): programming ``w`` writes ``w / s`` with
    ``s = max|w| / omega``, so the largest weight sits at ``omega`` of the device range, and the MVM
    output is multiplied by ``s``; with ``weight_scaling_columnwise`` there is one ``s`` per output.
    A device with few states then spends them on the weights' actual range.
    """

    tile: TileConfig = field(default_factory=TileConfig)
    algorithm: str = "analog-sgd"
    options: dict = field(default_factory=dict)
    learn_out_scale: bool = False
    weight_scaling_omega: float = 0.0
    weight_scaling_columnwise: bool = False

    def __post_init__(self):
        if not isinstance(self.tile, TileConfig):
            raise ConfigError(f"tile must be a TileConfig, got {type(self.tile).__name__}")
        check_choice("algorithm", self.algorithm, tuple(ALGORITHMS))
        if not isinstance(self.options, dict):
            raise ConfigError(f"options must be a dict of algorithm hyper-parameters, got {self.options!r}")
        check_weight_scaling_omega(self.weight_scaling_omega)
        object.__setattr__(self, "options", dict(self.options))  # private copy: the config is frozen


def check_weight_scaling_omega(omega) -> float:
    """0 (no scaling) or the weight the largest |w| is mapped to, in [1e-6, 1e3] (a device's range is order 1;
    a tinier omega would scale the outputs by max|w| / omega past float32's range)."""
    omega = check_range("weight_scaling_omega", omega, 0.0, 1e3)
    if 0 < omega < 1e-6:
        raise ConfigError(f"weight_scaling_omega = {omega:g} is outside the allowed values: 0 (off) or [1e-06, 1000]")
    return omega


class _Bridge(torch.autograd.Function):
    """y = algorithm.forward(x); backward: z = algorithm.backward(d), and (x, d) recorded on the layer.

    ``anchor`` is the layer's weight mirror: as an input that requires grad it makes autograd call
    backward even when ``x`` needs no gradient (the first layer). Its gradient is None by design.
    """

    @staticmethod
    def forward(ctx, x, anchor, layer, seq):
        ctx.layer, ctx.seq = layer, seq
        ctx.save_for_backward(x)
        return layer.algorithm.forward(x).to(x.dtype)

    @staticmethod
    def backward(ctx, d):
        (x,) = ctx.saved_tensors
        layer = ctx.layer
        if ctx.needs_input_grad[1]:
            layer._records.append((ctx.seq, x, d.detach()))
        gx = layer.algorithm.backward(d).to(x.dtype) if ctx.needs_input_grad[0] else None
        return gx, None, None, None


def _fan_in_init(shape, bias: bool, generator: torch.Generator):
    """torch's default Linear/Conv2d init (kaiming-uniform, a=sqrt(5); bias U(±1/sqrt(fan_in))), seeded."""
    w = nn.init.kaiming_uniform_(torch.empty(shape), a=math.sqrt(5), generator=generator)
    fan_in = math.prod(shape[1:])
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    b = nn.init.uniform_(torch.empty(shape[0]), -bound, bound, generator=generator) if bias else None
    return w, b


class AnalogLayerBase(nn.Module):
    """Shared machinery of the analog layers: algorithm, weight mirror, records, out scale, bias, state."""

    def __init__(self, weight_shape: tuple, bias: bool, config: AnalogLayerConfig | None, seed: int):
        super().__init__()
        self.config = config or AnalogLayerConfig()
        if not isinstance(self.config, AnalogLayerConfig):
            raise ConfigError(f"config must be an AnalogLayerConfig, got {type(config).__name__}")
        out_size, in_size = weight_shape[0], math.prod(weight_shape[1:])
        self.algorithm = make_algorithm(self.config.algorithm, out_size, in_size, self.config.tile, seed,
                                        **self.config.options)
        w, b = _fan_in_init(weight_shape, bias, torch.Generator().manual_seed(int(seed)))
        self.weight = nn.Parameter(torch.empty(weight_shape))
        self.bias = nn.Parameter(b) if bias else None
        self.out_scale = nn.Parameter(torch.ones(())) if self.config.learn_out_scale else None
        # fixed digital scale of the weight mapping (weight_scaling_omega; 1 without it)
        self.register_buffer("weight_scale", torch.ones(out_size if self.config.weight_scaling_columnwise else ()))
        self._records: list = []
        self._seq = 0  # forward counter: orders the records
        self.program(w)

    # ---- weights ------------------------------------------------------------------------------
    @torch.no_grad()
    def program(self, w: torch.Tensor) -> None:
        """Program the arrays to ``w`` (the weight's shape; with weight scaling, ``w / s``) and re-sync the mirror."""
        w = torch.as_tensor(w).detach().reshape(self.weight.shape[0], -1)
        omega = self.config.weight_scaling_omega
        if omega > 0:
            peak = w.abs().amax(dim=1) if self.config.weight_scaling_columnwise else w.abs().max()
            self.weight_scale.copy_(torch.where(peak > 0, peak / omega, torch.ones_like(peak)))
            w = w / self._scale_column()
        self.algorithm.program(w)
        self.sync_weight()

    def _scale_column(self) -> torch.Tensor:
        """The weight scale as a column (out, 1) or scalar, to scale a weight matrix."""
        s = self.weight_scale
        return s.view(-1, 1) if s.dim() else s

    @torch.no_grad()
    def sync_weight(self) -> None:
        w = self.algorithm.weight
        if self.config.weight_scaling_omega > 0:
            w = w * self._scale_column().to(w)
        self.weight.copy_(w.reshape(self.weight.shape))
        _LAYER_OF[self.weight] = weakref.ref(self)

    def _apply(self, fn, recurse=True):
        # .to(device) / .cuda() would move the digital parameters but not the arrays, their generators
        # and the CPU pulse kernels, and fail later deep inside torch: refuse it here instead.
        moved = fn(torch.zeros(()))
        if moved.device.type != "cpu":
            raise ConfigError(f"{type(self).__name__} cannot move to device '{moved.device}': analog layers "
                              "simulate their arrays on the CPU only; keep the model on 'cpu' (model.to('cpu') "
                              "brings back any layer moved before this one)")
        return super()._apply(fn, recurse)

    def __setstate__(self, state):  # copy.deepcopy / pickle: register the new weight mirror
        super().__setstate__(state)
        _LAYER_OF[self.weight] = weakref.ref(self)

    # ---- forward through the bridge ----------------------------------------------------------
    def _mvm(self, x2d: torch.Tensor) -> torch.Tensor:
        """(N, in) -> s * (W x) through the periphery, recording for the update; digital scale only."""
        _LAYER_OF[self.weight] = weakref.ref(self)
        self._seq += 1
        y = _Bridge.apply(x2d, self.weight, self, self._seq)
        if self.config.weight_scaling_omega > 0:
            y = y * self.weight_scale.to(y)
        return y * self.out_scale if self.out_scale is not None else y

    # ---- update ------------------------------------------------------------------------------
    def analog_step(self, lr: float) -> None:
        """One in-memory update with the recorded (x, d) rows in forward order; no-op if none."""
        if not self._records:
            return
        recs = sorted(self._records, key=lambda r: r[0])  # stable: repeated backwards keep their order
        x = torch.cat([r[1] for r in recs])
        d = torch.cat([r[2] for r in recs])
        self._records = []
        self.algorithm.step(x, d, float(lr))
        self.sync_weight()

    def reset_records(self) -> None:
        self._records = []

    @property
    def pending_rows(self) -> int:
        """Rows (rank-one updates) recorded and not yet applied."""
        return sum(r[1].shape[0] for r in self._records)

    # ---- checkpoint --------------------------------------------------------------------------
    def get_extra_state(self) -> dict:
        return {"algorithm": self.config.algorithm, "state": self.algorithm.state_dict()}

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints written before weight scaling existed hold no weight_scale: they ran unscaled
        state_dict.setdefault(prefix + "weight_scale", torch.ones_like(self.weight_scale))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def set_extra_state(self, state: dict) -> None:
        if state.get("algorithm") != self.config.algorithm:
            raise ConfigError(f"state is for algorithm {state.get('algorithm')!r}, "
                              f"this layer runs {self.config.algorithm!r}")
        self.algorithm.load_state_dict(state["state"])
        self.reset_records()
        self.sync_weight()


class AnalogLinear(AnalogLayerBase):
    """``y = s * (W x) + b`` with ``W`` on an analog tile; ``b`` (and ``s``) digital."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 config: AnalogLayerConfig | None = None, seed: int = 0):
        self.in_features, self.out_features = int(in_features), int(out_features)
        super().__init__((self.out_features, self.in_features), bias, config, seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        y = self._mvm(x.reshape(-1, x.shape[-1]))
        y = y + self.bias if self.bias is not None else y
        return y.reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, algorithm={self.config.algorithm!r}")


def _pair(name: str, v) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(i, int) for i in v):
        return tuple(v)
    raise ConfigError(f"{name} must be an int or a pair of ints, got {v!r}")


class AnalogConv2d(AnalogLayerBase):
    """2-D convolution as unfolded patches on ONE tile of shape (out_channels, in_channels * kh * kw).

    Every patch position of every sample is one row of ``x`` (sample-major, then position), so the
    step applies the batch as B·L rank-one updates in that order, as the hardware does. The input
    gradient is the patch gradient folded back (autograd of ``F.unfold`` is ``F.fold``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True,
                 config: AnalogLayerConfig | None = None, seed: int = 0):
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair("kernel_size", kernel_size)
        self.stride = _pair("stride", stride)
        self.padding = _pair("padding", padding)
        super().__init__((self.out_channels, self.in_channels, *self.kernel_size), bias, config, seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ConfigError(f"input must have shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        b, _, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        patches = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)  # (B, C·k·k, L)
        y = self._mvm(patches.transpose(1, 2).reshape(b * ho * wo, -1))  # rows: sample-major, then position
        y = y.reshape(b, ho * wo, self.out_channels).transpose(1, 2).reshape(b, self.out_channels, ho, wo)
        return y + self.bias.view(1, -1, 1, 1) if self.bias is not None else y

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, bias={self.bias is not None}, algorithm={self.config.algorithm!r}")


def analog_layers(model: nn.Module):
    """Iterate ``(qualified name, layer)`` over the analog layers of ``model`` in module order."""
    for name, m in model.named_modules():
        if isinstance(m, AnalogLayerBase):
            yield name, m


def _analog_twin(m: nn.Module, config: AnalogLayerConfig, seed: int) -> AnalogLayerBase:
    has_bias = m.bias is not None
    if isinstance(m, nn.Linear):
        new = AnalogLinear(m.in_features, m.out_features, has_bias, config, seed)
    else:
        if m.groups != 1 or tuple(m.dilation) != (1, 1):
            raise ConfigError(f"Conv2d with groups={m.groups}, dilation={m.dilation} cannot be converted "
                              "(need groups=1, dilation=1)")
        if isinstance(m.padding, str) or m.padding_mode != "zeros":
            raise ConfigError(f"Conv2d padding={m.padding!r}, padding_mode={m.padding_mode!r} cannot be "
                              "converted (need integer zero padding)")
        new = AnalogConv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, has_bias,
                           config, seed)
    new.program(m.weight.detach())
    if has_bias:
        with torch.no_grad():
            new.bias.copy_(m.bias)
    return new


def convert(model: nn.Module, config: AnalogLayerConfig, layers=None, seed: int = 0) -> nn.Module:
    """Replace ``nn.Linear``/``nn.Conv2d`` submodules by analog layers with the same weights and biases.

    ``layers``: qualified names to convert (default: all). The i-th convertible layer in module order
    gets tile seed ``seed + i`` whether or not the others are converted, so a subset's tiles match the
    full conversion's. Works in place and returns ``model``.
    """
    convertible = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    names = [n for n, _ in convertible]
    if layers is not None:
        wanted = [layers] if isinstance(layers, str) else list(layers)
        unknown = [n for n in wanted if n not in names]
        if unknown:
            raise ConfigError(f"layers {unknown} are not convertible layers of the model; "
                              f"convertible: {', '.join(names) or '(none)'}")
    else:
        wanted = names
    for i, (name, m) in enumerate(convertible):
        if name not in wanted:
            continue
        if name == "":
            raise ConfigError("the model itself is a Linear/Conv2d; wrap it in a container to convert it")
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, _analog_twin(m, config, seed + i))
    return model
