"""Tests for the experiment registry and the P1 least-squares reproductions (analogtrain.experiments)."""

from __future__ import annotations

import json
import math
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import assert_same_state

from analogtrain.devices import Ideal, ald
from analogtrain.errors import ConfigError
from analogtrain.experiments import EXPERIMENTS, cli_reproduce, run_experiment
from analogtrain.experiments.least_squares import LeastSquares, Method, ald_fixed_point, run

P1 = ["p1-fig1", "p1-fig3", "p1-fig4"]
KEYS = {"experiment", "source", "claim", "settings", "measured", "tolerance", "passed", "quick", "seed", "seconds"}


def fig1_problem(seed: int = 0) -> LeastSquares:
    return LeastSquares.random(40, 100, 1.0, 0.45, scale=2 / 100, seed=seed)


# --- the registry and the reproductions -----------------------------------------------------------------


def test_p1_experiments_are_registered():
    assert set(P1) <= set(EXPERIMENTS)
    for name in P1:
        exp = EXPERIMENTS[name]
        assert exp.name == name and exp.claim and exp.source.startswith("P1") and callable(exp.run)


@pytest.mark.parametrize("name", P1)
def test_quick_run_passes_and_writes_result_and_png(name, tmp_path):
    res = run_experiment(name, quick=True, seed=0, out=tmp_path)
    assert res["passed"], [c for c in res["checks"] if not c["passed"]]
    on_disk = json.loads((tmp_path / "result.json").read_text())
    assert KEYS <= set(on_disk)
    assert on_disk["experiment"] == name and on_disk["quick"] is True and on_disk["seed"] == 0
    assert on_disk["passed"] is True and on_disk["checks"]
    assert on_disk["measured"] == res["measured"]
    pngs = list(tmp_path.glob("*.png"))
    assert pngs and all(p.stat().st_size > 10_000 for p in pngs)
    assert sorted(p.name for p in pngs) == sorted(on_disk["figures"])
    assert not list(tmp_path.glob("*.tmp"))  # the atomic write left no temporary file


def test_same_seed_same_measured_numbers(tmp_path):
    a = run_experiment("p1-fig3", quick=True, seed=3, out=tmp_path / "a")
    b = run_experiment("p1-fig3", quick=True, seed=3, out=tmp_path / "b")
    assert a["measured"] == b["measured"]


def test_unknown_experiment_names_it_and_lists_known(tmp_path):
    with pytest.raises(ConfigError) as err:
        run_experiment("p9-fig99", quick=True, out=tmp_path)
    msg = str(err.value)
    assert "p9-fig99" in msg and all(name in msg for name in P1)
    assert not (tmp_path / "result.json").exists()


def test_cli_list_prints_the_experiments(capsys):
    rc = cli_reproduce(SimpleNamespace(name=None, list=True, quick=False, seed=0, out=None))
    text = capsys.readouterr().out
    assert rc == 0
    assert all(name in text for name in P1)


def test_cli_runs_one_and_returns_exit_code(tmp_path, capsys):
    rc = cli_reproduce(SimpleNamespace(name="p1-fig4", list=False, quick=True, seed=0, out=str(tmp_path)))
    text = capsys.readouterr().out
    assert rc == 0 and "PASSED" in text and "result.json" in text
    assert json.loads((tmp_path / "result.json").read_text())["passed"] is True


# --- the least-squares toy ---------------------------------------------------------------------------------


def test_problem_gradient_matches_autograd_and_optimum_is_zero():
    P = LeastSquares.random(7, 13, 0.5, 0.3, scale=0.2, seed=1)
    W = torch.randn(3, 7, dtype=torch.float64, requires_grad=True)
    P.value(W).sum().backward()
    torch.testing.assert_close(P.grad(W.detach()), W.grad)
    assert float(P.loss(P.w_star[None])[0]) < 1e-28
    torch.testing.assert_close(P.loss(W.detach()), P.value(W.detach()) / 7)


def test_ideal_device_analog_sgd_equals_digital_sgd():
    P = fig1_problem()
    dig = run(P, Method.digital(), 0.1, 300, noise_std=0.01, seed=5)
    ana = run(P, Method.analog(Ideal()), 0.1, 300, noise_std=0.01, seed=5)
    np.testing.assert_allclose(ana.loss, dig.loss, rtol=1e-12, atol=0)
    np.testing.assert_allclose(ana.weight, dig.weight, rtol=1e-12, atol=1e-15)


