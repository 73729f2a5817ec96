"""The transfer fast paths against their references, bit for bit (same random draws, same order).

* ``AnalogTile._read_gather`` (column gather) vs ``AnalogTile._read_onehot`` (one-hot MVM through io.mvm);
* ``fire_pulses`` with columns (``AnalogTile._send_pulses_at`` / ``pulses.apply_pulses_at``, numba
  per-pulse loop on float32) and ``AnalogTile.send_pulses`` (its CPU path) vs the full count matrix through
  ``AnalogTile._send_pulses_reference``;
* ``steps.buffer_pulses`` (numpy on the columns) vs its composition ``accumulate``/``decay_filter`` ->
  ``threshold_pulses`` -> ``fire_pulses``; c-TTv2's ``advance_choppers`` and AGAD's ``transfer`` (numpy)
  vs their torch references;
* the mixed read with scalar coefficients (gamma = 0, a coefficient of exactly 1) vs the general path;
* whole c-TTv2 / AGAD / TT-v2 / RL-v2 / Tiki-Taka training steps with the fast paths vs with every
  reference forced.
"""

from __future__ import annotations

import pytest
import torch

from analogtrain import pulses
from analogtrain.algorithms import cttv2 as cttv2_module
from analogtrain.algorithms import steps
from analogtrain.algorithms.agad import AGAD
from analogtrain.algorithms.cttv2 import ChoppedTTv2
from analogtrain.algorithms.tiki_taka import TikiTaka
from analogtrain.algorithms.ttv2 import ResidualLearningV2, TikiTakaV2
from analogtrain.devices import FAMILIES, make_device
from analogtrain.errors import ConfigError
from analogtrain.io import IOConfig
from analogtrain.pulses import UpdateConfig
from analogtrain.tile import AnalogTile, ReferenceConfig, TileConfig

TERM = steps._term
PRESETS = ["softbounds-reference", "reram-hfo2"]  # multiplicative c2c (per-pulse loop); additive c2c + write noise


def bits(t: torch.Tensor) -> bytes:
    """Exact bit pattern (tells -0.0 from +0.0, unlike torch.equal)."""
    return t.detach().contiguous().numpy().tobytes()


def same_tile(a: AnalogTile, b: AnalogTile) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    for k in ("conductance", "reference", "write_noise"):
        assert bits(sa[k]) == bits(sb[k]), k
    assert torch.equal(sa["generator"], sb["generator"])
    assert sa["pulse_count"] == sb["pulse_count"]


def twin_tiles(device, shape=(12, 9), dtype=torch.float32, reference=None, read=None, seed=3):
    cfg = TileConfig(device=device, reference=reference or ReferenceConfig(), read=read or TileConfig().read)
    a, b = (AnalogTile(*shape, cfg, seed=seed, dtype=dtype) for _ in range(2))
    w = (torch.rand(shape, generator=torch.Generator().manual_seed(seed + 1)) - 0.5) * 0.6
    a.program(w)
    b.program(w)
    same_tile(a, b)
    return a, b


# ---- reads ---------------------------------------------------------------------------------------
READS = {
    "transfer-default": TileConfig().read,
    "perfect": IOConfig.perfect(),
    "abs-max-no-bm": IOConfig(bound_management="none"),
    # DAC code != 1 (coarse grid, clipped input range) and a clipping ADC, both noisy
    "coarse-clipped": IOConfig(inp_res=0.3, inp_bound=0.7, out_res=0.05, out_bound=0.05, out_noise=0.1,
                               bound_management="none"),
    "no-out-noise": IOConfig(out_noise=0.0, noise_management="none", bound_management="none"),
}


