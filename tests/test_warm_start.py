"""P3's warm start fed by the training loss: optimizer.observe_loss, the trainer, checkpoints and resume."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_same_state, run_full_and_interrupted

from analogtrain import checkpoint
from analogtrain import train as train_mod
from analogtrain.config import build_config
from analogtrain.devices import make_device
from analogtrain.errors import ConfigError
from analogtrain.nn import AnalogLayerConfig, AnalogLinear, AnalogOptimizer
from analogtrain.tile import TileConfig

N_TILES = 8  # N = 7: the pointer passes the "aggressive" tiles k <= 3 and then needs the "mild" rule
QUIET = dict(progress=False, log=lambda *a: None)


def tiny(warm_start: bool, **kw):
    return build_config(sets={"train_limit": 120, "test_limit": 50, "epochs": 2, "batch": 10,
                              "device": "softbounds-reference", "compare_digital": False, "algorithm": "multi-tile",
                              "algorithm.n_tiles": N_TILES, "algorithm.warm_start": warm_start, **kw})


def analog_counters(out) -> list[dict]:
    """The counters of every analog layer's algorithm in the run's analog checkpoint."""
    return [s["state"]["counters"] for s in checkpoint.load(out / "checkpoint-analog.pt")["optimizer"]["analog"]]


def test_training_advances_the_warm_start_pointer(tmp_path):
    train_mod.train(tiny(True), tmp_path, **QUIET)
    warm = [c["warm"] for c in analog_counters(tmp_path)]
    assert warm and all(0 < k <= N_TILES - 1 for k in warm), warm


def test_without_warm_start_the_pointer_stays_at_n(tmp_path):
    train_mod.train(tiny(False), tmp_path, **QUIET)
    counters = analog_counters(tmp_path)
    assert counters and all(c["warm"] == N_TILES - 1 and c["n_losses"] == 0 for c in counters)


def test_interrupt_then_resume_is_bit_identical_with_warm_start(tmp_path, monkeypatch):
    cfg = tiny(True, epochs=3)
    full, part, interrupted_at = run_full_and_interrupted(cfg, tmp_path, monkeypatch, stop_after=12)
    # 12 batches per epoch: stopped after step 13 (epoch 2, batch 1), mid warm start (pointer 4 of 7 on this
    # seed, the "mild" rule with 4 of its 6 losses recorded), so the resumed run needs the loss history
    assert interrupted_at == 1
    a, b = (checkpoint.load(out / "checkpoint-analog.pt") for out in (full, part))
    assert_same_state(a["model"], b["model"])  # conductances, warm-start buffers and counters included
    assert_same_state(a["optimizer"], b["optimizer"])
    assert [r["train_loss"] for r in a["metrics"]] == [r["train_loss"] for r in b["metrics"]]


def _layer(warm_start: bool, **options) -> AnalogLinear:
    tile = TileConfig.perfect(make_device("ideal"), mode="expected")
    cfg = AnalogLayerConfig(tile=tile, algorithm="multi-tile",
                            options={"n_tiles": 3, "warm_start": warm_start, **options})
    return AnalogLinear(4, 2, config=cfg, seed=0)


def test_optimizer_forwards_the_loss_and_the_closure_loss():
    layer, x, y = _layer(True), torch.randn(5, 4, generator=torch.Generator().manual_seed(0)), torch.zeros(5, 2)
    opt = AnalogOptimizer(layer.parameters(), lr=0.1)
    counters = layer.algorithm.counters
    opt.observe_loss(torch.tensor(1e9))  # a 0-d tensor is accepted too
    assert (counters["n_losses"], counters["warm"]) == (1, 0)

    def closure():
        opt.zero_grad()
        loss = F.mse_loss(layer(x), y)
        loss.backward()
        return loss

    opt.step(closure)  # its loss (< 1e9) is the second entry: no increase, no switch
    assert (counters["n_losses"], counters["warm"]) == (2, 0)
    opt.step()  # no closure: nothing observed
    assert (counters["n_losses"], counters["warm"]) == (2, 0)
    opt.observe_loss(1e10)  # an increase: the aggressive rule switches to the next tile
    assert (counters["n_losses"], counters["warm"]) == (0, 1)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_observe_loss_rejects_a_non_finite_loss(bad):
    layer = _layer(True)
    opt = AnalogOptimizer(layer.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="finite"):
        opt.observe_loss(bad)
    assert layer.algorithm.counters["n_losses"] == 0


def test_layers_without_observe_loss_are_skipped():
    tile = TileConfig.perfect(make_device("ideal"), mode="expected")
    layer = AnalogLinear(3, 2, config=AnalogLayerConfig(tile=tile), seed=0)  # analog-sgd
    assert not hasattr(layer.algorithm, "observe_loss")
    AnalogOptimizer(layer.parameters(), lr=0.1).observe_loss(0.5)


def test_code_rule_watches_epoch_losses_with_its_tolerances():
    layer = _layer(True, n_tiles=7, warm_start_rule="code")
    opt, c = AnalogOptimizer(layer.parameters(), lr=0.1), layer.algorithm.counters
    opt.observe_loss(1.0)  # a step's loss: not what this rule reads
    opt.observe_loss(1e9)
    assert (c["n_losses"], c["warm"]) == (0, 0)
    for loss in (1.0, 1.00005):  # rose, but by less than 1e-4: no plateau
        opt.observe_loss(loss, per="epoch")
    assert (c["n_losses"], c["warm"]) == (2, 0)
    opt.observe_loss(1.0002, per="epoch")  # rose by 1.5e-4: the aggressive rule switches
    assert (c["n_losses"], c["warm"]) == (0, 1)
    layer.algorithm.counters["warm"] = 4  # the mild rule: >= 2 of the last 5 changes are falls below 0.01
    for loss in (1.0, 0.9, 0.8, 0.7, 0.695, 0.6):  # one slow fall among five: not yet
        opt.observe_loss(loss, per="epoch")
    assert c["warm"] == 4
    opt.observe_loss(0.599, per="epoch")  # the second slow fall in the window
    assert (c["n_losses"], c["warm"]) == (0, 5)


def test_paper_rule_ignores_epoch_losses():
    layer = _layer(True)
    opt = AnalogOptimizer(layer.parameters(), lr=0.1)
    for loss in (1.0, 2.0):
        opt.observe_loss(loss, per="epoch")
    assert (layer.algorithm.counters["n_losses"], layer.algorithm.counters["warm"]) == (0, 0)
    with pytest.raises(ConfigError, match="per"):
        opt.observe_loss(1.0, per="batch")


@pytest.mark.parametrize("rule, period", [("paper", 2), ("code", 10)])
def test_warm_start_transfers_every_first_or_second_period(rule, period):
    layer = _layer(True, warm_start_rule=rule, global_periods=True, transfer_every=[2, 10])
    algo, x = layer.algorithm, torch.ones(1, 4)
    moved = []
    for t in range(1, 21):
        before = algo.tile_list[0].weight.clone()
        F.mse_loss(layer(x), torch.full((1, 2), 5.0)).backward()
        AnalogOptimizer(layer.parameters(), lr=0.1).step()
        layer.zero_grad()
        if not torch.equal(before, algo.tile_list[0].weight):
            moved.append(t)
    assert moved == list(range(period, 21, period))  # warm start onto tile 0 only, at its period


def test_training_with_the_code_rule_switches_only_at_epoch_ends(tmp_path):
    train_mod.train(tiny(True, epochs=3, **{"algorithm.warm_start_rule": "code"}), tmp_path, **QUIET)
    counters = analog_counters(tmp_path)
    # three epoch losses reach each layer; a switch needs two in its (restarted) history, so at most one
    # happened, and what is left is 3 (no switch), 1 (a switch at the second) or 0 (at the third)
    assert counters and all((c["warm"], c["n_losses"]) in ((0, 3), (1, 1), (1, 0)) for c in counters), counters
    stages = [r["warm_stage"] for r in map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines())]
    assert stages[0] == 0 and stages == sorted(stages) and stages[-1] <= counters[0]["warm"]  # logged per epoch


def test_metrics_csv_takes_a_column_added_by_a_later_epoch(tmp_path):
    train_mod.write_metrics(tmp_path, [{"epoch": 1, "acc": 0.5}, {"epoch": 2, "acc": 0.6, "warm_stage": 1}])
    assert (tmp_path / "metrics.csv").read_text().splitlines() == ["epoch,acc,warm_stage", "1,0.5,", "2,0.6,1"]


def test_code_rule_waits_one_more_plateau_on_the_gradient_tile_before_the_cascade():
    layer = _layer(True, warm_start_rule="code", global_periods=True, transfer_every=[2, 10])
    algo, x = layer.algorithm, torch.ones(1, 4)
    opt = AnalogOptimizer(layer.parameters(), lr=0.1)

    def steps(n):  # which of the coarser tiles W^(0), W^(1) each step changed
        changed = set()
        for _ in range(n):
            before = [t.weight.clone() for t in algo.tile_list[:2]]
            F.mse_loss(layer(x), torch.full((1, 2), 5.0)).backward()
            opt.step()
            layer.zero_grad()
            changed |= {n for n, b in enumerate(before) if not torch.equal(b, algo.tile_list[n].weight)}
        return changed

    def plateau():
        for loss in (1.0, 2.0):
            opt.observe_loss(loss, per="epoch")

    assert steps(20) == {0}  # k = 0: warm start onto W^(0)
    plateau()
    assert steps(20) == {1}  # k = 1: onto W^(1)
    plateau()
    assert algo.counters["warm"] == 2 and steps(20) == set()  # k = N: the gradient tile's self-transfer, a no-op
    plateau()
    assert algo.counters["warm"] == 3 and steps(20) == {0, 1}  # the cascade
    plateau()
    assert algo.counters["n_losses"] == 0  # the warm start is over: losses are no longer recorded