def test_huge_tau_ald_approaches_digital_sgd():
    P = fig1_problem()
    dig = run(P, Method.digital(), 0.1, 200, noise_std=0.01, seed=2)
    ana = run(P, Method.analog(ald(1e9)), 0.1, 200, noise_std=0.01, seed=2)
    np.testing.assert_allclose(ana.loss, dig.loss, rtol=1e-6)


@pytest.mark.parametrize("method", [
    Method.digital(), Method.analog(ald(3.0)), Method.pulsed(ald(3.0, dw_min=1e-3), 50),
    Method.stochastic(ald(3.0, dw_min=1e-3)),
], ids=["digital", "model", "pulses", "pulse-trains"])
def test_runs_are_seeded(method):
    P = fig1_problem()
    a = run(P, method, 0.1, 60, noise_std=0.01, seed=11)
    b = run(P, method, 0.1, 60, noise_std=0.01, seed=11)
    c = run(P, method, 0.1, 60, noise_std=0.01, seed=12)
    np.testing.assert_array_equal(a.loss, b.loss)
    assert not np.array_equal(a.loss, c.loss)
    assert a.loss.shape == (61,) and np.all(np.isfinite(a.loss))


def test_noise_free_analog_gd_has_no_floor_p1_thm9():
    """P1 Thm 9: with sigma = 0, Analog GD on the ALD drives ||grad f||^2 to 0 (asymmetry alone: no floor),
    and its running average obeys 2 (f(W0) - f*) / (alpha K (1 - W_max^2 / tau^2)) (= papers.md's form with
    L for alpha = 1/L; W_max is estimated from below by max(|W*|, |W_K|), which only tightens the bound)."""
    P, tau, lr, K = fig1_problem(), 3.0, 0.1, 1500
    L = float(P.hessian_eigenvalues[-1])
    assert lr <= 1 / L
    clean = run(P, Method.analog(ald(tau)), lr, K, seed=0, record_grad=True)
    g = clean.grad_norm2
    assert g[-1] < 1e-24 * g[0]
    w_max = max(float(np.abs(clean.weight).max()), float(P.w_star.abs().max()))
    f0 = float(P.value(torch.zeros(1, P.dim, dtype=torch.float64))[0])
    bound = 2 * f0 / (lr * K * (1 - w_max**2 / tau**2))
    assert g[:K].mean() <= bound
    # with gradient noise the same run keeps a floor (the floor is asymmetry x noise)
    noisy = run(P, Method.analog(ald(tau)), lr, K, noise_std=0.01, seed=0, record_grad=True)
    assert noisy.grad_norm2[-200:].mean() > 1e6 * g[-1]


def test_ald_fixed_point_limits():
    P = fig1_problem()
    torch.testing.assert_close(ald_fixed_point(P, 3.0, 0.0), P.w_star)
    w = ald_fixed_point(P, 3.0, 0.05)
    assert float(w.norm()) < float(P.w_star.norm())  # shrinks towards the symmetric point 0
    assert math.isclose(float(ald_fixed_point(P, 1e12, 0.05).sub(P.w_star).abs().max()), 0.0, abs_tol=1e-9)


# --- table cells trained in parallel (run_cells with Cells.jobs) --------------------------------------------
def _tiny_cells(tmp_path, epochs=(2, 2, 2)):
    from analogtrain.config import build_config

    sets = dict(train_limit=60, test_limit=20, batch=10, compare_digital=False)
    algos = ["analog-sgd", "tiki-taka", "agad"]
    return [(f"tiny/{a}", build_config(sets={**sets, "algorithm": a, "epochs": e, "seed": i}), 50.0)
            for i, (a, e) in enumerate(zip(algos, epochs))]


