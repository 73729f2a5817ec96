"""Configuration, the training loop, checkpoints, resume, interrupts and divergence."""

import dataclasses
import json

import pytest
from conftest import assert_same_state, run_full_and_interrupted
import torch

from analogtrain import checkpoint
from analogtrain import train as train_mod
from analogtrain.cli import main
from analogtrain.config import TrainConfig, build_config
from analogtrain.errors import ConfigError
from analogtrain.train import train

TINY = dict(train_limit=120, test_limit=50, epochs=2, batch=10, device="softbounds-reference")


def tiny(**kw):
    return build_config(sets={**TINY, **kw})


def test_config_file_and_overrides(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text('model = "lenet5"\nlr = 0.1\n[device_params]\nw_max = 0.7\n[update]\nmode = "expected"\n')
    cfg = build_config(f, {"lr": 0.2, "device.w_min": -0.7, "update.bl": 15, "analog_layers": "a,b"})
    assert cfg.model == "lenet5" and cfg.lr == 0.2
    assert cfg.device_params == {"w_max": 0.7, "w_min": -0.7}
    assert cfg.update == {"mode": "expected", "bl": 15}
    assert cfg.analog_layers == ["a", "b"]
    assert build_config().as_dict() == TrainConfig().as_dict()


@pytest.mark.parametrize(
    "sets,field",
    [({"foo": 1}, "foo"), ({"lr": -1}, "lr"), ({"lr": "abc"}, "lr"), ({"batch": 0}, "batch"),
     ({"schedule": "cosine"}, "schedule"), ({"epochs": 1.5}, "epochs"), ({"bogus.x": 1}, "bogus"),
     ({"compare_digital": 3}, "compare_digital")],
)
def test_bad_config_values_name_the_field(sets, field):
    with pytest.raises(ConfigError, match=field):
        build_config(sets=sets)


def test_bad_device_or_update_option_names_it(tmp_path):
    with pytest.raises(ConfigError, match="w_maxx"):
        train_mod.train(tiny(**{"device.w_maxx": 1}), tmp_path, progress=False, log=lambda *a: None)
    with pytest.raises(ConfigError, match="modee"):
        train_mod.train(tiny(**{"update.modee": 1}), tmp_path, progress=False, log=lambda *a: None)


def test_train_writes_metrics_config_checkpoints_and_plot(tmp_path):
    summary = train_mod.train(tiny(), tmp_path, progress=False, log=lambda *a: None)
    assert not summary["interrupted"]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["run"], r["epoch"]) for r in rows] == [("analog", 1), ("analog", 2), ("digital", 1), ("digital", 2)]
    assert rows[1]["pulses"] > rows[0]["pulses"] > 0 and rows[3]["pulses"] == 0
    assert (tmp_path / "metrics.csv").read_text().startswith("run,epoch,")
    assert build_config(tmp_path / "config.toml").as_dict() == tiny().as_dict()
    assert (tmp_path / "training.png").stat().st_size > 1000
    for tag in ("analog", "digital"):
        assert checkpoint.load(tmp_path / f"checkpoint-{tag}.pt")["epoch"] == 2
    assert 0 <= summary["analog"]["test_acc"] <= 100


def test_interrupt_then_resume_is_bit_identical(tmp_path, monkeypatch):
    full, part, interrupted_at = run_full_and_interrupted(tiny(epochs=3), tmp_path, monkeypatch, stop_after=17)
    assert interrupted_at == 6  # stopped after step 18 = epoch 2, batch 6 (12 batches per epoch)

    assert (full / "metrics.jsonl").read_text() != ""
    strip = lambda text: [{k: v for k, v in json.loads(l).items() if k != "seconds"} for l in text.splitlines()]  # noqa
    assert strip((full / "metrics.jsonl").read_text()) == strip((part / "metrics.jsonl").read_text())
    a, b = (checkpoint.load(out / "checkpoint-analog.pt")["model"] for out in (full, part))
    assert_same_state(a, b)  # extra states (conductances, device samples, generators) included


