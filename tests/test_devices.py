"""Tests for the device layer: every family, its paper parametrisations, sampling, presets, errors."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from analogtrain.devices import (
    FAMILIES, PRESETS, ConstantStep, ExpStep, Ideal, PiecewiseStep, PowerStep, SoftBounds, ald, configure,
    get_preset, linear_step, make_device, p1_exp_step, p1_mnist_device, p1_power_step, p2_exp, p2_linear,
    p2_power,
)
from analogtrain.devices.piecewise import reference_step
from analogtrain.errors import ConfigError

F64 = torch.float64
VAR = dict(dw_min_dtod=0.3, up_down_dtod=0.05, w_max_dtod=0.2, w_min_dtod=0.2)

# One instance of every family, with asymmetric settings so that the symmetric point is not 0,
# plus every preset: the registry-driven tests below run over all of them.
CASES = {
    "soft-bounds": SoftBounds(dw_min=0.01, up_down=0.2, **VAR),
    "constant-step": ConstantStep(dw_min=0.01, w_max=1.0, w_min=-0.8, **VAR),
    "ideal": Ideal(dw_min=0.01),
    "power-step": PowerStep(dw_min=0.01, w_max=1.0, w_min=-0.5, gamma_up=0.5, gamma_down=2.0, **VAR),
    "exp-step": ExpStep(dw_min=0.01, w_max=0.8, w_min=-1.0, kappa_up=-3.0, kappa_down=2.0, **VAR),
    "piecewise": PiecewiseStep(**VAR),
}
assert set(CASES) == set(FAMILIES)  # a new family must be added here
ALL = {**CASES, **{f"preset:{k}": p.build() for k, p in PRESETS.items()}}


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def finite_range(dev):
    lo = dev.w_min if math.isfinite(dev.w_min) else -1.0
    hi = dev.w_max if math.isfinite(dev.w_max) else 1.0
    return lo, hi


def inside(dev, p, n, seed=1):
    """n random points inside each element's own bounds (display range for unbounded devices)."""
    lo, hi = finite_range(dev)
    lo_t = torch.maximum(p.w_min, torch.tensor(lo, dtype=F64))
    hi_t = torch.minimum(p.w_max, torch.tensor(hi, dtype=F64))
    t = torch.rand(n, generator=gen(seed), dtype=F64)
    return dev.clip(lo_t + t * (hi_t - lo_t), p)


def pulse_by_pulse(dev, w, n, sign, p):
    """Reference: n single pulses w <- clip(w + s dw_min q_s(w)), written out independently of Device.run."""
    for k in range(int(n.max())):
        q = torch.where(sign > 0, dev.q_plus(w, p), -dev.q_minus(w, p))
        w = torch.where(n > k, dev.clip(w + dev.dw_min * q, p), w)
    return w


# ---- response shape: q >= 0 inside the range, for random parameters ------------------------------------


def _bounds(draw):
    w_min = draw(st.floats(-2.0, -0.05))
    return draw(st.floats(0.05, 2.0)), w_min


@st.composite
def random_device(draw, family):
    slope = draw(st.floats(0.1, 3.0))
    up_down = draw(st.floats(-0.95, 0.95)) * slope
    w_max, w_min = _bounds(draw)
    common = dict(dw_min=0.01, slope=slope, up_down=up_down, w_max=w_max, w_min=w_min, **VAR)
    if family == "soft-bounds":
        return SoftBounds(**common)
    if family == "constant-step":
        return ConstantStep(**common)
    if family == "ideal":
        return Ideal(dw_min=draw(st.floats(1e-4, 0.1)))
    if family == "power-step":
        g = st.floats(0.05, 5.0)
        return PowerStep(gamma_up=draw(g), gamma_down=draw(g), **common)
    if family == "exp-step":
        k = st.floats(0.01, 20.0) | st.floats(-20.0, -0.01)
        return ExpStep(kappa_up=draw(k), kappa_down=draw(k), **common)
    n = draw(st.integers(2, 6))
    gaps = draw(st.lists(st.floats(0.05, 1.0), min_size=n - 1, max_size=n - 1))
    grid = np.concatenate([[w_min], w_min + np.cumsum(gaps)])
    steps = st.lists(st.floats(1e-4, 1e-2), min_size=n, max_size=n)
    return PiecewiseStep(grid=tuple(grid), dw_up=tuple(draw(steps)), dw_down=tuple(draw(steps)), **VAR)