def _metrics(folder):
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_cells_trained_in_parallel_match_the_serial_run(tmp_path):
    from analogtrain import checkpoint
    from analogtrain.experiments import Cells, run_cells

    cells = _tiny_cells(tmp_path)
    threads = torch.get_num_threads()
    try:
        serial, _ = run_cells(cells, tmp_path / "serial", Cells(threads=1))
        parallel, result = run_cells(cells, tmp_path / "parallel", Cells(jobs=2, threads=1))
    finally:
        torch.set_num_threads(threads)
    assert parallel == serial and set(parallel) == {key for key, _, _ in cells}
    assert result["measured"]["test_acc"] == serial
    for key, _, _ in cells:
        name = key.replace("/", "_")
        a, b = tmp_path / "serial" / name, tmp_path / "parallel" / name
        assert _metrics(a) == _metrics(b) and len(_metrics(a)) == 2
        sa, sb = (checkpoint.load(f / "checkpoint-analog.pt")["model"] for f in (a, b))
        assert_same_state(sa, sb)  # conductances, buffers, counters and generators, bit for bit


def test_a_failing_cell_stops_the_parallel_run_with_its_error_and_checkpoints(tmp_path):
    from analogtrain.config import save_config
    from analogtrain.experiments import Cells, run_cells
    from analogtrain.train import ConfigMismatch

    cells = _tiny_cells(tmp_path, epochs=(1, 400, 1))
    bad = tmp_path / "tiny_analog-sgd"
    bad.mkdir()
    save_config(cells[2][1], bad / "config.toml")  # another cell's configuration: --resume refuses it
    with pytest.raises(ConfigMismatch):
        run_cells(cells[:2], tmp_path, Cells(resume=True, jobs=2, threads=1))
    # the long cell stopped at a checkpoint short of its end (or, on a loaded machine, never began training)
    for ck in (tmp_path / "tiny_tiki-taka").glob("checkpoint-*.pt"):
        assert torch.load(ck, weights_only=False)["epoch"] < 400


def test_ctrl_c_during_a_parallel_run_stops_every_cell(tmp_path, monkeypatch):
    import concurrent.futures

    from analogtrain.experiments import Cells, run_cells

    firsts = [tmp_path / f"tiny_{a}" / "metrics.jsonl" for a in ("analog-sgd", "tiki-taka")]

    def ctrl_c_once_training(futures):  # the parent's wait, hit by Ctrl-C once both workers are training
        deadline = time.monotonic() + 120
        while not all(f.exists() for f in firsts) and time.monotonic() < deadline:
            time.sleep(0.05)
        raise KeyboardInterrupt
        yield  # pragma: no cover

    monkeypatch.setattr(concurrent.futures, "as_completed", ctrl_c_once_training)
    with pytest.raises(KeyboardInterrupt, match="continue with --resume"):
        run_cells(_tiny_cells(tmp_path, epochs=(400, 400, 400)), tmp_path, Cells(jobs=2, threads=1))
    started = [torch.load(ck, weights_only=False) for ck in tmp_path.glob("*/checkpoint-analog.pt")]
    assert len(started) == 2  # the two running cells saved checkpoints; the third never started
    assert all(0 < ck["epoch"] * 6 + ck["batch"] < 400 * 6 for ck in started)  # stopped short of the end


def test_jobs_and_threads_are_checked(tmp_path, capsys):
    from analogtrain.cli import main
    from analogtrain.experiments import Cells

    for bad in (dict(jobs=0), dict(jobs=1.5), dict(threads=0)):
        with pytest.raises(ConfigError, match="--jobs|--threads"):
            Cells(**bad)
    assert main(["reproduce", "p5-tables", "--quick", "--jobs", "0", "--out", str(tmp_path)]) == 2
    assert "--jobs = 0 must be a whole number of at least 1" in capsys.readouterr().err
    assert main(["reproduce", "p5-tables", "--status", "--jobs", "2", "--out", str(tmp_path)]) == 2
    assert "drop --jobs" in capsys.readouterr().err
    assert main(["reproduce", "p1-fig1", "--quick", "--jobs", "2", "--out", str(tmp_path)]) == 2
    assert "no training cells to resume, select or run in parallel" in capsys.readouterr().err


