"""The algorithm registry's shared invariants, and the residual-learning family's own steps.

Registry-driven tests run over every entry of ``ALGORITHMS``, so a newly registered algorithm is
covered by: ideal device = digital SGD (up to a stated factor), checkpoint round trip, seeded
determinism, hyper-parameter validation and a run through ``analogtrain.train.train``.
Options an algorithm needs on a symmetric device come from its ``ideal_options`` (steps.py).
"""

import io
import json

import numpy as np
import pytest
from conftest import assert_same_state, run_full_and_interrupted
import torch

from analogtrain import checkpoint
from analogtrain import train as train_mod
from analogtrain.algorithms import ALGORITHMS, make_algorithm, steps
from analogtrain.algorithms.zero_shift import program_reference, zero_shift
from analogtrain.config import build_config
from analogtrain.devices import SoftBounds, make_device
from analogtrain.errors import ConfigError
from analogtrain.tile import AnalogTile, TileConfig

NAMES = sorted(ALGORITHMS)
OUT, IN = 3, 8


def _regression(name, options, seed=0, steps_=400, lr=0.1, noise=0.1, config=None):
    """Linear regression y = W* x + noise, batch 10, loss 0.5 |Wx - y|^2 (mean over the batch).

    Returns the mean loss of the last 100 steps and the first loss.
    """
    cfg = config or TileConfig.perfect(make_device("ideal"), mode="expected")
    g = torch.Generator().manual_seed(1234 + seed)
    w_star = 0.5 * torch.randn(OUT, IN, generator=g, dtype=torch.float64)
    alg = make_algorithm(name, OUT, IN, cfg, seed, dtype=torch.float64, **options)
    alg.program(torch.zeros(OUT, IN))
    losses = []
    for _ in range(steps_):
        x = torch.randn(10, IN, generator=g, dtype=torch.float64)
        y = x @ w_star.T + noise * torch.randn(10, OUT, generator=g, dtype=torch.float64)
        r = alg.forward(x) - y
        losses.append(0.5 * r.square().sum(1).mean().item())
        alg.step(x, r / 10, lr)
    return float(np.mean(losses[-100:])), losses[0]


@pytest.mark.parametrize("name", NAMES)
def test_ideal_device_converges_like_digital_sgd(name):
    digital, _ = _regression("digital-sgd", {})
    final, first = _regression(name, getattr(ALGORITHMS[name], "ideal_options", {}))
    assert first > 50 * digital  # the problem is not trivially solved
    assert final <= 1.2 * digital, f"{name}: final loss {final:.4g} vs digital SGD {digital:.4g}"


def _batches(n, seed=7):
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(5, IN, generator=g), 0.3 * torch.randn(5, OUT, generator=g)) for _ in range(n)]


def _noisy(name, seed=0):
    """Default (noisy, stochastic-update) tile, every option that adds state switched on."""
    opts = {}
    if "gamma" in getattr(ALGORITHMS[name], "OPTIONS", {}):
        opts = {"gamma": 0.2, "n_columns": 3}
    alg = make_algorithm(name, OUT, IN, TileConfig(), seed, **opts)
    alg.program(0.1 * torch.ones(OUT, IN))
    return alg


def _snapshot(alg):
    buf = io.BytesIO()
    torch.save(alg.state_dict(), buf)
    return buf.getvalue()


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_continues_bit_for_bit(name):
    data = _batches(8)
    a = _noisy(name)
    for x, d in data[:4]:
        a.step(x, d, 0.5)
    saved = torch.load(io.BytesIO(_snapshot(a)), weights_only=False)
    for x, d in data[4:]:
        a.step(x, d, 0.5)
    b = _noisy(name, seed=99)  # different arrays and generators, all overwritten by the load
    b.load_state_dict(saved)
    for x, d in data[4:]:
        b.step(x, d, 0.5)
    assert torch.equal(a.weight, b.weight)
    assert torch.equal(a.forward(data[0][0]), b.forward(data[0][0]))  # read noise generators too
    assert a.pulse_count == b.pulse_count
    assert _snapshot(a) == _snapshot(b)


