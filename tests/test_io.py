"""Tests for the MVM periphery model (analogtrain.io)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from analogtrain.errors import ConfigError, check_finite
from analogtrain.io import IOConfig, mvm


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rand(*shape, seed=0, dtype=torch.float64):
    return torch.rand(*shape, generator=gen(seed), dtype=dtype) * 2 - 1


# --- ideal limit ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_perfect_is_bit_exact_matmul_both_directions(dtype):
    w, x, d = rand(5, 7, seed=1, dtype=dtype), rand(9, 7, seed=2, dtype=dtype), rand(9, 5, seed=3, dtype=dtype)
    cfg = IOConfig.perfect()
    assert cfg.is_perfect and not IOConfig().is_perfect
    assert torch.equal(mvm(w, x, cfg, None), x @ w.T)
    assert torch.equal(mvm(w, d, cfg, None, transpose=True), d @ w)


# --- default config: accuracy -----------------------------------------------------------------------


def test_default_config_unbiased_and_error_matches_noise_budget():
    # Normalised error per output = DAC rounding (uniform, var step_in²/12 per input, weighted by w²)
    # + output noise (var 0.06²) + ADC rounding (var step_out²/12). W entries in [-0.5, 0.5] and
    # 16 inputs keep |y/s| <= 8 < 12, so bound management never fires.
    cfg = IOConfig()
    w = rand(8, 16, seed=1) * 0.5
    x = rand(4000, 16, seed=2) * 3.0
    s = x.abs().amax(1, keepdim=True)
    err = (mvm(w, x, cfg, gen(7)) - x @ w.T) / s
    step_in, step_out = 2 / 126, 24 / 510
    var = (w**2).sum(1).mean() * step_in**2 / 12 + cfg.out_noise**2 + step_out**2 / 12
    rms = err.pow(2).mean().sqrt()
    assert 0.9 * var.sqrt() < rms < 1.1 * var.sqrt()  # the sum of uniform/Gaussian terms, ±10%
    assert err.mean().abs() < 5 * var.sqrt() / math.sqrt(err.numel())  # no bias (5 standard errors)


def test_dac_levels_on_grid_and_count_is_2_pow_7_minus_1():
    # Column 0 pins max|x| = 1 (scale 1); column 1 sweeps the whole input range.
    n = 5001
    x = torch.stack([torch.ones(n), torch.linspace(-1, 1, n)], 1).double()
    cfg = IOConfig(out_noise=0.0, out_res=0.0, out_bound=math.inf, bound_management="none")
    y = mvm(torch.eye(2, dtype=torch.float64), x, cfg, None)[:, 1]
    step = 2 * cfg.inp_res * cfg.inp_bound  # inp_res is the step as a fraction of the full 2·inp_bound range
    k = y / step
    assert torch.allclose(k, k.round(), atol=1e-9)
    assert y.unique().numel() == 2**7 - 1  # 126 steps -> 127 levels, symmetric around 0
    assert y.max() == 1.0 and y.min() == -1.0
    assert (y - x[:, 1]).abs().max() <= step / 2 + 1e-12


def test_adc_levels_on_grid():
    cfg = IOConfig(inp_res=0.0, out_noise=0.0, bound_management="none")
    n = 20001
    x = torch.stack([torch.ones(n), torch.linspace(-1, 1, n)], 1).double()
    w = torch.tensor([[0.0, 20.0]], dtype=torch.float64)  # sweeps [-20, 20], beyond the ±12 bound
    y = mvm(w, x, cfg, None)[:, 0]
    k = y / (2 * cfg.out_res * cfg.out_bound)
    assert torch.allclose(k, k.round(), atol=1e-9)
    assert y.unique().numel() == 2**9 - 1
    assert y.abs().max() == cfg.out_bound


def test_output_noise_std_scales_with_input_scale():
    cfg = IOConfig(inp_res=0.0, out_res=0.0, bound_management="none", out_noise=0.06)
    w = rand(4, 6, seed=1)
    row = rand(1, 6, seed=2)
    row = row / row.abs().max() * 3.0  # s_b = 3 exactly
    x = row.repeat(20000, 1)
    noise = mvm(w, x, cfg, gen(3)) - x @ w.T
    n = noise.numel()  # 80000 draws: rel. std error of the std ≈ 1/sqrt(2n) = 0.25%; allow 2% (8 s.e.)
    assert noise.std() == pytest.approx(0.06 * 3.0, rel=0.02)
    assert noise.mean().abs() < 5 * 0.18 / math.sqrt(n)


def test_input_noise_is_applied():
    cfg = IOConfig(inp_res=0.0, out_res=0.0, out_noise=0.0, inp_noise=0.1, bound_management="none")
    w = torch.eye(3, dtype=torch.float64)
    x = torch.ones(20000, 3, dtype=torch.float64)
    noise = mvm(w, x, cfg, gen(4)) - x
    assert noise.std() == pytest.approx(0.1, rel=0.02)


def test_zero_input_gives_exact_zero_output():
    w = rand(3, 4, seed=1)
    x = torch.zeros(5, 4, dtype=torch.float64)
    x[0] = 1.0
    y = mvm(w, x, IOConfig(out_noise=0.5), gen(0))
    assert torch.equal(y[1:], torch.zeros(4, 3, dtype=torch.float64))
    assert not torch.equal(y[0], torch.zeros(3, dtype=torch.float64))


# --- bound management -------------------------------------------------------------------------------


def test_iterative_bound_management_recovers_saturated_output():
    ideal = dict(inp_res=0.0, out_res=0.0, out_noise=0.0)
    w = torch.ones(4, 32, dtype=torch.float64)  # y = 32 for x = 1, far beyond out_bound = 12
    x = torch.zeros(2, 32, dtype=torch.float64)
    x[0] = 1.0
    x[1, 0] = 1.0  # second sample does not saturate (y = 1) and must not be disturbed
    exact = x @ w.T
    assert torch.equal(mvm(w, x, IOConfig(**ideal), None), exact)
    clipped = mvm(w, x, IOConfig(**ideal, bound_management="none"), None)
    assert torch.equal(clipped[0], torch.full((4,), 12.0, dtype=torch.float64))
    assert torch.equal(clipped[1], exact[1])
    # One halving is not enough (16 > 12): the result is clipped at out_bound · 2.
    once = mvm(w, x, IOConfig(**ideal, max_bm_rounds=1), None)
    assert torch.equal(once[0], torch.full((4,), 24.0, dtype=torch.float64))


def test_bound_management_transpose_direction():
    w = torch.ones(32, 4, dtype=torch.float64)
    d = torch.ones(3, 32, dtype=torch.float64)
    y = mvm(w, d, IOConfig(inp_res=0.0, out_res=0.0, out_noise=0.0), None, transpose=True)
    assert torch.equal(y, d @ w)


# --- randomness -------------------------------------------------------------------------------------


def test_seeded_generators_reproducible_and_seed_dependent():
    w, x = rand(6, 8, seed=1) * 4, rand(10, 8, seed=2)  # large weights: bound management also runs
    cfg = IOConfig(inp_noise=0.01)
    a, b, c = (mvm(w, x, cfg, gen(s)) for s in (11, 11, 12))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_global_rng_untouched():
    w, x = rand(6, 8, seed=1), rand(10, 8, seed=2)
    state = torch.get_rng_state()
    mvm(w, x, IOConfig(inp_noise=0.01), gen(0))
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtype_preserved(dtype):
    w, x = rand(3, 5, seed=1, dtype=dtype), rand(4, 5, seed=2, dtype=dtype)
    y = mvm(w, x, IOConfig(), gen(0))
    assert y.dtype == dtype and torch.isfinite(y).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
def test_cuda_matches_shape_and_accuracy():
    w, x = rand(8, 16, seed=1).cuda() * 0.5, rand(256, 16, seed=2).cuda()
    y = mvm(w, x, IOConfig(), torch.Generator(device="cuda").manual_seed(0))
    assert y.is_cuda and (y - x @ w.T).abs().max() < 1.0


# --- input validation -------------------------------------------------------------------------------


def test_nan_input_raises_naming_x():
    w, x = rand(3, 4), rand(2, 4)
    x[1, 2] = float("nan")
    with pytest.raises(ConfigError, match=r"\bx\b"):
        mvm(w, x, IOConfig(), gen())
    x[1, 2] = float("inf")
    with pytest.raises(ConfigError, match=r"\bx\b"):
        mvm(w, x, IOConfig.perfect(), None)


def test_bad_shape_raises_with_expected_shape():
    w = rand(3, 4)
    with pytest.raises(ConfigError, match=r"x has shape \(2, 3\), expected \(\*, 4\)"):
        mvm(w, rand(2, 3), IOConfig(), gen())
    with pytest.raises(ConfigError, match=r"expected \(\*, 3\)"):
        mvm(w, rand(2, 4), IOConfig(), gen(), transpose=True)
    with pytest.raises(ConfigError, match="x has shape"):
        mvm(w, rand(4), IOConfig(), gen())


def test_missing_generator_with_noise_raises():
    with pytest.raises(ConfigError, match="generator"):
        mvm(rand(3, 4), rand(2, 4), IOConfig(), None)


@pytest.mark.parametrize(
    "field, value",
    [
        ("out_noise", -0.1),
        ("inp_noise", -1.0),
        ("out_noise", math.inf),
        ("noise_management", "abs_mean"),
        ("bound_management", "shift"),
        ("inp_bound", 0.0),
        ("inp_bound", -1.0),
        ("out_bound", 0.0),
        ("inp_res", -0.01),
        ("out_res", 2.0),
        ("max_bm_rounds", -1),
        ("max_bm_rounds", 2.5),
        ("inp_res", float("nan")),
    ],
)
def test_invalid_config_raises_naming_field(field, value):
    with pytest.raises(ConfigError, match=field):
        IOConfig(**{field: value})


def test_quantisation_without_bound_rejected():
    with pytest.raises(ConfigError, match="inp_res"):
        IOConfig(inp_bound=math.inf)
    with pytest.raises(ConfigError, match="out_res"):
        IOConfig(out_bound=math.inf)


# --- property ---------------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    n_out=st.integers(1, 5),
    n_in=st.integers(1, 5),
    batch=st.integers(1, 4),
    seed=st.integers(0, 2**16),
    w_scale=st.floats(1e-3, 1e3),
    x_scale=st.floats(1e-6, 1e6),
    out_bound=st.floats(0.5, 20.0),
    rounds=st.integers(0, 6),
    transpose=st.booleans(),
)
def test_outputs_finite_and_within_managed_bound(n_out, n_in, batch, seed, w_scale, x_scale, out_bound, rounds, transpose):
    cfg = IOConfig(out_bound=out_bound, max_bm_rounds=rounds, inp_noise=0.05)
    w = rand(n_out, n_in, seed=seed) * w_scale
    x = rand(batch, n_out if transpose else n_in, seed=seed + 1) * x_scale
    y = mvm(w, x, cfg, gen(seed), transpose=transpose)
    assert torch.isfinite(y).all()
    limit = out_bound * x.abs().amax(1, keepdim=True) * 2**rounds
    assert (y.abs() <= limit * (1 + 1e-12)).all()


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_check_finite_refuses_any_single_bad_element(bad):
    x = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    x[2, 17] = bad
    with pytest.raises(ConfigError, match="x contains NaN or inf"):
        check_finite("x", x)


def test_check_finite_accepts_finite_values_whose_sum_overflows():
    # the fast path sums the tensor; an overflowing sum of finite float32 values must still pass
    x = torch.full((4,), 3.0e38, dtype=torch.float32)
    assert not torch.isfinite(x.sum())
    assert check_finite("x", x) is x
    assert check_finite("n", torch.arange(5)) is not None  # integer tensors are finite