@pytest.mark.parametrize("read", list(READS), ids=list(READS))
@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_read_gather_equals_onehot_mvm(read, preset, dtype):
    ref = ReferenceConfig(mean=0.01, std=0.05)  # a differential read against a non-zero reference
    a, b = twin_tiles(make_device(preset), dtype=dtype, reference=ref, read=READS[read])
    for cols in ([4], [0], [8, 2, 5], [3, 3]):
        c = torch.tensor(cols)
        fast, slow = a._read_gather(c), b._read_onehot(c)
        assert fast.shape == slow.shape == (12, len(cols))
        assert bits(fast) == bits(slow), cols
        assert torch.equal(a.generator.get_state(), b.generator.get_state())
        steps.fire_pulses(a, torch.ones(12, 1), torch.tensor([cols[0]]))  # move the weights (and write noise)
        steps.fire_pulses(b, torch.ones(12, 1), torch.tensor([cols[0]]))
    assert torch.equal(a.read(torch.tensor([1, 7])), b._read_onehot(torch.tensor([1, 7])))


@pytest.mark.parametrize("read", list(READS), ids=list(READS))
def test_read_gather_of_negative_zero(read):
    a, b = twin_tiles(make_device("softbounds-reference"), read=READS[read])  # no write noise, no reference
    for t in (a, b):
        t.conductance[:, 4] = -0.0  # the matmul's sum gives +0.0 for a -0.0 weight
        t.conductance[:5, 2] = -0.0
    c = torch.tensor([4, 2])
    assert bits(a._read_gather(c)) == bits(b._read_onehot(c))


def test_read_uses_the_reference_path_when_the_gather_does_not_apply():
    # input noise makes the one-hot dense; iterative bound management re-reads saturated columns
    for read in (IOConfig(inp_noise=0.1, bound_management="none"), IOConfig(out_bound=0.05)):
        a, b = twin_tiles(make_device("reram-hfo2"), read=read)
        assert bits(a.read([2, 6])) == bits(b._read_onehot(torch.tensor([2, 6])))
        same_tile(a, b)


# ---- pulses onto columns ----------------------------------------------------------------------------
def _counts(seed, rows, k, max_count=3):
    g = torch.Generator().manual_seed(seed)
    c = torch.randint(-max_count, max_count + 1, (rows, k), generator=g).double()
    return c * (torch.rand(rows, k, generator=g) < 0.7)


def _fire_reference(tile, counts, cols):
    full = torch.zeros(tile.shape, dtype=torch.float64)
    full[:, cols] = counts.double()
    return tile._send_pulses_reference(full)


def _with_variations(name):
    if name == "ideal":
        return make_device(name, dw_min=0.05)
    return make_device(name, dw_min=0.05, dw_min_dtod=0.2, up_down_dtod=0.05, w_max_dtod=0.2, w_min_dtod=0.2,
                       dw_min_std=0.2)


DEVICES = {
    **{p: make_device(p) for p in PRESETS},
    "softbounds-multiplicative-write-noise": make_device("softbounds-reference", dw_min=0.02, write_noise_std=0.5),
    **{f"{f}-multiplicative": _with_variations(f).replace(c2c_mode="multiplicative") for f in FAMILIES},
    **{f"{f}-additive": _with_variations(f) for f in FAMILIES},
}


