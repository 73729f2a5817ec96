"""Analog layers, conversion, the optimizer front and the reference models."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from analogtrain.devices import make_device
from analogtrain.errors import ConfigError
from analogtrain.models import MODELS, build_model
from analogtrain.nn import AnalogConv2d, AnalogLayerConfig, AnalogLinear, AnalogOptimizer, analog_layers, convert
from analogtrain.tile import TileConfig

PERFECT = AnalogLayerConfig(tile=TileConfig.perfect(make_device("ideal"), mode="expected"))


def gen(seed):
    return torch.Generator().manual_seed(seed)


def rows(layer):
    """The pending (x, d) rows of a layer, concatenated as the step will see them."""
    recs = sorted(layer._records, key=lambda r: r[0])
    return torch.cat([r[1] for r in recs]), torch.cat([r[2] for r in recs])


def analog_state(model):
    return [layer.get_extra_state()["state"] for _, layer in analog_layers(model)]


def assert_states_equal(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_states_equal(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            assert_states_equal(u, v)
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    else:
        assert a == b


# ---- equivalence with digital training in the ideal limit -----------------------------------------
@pytest.mark.parametrize("algorithm", ["analog-sgd", "digital-sgd"])
def test_linear_ideal_trains_like_torch_sgd(algorithm):
    cfg = AnalogLayerConfig(tile=PERFECT.tile, algorithm=algorithm)
    analog = AnalogLinear(6, 4, config=cfg, seed=3)
    digital = nn.Linear(6, 4)
    digital.load_state_dict({"weight": analog.weight.detach().clone(), "bias": analog.bias.detach().clone()})
    opt_a, opt_d = AnalogOptimizer(analog.parameters(), lr=0.1), torch.optim.SGD(digital.parameters(), lr=0.1)
    g = gen(0)
    for _ in range(5):
        x, t = torch.randn(8, 6, generator=g), torch.randn(8, 4, generator=g)
        losses = []
        for model, opt in ((analog, opt_a), (digital, opt_d)):
            opt.zero_grad()
            loss = F.mse_loss(model(x), t)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[0] == pytest.approx(losses[1], rel=1e-5)
        assert analog.weight.grad is None
        torch.testing.assert_close(analog.weight, digital.weight, rtol=0, atol=1e-6)
        torch.testing.assert_close(analog.bias, digital.bias, rtol=0, atol=1e-6)


def test_converted_mlp_trains_like_digital_mlp():
    torch.manual_seed(0)
    digital = nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 3))
    analog = convert(copy.deepcopy(digital), PERFECT)
    assert [n for n, _ in analog_layers(analog)] == ["0", "2"]
    opt_a, opt_d = AnalogOptimizer(analog.parameters(), lr=0.2), torch.optim.SGD(digital.parameters(), lr=0.2)
    g = gen(1)
    for _ in range(5):
        x, t = torch.randn(12, 10, generator=g), torch.randint(0, 3, (12,), generator=g)
        la, ld = F.cross_entropy(analog(x), t), F.cross_entropy(digital(x), t)
        assert la.item() == pytest.approx(ld.item(), rel=1e-5)
        for loss, opt in ((la, opt_a), (ld, opt_d)):
            opt.zero_grad()
            loss.backward()
            opt.step()
    for (na, pa), (nd, pd) in zip(analog.named_parameters(), digital.named_parameters()):
        assert na == nd
        torch.testing.assert_close(pa, pd, rtol=0, atol=1e-6)


# ---- convolution ---------------------------------------------------------------------------------
@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1), ((1, 2), (0, 1))])
def test_conv_forward_and_input_grad_match_conv2d(stride, padding):
    layer = AnalogConv2d(3, 5, 3, stride=stride, padding=padding, config=PERFECT, seed=2)
    x = torch.randn(2, 3, 9, 8, generator=gen(0), requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    y = layer(x)
    y_ref = F.conv2d(x_ref, layer.weight.detach(), layer.bias.detach(), stride=stride, padding=padding)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-6)
    t = torch.randn(y.shape, generator=gen(1))
    (y * t).sum().backward()
    (y_ref * t).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-5, atol=1e-6)
    assert layer.weight.grad is None
    torch.testing.assert_close(layer.bias.grad, t.sum(dim=(0, 2, 3)))


def test_conv_update_is_sum_of_patch_rank_one_updates():
    layer = AnalogConv2d(2, 4, 3, stride=2, padding=1, config=PERFECT, seed=5)
    opt = AnalogOptimizer(layer.parameters(), lr=0.05)
    x = torch.randn(3, 2, 7, 6, generator=gen(0))
    y = layer(x)
    t = torch.randn(y.shape, generator=gen(1))
    (y * t).sum().backward()  # dL/dy = t, so d_p = t at each output position
    w0 = layer.algorithm.weight.clone()
    assert torch.equal(layer.algorithm.weight, w0)  # backward records; it never writes
    # patches by hand, sample-major then position (row-major over output positions)
    xp = F.pad(x, (1, 1, 1, 1))
    ho, wo = y.shape[2:]
    xs, ds = [], []
    for b in range(3):
        for i in range(ho):
            for j in range(wo):
                xs.append(xp[b, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3].reshape(-1))
                ds.append(t[b, :, i, j])
    xs, ds = torch.stack(xs), torch.stack(ds)
    rx, rd = rows(layer)
    torch.testing.assert_close(rx, xs)
    torch.testing.assert_close(rd, ds)
    opt.step()
    expected = w0 - 0.05 * sum(torch.outer(d, xv) for d, xv in zip(ds, xs))
    torch.testing.assert_close(layer.algorithm.weight, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(layer.weight, expected.reshape(4, 2, 3, 3))


def test_conv_rejects_bad_input():
    layer = AnalogConv2d(1, 2, 3, config=PERFECT)
    with pytest.raises(ConfigError, match="input"):
        layer(torch.randn(1, 5, 5))
    with pytest.raises(ConfigError, match="input"):
        layer(torch.randn(1, 2, 5, 5))


# ---- conversion ----------------------------------------------------------------------------------
def test_convert_keeps_outputs_and_selects_layers():
    digital = build_model("lenet5", seed=4)
    x = torch.randn(3, 1, 28, 28, generator=gen(0))
    ref = digital(x)
    analog = convert(copy.deepcopy(digital), PERFECT)
    assert [type(m).__name__ for _, m in analog_layers(analog)] == ["AnalogConv2d"] * 2 + ["AnalogLinear"] * 2
    torch.testing.assert_close(analog(x), ref, rtol=1e-5, atol=1e-5)

    some = copy.deepcopy(digital)
    assert convert(some, PERFECT, layers=["3", "9"]) is some
    assert [n for n, _ in analog_layers(some)] == ["3", "9"]
    assert isinstance(some[0], nn.Conv2d) and isinstance(some[7], nn.Linear)
    torch.testing.assert_close(some(x), ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match="convertible: 0, 3, 7, 9"):
        convert(copy.deepcopy(digital), PERFECT, layers=["fc1"])


def test_convert_rejects_grouped_conv_and_subset_seeds_match():
    with pytest.raises(ConfigError, match="groups"):
        convert(nn.Sequential(nn.Conv2d(4, 4, 3, groups=2)), PERFECT)
    cfg = AnalogLayerConfig()  # noisy default: the tile seed matters
    full = build_model("fcn", cfg, seed=7)
    part = build_model("fcn", cfg, layers=["3"], seed=7)
    assert_states_equal(full[3].get_extra_state(), part[3].get_extra_state())


# ---- learnable output scale, records, schedulers ----------------------------------------------------
def test_learnable_out_scale_gets_grad_and_scales_d():
    cfg = AnalogLayerConfig(tile=PERFECT.tile, learn_out_scale=True)
    layer = AnalogLinear(5, 3, config=cfg, seed=1)
    assert layer.out_scale.item() == 1.0
    with torch.no_grad():
        layer.out_scale.fill_(2.0)
    x, t = torch.randn(4, 5, generator=gen(0)), torch.randn(4, 3, generator=gen(1))
    y = layer(x)
    wx = x @ layer.weight.detach().T
    torch.testing.assert_close(y, 2.0 * wx + layer.bias.detach())
    (y * t).sum().backward()
    _, d = rows(layer)
    torch.testing.assert_close(d, 2.0 * t)  # gradient w.r.t. W x includes s
    torch.testing.assert_close(layer.out_scale.grad, (t * wx).sum())
    before = layer.out_scale.item()
    AnalogOptimizer(layer.parameters(), lr=0.1).step()
    assert layer.out_scale.item() == pytest.approx(before - 0.1 * (t * wx).sum().item())


@pytest.mark.parametrize("columnwise", [False, True])
def test_weight_scaling_maps_the_largest_weight_to_omega(columnwise):
    """aihwkit's weight_scaling_omega: arrays hold w / s (max |w / s| = omega), the output is s * (W_a x),
    the update sees d scaled by s, and the scale is part of the module state."""
    cfg = AnalogLayerConfig(tile=PERFECT.tile, weight_scaling_omega=0.6, weight_scaling_columnwise=columnwise)
    layer = AnalogLinear(5, 3, config=cfg, seed=1)
    w = 0.1 * torch.randn(3, 5, generator=gen(2))
    layer.program(w)
    wa = layer.algorithm.weight
    peak = wa.abs().amax(1) if columnwise else wa.abs().max()
    torch.testing.assert_close(peak, torch.full_like(peak, 0.6))
    torch.testing.assert_close(layer.weight.detach(), w)  # the mirror is the real weight
    x, t = torch.randn(4, 5, generator=gen(0)), torch.randn(4, 3, generator=gen(1))
    y = layer(x)
    torch.testing.assert_close(y, x @ w.T + layer.bias.detach())
    (y * t).sum().backward()
    _, d = rows(layer)
    s = layer.weight_scale
    torch.testing.assert_close(d, t * s)  # gradient w.r.t. W_a x
    AnalogOptimizer(layer.parameters(), lr=0.1).step()
    torch.testing.assert_close(layer.algorithm.weight, wa - 0.1 * (t * s).T @ x)  # the tile's own units
    twin = AnalogLinear(5, 3, config=cfg, seed=7)
    twin.load_state_dict(layer.state_dict())
    assert torch.equal(twin.weight_scale, layer.weight_scale) and torch.equal(twin.weight, layer.weight)
    with pytest.raises(ConfigError, match="weight_scaling_omega"):
        AnalogLayerConfig(weight_scaling_omega=-1.0)


def test_state_without_weight_scale_loads_as_unscaled():
    # checkpoints written before weight scaling existed have no weight_scale entry
    layer = AnalogLinear(5, 3, config=PERFECT, seed=1)
    old = {k: v for k, v in layer.state_dict().items() if k != "weight_scale"}
    twin = AnalogLinear(5, 3, config=PERFECT, seed=4)
    twin.weight_scale.fill_(3.0)
    twin.load_state_dict(old)
    assert torch.equal(twin.weight_scale, torch.ones(())) and torch.equal(twin.weight, layer.weight)
    with pytest.raises(RuntimeError, match="bias"):  # every other entry is still required
        twin.load_state_dict({k: v for k, v in old.items() if k != "bias"})


def test_records_order_zero_grad_and_freezing():
    layer = AnalogLinear(4, 2, config=PERFECT)
    opt = AnalogOptimizer(layer.parameters(), lr=0.1)
    x1, x2 = torch.randn(3, 4, generator=gen(0)), torch.randn(2, 4, generator=gen(1))
    (layer(x1).sum() + 2 * layer(x2).sum()).backward()  # one backward, two forwards
    rx, rd = rows(layer)
    torch.testing.assert_close(rx, torch.cat([x1, x2]))  # forward order
    torch.testing.assert_close(rd, torch.cat([torch.ones(3, 2), 2 * torch.ones(2, 2)]))
    w = layer.algorithm.weight.clone()
    opt.zero_grad()  # drops pending records like the digital grads
    assert layer.pending_rows == 0
    opt.step()
    assert torch.equal(layer.algorithm.weight, w)
    with torch.no_grad():
        layer(x1)
    layer.weight.requires_grad_(False)
    layer(x1).sum().backward()
    assert layer.pending_rows == 0


@pytest.mark.parametrize("make_sched", [
    lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=1, gamma=0.5),
    lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 0.5 ** e),
])
def test_scheduler_sets_the_analog_lr(make_sched):
    layer = AnalogLinear(4, 3, config=PERFECT, seed=2)
    opt = AnalogOptimizer(layer.parameters(), lr=0.2)
    sched = make_sched(opt)
    x, t = torch.randn(5, 4, generator=gen(0)), torch.randn(5, 3, generator=gen(1))
    changes = []
    for _ in range(2):
        w = layer.weight.detach().clone()
        opt.zero_grad()
        (layer(x) * t).sum().backward()  # d = t, independent of W
        opt.step()
        sched.step()
        changes.append(layer.weight.detach() - w)
    assert changes[0].abs().max() > 0
    torch.testing.assert_close(changes[1], 0.5 * changes[0], rtol=1e-4, atol=1e-7)


# ---- checkpoints -------------------------------------------------------------------------------
class Small(nn.Module):
    def __init__(self, cfg, seed):
        super().__init__()
        self.conv = AnalogConv2d(1, 3, 3, stride=2, config=cfg, seed=seed)
        self.fc = AnalogLinear(27, 4, config=cfg, seed=seed + 1)

    def forward(self, x):
        return self.fc(torch.tanh(self.conv(x)).flatten(1))


def train(model, opt, steps, seed):
    g = gen(seed)
    for _ in range(steps):
        x, t = torch.randn(4, 1, 7, 7, generator=g), torch.randint(0, 4, (4,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(x), t).backward()
        opt.step()


def test_model_state_dict_round_trip_is_bit_for_bit():
    cfg = AnalogLayerConfig()  # default: noisy periphery, stochastic pulse trains, device variations
    a = Small(cfg, 0)
    opt_a = AnalogOptimizer(a.parameters(), lr=0.1, momentum=0.9)
    train(a, opt_a, 3, seed=0)
    model_sd, opt_sd = copy.deepcopy(a.state_dict()), copy.deepcopy(opt_a.state_dict())
    b = Small(cfg, 11)
    assert not torch.equal(a.fc.weight, b.fc.weight)
    b.load_state_dict(model_sd)
    opt_b = AnalogOptimizer(b.parameters(), lr=0.1, momentum=0.9)
    opt_b.load_state_dict(opt_sd)
    train(a, opt_a, 3, seed=1)
    train(b, opt_b, 3, seed=1)
    for (n, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(pa, pb), n
    assert_states_equal(analog_state(a), analog_state(b))
    assert a.fc.algorithm.pulse_count > 0


def test_optimizer_state_dict_alone_restores_analog_state():
    cfg = AnalogLayerConfig()
    a = Small(cfg, 0)
    opt_a = AnalogOptimizer(a.parameters(), lr=0.1)
    train(a, opt_a, 2, seed=0)
    sd = copy.deepcopy(opt_a.state_dict())
    assert len(sd["analog"]) == 2
    b = Small(cfg, 11)
    opt_b = AnalogOptimizer(b.parameters(), lr=0.1)
    opt_b.load_state_dict(sd)
    assert_states_equal(analog_state(a), analog_state(b))
    assert torch.equal(a.conv.weight, b.conv.weight) and torch.equal(a.fc.weight, b.fc.weight)


# ---- reference models ---------------------------------------------------------------------------
SHAPES = {"fcn": (2, 1, 28, 28), "lenet5": (2, 1, 28, 28), "resnet20": (2, 3, 32, 32)}


@pytest.mark.parametrize("name", MODELS)
def test_build_model_shapes_and_seeding(name):
    x = torch.randn(*SHAPES[name], generator=gen(0))
    m = build_model(name, seed=3)
    assert m(x).shape == (2, 10)
    same, other = build_model(name, seed=3), build_model(name, seed=4)
    assert all(torch.equal(p, q) for p, q in zip(m.parameters(), same.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(m.parameters(), other.parameters()))


@pytest.mark.parametrize("name", MODELS)
def test_analog_models_train_with_default_tiles(name):
    model = build_model(name, AnalogLayerConfig(learn_out_scale=True), seed=1)
    opt = AnalogOptimizer(model.parameters(), lr=0.05)
    before = [layer.algorithm.tile.conductance.clone() for _, layer in analog_layers(model)]
    x, t = torch.randn(*SHAPES[name], generator=gen(0)), torch.tensor([1, 7])
    out = model(x)
    assert out.shape == (2, 10)
    opt.zero_grad()
    F.cross_entropy(out, t).backward()
    opt.step()
    for (lname, layer), c0 in zip(analog_layers(model), before):
        assert not torch.equal(layer.algorithm.tile.conductance, c0), lname
        assert layer.weight.grad is None and layer.out_scale.grad is not None
        assert torch.equal(layer.weight.detach().reshape(layer.weight.shape[0], -1), layer.algorithm.weight)


def test_config_errors():
    with pytest.raises(ConfigError, match="algorithm"):
        AnalogLayerConfig(algorithm="nope")
    with pytest.raises(ConfigError, match="unknown model"):
        build_model("vgg")
    with pytest.raises(ConfigError, match="depth"):
        from analogtrain.models import resnet_cifar
        resnet_cifar(depth=21)


def test_deep_copied_model_is_found_by_the_optimizer():
    model = build_model("fcn", PERFECT, seed=0)
    twin = copy.deepcopy(model)
    opt = AnalogOptimizer(twin.parameters(), lr=0.1)
    assert len(opt.state_dict()["analog"]) == 3
    F.nll_loss(twin(torch.randn(2, 1, 28, 28, generator=gen(0))), torch.tensor([0, 1])).backward()
    opt.step()
    assert not torch.equal(twin[5].weight, model[5].weight)
    assert torch.equal(model[5].weight.detach(), model[5].algorithm.weight)


def test_moving_to_another_device_is_refused_and_dtype_casts_still_work():
    model = build_model("fcn", PERFECT, seed=0)
    with pytest.raises(ConfigError, match="cannot move to device 'meta'.*CPU only"):
        model.to("meta")
    assert all(p.device.type == "cpu" for p in model.parameters())  # its first layer with parameters is analog
    # digital layers ahead of the analog one have moved when the refusal comes, and the message says so
    resnet = build_model("resnet20", AnalogLayerConfig(tile=PERFECT.tile), layers=["fc"], seed=0)
    with pytest.raises(ConfigError, match="model.to\\('cpu'\\) brings back any layer moved before"):
        resnet.to("meta")
    assert resnet.fc.weight.device.type == "cpu"
    model.to("cpu").double()  # a CPU cast is not a move
    x = torch.randn(2, 1, 28, 28, generator=gen(0), dtype=torch.float64)
    assert model(x).dtype == torch.float64