@pytest.mark.parametrize("family", list(FAMILIES))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_response_nonnegative_inside_range(family, data):
    dev = data.draw(random_device(family))
    for p in (dev.nominal(), dev.sample((64,), gen(data.draw(st.integers(0, 10**6))))):
        w = inside(dev, p, 64)
        assert (dev.q_plus(w, p) >= 0).all() and (dev.q_minus(w, p) >= 0).all()
        assert torch.isfinite(dev.q_plus(w, p)).all() and torch.isfinite(dev.q_minus(w, p)).all()


# ---- numba: the same functions compiled give the same numbers --------------------------------------------

_JIT: dict = {}


def jit(fn):
    if fn not in _JIT:
        _JIT[fn] = numba.njit(fn)
    return _JIT[fn]


@pytest.mark.parametrize("name", list(CASES))
def test_numba_compiled_response_equals_torch(name):
    dev = CASES[name]
    cls = type(dev)
    p = dev.sample((40,), gen(3))
    w = inside(dev, p, 40, seed=4)
    n = torch.randint(0, 60, (40,), generator=gen(5)).double()
    c_t, c_np = dev.constants(), np.array(dev.shape_constants(), dtype=np.float64)
    checks = [(cls.q_up_fn, p.up, False), (cls.q_down_fn, p.down, False)]
    if dev.has_closed_form:
        checks += [(cls.run_up_fn, p.up, "run"), (cls.run_down_fn, p.down, "run")]
        checks += [(cls.gain_up_fn, p.up, "gain"), (cls.gain_down_fn, p.down, "gain")]
    for fn, a, kind in checks:
        f = jit(fn)
        if kind == "run":
            ref = fn(w, n, dev.dw_min, a, p.w_max, p.w_min, c_t)
            args = [(w[i], n[i], dev.dw_min, a[i], p.w_max[i], p.w_min[i]) for i in range(40)]
            got = [f(*(float(v) for v in arg), c_np) for arg in args]
        elif kind == "gain":
            ref = fn(n, dev.dw_min, a, p.w_max, p.w_min, c_t)
            got = [f(*(float(v) for v in (n[i], dev.dw_min, a[i], p.w_max[i], p.w_min[i])), c_np) for i in range(40)]
        else:
            ref = fn(w, a, p.w_max, p.w_min, c_t)
            got = [f(*(float(v) for v in (w[i], a[i], p.w_max[i], p.w_min[i])), c_np) for i in range(40)]
        np.testing.assert_allclose(np.array(got), ref.numpy(), rtol=1e-12, atol=1e-300, err_msg=fn.__name__)


# ---- runs of pulses ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ALL))
def test_run_equals_single_pulses(name):
    dev = ALL[name]
    p = dev.sample((50,), gen(6))
    w = inside(dev, p, 50, seed=7)
    n = torch.randint(0, 40, (50,), generator=gen(8))
    sign = torch.where(torch.rand(50, generator=gen(9)) < 0.5, -1.0, 1.0).double()
    lo, hi = finite_range(dev)
    # The closed form computes r**n where the pulses multiply by r n times; floating point cannot make
    # those bit-equal, so we hold them to 1e-12 relative (of the range), far below one step.
    torch.testing.assert_close(
        dev.run(w, n, sign, p), pulse_by_pulse(dev, w, n, sign, p), rtol=1e-12, atol=1e-12 * (hi - lo)
    )