def test_a_state_written_under_other_options_is_refused_by_name():
    cfg = TileConfig(device=make_device("soft-bounds"))  # noisy periphery: the two reads differ
    old = make_algorithm("erider", OUT, IN, cfg, seed=0, mixed_read="separate")
    state = old.state_dict()
    with pytest.raises(ConfigError, match="mixed_read: 'separate' there, 'summed' now"):
        make_algorithm("erider", OUT, IN, cfg, seed=0).load_state_dict(state)
    del state["options"]  # a state from before options were saved is taken as it is
    make_algorithm("erider", OUT, IN, cfg, seed=0).load_state_dict(state)


@pytest.mark.parametrize("name", NAMES)
def test_seeded_runs_repeat_exactly(name):
    runs = []
    for _ in range(2):
        alg = _noisy(name, seed=5)
        for x, d in _batches(5):
            alg.step(x, d, 0.5)
        runs.append((alg.weight.clone(), alg.pulse_count, alg.forward(torch.ones(2, IN))))
    assert torch.equal(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]
    assert torch.equal(runs[0][2], runs[1][2])
    other = _noisy(name, seed=6)  # another seed: other pulse trains and/or read noise
    for x, d in _batches(5):
        other.step(x, d, 0.5)
    assert not (torch.equal(other.weight, runs[0][0]) and torch.equal(other.forward(torch.ones(2, IN)), runs[0][2]))


def test_unknown_algorithm_and_option_name_the_field():
    with pytest.raises(ConfigError, match="unknown algorithm 'nope'"):
        make_algorithm("nope", OUT, IN)
    for name in NAMES:
        with pytest.raises(ConfigError, match="bogus"):
            make_algorithm(name, OUT, IN, bogus=1)


RESIDUAL = [n for n in NAMES if "gamma" in getattr(ALGORITHMS[n], "OPTIONS", {})]


@pytest.mark.parametrize("name", RESIDUAL)
@pytest.mark.parametrize("field,value", [("gamma", -0.1), ("transfer_every", 0), ("fast_lr", 0), ("transfer_lr", -1),
                                         ("n_columns", 0), ("n_columns", IN + 1), ("transfer_every", 1.5),
                                         ("scale_fast_lr", 1), ("calibration", "magic")])
def test_bad_hyper_parameters_name_the_field(name, field, value):
    with pytest.raises(ConfigError, match=field):
        make_algorithm(name, OUT, IN, **{field: value})


def test_residual_family_is_registered():
    assert {"tiki-taka", "ttv2", "rlv2", "mixed-precision"} <= set(RESIDUAL) | {"mixed-precision"}
    assert {"tiki-taka", "ttv2", "rlv2"} <= set(RESIDUAL)


def test_rlv2_filter_rate_above_one_is_refused():
    alg = make_algorithm("rlv2", OUT, IN, transfer_lr=2.0, scale_transfer_lr=True)
    alg.step(torch.ones(1, IN), torch.ones(1, OUT), 0.1)  # beta = 0.2: fine
    with pytest.raises(ConfigError, match="transfer_lr"):
        alg.step(torch.ones(1, IN), torch.ones(1, OUT), 1.0)  # beta = 2


# ---- through the training loop ------------------------------------------------------------------
TINY = dict(train_limit=60, test_limit=20, epochs=1, batch=10, compare_digital=False)


@pytest.mark.parametrize("name", NAMES)
def test_train_runs_with_each_algorithm(name, tmp_path):
    sets = {**TINY, "algorithm": name}
    if name == "tiki-taka":
        sets.update({"algorithm.gamma": 0.1, "algorithm.n_columns": 4})
    summary = train_mod.train(build_config(sets=sets), tmp_path, progress=False, log=lambda *a: None)
    row = summary["analog"]
    assert np.isfinite(row["train_loss"]) and 0 <= row["test_acc"] <= 100
    assert row["pulses"] > 0 or name == "digital-sgd"


