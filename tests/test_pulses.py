"""The three update fidelities: analog-update model, single pulses, stochastic pulse trains."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from analogtrain import pulses
from analogtrain.devices.soft_bounds import SoftBounds, ald
from analogtrain.errors import ConfigError
from analogtrain.pulses import UpdateConfig

VARIED = SoftBounds(dw_min=0.001, dw_min_dtod=0.3, up_down_dtod=0.05, w_max_dtod=0.3, w_min_dtod=0.3)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(1e-4, 0.5))
def test_expected_update_is_p1_eq7_and_piecewise_form(seed, scale):
    g = gen(seed)
    p = VARIED.sample((20, 30), g)
    w = (torch.rand(20, 30, generator=g, dtype=torch.float64) - 0.5) * 1.2
    w = VARIED.clip(w, p)
    dw = torch.randn(20, 30, generator=g, dtype=torch.float64) * scale
    new = pulses.expected_update(VARIED, p, w, dw)
    eq7 = VARIED.clip(w + dw * VARIED.F(w, p) - dw.abs() * VARIED.G(w, p), p)
    piecewise = VARIED.clip(w + dw * torch.where(dw >= 0, VARIED.q_plus(w, p), VARIED.q_minus(w, p)), p)
    torch.testing.assert_close(new, piecewise, rtol=0, atol=0)
    torch.testing.assert_close(new, eq7, rtol=1e-12, atol=1e-15)  # same math, other rounding
    assert (new <= p.w_max).all() and (new >= p.w_min).all()
    ref = pulses.expected_update(VARIED, p, w, dw, fast="reference")
    assert torch.equal(new, ref)


@settings(max_examples=60, deadline=None)
@given(tau=st.floats(0.1, 10), w=st.floats(-1, 1), step=st.floats(-1, 1))
def test_p1_theorem1_ald_model_never_leaves_range(tau, w, step):
    """P1 Thm 1: |w| <= tau and |dw| <= tau keep w + dw F - |dw| G inside [-tau, tau] (no clipping)."""
    dev = ald(tau)
    w = torch.tensor(w * tau, dtype=torch.float64)
    dw = torch.tensor(step * tau, dtype=torch.float64)
    new = w + dw * dev.F(w) - dw.abs() * dev.G(w)
    assert -tau * (1 + 1e-12) <= new.item() <= tau * (1 + 1e-12)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_single_pulses_track_the_model_within_p1_bound(sign):
    """papers.md §9.1 item 2: ALD tau=1, dw_min=1e-4, |dw|=0.01 -> |pulses - model| <= dw_min/tau + dw^2/(2 tau)."""
    tau, dw_min, step = 1.0, 1e-4, 0.01
    dev = ald(tau, dw_min=dw_min)
    p = dev.nominal()
    w = torch.linspace(-0.95, 0.95, 201, dtype=torch.float64)
    dw = torch.full_like(w, sign * step)
    model = pulses.expected_update(dev, p, w, dw, fast="reference")
    n = pulses.pulse_counts(dw, dw_min, "ceil")
    pulsed = pulses.apply_pulses(dev, p, w, n, torch.sign(dw))
    err = (pulsed - model).abs().max().item()
    assert err <= dw_min / tau + step**2 / (2 * tau)
    assert err > 0  # the two levels really differ (the test compares two computations)


def test_stochastic_rounding_is_unbiased():
    dw = torch.full((200_000,), 2.3e-3, dtype=torch.float64)
    n = pulses.pulse_counts(dw, 1e-3, "stochastic", gen(1))
    assert set(n.unique().tolist()) == {2.0, 3.0}
    assert abs(n.mean().item() - 2.3) < 4 * math.sqrt(0.21 / len(n))


class _NoClosedForm(SoftBounds):
    """Soft bounds forced to apply runs pulse by pulse (to test the closed form against it)."""

    run_up_fn = run_down_fn = gain_up_fn = gain_down_fn = None


def test_closed_form_run_with_noise_has_the_per_pulse_distribution():
    """Closed-form runs with additive noise vs 25 single noisy pulses: same mean and std (10^4 elements)."""
    kw = dict(dw_min=0.01, w_max=1.0, w_min=-1.0, dw_min_std=0.5)
    closed, loop = SoftBounds(**kw), _NoClosedForm(**kw)
    assert closed.has_closed_form and not loop.has_closed_form
    p = closed.nominal()
    w = torch.full((10_000,), -0.2, dtype=torch.float64)
    n = torch.full_like(w, 25)
    s = torch.ones_like(w)
    a = pulses.apply_pulses(closed, p, w, n, s, gen(2))
    b = pulses.apply_pulses(loop, p, w, n, s, gen(3))
    exact_mean = closed.run(w[:1], n[:1], s[:1], p).item()
    r = 1 - kw["dw_min"] / kw["w_max"]
    exact_std = kw["dw_min"] * kw["dw_min_std"] * math.sqrt((1 - r**50) / (1 - r**2))
    for sample in (a, b):
        assert abs(sample.mean().item() - exact_mean) < 4 * exact_std / 100
        assert abs(sample.std().item() / exact_std - 1) < 0.05


def _signals(seed, b, n_in, n_out, d_scale=0.05):
    g = gen(seed)
    x = torch.rand(b, n_in, generator=g) * (torch.rand(b, n_in, generator=g) < 0.6)
    d = torch.randn(b, n_out, generator=g) * d_scale
    return x, d


@pytest.mark.parametrize(
    "device,cfg",
    [
        (VARIED, UpdateConfig()),
        (VARIED.replace(dw_min_std=0.3), UpdateConfig()),
        (VARIED.replace(dw_min_std=0.3, c2c_mode="multiplicative"), UpdateConfig(update_management=False)),
        (VARIED.replace(dw_min_std=0.3), UpdateConfig(update_bl_management=False, bl=7)),
        (_NoClosedForm(dw_min=0.002, dw_min_std=0.2), UpdateConfig(bl=10)),
    ],
    ids=["plain", "c2c-additive", "c2c-multiplicative-noUM", "fixed-BL", "per-pulse-loop"],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fast_kernel_equals_reference(device, cfg, dtype):
    """Same random numbers in, same conductances, touched set and pulse count out."""
    p = device.sample((24, 40), gen(5))
    w0 = (torch.rand(24, 40, generator=gen(6)) - 0.5).to(dtype) * 0.5
    x, d = _signals(7, 6, 40, 24, d_scale=0.3)
    x, d = x.to(dtype), d.to(dtype)
    lr = 0.05
    seeds = (11, 12)
    ref = pulses.stochastic_update_reference(device, p, w0.clone(), x, d, lr, cfg, seeds)
    fast = pulses.stochastic_update_fast(device, p, w0.clone(), x, d, lr, cfg, seeds)
    assert ref[2] == fast[2] > 100
    assert torch.equal(ref[1], fast[1])
    if dtype == torch.float32:
        assert torch.equal(ref[0], fast[0])
    else:
        # float64 storage exposes the last bit of the closed form's r**n, where numba's libm pow and
        # torch's vectorised pow may differ by one ulp; float32 storage rounds that away
        torch.testing.assert_close(ref[0], fast[0], rtol=1e-14, atol=1e-15)


def test_train_plan_expected_coincidences():
    """BL * px_i * pd_j = lr |x_i d_j| / dw_min whenever no probability is clipped (papers.md §1.5)."""
    x, d = _signals(1, 5, 30, 20, d_scale=0.01)
    for ublm in (True, False):
        for um in (True, False):
            cfg = UpdateConfig(update_bl_management=ublm, update_management=um, bl=31)
            bl, px, pd = pulses.train_plan(x, d, 0.01, 1e-3, cfg)
            expected = 0.01 * (d.double().abs().unsqueeze(2) * x.double().abs().unsqueeze(1)) / 1e-3
            got = bl.view(-1, 1, 1) * pd.unsqueeze(2) * px.unsqueeze(1)
            unclipped = ((px < 1).all(1) & (pd < 1).all(1)).view(-1, 1, 1)
            assert unclipped.any() or (ublm and not um)  # without UM short trains saturate (why UM exists)
            torch.testing.assert_close(torch.where(unclipped, got, expected), expected, rtol=1e-12, atol=0)


def test_stochastic_update_mean_and_variance_match_p3_lemma1():
    """P3 Lemma 1: dw_ij = -lr x_i d_j + zeta, Var zeta = lr|x_i d_j| dw_min (1 - lr|x_i d_j| / (BL dw_min)).

    Fixed BL, no update management, a device with q = 1 (ALD with a huge range), 4000 seeded updates
    from w = 0; mean within 4 standard errors, variance within 12 % (its relative SE is ~2.5 %).
    """
    dw_min, lr, bl, reps = 1e-3, 0.01, 10, 4000  # A = B = 1: no firing probability is clipped
    dev = ald(1e6, dw_min=dw_min)
    p = dev.sample((3, 4), gen(0))
    x = torch.tensor([[0.2, -0.5, 0.9, 0.05]], dtype=torch.float64)
    d = torch.tensor([[0.3, -0.1, 0.6]], dtype=torch.float64)
    cfg = UpdateConfig(update_bl_management=False, update_management=False, bl=bl)
    g = gen(1)
    draws = torch.stack([
        pulses.stochastic_update(dev, p, torch.zeros(3, 4, dtype=torch.float64), x, d, lr, cfg, g)[0]
        for _ in range(reps)
    ])
    target = -lr * d.T @ x
    a = lr * (d.T @ x).abs()
    var = a * dw_min * (1 - a / (bl * dw_min))
    se = (var / reps).sqrt()
    assert ((draws.mean(0) - target).abs() <= 4 * se + 1e-12).all()
    assert ((draws.var(0) / var - 1).abs() < 0.12).all()


def test_update_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="mode"):
        UpdateConfig(mode="magic")
    with pytest.raises(ConfigError, match="bl"):
        UpdateConfig(bl=0)
    with pytest.raises(ConfigError, match="bl"):
        UpdateConfig(bl=100)
    with pytest.raises(ConfigError, match="rounding"):
        UpdateConfig(rounding="up")


def _with_variations(name):
    from analogtrain.devices import make_device

    if name == "ideal":  # the ideal device has no variations by definition
        return make_device(name)
    return make_device(name, dw_min_dtod=0.2, up_down_dtod=0.05, w_max_dtod=0.2, w_min_dtod=0.2, dw_min_std=0.2)


@pytest.mark.parametrize("threaded", [False, True], ids=["serial", "threaded"])
def test_fast_kernel_equals_reference_with_one_and_many_draws_per_row_and_reused_scratch(threaded, monkeypatch):
    """Rows whose update-BL management asks for one draw per line (the branch-free path, the usual case of
    conv layers) beside rows of up to BL draws and silent rows; then the same shape again with other rows
    silent, so the reused scratch arrays may hold the first call's masks: each call equals the reference."""
    monkeypatch.setattr(pulses, "PARALLEL_MIN_MASKS", 0 if threaded else 10**12)
    monkeypatch.setattr(pulses, "PARALLEL_MIN", 0 if threaded else 10**12)
    p = VARIED.sample((24, 40), gen(1))
    w = (torch.rand(24, 40, generator=gen(2)) - 0.5) * 0.5
    cfg = UpdateConfig(bl=31)
    for call, silent in enumerate(([3, 7], [0, 1, 2, 5])):
        x, d = _signals(10 + call, 12, 40, 24, d_scale=0.3)
        d = d * torch.logspace(-3.5, 0, 12).unsqueeze(1)  # bl = ceil(lr |x|max |d|max / dw_min): 1 up to 31
        d[silent] = 0.0
        bl = torch.clamp(torch.ceil(0.05 * x.abs().amax(1) * d.abs().amax(1) / VARIED.dw_min), 1, 31)
        active = (x.abs().amax(1) > 0) & (d.abs().amax(1) > 0)
        assert (bl[active] == 1).sum() >= 3 and (bl[active] > 1).sum() >= 3
        ref = pulses.stochastic_update_reference(VARIED, p, w.clone(), x, d, 0.05, cfg, (20 + call, 30))
        fast = pulses.stochastic_update_fast(VARIED, p, w.clone(), x, d, 0.05, cfg, (20 + call, 30))
        assert ref[2] == fast[2] > 50
        assert torch.equal(ref[1], fast[1]) and torch.equal(ref[0], fast[0])


