"""The training loop: data, model, optimizer, metrics, checkpoints, resume, interrupt, divergence.

``train(cfg, out)`` trains ``cfg.model`` with its analog layers on ``cfg.dataset`` and, when
``cfg.compare_digital``, the same model (same initial weights) with digital SGD, writing into ``out``:

* ``config.toml``: the resolved configuration;
* ``metrics.jsonl`` and ``metrics.csv``: one row per epoch and run ("analog" / "digital");
* ``checkpoint-analog.pt`` / ``checkpoint-digital.pt``: everything needed to continue (model and
  optimizer state with every analog array, sampled device and generator, scheduler, position in the
  epoch, metrics so far), rewritten atomically at every epoch end and on Ctrl-C;
* ``training.png``: loss and accuracy per epoch.

A resumed run (``resume=True``) continues bit for bit: an epoch's shuffle depends only on (seed,
epoch), and a checkpoint records the next batch index.  A NaN/inf loss stops the run with
``TrainingDiverged`` and leaves the last good checkpoint in place.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import math
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import checkpoint
from .config import TrainConfig, build_config, save_config
from .data import batches, epoch_generator, load_dataset
from .devices import make_device
from .errors import ConfigError, TrainingDiverged
from .io import IOConfig
from .models import INPUT_SHAPES, build_model
from .nn import AnalogLayerConfig, AnalogOptimizer, analog_layers
from .pulses import UpdateConfig
from .tile import ReferenceConfig, TileConfig


def set_threads(n: int) -> None:
    """Cap torch's and numba's thread pools (several jobs side by side: one thread each)."""
    import numba

    if n < 1:
        raise ConfigError(f"--threads = {n} must be at least 1")
    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


class _StopFlag:
    """Turns Ctrl-C into a flag checked between steps, so a checkpoint is never taken mid-update."""

    def __init__(self, requested=None):
        self.stop = False
        self._old = None
        self._requested = requested  # another stop source, e.g. a parallel table run's shared event

    def requested(self) -> bool:
        return self.stop or (self._requested is not None and bool(self._requested()))

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.stop:  # a second Ctrl-C aborts at once
            raise KeyboardInterrupt
        self.stop = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def layer_config(cfg: TrainConfig) -> AnalogLayerConfig:
    """The analog layers' configuration (device, update, periphery, algorithm) from a run config."""
    device = make_device(cfg.device, **cfg.device_params)
    io = IOConfig.perfect() if cfg.periphery == "perfect" else IOConfig()
    if cfg.periphery_params:
        io = _replace(io, "periphery", cfg.periphery_params)
    ref = dict(cfg.reference)
    arrays = str(ref.pop("arrays", "all"))  # which of an algorithm's arrays read against this reference
    # per-array fields: "P.mean" (from --set reference.P.mean=...) or a [reference.P] table
    per_array: dict = {}
    for key in [k for k in ref if "." in k or isinstance(ref[k], dict)]:
        value = ref.pop(key)
        name, _, field = key.partition(".")
        per_array.setdefault(name, {}).update(value if isinstance(value, dict) else {field: value})
    reference = _replace(ReferenceConfig(), "reference", ref)
    tile = TileConfig(device=device, update=_replace(UpdateConfig(), "update", cfg.update), forward=io, backward=io)
    options = dict(cfg.algorithm_params)
    if arrays == "all":
        tile = dataclasses.replace(tile, reference=reference)
        named = {}
    else:  # e.g. "P": only the residual array (P5's reference offset), the others read against zero
        named = {name: reference for name in arrays.split(",")}
    for name, fields in per_array.items():  # e.g. aihwkit's compound of presets: every array at its SP, P offset
        named[name] = _replace(named.get(name, tile.reference), f"reference.{name}", fields)
    if named:
        if cfg.algorithm in ("analog-sgd", "digital-sgd"):
            raise ConfigError(f"reference names arrays ({', '.join(named)}), but {cfg.algorithm} has a single "
                              "array; give its reference without array names")
        options["configs"] = {name: dataclasses.replace(tile, reference=r) for name, r in named.items()}
    if cfg.calibration != "none":
        options.update(calibration=cfg.calibration, calibration_pulses=cfg.calibration_pulses)
    return AnalogLayerConfig(tile=tile, algorithm=cfg.algorithm, options=options,
                             learn_out_scale=cfg.learn_out_scale, weight_scaling_omega=cfg.weight_scaling_omega,
                             weight_scaling_columnwise=cfg.weight_scaling_columnwise)