RESUME_OPTIONS = {"rlv2": {"algorithm.n_columns": 50}, "tiki-taka": {"algorithm.gamma": 0.1}}


@pytest.mark.parametrize("name", NAMES)
def test_interrupt_then_resume_is_bit_identical(name, tmp_path, monkeypatch):
    cfg = build_config(sets={**TINY, "algorithm": name, **RESUME_OPTIONS.get(name, {})})
    full, part, interrupted_at = run_full_and_interrupted(cfg, tmp_path, monkeypatch, stop_after=3)
    assert interrupted_at == 4  # Ctrl-C after 4 of the 6 steps
    strip = lambda p: [{k: v for k, v in json.loads(l).items() if k != "seconds"}  # noqa: E731
                       for l in (p / "metrics.jsonl").read_text().splitlines()]
    assert strip(full) == strip(part)
    a = checkpoint.load(full / "checkpoint-analog.pt")["model"]
    b = checkpoint.load(part / "checkpoint-analog.pt")["model"]
    assert_same_state(a, b)  # arrays, H buffers, counters, generators


# ---- the shared steps ------------------------------------------------------------------------------
def _ideal_tile(dw_min=1e-3, shape=(OUT, IN)):
    return AnalogTile(*shape, TileConfig.perfect(make_device("ideal", dw_min=dw_min)), seed=0, dtype=torch.float64)


def test_rlv2_threshold_transfer_fires_at_most_one_pulse_and_subtracts_the_threshold():
    """papers.md §9.1 item 13 (P2 §5 Fix 2)."""
    dw = 1e-3
    cfg = TileConfig.perfect(make_device("ideal", dw_min=dw))
    alg = make_algorithm("rlv2", OUT, IN, cfg, 0, dtype=torch.float64, n_columns=IN, transfer_lr=0.5)
    g = torch.Generator().manual_seed(0)
    p = dw * torch.randn(OUT, IN, generator=g, dtype=torch.float64) * 6  # several thresholds' worth
    alg.program(torch.zeros(OUT, IN))
    alg.P.program(p)
    h0 = dw * 4 * torch.randn(OUT, IN, generator=g, dtype=torch.float64)
    alg.buffers["H"].copy_(h0)
    w0 = alg.W.weight.clone()
    cols = torch.arange(IN)
    alg.transfer(cols, 0.5)
    half = 0.5 * h0 + 0.5 * p  # H_{k+1/2} = (1 - beta) H + beta P
    moved = (alg.W.weight - w0) / dw  # the ideal device moves exactly dw_min per pulse
    assert torch.allclose(moved, moved.round(), atol=1e-9)
    assert moved.abs().max() <= 1 + 1e-9  # at most one pulse per element
    fired = half.abs() >= dw
    assert bool(fired.any()) and bool((half.abs() >= 2 * dw).any())  # some would have fired twice
    assert torch.equal(moved.round() != 0, fired)
    assert torch.allclose(moved.round(), torch.sign(half) * fired)
    expected_h = torch.where(fired, half - torch.sign(half) * dw, half)
    assert torch.allclose(alg.buffers["H"], expected_h, atol=1e-15)
    assert alg.W.pulse_count == int(fired.sum())


def test_threshold_pulses_tt_v2_rule_and_forget():
    h = torch.tensor([[2.7, -1.5, 0.4, -0.99, 3.0]], dtype=torch.float64)
    n, rest = steps.threshold_pulses(h, 1.0, max_pulses=0)
    assert n.tolist() == [[2, -1, 0, 0, 3]]
    assert torch.allclose(rest, torch.tensor([[0.7, -0.5, 0.4, -0.99, 0.0]], dtype=torch.float64))
    n, rest = steps.threshold_pulses(h, 1.0, max_pulses=2, forget=True, momentum=0.5)
    assert n.tolist() == [[2, -1, 0, 0, 2]]
    assert torch.allclose(rest, torch.tensor([[1.35, -0.75, 0.4, -0.99, 1.5]], dtype=torch.float64))