def test_scratch_arrays_are_kept_per_shape_within_a_byte_budget(monkeypatch):
    monkeypatch.setattr(pulses, "_SCRATCH", {})
    monkeypatch.setattr(pulses, "SCRATCH_BYTES", 40_000)
    first = pulses._scratch(50, 20, 10)  # 50 * (20 * 17 + 10 * 9) + 400 = 21,900 bytes: over a quarter of the budget
    assert pulses._scratch(50, 20, 10) is not first and not pulses._SCRATCH
    small = [pulses._scratch(10, n, 4) for n in range(1, 9)]  # 610 to 1,800 bytes each: kept, oldest go first
    assert pulses._scratch(10, 8, 4) is small[-1]
    kept = sum(a.nbytes for v in pulses._SCRATCH.values() for a in v)
    assert kept <= 40_000 and len(pulses._SCRATCH) == 8
    monkeypatch.setattr(pulses, "SCRATCH_BYTES", 8_000)
    pulses._scratch(10, 9, 4)
    assert (10, 1, 4) not in pulses._SCRATCH and (10, 9, 4) in pulses._SCRATCH
    assert sum(a.nbytes for v in pulses._SCRATCH.values() for a in v) <= 8_000


def _families():
    from analogtrain.devices import FAMILIES

    return list(FAMILIES)


