"""Specific behaviour of c-TTv2, AGAD, RIDER / E-RIDER and multi-tile residual learning.

(The registry-driven invariants -- ideal device, checkpoints, determinism, option validation, the
training loop -- run for these algorithms in ``test_algorithms.py``.)
"""

import math

import numpy as np
import pytest
import torch

from analogtrain.algorithms import make_algorithm, steps
from analogtrain.errors import ConfigError
from analogtrain.devices import SoftBounds, make_device
from analogtrain.tile import TileConfig

OUT, IN = 3, 8
F64 = torch.float64


def _ideal(dw_min=1e-3):
    return TileConfig.perfect(make_device("ideal", dw_min=dw_min))


def _regress(alg, steps_=600, lr=0.1, noise=0.5, seed=0, scale=0.3, offset=None):
    """Linear regression toy; returns the mean squared weight error of the last 100 steps."""
    g = torch.Generator().manual_seed(1234 + seed)
    w_star = scale * torch.randn(OUT, IN, generator=g, dtype=F64)
    alg.program(torch.zeros(OUT, IN))
    if offset is not None:
        alg.P.reference = alg.P.reference + offset  # a reference error: P reads conductance - (SP + offset)
    errs = []
    for _ in range(steps_):
        x = torch.randn(10, IN, generator=g, dtype=F64)
        y = x @ w_star.T + noise * torch.randn(10, OUT, generator=g, dtype=F64)
        r = alg.forward(x) - y
        errs.append((alg.weight - w_star).square().mean().item())
        alg.step(x, r / 10, lr)
    return float(np.mean(errs[-100:]))


# =============================================================================================
# the chopper step
# =============================================================================================
def test_chop_period_and_flips():
    assert steps.chop_period(0.1) == 10 and steps.chop_period(0.5) == 2 and steps.chop_period(0.9) == 2
    assert steps.chop_period(1 / 3) == 3 and steps.chop_period(0.0) == 0
    reads = torch.arange(1, 21, dtype=F64)
    flips = steps.chopper_flips(reads, 0.25, False, torch.Generator())
    assert flips.nonzero().flatten().tolist() == [3, 7, 11, 15, 19]  # reads 4, 8, 12, ...
    assert not steps.chopper_flips(reads, 0.0, True, torch.Generator()).any()
    many = steps.chopper_flips(torch.ones(20000, dtype=F64), 0.1, True, torch.Generator().manual_seed(0))
    assert abs(many.double().mean().item() - 0.1) < 0.01


# =============================================================================================
# c-TTv2
# =============================================================================================
@pytest.mark.parametrize("random", [False, True])
def test_cttv2_choppers_flip_at_the_configured_rate(random):
    alg = make_algorithm("cttv2", OUT, IN, _ideal(), 0, dtype=F64, n_columns=2, in_chop_prob=0.2,
                         in_chop_random=random)
    alg.program(torch.zeros(OUT, IN))
    history = []
    for _ in range(400):  # every column read 100 times
        alg.step_gradient(torch.zeros(OUT, IN), 0.1)
        history.append(alg.buffers["chop"].clone())
    h = torch.stack(history)
    assert torch.equal(alg.buffers["reads"], torch.full((IN,), 100.0, dtype=F64))
    n_flips = (h[1:] != h[:-1]).sum().item() + (h[0] != 1).sum().item()
    if random:
        assert abs(n_flips / (IN * 100) - 0.2) < 0.05
    else:  # period max(ceil(1/0.2), 2) = 5 reads: exactly 20 flips per column
        assert n_flips == IN * 20
        # column 0 is read at steps 0, 4, 8, ...; its 5th read (step 16) flips it
        assert h[15, 0] == 1 and h[16, 0] == -1 and h[35, 0] == -1 and h[36, 0] == 1