@pytest.mark.parametrize("name", list(ALL))
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_pulses_never_leave_element_bounds(name, seed):
    dev = ALL[name]
    if not dev.has_closed_form and dev.dw_min < 0.02:
        dev = configure(dev, dw_min=0.02)  # keep pulse-by-pulse runs short
    p = dev.sample((30,), gen(seed))
    w = inside(dev, p, 30, seed=seed + 1)
    g = gen(seed + 2)
    for _ in range(4):
        n = torch.randint(0, int(min(3 * dev.n_states, 400)) + 1, (30,), generator=g)
        sign = torch.where(torch.rand(30, generator=g) < 0.5, -1.0, 1.0).double()
        w = dev.run(w, n, sign, p)
        assert (w >= p.w_min).all() and (w <= p.w_max).all()


def _soft_bounds_gain(r, n):
    return math.sqrt(sum(r ** (2 * k) for k in range(n)))


@pytest.mark.parametrize("n", [1, 2, 7, 50])
def test_noise_gain_is_std_of_summed_per_pulse_noise(n):
    # The run is affine in w with factor r per pulse, so pulse k's noise reaches the end times r**(n-1-k):
    # its std factor is sqrt(sum_k r**(2k)); for a constant step r = 1, i.e. sqrt(n).
    sb = SoftBounds(dw_min=0.01, up_down=0.1)
    p, one = sb.nominal(), torch.tensor([float(n)], dtype=F64)
    r_up = 1 - sb.dw_min * p.up.item() / sb.w_max
    assert sb.noise_gain(one, torch.ones(1), p).item() == pytest.approx(_soft_bounds_gain(r_up, n), rel=1e-12)
    cs = ConstantStep(up_down=0.3)
    for s in (1.0, -1.0):
        assert cs.noise_gain(one, torch.tensor([s]), cs.nominal()).item() == pytest.approx(math.sqrt(n), rel=1e-15)


# ---- symmetric point ---------------------------------------------------------------------------------------

SP_CASES = ["soft-bounds", "power-step", "exp-step", "piecewise"]


@pytest.mark.parametrize("name", SP_CASES + [k for k in ALL if k.startswith("preset:")])
def test_symmetric_point_has_zero_G(name):
    dev = ALL.get(name) or CASES[name]
    for p in (dev.nominal(), dev.sample((100,), gen(10))):
        sp = dev.symmetric_point(p)
        assert (sp >= p.w_min).all() and (sp <= p.w_max).all()
        if isinstance(dev, ConstantStep):  # G is constant: zero exactly where the slopes are equal
            g = dev.G(sp, p)
            assert torch.equal(g == 0, (p.up == p.down).expand_as(g))
            continue
        assert dev.G(sp, p).abs().max() < 1e-9


@pytest.mark.parametrize("name", ["soft-bounds", "power-step", "exp-step"])
def test_alternating_pulses_converge_to_symmetric_point(name):
    dev = configure(CASES[name], dw_min=0.002, **{k: 0.0 for k in VAR})
    sp = dev.symmetric_point().item()
    assert abs(sp) > 20 * dev.dw_min  # the asymmetric setting really moves the SP off 0
    p = dev.nominal()
    w = torch.tensor([0.95 * dev.w_min, 0.0, 0.95 * dev.w_max], dtype=F64)
    one = torch.ones(3)
    for k in range(6000):
        w = dev.run(w, one, one if k % 2 == 0 else -one, p)
    # The up-down pair's fixed point sits O(dw_min) from the SP (q_+(w) = q_-(w + dw_min q_+(w))).
    assert (w - sp).abs().max() < 3 * dev.dw_min


def test_constant_step_symmetric_point_follows_drift():
    assert ConstantStep(up_down=0.1).symmetric_point().item() == 0.6  # up wins: drift to w_max
    assert ConstantStep(up_down=-0.1).symmetric_point().item() == -0.6
    assert ConstantStep(w_min=0.2, w_max=1.0).symmetric_point().item() == 0.2  # 0 clipped into the range


# ---- the analog update and P1 Lemma 1 ----------------------------------------------------------------------


