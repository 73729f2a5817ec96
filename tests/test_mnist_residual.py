"""Residual-learning image benchmarks in quick mode (``analogtrain reproduce p1-mnist-tt|p3-table1|p5-tables``)."""

import json
import math

import pytest

from analogtrain.cli import main
from analogtrain.errors import ConfigError
from analogtrain.train import read_metrics
from analogtrain.experiments import EXPERIMENTS, Cells, run_experiment
from analogtrain.experiments.mnist_residual import (P3_METHODS, P5_FIG5_PROBS, P5_METHODS, P5_PAPER, p1_tt_config,
                                                    p3_config, p5_config, p5_fig5_config)

# experiments whose quick check is documented as not holding (the run must still be well-formed)
NOT_REPRODUCED_QUICK: set = set()


@pytest.mark.parametrize("name", ["p1-mnist-tt", "p3-table1", "p5-tables"])
def test_quick_run_writes_result_with_paper_numbers(name, tmp_path, capsys):
    assert name in EXPERIMENTS
    result = run_experiment(name, quick=True, seed=0, out=tmp_path)
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["experiment"] == name and saved["checks"] and saved["notes"]
    measured, paper = saved["measured"]["test_acc"], saved["measured"]["paper_test_acc"]
    assert measured and measured.keys() == paper.keys()
    assert all(isinstance(v, float) and math.isfinite(v) for v in measured.values())
    assert all(0 < v <= 100 for v in paper.values())
    assert saved["figures"] == ["cells.png"] and (tmp_path / "cells.png").stat().st_size > 10_000
    if name in NOT_REPRODUCED_QUICK:
        assert "NOT REPRODUCED" in " ".join(saved["notes"])
    else:
        assert result["passed"], result["checks"]
    if name == "p5-tables":
        _resume_reads_finished_cells_back(name, tmp_path, measured, capsys)