@pytest.mark.parametrize("device", list(DEVICES), ids=list(DEVICES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fire_pulses_on_columns_equals_full_matrix(device, dtype):
    a, b = twin_tiles(DEVICES[device], dtype=dtype)
    total = 0
    for step, cols in enumerate(([4], [0], [8, 2, 5], [7, 1], [3])):
        counts = _counts(step, 12, len(cols))
        c = torch.tensor(cols)
        sent = steps.fire_pulses(a, counts, c)
        assert sent == _fire_reference(b, counts, c) > 0
        same_tile(a, b)
        total += sent
    zero = torch.zeros(12, 1)
    assert steps.fire_pulses(a, zero, torch.tensor([2])) == 0 == _fire_reference(b, zero, [2])
    same_tile(a, b)
    assert a.pulse_count == total
    assert not torch.equal(a.conductance, twin_tiles(DEVICES[device], dtype=dtype)[0].conductance)


@pytest.mark.parametrize("device", list(DEVICES), ids=list(DEVICES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_send_pulses_equals_its_reference(device, dtype):
    """Whole count matrices (zero-shifting's +-1 on every element, then mixed counts with zeros) through
    ``send_pulses``' CPU path and through the torch reference."""
    a, b = twin_tiles(DEVICES[device], dtype=dtype)
    sign = torch.randint(0, 2, (12, 9), generator=torch.Generator().manual_seed(7)).double() * 2 - 1
    for counts in (sign, -sign, _counts(8, 12, 9), torch.zeros(12, 9)):
        assert a.send_pulses(counts) == b._send_pulses_reference(counts) == counts.abs().sum()
        same_tile(a, b)
    assert a.pulse_count > 0


def test_apply_pulses_at_equals_apply_pulses_with_many_pulses():
    device = make_device("softbounds-reference", dw_min=0.05)  # multiplicative c2c: the numba loop
    p = device.sample((10, 6), torch.Generator().manual_seed(1))
    w = device.clip((torch.rand(10, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64) - 0.5), p)
    w = w.float()
    n = torch.randint(0, 9, (10, 6), generator=torch.Generator().manual_seed(3)).double()
    sign = torch.where(torch.rand(10, 6, generator=torch.Generator().manual_seed(4)) < 0.5, -1.0, 1.0).double()
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    ref = pulses.apply_pulses(device, p, w, n, sign, g1)
    idx = (n.reshape(-1) > 0).nonzero().squeeze(1)
    new = pulses.apply_pulses_at(device, p, w, idx, n.reshape(-1)[idx], sign.reshape(-1)[idx], g2)
    fast = w.reshape(-1).clone()
    fast[idx] = new
    assert bits(fast.reshape(10, 6)) == bits(ref)
    assert not torch.equal(ref, w)
    assert torch.equal(g1.get_state(), g2.get_state())


def test_fire_pulses_keeps_the_reference_path_for_other_column_specs():
    a, b = twin_tiles(make_device("reram-hfo2"))
    counts = _counts(9, 12, 2)
    assert steps.fire_pulses(a, counts, [6, 6]) == _fire_reference(b, counts, [6, 6])  # list, duplicates
    same_tile(a, b)


# ---- whole training steps -------------------------------------------------------------------------------
class _Reference:
    """Force every reference path: one-hot MVM reads, full-matrix pulses, torch buffer and chopper steps."""

    def __init__(self, monkeypatch):
        for module in (steps, cttv2_module):  # no column list: the torch references
            monkeypatch.setattr(module, "distinct_columns", lambda cols, n_in: None)
        monkeypatch.setattr(AnalogTile, "read", lambda self, cols: self._read_onehot(
            torch.as_tensor(cols, dtype=torch.long).reshape(-1)))

        def send_at(self, idx, counts):
            full = torch.zeros(self.shape, dtype=torch.float64)
            full.view(-1)[idx] = counts.double()
            return self._send_pulses_reference(full)

        monkeypatch.setattr(AnalogTile, "_send_pulses_at", send_at)
        monkeypatch.setattr(AnalogTile, "send_pulses", AnalogTile._send_pulses_reference)


def _train(cls, preset, options, steps_n=40):
    tile = TileConfig(device=make_device(preset), update=UpdateConfig(mode="stochastic", bl=31))
    alg = cls.build(10, 7, tile, seed=11, **options)
    alg.program(torch.rand(10, 7, generator=torch.Generator().manual_seed(1)) * 0.2 - 0.1)
    g = torch.Generator().manual_seed(2)
    for _ in range(steps_n):
        x = torch.rand(4, 7, generator=g)
        d = torch.randn(4, 10, generator=g) * 0.5
        alg.step(x, d, 0.5)
    return alg.state_dict()


ALGORITHMS = [
    (TikiTaka, {}),
    (TikiTakaV2, {"max_pulses": 0}),
    (TikiTakaV2, {"n_columns": 2, "forget_buffer": True, "momentum": 0.3, "max_pulses": 2, "transfer_lr": 5.0}),
    (ResidualLearningV2, {"transfer_lr": 0.5}),
    (ChoppedTTv2, {"n_columns": 3, "in_chop_prob": 0.3}),
    (ChoppedTTv2, {"max_pulses": 0, "transfer_lr": 5.0}),
    (AGAD, {"n_columns": 2, "in_chop_prob": 0.5, "transfer_lr": 5.0}),
]


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("cls,options", ALGORITHMS, ids=[f"{c.name}-{i}" for i, (c, _) in enumerate(ALGORITHMS)])
def test_training_steps_equal_with_reference_paths(cls, options, preset, monkeypatch):
    calls = []
    with monkeypatch.context() as m:  # the fast run does take the fast paths
        m.setattr(steps, "distinct_columns", lambda cols, n_in, f=steps.distinct_columns: calls.append(1) or f(cols, n_in))
        fast = _train(cls, preset, options)
    assert calls or cls is TikiTaka  # (Tiki-Taka's transfer is a pulsed update: no column fast path)
    with monkeypatch.context() as m:
        _Reference(m)
        ref = _train(cls, preset, options)
    assert fast["tiles"]["W"]["pulse_count"] > 0
    for name in fast["tiles"]:
        for k in ("conductance", "write_noise"):
            assert bits(fast["tiles"][name][k]) == bits(ref["tiles"][name][k]), (name, k)
        assert torch.equal(fast["tiles"][name]["generator"], ref["tiles"][name]["generator"])
        assert fast["tiles"][name]["pulse_count"] == ref["tiles"][name]["pulse_count"]
    for k in fast["buffers"]:
        assert bits(fast["buffers"][k]) == bits(ref["buffers"][k]), k
    assert fast["counters"] == ref["counters"]
    assert torch.equal(fast["generator"], ref["generator"])


@pytest.mark.parametrize("cols", [[-1], [9], [0, 9], list(range(8)) * 3 + [9]])
def test_read_rejects_columns_outside_the_array(cols):
    from analogtrain.errors import ConfigError

    tile = AnalogTile(12, 9, seed=0)
    with pytest.raises(ConfigError, match="columns must lie"):
        tile.read(cols)


# ---- buffered threshold transfer, choppers, mixed reads ----------------------------------------------
BUFFER_OPTIONS = {
    "accumulate": {},
    "no-cap": {"max_pulses": 0},
    "cap-2-momentum": {"max_pulses": 2, "momentum": 0.25},
    "forget": {"forget": True, "momentum": 0.5, "max_pulses": 0},
    "decay": {"decay": True},
}


@pytest.mark.parametrize("name,opts", [("multi-tile", {"n_tiles": 4, "gamma": 0.3}), ("cttv2", {"gamma": 0.4}),
                                       ("agad", {"gamma": 0.4}), ("tiki-taka", {"gamma": 0.5})])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_perfect_periphery_reads_the_summed_weight_once(name, opts, dtype, monkeypatch):
    # with a perfect periphery the mixed read is one product with the summed weight; it must equal the
    # sum of the arrays' own reads (up to float rounding), per-column chopper coefficients included
    from analogtrain.algorithms import make_algorithm

    tile = TileConfig.perfect(make_device("reram-om"))
    alg = make_algorithm(name, 7, 5, tile, seed=4, dtype=dtype, **opts)
    g = torch.Generator().manual_seed(9)
    for t in alg.tiles.values():
        t.program((torch.rand(7, 5, generator=g) * 0.6 - 0.3).to(dtype))
    if "chop" in alg.buffers:
        alg.buffers["chop"][1::2] = -1.0
    x, d = torch.rand(3, 5, generator=g, dtype=dtype), torch.randn(3, 7, generator=g, dtype=dtype)
    calls = []
    monkeypatch.setattr(steps, "_term", lambda *a: calls.append(a) or TERM(*a))
    fast = (alg.forward(x), alg.backward(d))
    assert calls == []  # no per-array read
    w = alg.weight.double()
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert fast[0].dtype == x.dtype and torch.allclose(fast[0].double(), x.double() @ w.T, atol=tol, rtol=0)
    assert torch.allclose(fast[1].double(), d.double() @ w, atol=tol, rtol=0)
    terms = [(c, t) for c, t in alg.mix() if not steps._is_zero(c)]
    per_array = sum(TERM(c, t, x, "forward") for c, t in terms)
    assert len(terms) > 1 and torch.allclose(fast[0], per_array, atol=tol, rtol=0)
    with pytest.raises(ConfigError, match="x"):
        alg.forward(torch.full((1, 5), float("nan")))


def test_mixed_read_summed_is_one_read_of_the_summed_weight_and_separate_reads_every_array(monkeypatch):
    from analogtrain.algorithms import make_algorithm
    from analogtrain.io import mvm

    tile = TileConfig(device=make_device("reram-om"))  # the default, noisy periphery
    x = torch.rand(2, 3, generator=torch.Generator().manual_seed(0))
    calls = []
    monkeypatch.setattr(steps, "_term", lambda *a: calls.append(a) or TERM(*a))
    alg = make_algorithm("multi-tile", 4, 3, tile, seed=0, n_tiles=3)
    main = alg.mix()[0][1]
    twin = torch.Generator().manual_seed(0)
    twin.set_state(main.generator.get_state())
    others = [t.generator.get_state() for _, t in alg.mix()[1:]]
    expected = mvm(alg.weight, x, main.config.forward, twin)  # aihwkit's read of a compound: one MVM
    assert torch.equal(alg.forward(x), expected) and calls == []
    assert torch.equal(main.generator.get_state(), twin.get_state())
    assert all(torch.equal(t.generator.get_state(), s) for (_, t), s in zip(alg.mix()[1:], others))
    separate = make_algorithm("multi-tile", 4, 3, tile, seed=0, n_tiles=3, mixed_read="separate")
    separate.forward(x)
    assert len(calls) == 3  # one MVM per array, each through its own periphery
    with pytest.raises(ConfigError, match="mixed_read"):
        make_algorithm("tiki-taka", 4, 3, tile, mixed_read="both")


@pytest.mark.parametrize("opts", list(BUFFER_OPTIONS), ids=list(BUFFER_OPTIONS))
@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("vtype", [torch.float32, torch.float64])
def test_buffer_pulses_equals_composition(opts, preset, vtype):
    kw = {"max_pulses": 1, "forget": False, "momentum": 0.0, "decay": False, **BUFFER_OPTIONS[opts]}
    a, b = twin_tiles(make_device(preset))
    ha, hb = (torch.zeros(12, 9, dtype=torch.float64) for _ in range(2))
    thr, rate = 0.7 * a.device.dw_min, 0.4 if kw["decay"] else 1.3
    g = torch.Generator().manual_seed(7)
    total = 0
    for step, cols in enumerate(([4], [0], [8, 2, 5], [7, 1], [3], [4], [2, 5, 8])):
        v = (torch.randn(12, len(cols), generator=g, dtype=torch.float64) * 3 * a.device.dw_min).to(vtype)
        c = torch.tensor(cols)
        sent = steps.buffer_pulses(a, ha, c, v, rate, thr, kw["max_pulses"], kw["forget"], kw["momentum"],
                                   decay=kw["decay"])
        # the reference: the composition of the steps, then the full count matrix
        h = steps.decay_filter(hb[:, c], v, rate) if kw["decay"] else steps.accumulate(hb[:, c], v, rate)
        n, h = steps.threshold_pulses(h, thr, kw["max_pulses"], kw["forget"], kw["momentum"])
        hb[:, c] = h
        assert sent == _fire_reference(b, n, c)
        assert bits(ha) == bits(hb), step
        same_tile(a, b)
        total += sent
    assert total > 0 and bool(ha.any())


@pytest.mark.parametrize("random", [True, False])
def test_advance_choppers_equals_reference(random, monkeypatch):
    fast, ref = (ChoppedTTv2.build(5, 9, seed=4, in_chop_prob=0.4, in_chop_random=random) for _ in range(2))
    flipped = 0
    for cols in ([3], [0], [8, 2, 5], [3], [7, 1], [3], [6]) * 3:
        c = torch.tensor(cols)
        f1 = fast.advance_choppers(c)
        with monkeypatch.context() as m:
            m.setattr(steps, "distinct_columns", lambda cols, n_in: None)  # advance_choppers' torch path
            f2 = ref.advance_choppers(c)
        assert torch.equal(f1, f2) and f1.dtype == f2.dtype == torch.bool
        for k in ("reads", "chop"):
            assert bits(fast.buffers[k]) == bits(ref.buffers[k]), k
        assert torch.equal(fast.generator.get_state(), ref.generator.get_state())
        flipped += int(f1.sum())
    assert flipped > 0


@pytest.mark.parametrize("cls", [ChoppedTTv2, AGAD, TikiTaka])
@pytest.mark.parametrize("gamma", [0.0, 0.3])
def test_mixed_read_with_scalar_coefficients_equals_general_path(cls, gamma, monkeypatch):
    # the general path: c-TTv2 / AGAD's tensor coefficients gamma * chop even for gamma = 0, and the
    # multiply by a coefficient of exactly 1
    def general_mix(self):
        if cls is TikiTaka:
            return [(1.0, self.W), (self.opts["gamma"], self.P)]
        gc = self.opts["gamma"] * self.buffers["chop"]
        terms = [(1.0, self.W), (gc, self.P)]
        return terms + [(-gc, self.buffers["p_ref"])] if cls is AGAD else terms

    tile = TileConfig(device=make_device("reram-hfo2"))
    fast, ref = (cls.build(6, 5, tile, seed=2, gamma=gamma) for _ in range(2))
    g = torch.Generator().manual_seed(3)
    for alg in (fast, ref):
        alg.program(torch.rand(6, 5, generator=torch.Generator().manual_seed(1)) * 0.4 - 0.2)
        alg.P.program(torch.rand(6, 5, generator=torch.Generator().manual_seed(2)) * 0.4 - 0.2)
        if cls is not TikiTaka:
            alg.buffers["chop"][1::2] = -1.0
        if cls is AGAD:
            alg.buffers["p_ref"].copy_(torch.rand(6, 5, generator=torch.Generator().manual_seed(5), dtype=torch.float64))
    x, d = torch.rand(3, 5, generator=g), torch.randn(3, 6, generator=g)
    outs = [fast.forward(x), fast.backward(d), fast.weight]
    with monkeypatch.context() as m:
        m.setattr(cls, "mix", general_mix)
        m.setattr(steps, "_is_one", lambda c: False)
        refs = [ref.forward(x), ref.backward(d), ref.weight]
    for o, r in zip(outs, refs):
        assert o.dtype == r.dtype and bits(o) == bits(r)
    for name in fast.tiles:
        same_tile(fast.tiles[name], ref.tiles[name])
    w = fast.weight  # a new tensor, never the array itself
    w.add_(1.0)
    assert not torch.equal(fast.weight, w)


@pytest.mark.parametrize("opts", list(BUFFER_OPTIONS), ids=list(BUFFER_OPTIONS))
def test_buffer_pulses_bits_on_many_elements(opts):
    # many rounding cases of rate * v, h / threshold and h - counts * threshold (no fused multiply-add)
    kw = {"max_pulses": 1, "forget": False, "momentum": 0.0, "decay": False, **BUFFER_OPTIONS[opts]}
    a, b = twin_tiles(make_device("reram-hfo2"), shape=(3000, 5))
    g = torch.Generator().manual_seed(8)
    h0 = torch.randn(3000, 5, generator=g, dtype=torch.float64) * a.device.dw_min
    ha, hb = h0.clone(), h0.clone()
    c, thr, rate = torch.tensor([3, 0, 1]), 0.7 * a.device.dw_min, 0.37 if kw["decay"] else 1.3
    v = torch.randn(3000, 3, generator=g, dtype=torch.float64) * 2 * a.device.dw_min
    sent = steps.buffer_pulses(a, ha, c, v, rate, thr, kw["max_pulses"], kw["forget"], kw["momentum"],
                               decay=kw["decay"])
    h = steps.decay_filter(hb[:, c], v, rate) if kw["decay"] else steps.accumulate(hb[:, c], v, rate)
    n, h = steps.threshold_pulses(h, thr, kw["max_pulses"], kw["forget"], kw["momentum"])
    hb[:, c] = h
    assert sent == _fire_reference(b, n, c) > 1000
    assert bits(ha) == bits(hb)
    same_tile(a, b)
