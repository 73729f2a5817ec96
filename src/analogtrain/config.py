"""The training configuration: a TOML file plus ``--set key=value`` overrides, validated up front.

Every field has a default, so ``analogtrain train`` with no file runs the embedded default job.
Plain keys set fields (``lr=0.1``, ``device=reram-om``, ``algorithm=analog-sgd``); dotted keys set
entries of the option tables (``device.w_max=0.78`` -> ``device_params``, ``algorithm.X``,
``update.mode=expected``, ``periphery.out_noise=0``).  A bad key or value is refused with a message
naming it and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

import tomli_w

from .errors import ConfigError, check_bool, check_choice, check_int, check_range
from .nn.layers import check_weight_scaling_omega

SCHEDULES = ("none", "step")
PERIPHERIES = ("default", "perfect")
MAX_LR = 1e6  # far above any useful rate, and below float32's overflow
MAX_SEED = 2 ** 63 - 1  # torch.Generator.manual_seed takes a signed 64-bit integer
MAX_CALIBRATION_PULSES = 10 ** 7  # per element; P5 Fig. 1's largest zero-shifting budget is 12,000
# dotted prefixes accepted by --set, and the table each one fills
TABLES = {"device": "device_params", "algorithm": "algorithm_params", "update": "update",
          "periphery": "periphery_params", "reference": "reference"}


@dataclass
class TrainConfig:
    """One training run (see docs in the README's "Training" section)."""

    model: str = "fcn"
    dataset: str = "mnist-subset"
    data_dir: str = ""  # empty: --data-dir / $ANALOGTRAIN_DATA / the user cache
    train_limit: int = 0  # use only the first N training images (0 = all)
    test_limit: int = 0
    device: str = "p1-mnist"
    device_params: dict = field(default_factory=dict)
    algorithm: str = "analog-sgd"
    algorithm_params: dict = field(default_factory=dict)
    calibration: str = "none"  # "zero-shift": calibrate each layer's gradient array first (P5 Alg. 1)
    calibration_pulses: int = 1000
    update: dict = field(default_factory=dict)  # UpdateConfig fields (mode, bl, ...)
    reference: dict = field(default_factory=dict)  # ReferenceConfig fields (symmetric_point, mean, std) + arrays
    periphery: str = "default"  # forward/backward reads: "default" (P2 Table 4) or "perfect"
    periphery_params: dict = field(default_factory=dict)  # IOConfig overrides for forward and backward
    analog_layers: list = field(default_factory=list)  # names of layers to make analog (empty = all)
    learn_out_scale: bool = False
    weight_scaling_omega: float = 0.0  # > 0: program w / s with s = max|w| / omega, output times s
    weight_scaling_columnwise: bool = False  # one s per output instead of one per layer
    lr: float = 0.1
    schedule: str = "none"
    step_size: int = 35  # StepLR period in epochs
    gamma: float = 0.1  # StepLR factor
    batch: int = 10
    epochs: int = 10
    seed: int = 0
    compare_digital: bool = True  # also train the same model with digital SGD and report both
    digital_lr: float = 0.0  # 0: same as lr

    def __post_init__(self):
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("periphery", self.periphery, PERIPHERIES)
        check_choice("calibration", self.calibration, ("none", "zero-shift"))
        check_range("lr", self.lr, 0.0, MAX_LR, lo_open=True)
        check_range("digital_lr", self.digital_lr, 0.0, MAX_LR)
        check_range("gamma", self.gamma, 0.0, 1.0, lo_open=True)
        check_weight_scaling_omega(self.weight_scaling_omega)
        if check_bool("weight_scaling_columnwise", self.weight_scaling_columnwise) and not self.weight_scaling_omega:
            raise ConfigError("weight_scaling_columnwise = true needs weight_scaling_omega > 0 (it chooses how the "
                              "weights are scaled; with omega 0 nothing is)")
        for name in ("learn_out_scale", "compare_digital"):
            check_bool(name, getattr(self, name))
        for name, lo, hi in (("step_size", 1, math.inf), ("batch", 1, math.inf), ("epochs", 1, math.inf),
                             ("train_limit", 0, math.inf), ("test_limit", 0, math.inf), ("seed", 0, MAX_SEED),
                             ("calibration_pulses", 0, MAX_CALIBRATION_PULSES)):
            setattr(self, name, check_int(name, getattr(self, name), lo, hi))  # a file's 2.0 becomes 2
        for name in ("device_params", "algorithm_params", "update", "periphery_params", "reference"):
            if not isinstance(getattr(self, name), dict):
                raise ConfigError(f"{name} must be a table of key = value, got {getattr(self, name)!r}")
        if isinstance(self.analog_layers, str):
            self.analog_layers = [n for n in self.analog_layers.split(",") if n]

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def parse_value(text: str):
    """A ``--set`` value: bool (true/false/yes/no), none, int, float (incl. inf), else the string itself."""
    low = text.strip().lower()
    if low == "none":
        return None
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_sets(items) -> dict:
    """``["k=v", ...]`` -> ``{k: parsed v}``; a malformed item is refused."""
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = parse_value(value)
    return out


def _coerce(name: str, value, default):
    """Give a --set value the type of the field's default (ints accepted for floats)."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        return value
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        if isinstance(default, int) and not float(value).is_integer():
            raise ConfigError(f"{name} must be a whole number, got {value!r}")
        return type(default)(value)
    if isinstance(default, list):
        return value if isinstance(value, list) else [v for v in str(value).split(",") if v]
    if isinstance(default, str):
        return str(value)
    return value


def build_config(file: str | Path | None = None, sets: dict | None = None) -> TrainConfig:
    """Defaults, then the TOML ``file``, then the ``--set`` overrides; validated."""
    raw: dict = {}
    if file:
        try:
            with open(file, "rb") as f:
                raw = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"config file {file} does not exist") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
        except OSError as exc:  # a folder, a file we may not read, ...
            raise ConfigError(f"config file {file} cannot be read: {exc.strerror}") from None
    known = {f.name: f for f in fields(TrainConfig)}
    defaults = TrainConfig().as_dict()
    values = {}
    for key, value in list(raw.items()) + list((sets or {}).items()):
        head, dot, rest = key.partition(".")
        if dot:
            table = TABLES.get(head) or (head if head in TABLES.values() else None)
            if table is None:
                raise ConfigError(f"unknown option group {head!r} in {key!r}; groups: {', '.join(TABLES)}")
            values.setdefault(table, dict(values.get(table, {})))[rest] = value
        elif isinstance(value, dict) and key in TABLES:  # a TOML [device] table: the same as device.* keys,
            value = dict(value)  # and its `name` names the device (TOML allows no `device = ...` beside it)
            if "name" in value and isinstance(defaults.get(key), str):
                values[key] = _coerce(key, value.pop("name"), defaults[key])
            values.setdefault(TABLES[key], {}).update(value)
        elif key in known:
            values[key] = value if isinstance(value, dict) and key in TABLES.values() else _coerce(
                key, value, defaults[key])
        else:
            raise ConfigError(f"unknown config key {key!r}; known keys: {', '.join(known)}")
    return TrainConfig(**values)


def save_config(cfg: TrainConfig, path: Path) -> None:
    """Write the resolved configuration as TOML (atomically)."""
    from .checkpoint import atomic_write_bytes

    atomic_write_bytes(path, tomli_w.dumps(cfg.as_dict()).encode())