def _resume_reads_finished_cells_back(name, out, measured, capsys):
    # --resume on a finished table: every cell is read back from its checkpoint, none is trained again
    checkpoints = sorted(out.glob("*/checkpoint-*.pt"))
    assert len(checkpoints) == len(measured)
    before = [c.read_bytes() for c in checkpoints]
    again = run_experiment(name, quick=True, seed=0, out=out, cells=Cells(resume=True))
    assert again["measured"]["test_acc"] == measured
    assert [c.read_bytes() for c in checkpoints] == before
    # --cells: only the matching cells, and no verdict (here read back from their checkpoints)
    part = run_experiment(name, quick=True, seed=0, out=out, cells=Cells(resume=True, only=("*/E-RIDER",)))
    er = [k for k in measured if k.endswith("/E-RIDER")]
    assert part["measured"]["test_acc"] == {k: measured[k] for k in er} and len(er) < len(measured)
    assert not part["passed"] and part["partial"] and part["checks"] == [] and "partial run" in part["notes"][0]
    assert not part.get("figures")  # the table's figure is drawn by the run that has every cell
    capsys.readouterr()
    assert main(["reproduce", name, "--quick", "--resume", "--cells", "*/TT-v2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "fcn/mean=0/std=0.05/TT-v2: resumed analog run at epoch 4" in printed  # cells report
    assert "PARTIAL: no verdict" in printed and "FAILED" not in printed
    assert list(json.loads((out / "result.json").read_text())["measured"]["test_acc"]) == [
        k for k in measured if k.endswith("/TT-v2")]
    with pytest.raises(ConfigError, match="--cells lenet5/\\* matches no cell; the cells are: fcn/"):
        run_experiment(name, quick=True, seed=0, out=out, cells=Cells(resume=True, only=("lenet5/*",)))
    # a cell folder written under another configuration is refused, naming the field
    with pytest.raises(ConfigError, match="seed: 0 there, 1 now"):
        run_experiment(name, quick=True, seed=1, out=out, cells=Cells(resume=True))


def test_resume_is_refused_for_experiments_without_training_cells(tmp_path):
    with pytest.raises(ConfigError, match="no training cells to resume, select or run in parallel.*p3-table1"):
        run_experiment("p1-fig1", quick=True, out=tmp_path, cells=Cells(resume=True))


def test_full_mode_uses_the_papers_settings():
    # P1: TT-v1 on the P1 MNIST setting
    cfg = p1_tt_config("fcn", 0.7, quick=False, seed=0)
    assert (cfg.dataset, cfg.batch, cfg.lr, cfg.epochs, cfg.schedule, cfg.step_size, cfg.gamma) == (
        "mnist", 10, 0.05, 80, "step", 35, 0.1)
    assert cfg.algorithm == "tiki-taka" and cfg.device_params == {"w_max": 0.7, "w_min": -0.7}
    p = cfg.algorithm_params
    assert (p["gamma"], p["fast_lr"], p["scale_fast_lr"], p["transfer_lr"], p["scale_transfer_lr"],
            p["n_columns"], p["transfer_every"]) == (0.0, 0.01, False, 1.0, True, 1, 1)
    assert p1_tt_config("lenet5", 0.6, quick=False, seed=0).batch == 8
    # P3 Table 1
    for method in P3_METHODS:
        m = p3_config("mnist", method, quick=False, seed=0)
        f = p3_config("fashion-mnist", method, quick=False, seed=0)
        assert (m.model, m.dataset, m.batch, m.epochs, m.periphery) == ("lenet5", "mnist", 8, 100, "perfect")
        assert (f.dataset, f.batch) == ("fashion-mnist", 16)
        assert (m.schedule, m.step_size, m.gamma) == ("step", 30, 0.5)
        assert m.device_params == {"n_states": 10} and f.device_params == {"n_states": 4}
    tiles = p3_config("mnist", "6 tiles", quick=False, seed=0)
    assert tiles.algorithm == "multi-tile" and tiles.lr == 0.05
    assert {k: tiles.algorithm_params[k] for k in ("n_tiles", "gamma", "transfer_every", "transfer_every_growth",
                                                   "transfer_lr", "transfer_lr_growth", "scale_transfer_lr")} == dict(
        n_tiles=6, gamma=0.5, transfer_every=2, transfer_every_growth=5, transfer_lr=0.1, transfer_lr_growth=1.2,
        scale_transfer_lr=False)
    assert p3_config("fashion-mnist", "4 tiles", quick=False, seed=0).lr == 0.2
    assert p3_config("fashion-mnist", "TT-v2", quick=False, seed=0).lr == 0.1
    assert p3_config("fashion-mnist", "TT-v2", quick=False, seed=0).algorithm_params["fast_lr"] == 0.05
    assert p3_config("mnist", "MP", quick=False, seed=0).algorithm == "mixed-precision"
    # P5 Tables 1-2
    assert {(m, mean, std) for m, mean, std in P5_PAPER} >= {("lenet5", 0.0, 0.05), ("fcn", 0.4, 1.0)}
    for model, mean, std in P5_PAPER:
        for method in P5_METHODS:
            c = p5_config(model, method, mean, std, quick=False, seed=0)
            assert (c.dataset, c.epochs, c.device, c.periphery) == ("mnist", 40, "reram-hfo2", "default")
            assert c.batch == {"lenet5": 8, "fcn": 10}[model]
            assert c.reference == {"symmetric_point": True, "mean": mean, "std": std, "arrays": "P"}
    er = p5_config("lenet5", "E-RIDER", 0.0, 0.05, quick=False, seed=0)
    assert er.algorithm == "erider" and er.lr == 0.05
    assert {k: er.algorithm_params[k] for k in ("fast_lr", "transfer_lr", "scale_transfer_lr", "in_chop_prob", "gamma",
                                                "auto_granularity")} == dict(
        fast_lr=0.5, transfer_lr=0.05, scale_transfer_lr=False, in_chop_prob=0.05, gamma=0.1, auto_granularity=1000.0)
    ag = p5_config("fcn", "AGAD", 0.4, 1.0, quick=False, seed=0)
    assert ag.algorithm == "agad" and (ag.algorithm_params["fast_lr"], ag.algorithm_params["transfer_lr"]) == (0.05, 0.3)
    assert p5_config("lenet5", "TT-v2", 0.0, 0.05, quick=False, seed=0).lr == 0.005


def test_p5_fig5_varies_only_the_chopper_probability():
    """P5 Fig. 5: the FCN E-RIDER cell of p5-tables for 50 epochs, with p varied and Q's rate held."""
    base = p5_config("fcn", "E-RIDER", 0.0, 0.05, quick=False, seed=0)
    cells = [p5_fig5_config(p, quick=False, seed=0) for p in P5_FIG5_PROBS]
    assert P5_FIG5_PROBS[0] == 0 and all(c.epochs == 50 for c in cells)
    for p, c in zip(P5_FIG5_PROBS, cells):
        assert c.algorithm_params == dict(base.algorithm_params, in_chop_prob=p, eta=0.25)
        # p = 0 is RIDER, which subtracts the tracked Q itself (erider's copy of Q would never refresh)
        assert c.algorithm == ("rider" if p == 0 else "erider")
        assert {k: v for k, v in c.as_dict().items() if k not in ("epochs", "algorithm_params", "algorithm")} == {
            k: v for k, v in base.as_dict().items() if k not in ("epochs", "algorithm_params", "algorithm")}
    assert base.algorithm_params["eta"] == 0.25  # Table 5's p = 0.05 cell: the same filter as every cell here
    slow = p5_fig5_config(0.0, quick=False, seed=0, eta=0.02)  # the sensitivity cells: only eta differs
    assert slow.algorithm == "rider" and slow.algorithm_params == dict(cells[0].algorithm_params, eta=0.02)


def test_p5_fig5_quick_run_is_well_formed(tmp_path):
    result = run_experiment("p5-fig5", quick=True, seed=0, out=tmp_path)
    saved = json.loads((tmp_path / "result.json").read_text())
    acc = saved["measured"]["test_acc"]
    assert list(acc) == ["p=0", "p=0.05", "p=0.2"] and all(0 <= v <= 100 for v in acc.values())
    assert len(set(acc.values())) == 3  # 16 columns per transfer: the choppers flip, so the runs differ
    # cells are compared by their mean test accuracy over the last (here: all three) epochs
    late = {k: sum(r["test_acc"] for r in read_metrics(tmp_path / k)) / 3 for k in acc}
    assert saved["measured"]["test_acc_last_epochs_mean"] == pytest.approx(late)
    best = saved["measured"]["best_chopped"]
    assert best["over_p0_points"] == pytest.approx(max(late["p=0.05"], late["p=0.2"]) - late["p=0"])
    assert saved["figures"] == ["cells.png"] and saved["checks"]
    # RIDER (p = 0) does not learn in the reconstructed form (the invariant p5-tracking measures; measured mean
    # 12.1 %), so the chopped cells beat it (53.4 / 24.2 % for p = 0.05 / 0.2)
    assert late["p=0"] < 20 and result["passed"]


def test_status_reports_each_cell_without_training(tmp_path, capsys):
    from analogtrain.config import save_config
    from analogtrain.experiments import format_status, table_status

    def fake(key: str, cfg, accs: list):
        folder = tmp_path / key.replace("/", "_").replace(" ", "-")
        folder.mkdir()
        save_config(cfg, folder / "config.toml")
        rows = [{"run": "analog", "epoch": e, "test_acc": a, "train_loss": 1.0 / e, "seconds": 900.0 * e}
                for e, a in enumerate(accs, 1)]
        (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    er, tt = "fcn/mean=0/std=0.05/E-RIDER", "fcn/mean=0/std=0.05/TT-v2"
    rows = table_status("p5-tables", tmp_path, quick=True)
    assert [(r["cell"], r["state"], r["epoch"], r["test_acc"]) for r in rows] == [
        (er, "not started", 0, None), (tt, "not started", 0, None)]
    assert not any(tmp_path.iterdir())  # nothing written
    fake(er, p5_config("fcn", "E-RIDER", 0.0, 0.05, quick=True, seed=0), [51.0, 52.0])
    fake(tt, p5_config("fcn", "TT-v2", 0.0, 0.05, quick=True, seed=0), [40.0, 61.5, 30.0])  # peaked, fell back
    by_cell = {r["cell"]: r for r in table_status("p5-tables", tmp_path, quick=True)}
    assert (by_cell[er]["state"], by_cell[er]["epoch"], by_cell[er]["test_acc"]) == ("partial", 2, 52.0)
    assert by_cell[er]["hours_left"] == 0.25  # one epoch to go at 900 s an epoch
    assert (by_cell[tt]["state"], by_cell[tt]["epochs"], by_cell[tt]["hours_left"]) == ("done", 3, None)
    assert (by_cell[tt]["test_acc"], by_cell[tt]["best_test_acc"], by_cell[tt]["best_epoch"]) == (30.0, 61.5, 2)
    assert by_cell[tt]["train_loss"] == pytest.approx(1 / 3)
    md = format_status(list(by_cell.values()), markdown=True).splitlines()
    assert md[0] == "| cell | state | epochs | test acc | best (epoch) | train loss | paper | left |"
    assert md[1].count("|") == 9 and md[-2] == "" and md[-1].startswith("1 of 2 cell(s) done")
    assert f"| {tt} | done | 3/3 | 30.00 | 61.50 (2) | 0.333 | 90.26 | - |" in md
    # a folder written under another configuration is flagged: --resume would refuse it
    by_seed = {r["cell"]: r["state"] for r in table_status("p5-tables", tmp_path, quick=True, seed=1)}
    assert by_seed == {er: "other config", tt: "other config"}
    assert [r["cell"] for r in table_status("p5-tables", tmp_path, quick=True, only=("*TT-v2",))] == [tt]
    er_folder = tmp_path / er.replace("/", "_")
    (er_folder / "metrics.jsonl").unlink()
    (er_folder / "checkpoint-analog.pt").write_bytes(b"")  # stopped inside its first epoch
    assert table_status("p5-tables", tmp_path, quick=True)[0]["state"] == "started"
    (er_folder / "metrics.jsonl").write_text('{"run": "analog", "ep')  # torn
    assert table_status("p5-tables", tmp_path, quick=True)[0]["state"] == "unreadable"
    (er_folder / "metrics.jsonl").write_text(json.dumps({"run": "analog", "epoch": 2, "test_acc": 52.0,
                                                          "seconds": 1800.0}) + "\n")

    assert main(["reproduce", "p5-tables", "--quick", "--status", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "partial" in printed and "0.2 h" in printed
    assert "1 of 2 cell(s) done; the partial ones need about 0.2 h more at their pace so far" in printed
    assert main(["reproduce", "p5-tables", "--quick", "--markdown", "--out", str(tmp_path)]) == 2
    assert "--markdown goes with --status; add --status" in capsys.readouterr().err
    png = tmp_path / "so-far.png"
    assert main(["reproduce", "p5-tables", "--quick", "--status", "--plot", str(png), "--out", str(tmp_path)]) == 0
    assert png.stat().st_size > 10_000 and f"figure: {png}" in capsys.readouterr().out
    assert main(["reproduce", "p5-tables", "--quick", "--status", "--plot", str(png), "--out",
                 str(tmp_path / "empty")]) == 2
    assert "has finished an epoch yet" in capsys.readouterr().err
    assert main(["reproduce", "p5-tables", "--status", "--resume", "--out", str(tmp_path)]) == 2
    assert "--status reports on a table and trains nothing; drop --resume" in capsys.readouterr().err
    assert main(["reproduce", "p5-tables", "--quick", "--status", "--out", str(tmp_path / "typo")]) == 0
    assert "does not exist (yet)" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="no training cells"):
        table_status("p5-fig1", tmp_path)


def test_p5_fig2_cells_differ_only_in_how_p_reads_its_symmetric_point():
    """P5 Fig. 2: TT-v1 after zero-shifting P with N pulses; the exact-SP cell subtracts the true SP instead."""
    from analogtrain.devices import make_device
    from analogtrain.experiments.p5_fig2 import BUDGETS, p5_fig2_config

    cells = {n: p5_fig2_config(n, quick=False, seed=0) for n in (*BUDGETS, None)}
    for n, c in cells.items():
        assert (c.model, c.dataset, c.algorithm, c.batch, c.epochs) == ("lenet5", "mnist", "tiki-taka", 8, 10)
        assert (c.calibration, c.calibration_pulses) == (("zero-shift", n) if n else ("none", 1000))
        assert c.reference == ({} if n else {"symmetric_point": True, "arrays": "P"})
    same = {k for k in cells[500].as_dict() if k not in ("calibration", "calibration_pulses", "reference")}
    assert all({k: c.as_dict()[k] for k in same} == {k: cells[500].as_dict()[k] for k in same} for c in cells.values())
    device = make_device(cells[500].device, **cells[500].device_params)
    assert round(device.n_states) == 2000 and float(device.symmetric_point()) == pytest.approx(0.3, abs=0.05)


def test_p5_fig2_quick_run_shows_the_loss_falling_with_the_budget(tmp_path):
    result = run_experiment("p5-fig2", quick=True, seed=0, out=tmp_path)
    saved = json.loads((tmp_path / "result.json").read_text())
    loss = saved["measured"]["final_train_loss"]
    assert list(loss) == ["N=100", "N=400", "N=1600"]
    assert loss["N=100"] > loss["N=400"] > loss["N=1600"]  # measured 2.32 > 1.74 > 1.38 (seeds 0-2 alike)
    assert result["passed"] and saved["figures"] == ["cells.png"]