def test_interrupted_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    checkpoint.save({"epoch": 1}, path)

    def crash(*a):
        raise KeyboardInterrupt  # the process dies between writing and renaming

    monkeypatch.setattr(checkpoint.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save({"epoch": 2, "big": torch.zeros(1000)}, path)
    monkeypatch.undo()
    assert checkpoint.load(path) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]  # no torn temp file left behind


def test_nan_loss_stops_with_message_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    cfg = tiny(epochs=3, compare_digital=False)
    real_nll = train_mod.F.nll_loss
    calls = {"n": 0}

    def nll(out, y, **kw):
        calls["n"] += 1
        loss = real_nll(out, y, **kw)
        return loss * float("nan") if calls["n"] == 20 else loss  # step 20 = epoch 2, batch 8

    monkeypatch.setattr(train_mod.F, "nll_loss", nll)
    with pytest.raises(train_mod.TrainingDiverged, match="epoch 2.*the last good checkpoint is"):
        train_mod.train(cfg, tmp_path, progress=False, log=lambda *a: None)
    assert checkpoint.load(tmp_path / "checkpoint-analog.pt")["epoch"] == 1
    calls["n"] = 15  # the 5th step of a fresh run: nothing was saved yet, and the message says so
    with pytest.raises(train_mod.TrainingDiverged, match="epoch 1, batch 5; no checkpoint had been written yet"):
        train_mod.train(cfg, tmp_path / "fresh", progress=False, log=lambda *a: None)


def test_cli_train_reports_accuracy_and_rejects_bad_keys(tmp_path, capsys):
    args = ["train", "--out", str(tmp_path), "--no-progress"]
    for k, v in TINY.items():
        args += ["--set", f"{k}={v}"]
    assert main(args + ["--set", "epochs=1"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy: analog-sgd" in out and "digital-sgd" in out
    assert main(["train", "--set", "foo=1"]) == 2
    assert "foo" in capsys.readouterr().err
    assert main(["train", "--set", "lr=abc"]) == 2
    assert "lr" in capsys.readouterr().err
    assert main(["train", "--threads", "0"]) == 2
    assert "--threads = 0 must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("sets, message", [
    (["algorithm=nope"], "algorithm = 'nope' is not one of"),
    (["algorithm=tiki-taka", "algorithm_params.gamma=-1"], "gamma = -1 is outside the allowed range"),
    (["device_params.n_states=0"], "n_states = 0 is outside the allowed range"),
])
def test_cli_train_refuses_bad_algorithm_or_device_before_starting(tmp_path, capsys, sets, message):
    """The error comes alone: no 'training ...' banner before it and no run folder left behind."""
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), *(a for s in sets for a in ("--set", s))]) == 2
    printed = capsys.readouterr()
    assert message in printed.err
    assert "training" not in printed.out
    assert not out.exists()


def test_cli_threads_caps_torch_and_numba(monkeypatch):
    import numba

    calls = []
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(("torch", n)))
    monkeypatch.setattr(numba, "set_num_threads", lambda n: calls.append(("numba", n)))
    assert main(["reproduce", "--list", "--threads", "1"]) == 0
    assert calls == [("torch", 1), ("numba", 1)]


@pytest.mark.parametrize("argv, threads", [
    (["train", "--threads", "1"], "1"), (["reproduce", "p1-fig1", "--threads=2"], "2"),
    (["train", "--threads", "0"], None), (["train", "--threads", "x"], None), (["train"], None),
    (["train", "--threads"], None),
])
def test_threads_flag_is_read_before_torch_loads(argv, threads):
    from analogtrain.__main__ import threads_in

    assert threads_in(argv) == threads


def test_threads_flag_sizes_the_thread_pools_from_the_start():
    """``--threads 1`` reaches the environment before torch and numba start, so neither starts a second
    thread (a cap applied later leaves spinning workers that slow a loaded machine)."""
    import os
    import subprocess
    import sys

    code = ("import sys; from analogtrain.__main__ import run; rc = run(['reproduce', '--list', '--threads', '1']); "
            "import os, numba, torch; print(rc, os.environ['OMP_NUM_THREADS'], numba.config.NUMBA_NUM_THREADS, "
            "torch.get_num_threads())")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.splitlines()[-1] == "0 1 1 1"