def test_a_diverged_cell_ends_reproduce_with_a_message_not_a_traceback(tmp_path, capsys, monkeypatch):
    from analogtrain import train as train_mod
    from analogtrain.cli import main
    from analogtrain.errors import TrainingDiverged

    def diverge(cfg, out, **kw):
        raise TrainingDiverged(f"analog run: loss became nan at epoch 2, batch 7; the last good checkpoint is {out}")

    monkeypatch.setattr(train_mod, "train", diverge)
    assert main(["reproduce", "p5-tables", "--quick", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: training diverged: analog run: loss became nan at epoch 2") and "Traceback" not in err


# --- several seeds at once ----------------------------------------------------------------------------------


def test_parse_seeds_reads_lists_and_ranges_and_names_a_bad_part():
    from analogtrain.experiments import parse_seeds

    assert parse_seeds("0,1,2") == [0, 1, 2] and parse_seeds("0-2") == [0, 1, 2]
    assert parse_seeds("3, 0-1,1,7") == [3, 0, 1, 7]  # in order, each once
    for bad in ("x", "2-0", "-1", "0,,1", "1.5"):
        with pytest.raises(ConfigError, match="is not a seed .* e.g. --seeds 0,1,2"):
            parse_seeds(bad)


def test_run_seeds_runs_each_seed_and_reports_mean_std_and_checks(tmp_path):
    from analogtrain.experiments import run_seeds

    res = run_seeds("p1-fig4", [0, 2], quick=True, out=tmp_path)
    per_seed = {s: json.loads((tmp_path / f"seed-{s}" / "result.json").read_text()) for s in (0, 2)}
    assert per_seed[2]["seed"] == 2
    single = run_experiment("p1-fig4", quick=True, seed=2, out=tmp_path / "single")
    assert single["measured"] == per_seed[2]["measured"]  # a seed's run is the one-seed run, bit for bit
    a, b = (per_seed[s]["measured"]["right_min_over_digital"] for s in (0, 2))
    m = res["measured"]["right_min_over_digital"]
    assert a != b and m["n"] == 2 and m["mean"] == pytest.approx((a + b) / 2)
    assert m["std"] == pytest.approx(abs(a - b) / math.sqrt(2)) and (m["min"], m["max"]) == (min(a, b), max(a, b))
    assert res["passed"] and res["passed_seeds"] == [0, 2] and res["seeds"] == [0, 2]
    check = res["checks"][0]
    assert check["values"] == {"0": per_seed[0]["checks"][0]["value"], "2": per_seed[2]["checks"][0]["value"]}
    assert json.loads((tmp_path / "result.json").read_text()) == res


def test_a_seed_that_fails_fails_the_run_and_is_named(tmp_path, monkeypatch, capsys):
    from analogtrain.cli import main
    from analogtrain.experiments import Experiment, check

    def run(quick, seed, out):  # passes on even seeds only
        return {"measured": {"x": float(seed)}, "checks": [check("x is even", seed % 2, "<", 1)]}

    monkeypatch.setitem(EXPERIMENTS, "toy-seeds", Experiment("toy-seeds", "toy", "even seeds", "none", run))
    assert main(["reproduce", "toy-seeds", "--seeds", "0-3", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "x  1.5 +- 1.291  [0, 3]" in out and "2/4  x is even" in out
    assert "FAILED on seed(s) 1, 3 (2 of 4 passed)" in out
    res = json.loads((tmp_path / "result.json").read_text())
    assert res["passed"] is False and res["passed_seeds"] == [0, 2]
    assert main(["reproduce", "toy-seeds", "--seeds", "0,2", "--out", str(tmp_path)]) == 0
    assert "PASSED on every seed" in capsys.readouterr().out


def test_seeds_flag_errors_and_status_per_seed(tmp_path, capsys):
    from analogtrain.cli import main

    assert main(["reproduce", "p1-fig4", "--quick", "--seed", "1", "--seeds", "0-2", "--out", str(tmp_path)]) == 2
    assert "give --seed S (one run) or --seeds LIST" in capsys.readouterr().err
    assert main(["reproduce", "p1-fig4", "--quick", "--seeds", "0-x", "--out", str(tmp_path)]) == 2
    assert "--seeds '0-x': '0-x' is not a seed" in capsys.readouterr().err
    assert main(["reproduce", "p5-tables", "--status", "--seeds", "0,1", "--plot", "f.png", "--out", str(tmp_path)]) == 2
    assert "--plot draws one seed's cells" in capsys.readouterr().err
    assert main(["reproduce", "p5-tables", "--quick", "--status", "--seeds", "0,1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("does not exist (yet)") == 2 and "seed 1:" in out and str(tmp_path / "seed-1") in out