def test_cttv2_update_sees_chopped_inputs_and_read_is_sign_corrected():
    alg = make_algorithm("cttv2", OUT, IN, _ideal(), 0, dtype=F64, n_columns=IN, in_chop_prob=0.0,
                         threshold_scale=1e6)
    alg.program(torch.zeros(OUT, IN))
    c = torch.tensor([1.0, -1.0] * (IN // 2), dtype=F64)
    alg.buffers["chop"].copy_(c)
    grad = torch.randn(OUT, IN, generator=torch.Generator().manual_seed(0), dtype=F64)
    alg.step_gradient(grad, 0.1)  # alpha = beta = 0.1
    assert torch.allclose(alg.P.weight, -0.1 * grad * c)  # P <- P - alpha grad diag(c)
    assert torch.allclose(alg.buffers["H"], 0.1 * (-0.1 * grad))  # H <- H + beta c (P - R): sign-corrected


def test_cttv2_sign_corrected_read_cancels_a_constant_reference_offset():
    """A reference error R = SP + 0.003 with no gradient: TT-v2's buffer integrates the offset and W drifts;
    with a period-2 chopper c-TTv2's corrected reads alternate in sign and W does not move."""
    moved = {}
    for name, extra in (("ttv2", {}), ("cttv2", {"in_chop_prob": 0.5, "in_chop_random": False})):
        alg = make_algorithm(name, OUT, IN, _ideal(), 0, dtype=F64, n_columns=IN, transfer_lr=1.0, **extra)
        alg.program(torch.zeros(OUT, IN))
        alg.P.reference = alg.P.reference + 0.003
        for _ in range(100):
            alg.step_gradient(torch.zeros(OUT, IN), 0.1)  # beta * read = -3e-4 per transfer
        moved[name] = float(alg.W.weight.abs().max())
        if name == "cttv2":
            assert float(alg.buffers["H"].abs().max()) <= 3e-4 + 1e-12
    assert moved["ttv2"] >= 0.025 and moved["cttv2"] == 0.0


# =============================================================================================
# AGAD
# =============================================================================================
def test_agad_reference_is_the_running_mean_at_the_flip():
    alg = make_algorithm("agad", OUT, IN, _ideal(), 0, dtype=F64, n_columns=IN, in_chop_prob=0.25,
                         in_chop_random=False, tail_weightening=2.0, threshold_scale=1e6)
    alg.program(torch.zeros(OUT, IN))
    assert alg.mean_rate == 0.5  # min(tail_weightening / period, 1) with period 4
    g = torch.Generator().manual_seed(3)
    mean = torch.zeros(OUT, IN, dtype=F64)
    ref = torch.zeros(OUT, IN, dtype=F64)
    h = torch.zeros(OUT, IN, dtype=F64)
    c = torch.ones(IN, dtype=F64)
    for k in range(1, 13):
        a = torch.randn(OUT, IN, generator=g, dtype=F64)
        alg.P.program(a)  # a reading we choose
        alg.transfer(torch.arange(IN), 0.1)
        mean = 0.5 * mean + 0.5 * a
        if k > 4:  # the first chopper period writes nothing
            h = h + 0.1 * c * (a - ref)
        if k % 4 == 0:
            ref, c = mean.clone(), -c
        assert torch.allclose(alg.buffers["p_mean"], mean)
        assert torch.allclose(alg.buffers["p_ref"], ref)
        assert torch.allclose(alg.buffers["H"], h)
        assert torch.equal(alg.buffers["chop"], c)
    assert alg.W.pulse_count == 0


def test_agad_tolerates_a_reference_offset_that_breaks_ttv2():
    """L1 (papers.md §8, §9.2 item 28): TT-v2 degrades with the reference offset, AGAD is invariant."""
    dev = SoftBounds(dw_min=1e-3, w_max=0.6, w_min=-0.6)
    cfg = TileConfig.perfect(dev)
    err = {}
    for name, extra in (("ttv2", {}), ("agad", {"in_chop_prob": 0.1})):
        for off in (0.0, 0.4):
            alg = make_algorithm(name, OUT, IN, cfg, 0, dtype=F64, n_columns=IN, max_pulses=0, **extra)
            err[name, off] = _regress(alg, offset=off)
    assert err["ttv2", 0.4] > 3 * err["ttv2", 0.0]
    assert abs(err["agad", 0.4] / err["agad", 0.0] - 1) < 0.05
    assert err["agad", 0.4] < err["ttv2", 0.4] / 3


# =============================================================================================
# RIDER / E-RIDER
# =============================================================================================
def test_rider_q_follows_the_moving_average_of_p_exactly():
    """P5 eq. 12 (theory form: whole P read every step): Q_{k+1} = (1 - eta) Q_k + eta P_{k+1};
    eq. 11b: W moves by beta (P_{k+1} - Q_k); the mixed weight is W + gamma (P - Q)."""
    p_dev = SoftBounds(dw_min=1e-3, w_max=1.0, w_min=-1.0, up_down=0.2)  # P: asymmetric, SP 0.2
    alg = make_algorithm("rider", OUT, IN, _ideal(), 0, dtype=F64, n_columns=IN, buffer=False, eta=0.3, gamma=0.1,
                         transfer_lr=0.5, configs={"P": TileConfig.perfect(p_dev)})
    alg.program(torch.zeros(OUT, IN))
    g = torch.Generator().manual_seed(0)
    q = torch.zeros(OUT, IN, dtype=F64)
    for _ in range(20):
        w, p_old = alg.W.weight.clone(), alg.P.weight.clone()
        assert torch.allclose(alg.weight, w + 0.1 * (p_old - q))
        alg.step_gradient(torch.randn(OUT, IN, generator=g, dtype=F64), 0.2)
        p_new = alg.P.weight
        assert not torch.allclose(p_new, p_old)
        assert torch.allclose(alg.W.weight, w + 0.1 * (p_new - q), atol=1e-12)  # beta = 0.5 * 0.2, W ideal
        q = 0.7 * q + 0.3 * p_new
        assert torch.allclose(alg.buffers["Q"], q, atol=1e-15)
    assert alg.counters["flips"] == 0 and bool((alg.buffers["chop"] == 1).all())  # RIDER: p = 0


@pytest.mark.parametrize("random", [False, True])
def test_erider_reprograms_its_analog_copy_only_when_a_chopper_flips(random):
    """Theory form (whole P read every step): eq. 18a/b and 12 with per-column choppers; periodic
    choppers flip together (eq. 17's scalar c_k), random ones independently."""
    p_dev = SoftBounds(dw_min=1e-3, w_max=1.0, w_min=-1.0, up_down=0.2)
    alg = make_algorithm("erider", OUT, IN, _ideal(), 0, dtype=F64, n_columns=IN, buffer=False, eta=0.2,
                         in_chop_prob=0.2, in_chop_random=random, transfer_lr=0.5,
                         configs={"P": TileConfig.perfect(p_dev)})
    alg.program(torch.zeros(OUT, IN))
    g = torch.Generator().manual_seed(1)
    for k in range(60):
        ref, q, c = alg.P.reference.clone(), alg.buffers["Q"].clone(), alg.buffers["chop"].clone()
        w, resid = alg.W.weight.clone(), alg.P.weight.clone()  # P - Q~
        assert torch.allclose(alg.weight, w + 0.1 * c * resid)  # W + gamma c (P - Q~), c per input column
        p_old = alg.P.conductance.clone()
        grad = torch.randn(OUT, IN, generator=g, dtype=F64)
        alg.step_gradient(grad, 0.2)
        q_new, p_next = alg.buffers["Q"], alg.P.conductance
        dev, prm = alg.P.device, alg.P.params  # 18a: P - alpha c grad F_p(P) - alpha |grad| G_p(P)
        want = p_old - 0.2 * c * grad * dev.F(p_old, prm) - 0.2 * grad.abs() * dev.G(p_old, prm)
        assert torch.allclose(p_next, want, atol=1e-12)
        flipped = alg.buffers["chop"] != c
        if not random:
            assert bool(flipped.all()) == ((k + 1) % 5 == 0) and bool(flipped.all() or not flipped.any())
        # Q~ <- Q_{k+1} on the flipped columns only; the others keep their copy
        assert torch.allclose(alg.P.reference[:, flipped], q_new[:, flipped])
        assert torch.equal(alg.P.reference[:, ~flipped], ref[:, ~flipped])
        assert torch.allclose(q_new, 0.8 * q + 0.2 * p_next)  # eq. 12 on the analog P_{k+1}
        assert torch.allclose(alg.W.weight, w + 0.1 * c * (p_next - ref), atol=1e-12)  # eq. 18b
    if not random:
        assert alg.counters["flips"] == 12 * IN and alg.counters["reprograms"] == 12
    else:
        assert 0.1 * 60 * IN <= alg.counters["flips"] <= 0.3 * 60 * IN


def test_two_stage_baseline_reads_p_against_the_zero_shifting_estimate():
    """P5 Alg. 4: rider with calibration = zero-shift and track = false: P reads against the estimate
    (its reference R0) and Q stays 0, i.e. P5's Q = W_sp estimate."""
    dev = SoftBounds(dw_min=5e-3, w_max=1.0, w_min=-1.0, up_down=0.3)  # SP 0.3
    alg = make_algorithm("rider", OUT, IN, TileConfig.perfect(dev), 0, dtype=F64, calibration="zero-shift",
                         calibration_pulses=2000, calibration_mode="cyclic", track=False, n_columns=IN)
    assert alg.calibration_pulses == 2000 * OUT * IN
    est = alg.buffers["R0"].clone()
    assert torch.allclose(est, torch.full((OUT, IN), 0.3, dtype=F64), atol=3 * dev.dw_min)
    assert torch.equal(alg.P.reference, est)
    alg.program(torch.zeros(OUT, IN))
    assert torch.allclose(alg.P.weight, torch.zeros(OUT, IN, dtype=F64))  # the residual P - Q reads zero
    assert torch.allclose(alg.P.conductance, est)
    for x, d in [(torch.rand(4, IN), torch.randn(4, OUT)) for _ in range(5)]:
        alg.step(x, d, 0.1)
    assert torch.equal(alg.buffers["Q"], torch.zeros(OUT, IN, dtype=F64))


# =============================================================================================
# multi-tile residual learning
# =============================================================================================
def test_multi_tile_composite_weight_is_the_geometric_sum():
    alg = make_algorithm("multi-tile", OUT, IN, _ideal(), 0, dtype=F64, n_tiles=4, gamma=0.3)
    g = torch.Generator().manual_seed(0)
    parts = [0.5 * torch.randn(OUT, IN, generator=g, dtype=F64) for _ in range(4)]
    for t, p in zip(alg.tile_list, parts):
        t.program(p)
    want = sum(0.3 ** n * p for n, p in enumerate(parts))
    assert torch.allclose(alg.weight, want)
    x = torch.randn(5, IN, generator=g, dtype=F64)
    assert torch.allclose(alg.forward(x), x @ want.T)
    d = torch.randn(5, OUT, generator=g, dtype=F64)
    assert torch.allclose(alg.backward(d), d @ want)
    alg.program(torch.full((OUT, IN), 0.2))
    assert torch.allclose(alg.weight, torch.full((OUT, IN), 0.2, dtype=F64))  # W^(0) = w, the rest 0


def test_multi_tile_counters_follow_the_multi_timescale_rule():
    alg = make_algorithm("multi-tile", OUT, IN, _ideal(), 0, dtype=F64, n_tiles=4, transfer_every=2,
                         transfer_every_growth=3, transfer_lr=0.1, transfer_lr_growth=1.2)
    assert alg.periods == (2, 12, 216) and alg.inner_loops == [18, 6, 2]  # T_1, T_2, T_3 (T_N = 2)
    assert np.allclose(alg.rates, [0.1728, 0.144, 0.12])  # out of W^(3), W^(2), W^(1): 0.1 * 1.2^source
    alg.program(torch.zeros(OUT, IN))
    g = torch.Generator().manual_seed(1)
    for t in range(1, 450):
        alg.step_gradient(torch.randn(OUT, IN, generator=g, dtype=F64), 0.1)
        T = alg.inner_loops
        for n in range(4):  # t_n = floor(t / prod_{n' > n} T_n')
            assert alg.counters[f"t{n}"] == t // math.prod(T[n:]), (t, n)
    assert alg.counters["t0"] == 2 and alg.counters["ptr0"] == 449 // 2 % IN and alg.counters["ptr2"] == 2
    lists = make_algorithm("multi-tile", OUT, IN, _ideal(), 0, n_tiles=3, transfer_every=[3, 2, 99],
                           transfer_lr=[0.2, 0.3])
    assert lists.periods == (3, 6) and lists.rates == (0.2, 0.3)
    # aihwkit's / P3's code's counting: the list is the global periods themselves
    glob = make_algorithm("multi-tile", OUT, IN, _ideal(), 0, n_tiles=4, transfer_every=2, transfer_every_growth=5,
                          global_periods=True)
    assert glob.periods == (2, 10, 50)
    x, d = torch.zeros(1, IN, dtype=torch.float32), torch.zeros(1, OUT, dtype=torch.float32)
    for _ in range(50):
        glob.step(x, d, 0.1)
    assert [glob.counters[f"ptr{i}"] for i in range(3)] == [25 % IN, 5 % IN, 1 % IN]  # 50/2, 50/10, 50/50 reads
    with pytest.raises(ConfigError, match="transfer_lr"):
        make_algorithm("multi-tile", OUT, IN, n_tiles=4, transfer_lr=[0.1, 0.2])
    with pytest.raises(ConfigError, match="transfer_every"):
        make_algorithm("multi-tile", OUT, IN, transfer_every=[2, 0])


def test_multi_tile_transfer_moves_one_column_of_the_finer_tile_into_the_coarser():
    alg = make_algorithm("multi-tile", OUT, IN, _ideal(), 0, dtype=F64, n_tiles=3, transfer_every=[1, 2],
                         transfer_lr=[0.5, 0.25])  # periods 1 and 2
    alg.program(torch.zeros(OUT, IN))
    g = torch.Generator().manual_seed(2)
    w1 = torch.randn(OUT, IN, generator=g, dtype=F64)
    alg.tile_list[1].program(w1)
    alg.step_gradient(torch.zeros(OUT, IN), 0.1)  # t = 1: W2 -> W1 only (column 0)
    assert alg.tile_list[0].weight.abs().max() == 0
    alg.step_gradient(torch.zeros(OUT, IN), 0.1)  # t = 2: W2 -> W1 (column 1), then W1 -> W0 (column 0)
    want = torch.zeros(OUT, IN, dtype=F64)
    want[:, 0] = 0.25 * w1[:, 0]
    assert torch.allclose(alg.tile_list[0].weight, want)


def test_multi_tile_warm_start_switches_tiles_on_loss_plateaus():
    alg = make_algorithm("multi-tile", OUT, IN, _ideal(), 0, dtype=F64, n_tiles=3, warm_start=True,
                         transfer_every=1, transfer_lr=1.0, transfer_lr_growth=1.0)
    alg.program(torch.zeros(OUT, IN))
    alg.tile_list[2].program(torch.full((OUT, IN), 0.1))
    alg.step_gradient(torch.zeros(OUT, IN), 0.1)  # k = 0: the gradient tile goes onto W^(0)
    assert alg.tile_list[0].weight[:, 0].tolist() == pytest.approx([0.1] * OUT)
    assert alg.tile_list[1].weight.abs().max() == 0
    for loss in (1.0, 0.9, 0.8):
        alg.observe_loss(loss)
    assert alg.counters["warm"] == 0
    alg.observe_loss(0.85)  # aggressive rule: an increase
    assert alg.counters["warm"] == 1
    alg.step_gradient(torch.zeros(OUT, IN), 0.1)  # now onto W^(1)
    assert alg.tile_list[1].weight[:, 1].tolist() == pytest.approx([0.1] * OUT)
    alg.observe_loss(1.0)
    alg.observe_loss(1.1)
    assert alg.counters["warm"] == 2  # k = N: the cascade runs from now on
    default = make_algorithm("multi-tile", OUT, IN)
    assert default.counters["warm"] == default.N  # off by default


# =============================================================================================
# the P3 / P5 experiments (quick runs)
# =============================================================================================
P35 = ["p5-lemma3.10", "p5-fig1", "p5-tracking", "p3-fig7"]


@pytest.mark.parametrize("name", P35)
def test_p3_p5_quick_runs_write_result_and_png(name, tmp_path):
    import json

    from analogtrain.experiments import EXPERIMENTS, run_experiment

    assert name in EXPERIMENTS
    res = run_experiment(name, quick=True, seed=0, out=tmp_path)
    on_disk = json.loads((tmp_path / "result.json").read_text())
    assert on_disk["experiment"] == name and on_disk["checks"] and on_disk["notes"]
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs and pngs == sorted(on_disk["figures"])
    failed = [c["name"] for c in res["checks"] if not c["passed"]]
    if name == "p5-tracking":
        # E-RIDER tracks; RIDER (p = 0) does not, for the documented reason (W - (beta/eta) Q is invariant)
        assert failed == [c["name"] for c in res["checks"] if c["name"].startswith("RIDER (p = 0)")]
        assert "NOT REPRODUCED" in " ".join(on_disk["notes"])
    elif name == "p3-fig7":
        # the claim does not show in our simulation (documented in the notes); the run must still be well-formed
        assert all(np.isfinite(v) for v in res["measured"]["final_loss"].values())
        assert "NOT REPRODUCED" in " ".join(on_disk["notes"])
        growth = res["measured"]["expected_cascade_growth_per_step"]
        assert growth["2"] < 1 < growth["3"]  # the documented reason: 3+ tiles are linearly unstable
    else:
        assert res["passed"] and not failed, failed


def test_fig7_cascade_growth_is_the_expected_linear_maps_spectral_radius():
    from analogtrain.experiments.p3_p5 import FIG7, _cascade_growth

    # two tiles by hand: s = (W0, W1), W_bar = W0 + g W1; each step W1 -= 2a W_bar, every 2nd step W0 += beta W1
    a, beta, g = FIG7["fast_lr"], FIG7["transfer_lr"], FIG7["gamma"]
    step = np.array([[1.0, 0.0], [-2 * a, 1 - 2 * a * g]])
    two = np.array([[1.0, beta], [0.0, 1.0]]) @ step @ step
    assert _cascade_growth(FIG7, 2, False) == pytest.approx(max(abs(np.linalg.eigvals(two))) ** 0.5, rel=1e-12)
    for global_periods in (False, True):
        assert _cascade_growth(FIG7, 3, global_periods) > 1.001  # unstable at the transcribed rates
        slow = dict(FIG7, transfer_lr=1e-7)  # slow transfers: the time-scale separation P3's Thm 3 asks for
        assert all(_cascade_growth(slow, n, global_periods) < 1 for n in (2, 3, 4, 5))


# =============================================================================================
# buffer granularity (aihwkit's auto_granularity) and offset references
# =============================================================================================
@pytest.mark.parametrize("rows", [1, 4])
def test_auto_granularity_scales_the_buffer_rate_by_the_read_period(rows):
    """With auto_granularity g the buffer gains beta * in_size * transfer_every / g times the read, whatever
    the batch (aihwkit's buffer granularity has no batch factor)."""
    dev = make_device("ideal", dw_min=1.0)  # threshold 1: nothing fires, H keeps all
    alg = make_algorithm("ttv2", OUT, IN, TileConfig.perfect(dev), 0, dtype=F64, transfer_every=3,
                         auto_granularity=1000.0, transfer_lr=0.5, scale_transfer_lr=False, fast_lr=1e-9,
                         scale_fast_lr=False)
    p = 0.01 * torch.arange(OUT * IN, dtype=F64).view(OUT, IN)
    alg.P.program(p)
    x, d = torch.zeros(rows, IN, dtype=F64), torch.zeros(rows, OUT, dtype=F64)  # no gradient: P stays
    for _ in range(3):
        alg.step(x, d, 0.1)
    want = torch.zeros(OUT, IN, dtype=F64)
    want[:, 0] = 0.5 * IN * 3 / 1000.0 * p[:, 0]  # the first transfer read column 0
    assert torch.allclose(alg.buffers["H"], want, atol=1e-15)
    with pytest.raises(Exception, match="auto_granularity"):
        make_algorithm("ttv2", OUT, IN, TileConfig.perfect(dev), 0, auto_granularity=-1.0)
    with pytest.raises(ConfigError, match="units_in_mbatch = false is not supported: transfer_every counts"):
        make_algorithm("erider", OUT, IN, TileConfig.perfect(dev), 0, units_in_mbatch=False)


def test_offset_reference_is_sampled_around_the_symmetric_point():
    """ReferenceConfig: r = SP + mean + std * xi per element (P5's reference offset), seeded by the tile."""
    from analogtrain.tile import AnalogTile, ReferenceConfig

    dev = SoftBounds(dw_min=1e-3, w_max=1.0, w_min=-1.0, up_down=0.1, dw_min_dtod=0.3, up_down_dtod=0.01)
    cfg = TileConfig(device=dev, reference=ReferenceConfig(symmetric_point=True, mean=0.2, std=0.05))
    t = AnalogTile(200, 100, cfg, seed=3)
    off = (t.reference.double() - t.symmetric_point()).flatten()
    assert abs(off.mean().item() - 0.2) < 4 * 0.05 / math.sqrt(off.numel())
    assert abs(off.std().item() - 0.05) < 0.05 * 0.05
    assert torch.equal(AnalogTile(200, 100, cfg, seed=3).reference, t.reference)
    t.program(torch.zeros(200, 100))
    inside = (t.reference.double() < t.params.w_max) & (t.reference.double() > t.params.w_min)
    assert inside.float().mean() > 0.9
    assert torch.allclose(t.weight[inside], torch.zeros(()), atol=1e-6)  # reads zero at conductance = r
    plain = AnalogTile(5, 4, TileConfig(device=dev), seed=3)
    assert not plain.reference.any()  # default: no reference


def test_reference_settings_reach_the_layers_tiles_and_bad_ones_are_named():
    from analogtrain.config import TrainConfig, build_config, parse_sets
    from analogtrain.errors import ConfigError
    from analogtrain.tile import ReferenceConfig
    from analogtrain.train import layer_config

    cfg = build_config(None, parse_sets(["reference.symmetric_point=true", "reference.mean=0.2", "reference.std=0.05"]))
    assert layer_config(cfg).tile.reference == ReferenceConfig(symmetric_point=True, mean=0.2, std=0.05)
    with pytest.raises(ConfigError, match="reference.std"):
        layer_config(TrainConfig(reference={"std": -0.1}))
    with pytest.raises(ConfigError, match="unknown reference option"):
        layer_config(TrainConfig(reference={"sigma": 0.1}))
    only_p = layer_config(TrainConfig(algorithm="erider", reference={"std": 0.05, "arrays": "P"}))
    assert only_p.tile.reference == ReferenceConfig()
    assert only_p.options["configs"]["P"].reference == ReferenceConfig(std=0.05)
    with pytest.raises(ConfigError, match="single array"):
        layer_config(TrainConfig(algorithm="analog-sgd", reference={"std": 0.05, "arrays": "P"}))
    # per-array fields on top of every array's reference (aihwkit's compound of SP-subtracting presets)
    cfg = build_config(None, parse_sets(["algorithm=erider", "reference.symmetric_point=true", "reference.std=0.05",
                                         "reference.P.mean=0.4", "reference.P.std=1.0"]))
    lc = layer_config(cfg)
    assert lc.tile.reference == ReferenceConfig(symmetric_point=True, std=0.05)
    assert lc.options["configs"]["P"].reference == ReferenceConfig(symmetric_point=True, mean=0.4, std=1.0)
    alg = lc.options["configs"]  # the same from a TOML [reference.P] table, and an array that exists
    assert layer_config(TrainConfig(algorithm="erider", reference={"symmetric_point": True, "std": 0.05,
                                                                   "P": {"mean": 0.4, "std": 1.0}})).options[
        "configs"] == alg
    assert set(make_algorithm("erider", 3, 2, lc.tile, 0, configs=lc.options["configs"]).tiles) >= {"P"}
    with pytest.raises(ConfigError, match="unknown reference.P option"):
        layer_config(TrainConfig(algorithm="erider", reference={"P.sigma": 1.0}))
    with pytest.raises(ConfigError, match="single array"):
        layer_config(TrainConfig(algorithm="analog-sgd", reference={"P.mean": 0.4}))


@pytest.mark.parametrize("factor, stable", [(0.6, True), (1.5, False)])
def test_three_tiles_are_stable_iff_the_transfer_into_w0_is_slow_enough(factor, stable):
    # multi_tile.py's Routh-Hurwitz bound: stable iff alpha * lambda * gamma^3 > r_0 = beta / p_1 (lambda = 2 here)
    from analogtrain.experiments.p3_p5 import FIG7, _cascade_growth

    alpha, gamma, p1 = 0.01, 0.5, 4  # global periods [2, 4]
    beta = factor * alpha * 2 * gamma ** 3 * p1
    cfg = dict(FIG7, fast_lr=alpha, gamma=gamma, transfer_lr=beta, transfer_every=2, transfer_every_growth=2)
    assert (_cascade_growth(cfg, 3, True) < 1) == stable


def test_erider_refuses_p0_and_points_to_rider():
    # P5's "RIDER = E-RIDER with p = 0" cannot hold literally: the copy of Q would never be refreshed
    from analogtrain.algorithms import make_algorithm

    with pytest.raises(ConfigError, match=r"in_chop_prob = 0 is outside the allowed range \(0, 1\]: .*use algorithm rider"):
        make_algorithm("erider", 3, 4, in_chop_prob=0.0)
    assert make_algorithm("rider", 3, 4, in_chop_prob=0.0).opts["in_chop_prob"] == 0.0