def test_zero_shift_calibration_runs_before_training(tmp_path):
    """``calibration=zero-shift`` calibrates every layer's array first and counts its pulses."""
    cfg = tiny(epochs=1, compare_digital=False, calibration="zero-shift", calibration_pulses=20)
    summary = train_mod.train(cfg, tmp_path, progress=False, log=lambda *a: None)
    sizes = 784 * 256 + 256 * 128 + 128 * 10
    # 20 calibration pulses per element (4.7 M) on top of training's (about 0.6 M in this tiny run)
    assert summary["analog"]["pulses"] > 20 * sizes
    with pytest.raises(ConfigError, match="calibration"):
        train_mod.train(tiny(algorithm="digital-sgd", calibration="zero-shift"), tmp_path / "d",
                        progress=False, log=lambda *a: None)


def test_resume_refuses_checkpoints_of_another_configuration_but_may_extend_epochs(tmp_path):
    cfg = tiny(epochs=1)
    first = train(cfg, tmp_path, progress=False, log=lambda *a: None)
    with pytest.raises(ConfigError, match=r"cannot resume .*lr: 0\.1 there, 0\.3 now"):
        train(dataclasses.replace(cfg, lr=0.3), tmp_path, resume=True, progress=False, log=lambda *a: None)
    assert build_config(tmp_path / "config.toml").lr == cfg.lr  # the refused run left the folder alone
    longer = train(dataclasses.replace(cfg, epochs=2), tmp_path, resume=True, progress=False, log=lambda *a: None)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if r["run"] == "analog"] == [1, 2]
    assert rows[0]["test_acc"] == first["analog"]["test_acc"] and longer["analog"]["epoch"] == 2


def test_cli_resume_reads_the_runs_own_config(tmp_path, capsys):
    """``train --out DIR --resume`` continues DIR's run with its saved settings (here a non-default lr); a
    --set may still extend it, and a --set that changes a non-resumable field is refused by name."""
    sets = [a for k, v in {**TINY, "lr": 0.2, "epochs": 1}.items() for a in ("--set", f"{k}={v}")]
    assert main(["train", "--out", str(tmp_path), "--no-progress", *sets]) == 0
    assert main(["train", "--out", str(tmp_path), "--no-progress", "--resume", "--set", "epochs=2"]) == 0
    saved = build_config(tmp_path / "config.toml")
    assert (saved.lr, saved.epochs, saved.train_limit) == (0.2, 2, TINY["train_limit"])
    capsys.readouterr()
    assert main(["train", "--out", str(tmp_path), "--resume", "--set", "lr=0.3"]) == 2
    assert "lr: 0.2 there, 0.3 now" in capsys.readouterr().err


def test_out_linked_to_a_missing_folder_is_refused_by_name(tmp_path):
    link = tmp_path / "cell"
    link.symlink_to(tmp_path / "gone")
    for out in (link, link / "deeper"):
        with pytest.raises(ConfigError, match=r"cell is a link to a missing folder \(.*gone\)"):
            train(tiny(epochs=1), out, resume=True, progress=False, log=lambda *a: None)
    assert main(["reproduce", "p5-tables", "--quick", "--out", str(link)]) == 2  # a message, no traceback


def _grid_args(tmp_path, *extra):
    args = ["train", "--out", str(tmp_path), "--set", "compare_digital=false"]
    for k, v in {**TINY, "epochs": 1}.items():
        args += ["--set", f"{k}={v}"]
    return args + list(extra)