def test_mixed_precision_applies_whole_pulses_and_keeps_the_remainder():
    dw = 1e-3
    cfg = TileConfig.perfect(make_device("ideal", dw_min=dw))
    alg = make_algorithm("mixed-precision", 1, 4, cfg, 0, dtype=torch.float64)
    alg.program(torch.zeros(1, 4))
    grad = torch.tensor([[-2.7, 1.5, 0.4, -0.9]], dtype=torch.float64) * dw
    alg.step_gradient(grad, 1.0)  # wanted change +2.7, -1.5, -0.4, +0.9 dw_min
    assert torch.allclose(alg.weight / dw, torch.tensor([[2.0, -1.0, 0.0, 0.0]], dtype=torch.float64))
    assert torch.allclose(alg.buffers["chi"] / dw, torch.tensor([[0.7, -0.5, -0.4, 0.9]], dtype=torch.float64))
    assert alg.pulse_count == 3
    alg.step_gradient(grad, 1.0)  # remainders add up: 3.4, -2.0, -0.8, 1.8 -> 3, -2, 0, 1 pulses in total
    assert torch.allclose(alg.weight / dw, torch.tensor([[5.0, -3.0, 0.0, 1.0]], dtype=torch.float64))
    assert torch.allclose(alg.buffers["chi"] / dw, torch.tensor([[0.4, 0.0, -0.8, 0.8]], dtype=torch.float64),
                          atol=1e-9)


def test_transfer_columns_moves_only_those_columns_by_plus_lr_v():
    t = _ideal_tile()
    t.program(torch.zeros(OUT, IN))
    cols = torch.tensor([6, 7, 0])  # a wrapped cyclic window
    v = torch.arange(OUT * 3, dtype=torch.float64).reshape(OUT, 3) - 4
    steps.transfer_columns(t, cols, v, 0.1)
    want = torch.zeros(OUT, IN, dtype=torch.float64)
    want[:, cols] = 0.1 * v
    assert torch.allclose(t.weight, want)
    assert steps.next_columns(6, 3, IN)[0].tolist() == [6, 7, 0] and steps.next_columns(6, 3, IN)[1] == 1


def test_mixed_weight_and_reads_add_gamma_p():
    cfg = TileConfig.perfect(make_device("ideal"))
    alg = make_algorithm("tiki-taka", OUT, IN, cfg, 0, dtype=torch.float64, gamma=0.3)
    alg.program(torch.full((OUT, IN), 0.2))
    alg.P.program(torch.full((OUT, IN), -0.5))
    assert torch.allclose(alg.weight, torch.full((OUT, IN), 0.2 - 0.15, dtype=torch.float64))
    x = torch.randn(4, IN, dtype=torch.float64)
    assert torch.allclose(alg.forward(x), x @ alg.weight.T)
    d = torch.randn(4, OUT, dtype=torch.float64)
    assert torch.allclose(alg.backward(d), d @ alg.weight)


def _sp_device(dw_min=5e-3):
    # symmetric points spread per element (up/down bias with d2d variation), no cycle noise
    return SoftBounds(dw_min=dw_min, w_max=1.0, w_min=-1.0, up_down=0.15, up_down_dtod=0.1, dw_min_dtod=0.2,
                      w_max_dtod=0.1, w_min_dtod=0.1)


