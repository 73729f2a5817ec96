"""Shared test settings: slow full-length reproductions run only with --runslow."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("ANALOGTRAIN_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data"))


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run full-length (slow) reproductions")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="full-length run: use --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def run_full_and_interrupted(cfg, tmp_path, monkeypatch, stop_after: int):
    """Train ``cfg`` uninterrupted into ``tmp_path/full`` and, into ``tmp_path/part``, with a simulated
    Ctrl-C after ``stop_after + 1`` optimizer steps followed by ``--resume``; returns both folders."""
    from analogtrain import checkpoint, train as train_mod

    class StopAfter(train_mod._StopFlag):
        def __init__(self, *args):
            super().__init__(*args)
            self.reads = 0

        @property
        def stop(self):  # read once per optimizer step
            self.reads += 1
            return self.reads > stop_after

        @stop.setter
        def stop(self, value):
            pass

    quiet = dict(progress=False, log=lambda *a: None)
    full, part = tmp_path / "full", tmp_path / "part"
    train_mod.train(cfg, full, **quiet)
    monkeypatch.setattr(train_mod, "_StopFlag", StopAfter)
    assert train_mod.train(cfg, part, **quiet)["interrupted"]
    monkeypatch.undo()
    interrupted_at = checkpoint.load(part / "checkpoint-analog.pt")["batch"]
    train_mod.train(cfg, part, resume=True, **quiet)
    return full, part, interrupted_at


def assert_same_state(a, b, where: str = "state") -> None:
    """``a`` and ``b`` (nested dicts / lists of tensors and plain values, as state_dicts and checkpoints)
    are equal bit for bit: every tensor element, dtype and shape (``repr`` would show only the corners of
    a tensor of more than 1000 elements)."""
    import torch

    assert type(a) is type(b), f"{where}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype} {tuple(a.shape)} vs {b.dtype} {tuple(b.shape)}"
        assert torch.equal(a, b) or (a.is_floating_point() and torch.equal(a.nan_to_num(), b.nan_to_num())
                                     and torch.equal(a.isnan(), b.isnan())), f"{where}: values differ"
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} vs {list(b)}"
        for key in a:
            assert_same_state(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: length {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{where}[{i}]")
    else:
        assert a == b or (a != a and b != b), f"{where}: {a!r} vs {b!r}"