def test_cli_sweep_trains_every_combination_and_seed_and_reports_mean_and_std(tmp_path, capsys):
    args = _grid_args(tmp_path, "--sweep", "algorithm=analog-sgd,tiki-taka", "--sweep", "lr=0.05,0.2",
                      "--seeds", "0-1")
    assert main(args) == 0
    out = capsys.readouterr().out
    grid = json.loads((tmp_path / "grid.json").read_text())
    assert grid["seeds"] == [0, 1] and grid["sweep"] == {"algorithm": ["analog-sgd", "tiki-taka"], "lr": [0.05, 0.2]}
    assert len(grid["runs"]) == 4 and (tmp_path / "cells.png").stat().st_size > 10_000
    for name, run in grid["runs"].items():
        accs = []
        for seed in (0, 1):
            folder = tmp_path / f"seed={seed}_{name.replace(' ', '-')}"
            cfg = build_config(folder / "config.toml")
            assert (cfg.algorithm, cfg.lr, cfg.seed) == (run["settings"]["algorithm"], run["settings"]["lr"], seed)
            last = json.loads((folder / "metrics.jsonl").read_text().splitlines()[-1])
            assert run["test_acc"][str(seed)] == last["test_acc"] and run["pulses"][str(seed)] == last["pulses"] > 0
            accs.append(last["test_acc"])
        assert run["mean"] == pytest.approx(sum(accs) / 2) and run["std"] == pytest.approx(abs(accs[0] - accs[1]) / 2**0.5)
        assert (run["min"], run["max"], run["n"]) == (min(accs), max(accs), 2)
        assert f"{name}  " in out and f"{run['mean']:6.2f} +- {run['std']:5.2f}" in out
    assert len({tuple(r["test_acc"].values()) for r in grid["runs"].values()}) > 1  # the settings reach the runs
    # --status lists every run; --resume reads the finished runs back instead of training them again
    assert main(args + ["--status"]) == 0
    assert "8 of 8 cell(s) done" in capsys.readouterr().out
    before = (tmp_path / "seed=1_algorithm=tiki-taka-lr=0.2" / "metrics.jsonl").read_text()
    assert main(args + ["--resume"]) == 0
    assert (tmp_path / "seed=1_algorithm=tiki-taka-lr=0.2" / "metrics.jsonl").read_text() == before
    assert json.loads((tmp_path / "grid.json").read_text()) == grid


def test_cli_sweep_refuses_bad_input_before_training_anything(tmp_path, capsys):
    for extra, message in [(["--sweep", "seed=1,2"], "give the seeds with --seeds"),
                           (["--sweep", "lr"], "--sweep expects KEY=V1,V2"),
                           (["--sweep", "lr=0.1,0.2", "--sweep", "lr=0.3"], "lr is already set"),
                           (["--sweep", "batch=4,8"], "batch is already set"),
                           (["--sweep", "algorithm=agad,nope"], "algorithm = 'nope' is not one of"),
                           (["--sweep", "model=fcn,foo"], "unknown model 'foo'"),
                           (["--seeds", "0-1", "--set", "seed=3"], "--set seed=S (one seed) or --seeds LIST"),
                           (["--seeds", "x"], "'x' is not a seed")]:
        assert main(_grid_args(tmp_path, *extra)) == 2
        assert message in capsys.readouterr().err, extra
    assert not any(tmp_path.iterdir())  # nothing was trained
    assert main(["train", "--status"]) == 2
    assert "--status goes with --sweep or --seeds" in capsys.readouterr().err


@pytest.fixture
def bad_inputs(tmp_path):
    (tmp_path / "file").write_text("")
    (tmp_path / "string.toml").write_text('[periphery_params]\nout_noise = "0.1"\n')
    return tmp_path


SHORT = ["--set", "epochs=1", "--set", "train_limit=40", "--set", "test_limit=20", "--set", "compare_digital=false",
         "--no-progress"]