@pytest.mark.parametrize("mode", ["cyclic", "random"])
def test_zero_shift_finds_the_symmetric_point_and_counts_its_pulses(mode):
    dev = _sp_device()
    t = AnalogTile(6, 6, TileConfig.perfect(dev), seed=3, dtype=torch.float64)
    t.program(torch.zeros(6, 6))
    sp = t.symmetric_point()
    assert float((sp - t.conductance).abs().max()) > 50 * dev.dw_min  # far from it at the start
    est, sent = zero_shift(t, 2000, mode=mode, generator=torch.Generator().manual_seed(1))
    assert sent == 2000 * 36 == t.pulse_count
    err = (est - sp).abs() / dev.dw_min
    if mode == "cyclic":
        assert float(err.max()) <= 3  # a +- cycle around the point (P5 Thm C.3)
    else:  # a random walk with restoring force: std ~ sqrt(dw_min / (2 mu))
        assert float(err.square().mean().sqrt()) <= 3 * (1 / (2 * dev.dw_min)) ** 0.5
    program_reference(t, est)
    assert torch.allclose(t.weight, torch.zeros(6, 6, dtype=torch.float64))  # reads zero at the estimate


def test_calibration_option_zero_shifts_the_fast_array():
    dev = make_device("soft-bounds", dw_min=5e-3, w_max=1.0, w_min=-1.0, up_down=0.3)  # SP = 0.3
    cfg = TileConfig.perfect(dev)
    alg = make_algorithm("tiki-taka", OUT, IN, cfg, 0, dtype=torch.float64, calibration="zero-shift",
                         calibration_pulses=2000, calibration_mode="cyclic")
    assert alg.P.pulse_count == 2000 * OUT * IN
    assert torch.allclose(alg.P.reference, torch.full((OUT, IN), 0.3, dtype=torch.float64), atol=3 * dev.dw_min)
    alg.program(torch.zeros(OUT, IN))
    assert torch.allclose(alg.P.weight, torch.zeros(OUT, IN, dtype=torch.float64))
    assert torch.allclose(alg.P.conductance, alg.P.reference)


@pytest.mark.parametrize("name", ["p1-tt", "p2-fig2", "p2-cor1"])
def test_residual_toy_quick_runs_pass_and_write_result_and_png(name, tmp_path):
    import json

    from analogtrain.experiments import EXPERIMENTS, run_experiment

    assert name in EXPERIMENTS
    res = run_experiment(name, quick=True, seed=0, out=tmp_path)
    assert res["passed"], [c["name"] for c in res["checks"] if not c["passed"]]
    on_disk = json.loads((tmp_path / "result.json").read_text())
    assert on_disk["experiment"] == name and on_disk["quick"] is True and on_disk["passed"] is True
    assert len(on_disk["checks"]) >= 3 and on_disk["notes"]
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs and pngs == sorted(on_disk["figures"])


def test_gradient_forms_and_input_chopper_agree():
    g = torch.Generator().manual_seed(2)
    x, d = torch.randn(4, IN, generator=g, dtype=torch.float64), torch.randn(4, OUT, generator=g, dtype=torch.float64)
    signs = torch.tensor([1.0, -1.0] * (IN // 2), dtype=torch.float64)
    a, b = _ideal_tile(), _ideal_tile()
    for t in (a, b):
        t.program(torch.zeros(OUT, IN))
    steps.pulse_gradient(a, steps.Gradient.rank_one(x, d).scaled_inputs(signs).scaled(-1.0), 0.1)
    steps.pulse_gradient(b, steps.Gradient.dense(d.T @ x).scaled_inputs(signs).scaled(-1.0), 0.1)
    assert torch.allclose(a.weight, b.weight)
    assert torch.allclose(a.weight, 0.1 * (d.T @ x) * signs)  # P <- P - lr * (-(c * grad))


def test_per_array_configs_must_name_arrays():
    cfg = TileConfig.perfect(make_device("ideal"))
    alg = make_algorithm("tiki-taka", OUT, IN, cfg, configs={"P": TileConfig.perfect(make_device("soft-bounds"))})
    assert alg.P.device.name == "soft-bounds" and alg.W.device.name == "ideal"
    with pytest.raises(ConfigError, match="Q"):
        make_algorithm("tiki-taka", OUT, IN, cfg, configs={"Q": cfg})