def analog_update(dev, w, delta):
    """U_q(w, delta) = w + delta q_sign(delta)(w) (P1 eq. 7, papers.md §1.1)."""
    return w + delta * torch.where(delta >= 0, dev.q_plus(w), dev.q_minus(w))


@pytest.mark.parametrize("name", list(CASES))
def test_analog_update_equals_F_G_form(name):
    dev = CASES[name]
    w = inside(dev, dev.nominal(), 50, seed=11)
    delta = torch.randn(50, generator=gen(12), dtype=F64) * 0.1
    expected = w + delta * dev.F(w) - delta.abs() * dev.G(w)
    torch.testing.assert_close(analog_update(dev, w, delta), expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("tau,sp", [(1.0, 0.0), (3.0, 0.0), (2.0, 0.4)])
def test_p1_lemma1_saturation_and_fast_reset(tau, sp):
    dev = ald(tau, symmetric_point=sp)
    w, d = torch.tensor(sp + tau / 2, dtype=F64), torch.tensor(0.01, dtype=F64)
    assert (analog_update(dev, w, d) - w).item() == pytest.approx(0.5 * d.item(), rel=1e-12)  # away from SP
    assert (analog_update(dev, w, -d) - w).item() == pytest.approx(-1.5 * d.item(), rel=1e-12)  # towards SP


# ---- constructors equal the paper formulas ------------------------------------------------------------------

W = torch.linspace(-0.99, 0.99, 41, dtype=F64)


def close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("tau,sp", [(1.0, 0.0), (2.5, 0.3), (1.5, -0.4)])
def test_ald_is_p1_eq8_with_symmetric_point_shift(tau, sp):
    dev, w = ald(tau, symmetric_point=sp), W * tau + sp
    close(dev.q_plus(w), 1 - (w - sp) / tau)
    close(dev.q_minus(w), 1 + (w - sp) / tau)
    assert dev.symmetric_point().item() == pytest.approx(sp, abs=1e-12)
    close(dev.F(w), torch.ones_like(w))


def test_linear_step_is_p1_app_c1():
    tmax, tmin, sp = 1.2, -0.7, 0.1
    dev, w = linear_step(tmax, tmin, symmetric_point=sp), W * 0.6 + sp
    close(dev.q_plus(w), 1 - (w - sp) / tmax)
    close(dev.q_minus(w), 1 - (w - sp) / tmin)


def test_p2_linear_is_p2_section1():
    tau, c = 0.8, 0.25
    dev, w = p2_linear(tau, c), W * tau
    close(dev.q_plus(w), (1 + c) * (1 - w / tau))
    close(dev.q_minus(w), (1 - c) * (1 + w / tau))
    assert dev.symmetric_point().item() == pytest.approx(c * tau, abs=1e-12)


@pytest.mark.parametrize("tau,g", [(0.6, 0.5), (0.1, 3.0), (1.0, 1.0)])
def test_p2_power_is_p2_eq148(tau, g):
    dev, w = p2_power(tau, g), W * tau
    close(dev.q_plus(w), (1 - w / tau) ** g)
    close(dev.q_minus(w), (1 + w / tau) ** g)
    assert abs(dev.symmetric_point().item()) < 1e-12 and dev.F(torch.zeros((), dtype=F64)).item() == pytest.approx(1)


def test_p1_power_step_is_p1_app_c2():
    tmax, tmin, gu, gd = 0.9, -0.6, 0.7, 1.8
    dev, w = p1_power_step(tmax, tmin, gu, gd), torch.linspace(tmin, tmax, 41, dtype=F64)
    close(dev.q_plus(w), ((tmax - w) / (tmax - tmin)) ** gu)
    close(dev.q_minus(w), ((w - tmin) / (tmax - tmin)) ** gd)


@pytest.mark.parametrize("gu,gd", [(2.0, 2.0), (1.0, 4.0), (5.0, 0.5)])
def test_p1_exp_step_is_p1_app_c3(gu, gd):
    tmax, tmin = 0.8, -0.5
    dev, w = p1_exp_step(tmax, tmin, gu, gd), torch.linspace(tmin, tmax, 41, dtype=F64)
    close(dev.q_plus(w), 1 - torch.exp(-gu * (tmax - w) / (tmax - tmin)))
    close(dev.q_minus(w), 1 - torch.exp(-gd * (w - tmin) / (tmax - tmin)))


@pytest.mark.parametrize("tau,g", [(0.1, 4.0), (0.5, 0.5), (1.0, 3.0)])
def test_p2_exp_is_p2_eq149(tau, g):
    dev, w = p2_exp(tau, g), W * tau
    close(dev.q_plus(w), (torch.exp(g * (1 - w / tau)) - 1) / (math.exp(g) - 1))
    close(dev.q_minus(w), (torch.exp(g * (1 + w / tau)) - 1) / (math.exp(g) - 1))
    assert abs(dev.symmetric_point().item()) < 1e-12


# ---- piecewise table ---------------------------------------------------------------------------------------


def test_piecewise_interpolates_the_table_and_defaults_dw_min_to_sp_step():
    grid, up, down = (-1.0, -0.2, 0.3, 1.0), (3e-3, 2e-3, 1e-3, 2e-4), (1e-4, 1e-3, 2.5e-3, 3e-3)
    dev = PiecewiseStep(grid=grid, dw_up=up, dw_down=down)
    assert (dev.w_min, dev.w_max) == (-1.0, 1.0)
    w = torch.linspace(-1, 1, 57, dtype=F64)
    np.testing.assert_allclose(dev.q_plus(w) * dev.dw_min, np.interp(w, grid, up), rtol=1e-12)
    np.testing.assert_allclose(dev.q_minus(w) * dev.dw_min, np.interp(w, grid, down), rtol=1e-12)
    sp = dev.symmetric_point()
    # default dw_min = the mean measured step at the SP, so F(SP) = 1 and a pulse there moves dw_min
    assert dev.dw_min == pytest.approx(reference_step(grid, up, down))
    assert dev.F(sp).item() == pytest.approx(1.0, rel=1e-9)
    assert dev.dw_min == pytest.approx(float(np.interp(sp.item(), grid, up)), rel=1e-9)


def test_piecewise_dw_min_override_scales_steps_and_bound_spread_stretches_table():
    dev = PiecewiseStep()
    doubled = configure(dev, dw_min=2 * dev.dw_min)
    w = torch.linspace(-1, 1, 9, dtype=F64)
    close(doubled.q_plus(w), dev.q_plus(w))  # same shape, q in units of the new dw_min
    p = dev.nominal()
    p.w_max, p.w_min = torch.tensor(2.0, dtype=F64), torch.tensor(-2.0, dtype=F64)
    close(dev.q_plus(2 * w, p), dev.q_plus(w))


def test_piecewise_from_csv(tmp_path):
    path = tmp_path / "dev.csv"
    path.write_text("w,dw_up,dw_down\n-0.5,0.002,0.0005\n0.0,0.001,0.001\n0.5,0.0005,0.002\n")
    dev = PiecewiseStep.from_csv(path)
    assert dev.grid == (-0.5, 0.0, 0.5) and dev.dw_up == (0.002, 0.001, 0.0005)
    assert dev.dw_min == pytest.approx(0.001) and abs(dev.symmetric_point().item()) < 1e-12


# ---- sampling ------------------------------------------------------------------------------------------------


def test_sampling_is_seeded_and_reproducible():
    dev = CASES["soft-bounds"]
    a, b, c = dev.sample((5, 7), gen(1)), dev.sample((5, 7), gen(1)), dev.sample((5, 7), gen(2))
    for f in ("up", "down", "w_max", "w_min"):
        assert torch.equal(getattr(a, f), getattr(b, f)) and not torch.equal(getattr(a, f), getattr(c, f))


def test_sampled_spreads_have_requested_relative_std():
    n = 200_000
    dev = SoftBounds(slope=1.5, dw_min_dtod=0.2, up_down=0.1, up_down_dtod=0.05, w_max_dtod=0.1, w_min_dtod=0.15)
    p = dev.sample((n,), gen(4))
    gamma, rho = (p.up + p.down) / 2, (p.up - p.down) / 2
    # Standard error of a std estimate is std/sqrt(2n) ~ 0.16 % of it; we allow 2 % (> 10 standard errors).
    assert gamma.std().item() / 1.5 == pytest.approx(0.2, rel=0.02)
    assert rho.mean().item() == pytest.approx(0.1, abs=0.001) and rho.std().item() == pytest.approx(0.05, rel=0.02)
    assert p.w_max.std().item() / 0.6 == pytest.approx(0.1, rel=0.02)
    assert p.w_min.std().item() / 0.6 == pytest.approx(0.15, rel=0.02)
    logn = SoftBounds(dw_min_dtod=0.3, dtod_log_normal=True).sample((n,), gen(5))
    assert logn.up.log().std().item() == pytest.approx(0.3, rel=0.02) and (logn.up > 0).all()


@pytest.mark.parametrize("name", ["soft-bounds", "power-step", "exp-step", "preset:reram-hfo2"])
def test_sampled_bounds_keep_their_side_of_zero(name):
    dev = configure(ALL[name], w_max_dtod=3.0, w_min_dtod=3.0)
    p = dev.sample((20_000,), gen(6))
    assert (p.w_max > 0).all() and (p.w_min < 0).all()


# ---- configuration and errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build,field",
    [
        (lambda: SoftBounds(dw_min=0.0), "dw_min"),
        (lambda: ConstantStep(dw_min=-1e-3), "dw_min"),
        (lambda: SoftBounds(w_min=0.5, w_max=0.2), "w_min"),
        (lambda: PowerStep(w_min=1.0, w_max=1.0), "w_min"),
        (lambda: SoftBounds(dw_min_dtod=-0.1), "dw_min_dtod"),
        (lambda: ExpStep(w_max_dtod=-0.1), "w_max_dtod"),
        (lambda: PowerStep(dw_min_std=-1.0), "dw_min_std"),
        (lambda: SoftBounds(up_down_dtod=-0.01), "up_down_dtod"),
        (lambda: PowerStep(gamma_up=0.0), "gamma_up"),
        (lambda: PowerStep(gamma_down=-1.0), "gamma_down"),
        (lambda: p2_power(0.6, 0.0), "gamma_res"),
        (lambda: p1_exp_step(1.0, -1.0, -1.0, 1.0), "gamma_up"),
        (lambda: ExpStep(kappa_up=0.0), "kappa_up"),
        (lambda: PiecewiseStep(grid=(0.0, 0.0, 1.0), dw_up=(1, 1, 1), dw_down=(1, 1, 1)), "grid"),
        (lambda: PiecewiseStep(grid=(0.0, -1.0), dw_up=(1, 1), dw_down=(1, 1)), "grid"),
        (lambda: PiecewiseStep(grid=(0.0, 1.0), dw_up=(1, -1), dw_down=(1, 1)), "dw_up"),
        (lambda: PiecewiseStep(grid=(0.0, 1.0), dw_up=(1, 1), dw_down=(1,)), "dw_down"),
        (lambda: Ideal(dw_min_std=0.1), "dw_min_std"),
        (lambda: Ideal(w_max=1.0), "w_max"),
        (lambda: make_device("soft-bounds", foo=1), "foo"),
        (lambda: make_device("reram-hfo2", gamma_up=1.0), "gamma_up"),
        (lambda: make_device("power-step", gamma_up=-2.0), "gamma_up"),
        (lambda: SoftBounds(dw_min=math.inf), "dw_min"),
        (lambda: make_device("ideal", n_states=10), "n_states needs finite bounds"),
        (lambda: make_device("piecewise", w_max=2.0), "w_max of piecewise follows from grid"),
        (lambda: make_device("piecewise", grid="a,b"), "grid must be a list of numbers"),
        (lambda: SoftBounds(dtod_log_normal=1), "dtod_log_normal"),
    ],
)
def test_bad_input_raises_config_error_naming_the_field(build, field):
    with pytest.raises(ConfigError, match=field):
        build()


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ConfigError) as e:
        make_device("no-such-device")
    assert all(k in str(e.value) for k in list(FAMILIES) + list(PRESETS))
    with pytest.raises(ConfigError) as e:
        get_preset("no-such-preset")
    assert all(k in str(e.value) for k in PRESETS)