@pytest.mark.parametrize("argv, message", [
    (["train", "{d}/string.toml", *SHORT], "out_noise must be a number, got '0.1'"),
    (["train", *SHORT, "--set", "device.w_max=abc"], "w_max must be a number, got 'abc'"),
    (["train", *SHORT, "--out", "{d}/file"], "is a file, not a folder"),
    (["train", "{d}", *SHORT], "cannot be read"),
    (["train", *SHORT, "--set", "seed=99999999999999999999"], "seed = 1e+20 is outside the allowed range"),
    (["train", *SHORT, "--set", "lr=inf"], "lr must be finite"),
    (["train", *SHORT, "--set", "lr=1e300"], "lr = 1e+300 is outside the allowed range"),
    (["train", *SHORT, "--set", "device.dw_min_dtod=inf"], "dw_min_dtod must be finite"),
    (["train", *SHORT, "--set", "update.update_management=maybe"], "update_management must be true or false"),
    (["train", *SHORT, "--set", "update.bl=2.5"], "bl must be a whole number"),
    (["train", *SHORT, "--set", "algorithm=multi-tile", "--set", "algorithm.n_tiles=1000000000"], "n_tiles = 1e+09"),
    (["train", *SHORT, "--set", "algorithm=tiki-taka", "--set", "algorithm.gamma=inf"], "gamma must be finite"),
    (["train", *SHORT, "--seeds", "0-3000000"], "at most 1000 at once"),
    (["train", *SHORT, "--set", "weight_scaling_columnwise=true"], "needs weight_scaling_omega > 0"),
    (["train", *SHORT, "--set", "weight_scaling_omega=1e-30"], "weight_scaling_omega = 1e-30 is outside"),
    (["train", *SHORT, "--set", "reference.std=1e300"], "reference.std = 1e+300 is outside the allowed range"),
    (["train", *SHORT, "--set", "algorithm=erider", "--set", "algorithm.in_chop_prob=0"], "use algorithm rider"),
    (["train", *SHORT, "--seeds", "0", "--jobs", "0"], "--jobs = 0"),
    (["train", *SHORT, "--set", "model=resnet20"], "model resnet20 takes 3x32x32 images, but dataset mnist-subset"),
    (["train", *SHORT, "--set", "calibration=zero-shift", "--set", "calibration_pulses=99999999999"],
     "calibration_pulses = 1e+11 is outside"),
    (["device", "show", "piecewise", "--set", "grid=-1,-0.5,nan,0.5,1"], "grid must hold finite numbers"),
    (["device", "show", "p1-mnist", "--out", "{d}/x.xyz"], "--out's file type = '.xyz' is not one of"),
    (["device", "show", "p1-mnist", "--set", "n_states=0.5"], "n_states = 0.5 is outside the allowed range"),
    (["cost", "--tiles", "1000000000"], "tiles = 1e+09 is outside the allowed range [1, 1000]"),
    (["cost", "--set", "pulses=yes"], "pulses must be a number, got True"),
    (["reproduce", "p1-fig1", "--quick", "--seed", "-1"], "--seed = -1 is outside"),
    (["reproduce", "p1-fig1", "--quick", "--out", "{d}/file"], "is a file, not a folder"),
])
def test_bad_input_is_refused_by_name_before_any_work(bad_inputs, capsys, argv, message):
    """Each of these once ended in a traceback, a hang, a silent NaN or a silently accepted value."""
    argv = [a.format(d=bad_inputs) for a in argv]
    if "--out" not in argv and argv[0] != "cost" and argv[:2] != ["device", "show"]:
        argv += ["--out", str(bad_inputs / "run")]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_toml_device_table_is_the_same_as_dotted_keys(tmp_path):
    (tmp_path / "t.toml").write_text('device = "soft-bounds"\n[device_params]\nw_max = 0.5\n')
    (tmp_path / "u.toml").write_text('[device]\nw_max = 0.5\n[periphery]\nout_noise = 0.0\n')
    assert build_config(tmp_path / "t.toml").device_params == {"w_max": 0.5}
    table = build_config(tmp_path / "u.toml")
    assert (table.device_params, table.periphery_params) == ({"w_max": 0.5}, {"out_noise": 0.0})


def test_a_toml_table_names_its_device_or_algorithm_with_name(tmp_path):
    # TOML refuses `algorithm = "agad"` beside an [algorithm] table, so the table carries the name
    (tmp_path / "t.toml").write_text('[algorithm]\nname = "agad"\nin_chop_prob = 0.05\n'
                                     '[device]\nname = "soft-bounds"\nw_max = 0.5\n')
    cfg = build_config(tmp_path / "t.toml")
    assert (cfg.algorithm, cfg.algorithm_params) == ("agad", {"in_chop_prob": 0.05})
    assert (cfg.device, cfg.device_params) == ("soft-bounds", {"w_max": 0.5})