def _replace(obj, group: str, changes: dict):
    names = {f.name for f in dataclasses.fields(obj)}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise ConfigError(f"unknown {group} option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    return dataclasses.replace(obj, **changes)


@dataclass
class Data:
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def load_data(cfg: TrainConfig) -> Data:
    kw = dict(data_dir=cfg.data_dir or None)
    tr = load_dataset(cfg.dataset, "train", **kw).tensors()
    te = load_dataset(cfg.dataset, "test", **kw).tensors()
    shape, wanted = tuple(tr[0].shape[1:]), INPUT_SHAPES.get(cfg.model)
    if wanted is not None and shape != wanted:
        raise ConfigError(f"model {cfg.model} takes {'x'.join(map(str, wanted))} images, but dataset {cfg.dataset} "
                          f"has {'x'.join(map(str, shape))}; pick a model and a dataset that fit")
    if cfg.train_limit:
        tr = (tr[0][: cfg.train_limit], tr[1][: cfg.train_limit])
    if cfg.test_limit:
        te = (te[0][: cfg.test_limit], te[1][: cfg.test_limit])
    return Data(*tr, *te)


def evaluate(model, x, y, batch: int = 1000) -> tuple[float, float]:
    """Mean NLL loss and accuracy (%) of ``model`` on (x, y)."""
    loss, correct = 0.0, 0
    with torch.no_grad():
        for k in range(0, len(x), batch):
            out = model(x[k : k + batch])
            loss += F.nll_loss(out, y[k : k + batch], reduction="sum").item()
            correct += (out.argmax(1) == y[k : k + batch]).sum().item()
    return loss / len(x), 100.0 * correct / len(x)


def _pulses(model) -> int:
    return sum(layer.algorithm.pulse_count for _, layer in analog_layers(model))


def _algorithm_log(model) -> dict:
    """An algorithm's own per-epoch columns (multi-tile's warm-start pointer), from the first layer with any."""
    for _, layer in analog_layers(model):
        log = getattr(layer.algorithm, "epoch_log", lambda: {})()
        if log:
            return log
    return {}


class Run:
    """One model trained for ``cfg.epochs`` epochs with checkpoints in ``out`` under ``tag``."""

    def __init__(self, cfg: TrainConfig, tag: str, analog: bool, data: Data, out: Path, progress: bool):
        self.cfg, self.tag, self.data, self.out, self.progress = cfg, tag, data, out, progress
        self.model = build_model(cfg.model, analog=layer_config(cfg) if analog else None,
                                 layers=cfg.analog_layers or None, seed=cfg.seed)
        lr = cfg.lr if analog or not cfg.digital_lr else cfg.digital_lr
        self.optimizer = AnalogOptimizer(self.model.parameters(), lr=lr)
        self.scheduler = (torch.optim.lr_scheduler.StepLR(self.optimizer, cfg.step_size, cfg.gamma)
                          if cfg.schedule == "step" else None)
        self.epoch, self.batch = 0, 0
        self.running = [0.0, 0, 0]  # loss sum, correct, seen in the current epoch
        self.metrics: list[dict] = []
        self.seconds = 0.0

    @property
    def path(self) -> Path:
        return self.out / f"checkpoint-{self.tag}.pt"

    def state(self) -> dict:
        return {
            "tag": self.tag, "epoch": self.epoch, "batch": self.batch, "running": list(self.running),
            "metrics": list(self.metrics), "seconds": self.seconds,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
        }

    def save(self) -> None:
        checkpoint.save(self.state(), self.path)

    def restore(self) -> bool:
        if not self.path.exists():
            return False
        state = checkpoint.load(self.path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.batch, self.running = state["epoch"], state["batch"], list(state["running"])
        self.metrics, self.seconds = list(state["metrics"]), state["seconds"]
        return True

    @property
    def done(self) -> bool:
        return self.epoch >= self.cfg.epochs

    def fit(self, stop: _StopFlag, on_epoch=None) -> bool:
        """Train to the end (True) or until Ctrl-C (False, after saving a checkpoint)."""
        cfg, d = self.cfg, self.data
        while not self.done:
            started = time.perf_counter()
            order = batches(d.train_x, d.train_y, cfg.batch, True, epoch_generator(cfg.seed, self.epoch))
            bar = tqdm(itertools.islice(order, self.batch, None), initial=self.batch,
                       total=math.ceil(len(d.train_y) / cfg.batch), disable=not self.progress,
                       desc=f"{self.tag} epoch {self.epoch + 1}/{cfg.epochs}", leave=False, dynamic_ncols=True)
            for xb, yb in bar:
                out = self.model(xb)
                loss = F.nll_loss(out, yb)
                value = loss.item()
                if not math.isfinite(value):
                    kept = (f"the last good checkpoint is {self.path}" if self.path.exists() else
                            "no checkpoint had been written yet")
                    raise TrainingDiverged(f"{self.tag} run: loss became {value} at epoch {self.epoch + 1}, batch "
                                           f"{self.batch + 1}; {kept} (a smaller lr may help)")
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.observe_loss(value)  # P3's warm start (before the update, as in its Alg. 1)
                self.optimizer.step()
                self.batch += 1
                self.running[0] += value * len(yb)
                self.running[1] += (out.argmax(1) == yb).sum().item()
                self.running[2] += len(yb)
                bar.set_postfix(loss=f"{self.running[0] / self.running[2]:.3f}",
                                acc=f"{100 * self.running[1] / self.running[2]:.1f}", refresh=False)
                if stop.requested():
                    self.seconds += time.perf_counter() - started
                    self.save()
                    return False
            bar.close()
            row = self._end_epoch(time.perf_counter() - started)
            if on_epoch:
                on_epoch(row)
        return True

    def _end_epoch(self, seconds: float) -> dict:
        self.seconds += seconds
        test_loss, test_acc = evaluate(self.model, self.data.test_x, self.data.test_y)
        row = {
            "run": self.tag, "epoch": self.epoch + 1, "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": self.running[0] / max(self.running[2], 1),
            "train_acc": 100 * self.running[1] / max(self.running[2], 1),
            "test_loss": test_loss, "test_acc": test_acc, "pulses": _pulses(self.model),
            "seconds": round(self.seconds, 3), **_algorithm_log(self.model),
        }
        self.optimizer.observe_loss(row["train_loss"], per="epoch")  # P3's code's warm start watches this
        if self.scheduler:
            self.scheduler.step()
        self.metrics.append(row)
        self.epoch, self.batch, self.running = self.epoch + 1, 0, [0.0, 0, 0]
        self.save()
        return row


def read_metrics(out: Path, run: str = "analog") -> list[dict]:
    """The epoch rows of ``run`` ("analog" or "digital") in ``out/metrics.jsonl`` (none if it is missing)."""
    path = Path(out) / "metrics.jsonl"
    if not path.exists():
        return []
    return [r for r in map(json.loads, path.read_text().splitlines()) if r.get("run") == run]


def write_metrics(out: Path, rows: list[dict]) -> None:
    checkpoint.atomic_write_bytes(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))  # runs resumed
        # under a newer version may add a column: earlier rows leave it empty
        writer.writeheader()
        writer.writerows(rows)
    checkpoint.atomic_write_bytes(out / "metrics.csv", buf.getvalue().encode())


# fields a resumed run may change: more epochs extend it, the data may have moved
RESUMABLE_CHANGES = ("epochs", "data_dir")


class ConfigMismatch(ConfigError):
    """A run folder's checkpoints were written under another configuration."""


def _check_same_config(cfg: TrainConfig, out: Path) -> None:
    """Refuse to resume checkpoints written under another configuration (they would load silently)."""
    saved = out / "config.toml"
    if not saved.exists():
        return
    old = json.loads(json.dumps(build_config(saved).as_dict()))
    new = json.loads(json.dumps(cfg.as_dict()))
    changed = sorted(k for k in new if k not in RESUMABLE_CHANGES and old.get(k) != new[k])
    if changed:
        detail = "; ".join(f"{k}: {old.get(k)!r} there, {new[k]!r} now" for k in changed)
        raise ConfigMismatch(f"cannot resume in {out}: its checkpoints were written with another configuration "
                          f"({detail}); use another --out or start again without --resume")


def train(cfg: TrainConfig, out: str | Path, resume: bool = False, progress: bool = True, log=print,
          stop_requested=None) -> dict:
    """Train (and, if ``cfg.compare_digital``, the digital baseline); return a summary dict.

    ``stop_requested``: a callable checked between steps besides Ctrl-C; when it returns True the run saves
    a checkpoint and stops as on Ctrl-C.
    Returns ``{"analog": {...final metrics...}, "digital": {...} | None, "interrupted": bool}``.
    """
    out = Path(out)
    if resume:
        _check_same_config(cfg, out)
    # Build the models and read the data before touching ``out``: a bad option or missing data set then
    # stops the run with its message and leaves no half-made run folder behind.
    data = load_data(cfg)
    runs = [Run(cfg, "analog", True, data, out, progress)]
    if cfg.compare_digital:
        runs.append(Run(cfg, "digital", False, data, out, progress))
    checkpoint.make_dir(out)
    save_config(cfg, out / "config.toml")
    log(f"training {cfg.model} on {cfg.dataset} with {cfg.algorithm} on {cfg.device} ({cfg.epochs} epochs, "
        f"batch {cfg.batch}, lr {cfg.lr}) -> {out}")
    if resume:
        for run in runs:
            if run.restore():
                log(f"resumed {run.tag} run at epoch {run.epoch + 1}, batch {run.batch}")

    def report(row):
        write_metrics(out, [r for run in runs for r in run.metrics])
        log(f"{row['run']:>7} epoch {row['epoch']:>3}: train loss {row['train_loss']:.4f} "
            f"acc {row['train_acc']:.2f}%  test loss {row['test_loss']:.4f} acc {row['test_acc']:.2f}%")

    with _StopFlag(stop_requested) as stop:
        for run in runs:
            if not run.fit(stop, report):
                log(f"interrupted: checkpoint saved to {run.path}; continue with --resume")
                return {"interrupted": True, "analog": None, "digital": None}
    write_metrics(out, [r for run in runs for r in run.metrics])
    from .plots import plot_training

    plot_training([r for run in runs for r in run.metrics], out / "training.png")
    summary = {run.tag: (run.metrics[-1] if run.metrics else None) for run in runs}
    summary.setdefault("digital", None)
    summary["interrupted"] = False
    return summary