@pytest.mark.parametrize("name", ["soft-bounds", "power-step", "piecewise", "preset:gokmen-vlasov"])
def test_configure_n_states_sets_dw_min(name):
    dev = configure(ALL[name], n_states=10)
    assert dev.dw_min == pytest.approx((dev.w_max - dev.w_min) / 10) and dev.n_states == pytest.approx(10)


def test_make_device_family_preset_and_overrides():
    assert type(make_device("exp-step")) is ExpStep and type(make_device("ideal")) is Ideal
    dev = make_device("softbounds-reference", w_max=0.78, w_min=-0.78)
    assert dev == p1_mnist_device(0.78)
    assert dev.dw_min_dtod == 0.3 and dev.c2c_mode == "multiplicative"
    assert make_device("p1-ald", n_states=300).dw_min == pytest.approx(6 / 300)


def test_ideal_is_unit_response_everywhere():
    dev = make_device("ideal")
    w = torch.tensor([-1e3, -1.0, 0.0, 2.0, 1e3], dtype=F64)
    assert torch.equal(dev.q_plus(w), torch.ones_like(w)) and torch.equal(dev.q_minus(w), torch.ones_like(w))
    p = dev.sample((4,), gen(0))
    assert torch.equal(p.up, torch.ones(4, dtype=F64)) and torch.isinf(p.w_max).all()
    out = dev.run(torch.zeros(2, dtype=F64), torch.tensor([3, 5]), torch.tensor([1.0, -1.0]), dev.nominal())
    close(out, torch.tensor([3 * dev.dw_min, -5 * dev.dw_min], dtype=F64))


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_describe_themselves(name):
    pr = get_preset(name)
    assert pr.description and pr.source
    info = pr.build().describe()
    assert math.isfinite(info["symmetric_point"]) and info["family"] in FAMILIES