@pytest.mark.parametrize("threaded", [False, True], ids=["serial", "threaded"])
@pytest.mark.parametrize("family", _families())
def test_fast_kernel_equals_reference_for_every_family(family, threaded, monkeypatch):
    """Registry-driven: the fused kernels (serial and threaded) reproduce the torch reference."""
    monkeypatch.setattr(pulses, "PARALLEL_MIN", 0 if threaded else 10**12)
    device = _with_variations(family)
    p = device.sample((16, 24), gen(1))
    w0 = device.clip((torch.rand(16, 24, generator=gen(2), dtype=torch.float64) - 0.5) * 0.8, p).float()
    x, d = _signals(3, 5, 24, 16, d_scale=0.3)
    cfg = UpdateConfig(bl=15)
    ref = pulses.stochastic_update_reference(device, p, w0.clone(), x, d, 0.05, cfg, (4, 5))
    fast = pulses.stochastic_update_fast(device, p, w0.clone(), x, d, 0.05, cfg, (4, 5))
    assert ref[2] == fast[2] > 50
    assert torch.equal(ref[1], fast[1]) and torch.equal(ref[0], fast[0])
    dw = torch.randn(16, 24, generator=gen(6)) * 0.01
    assert torch.equal(pulses.expected_update(device, p, w0, dw, fast="kernel"),
                       pulses.expected_update(device, p, w0, dw, fast="reference"))