@pytest.mark.parametrize("mode", ["additive", "multiplicative"])
def test_device_show_traces_use_the_training_paths_cycle_noise(mode):
    """``device show``'s pulse traces (plots.pulse_trace) draw each pulse as training does (pulses.run_with_noise):
    with additive noise the element's slope scales its noise (L1 eq. 2)."""
    from analogtrain.plots import pulse_trace
    from analogtrain.pulses import run_with_noise

    device = make_device("softbounds-reference", dw_min_std=0.3, c2c_mode=mode, dw_min_dtod=0.5)
    p = device.sample((64,), torch.Generator().manual_seed(0))
    assert float((p.up - 1).abs().max()) > 0.1  # the slopes differ from 1, so a missing factor would show
    w0 = torch.zeros(64, dtype=torch.float64)
    for s in (1, -1):
        xi = torch.randn(64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        trace = pulse_trace(device, p, w0, [s], torch.Generator().manual_seed(1))
        sign = torch.full((64,), float(s), dtype=torch.float64)
        trained = run_with_noise(device, p, w0, torch.ones(64), sign, lambda k: xi)
        torch.testing.assert_close(trace[1], trained, rtol=0, atol=1e-15)


def test_piecewise_table_from_the_command_lines_comma_lists():
    """``--set grid=-1,0,1`` arrives as a string; it is the same table as the tuple."""
    text = make_device("piecewise", grid="-1,0,1", dw_up="2e-3,1e-3,0", dw_down="0,1e-3,2e-3", dw_min=None)
    table = make_device("piecewise", grid=(-1, 0, 1), dw_up=(2e-3, 1e-3, 0), dw_down=(0, 1e-3, 2e-3), dw_min=None)
    assert text == table and (text.w_min, text.w_max, text.dw_min) == (-1.0, 1.0, pytest.approx(1e-3))
