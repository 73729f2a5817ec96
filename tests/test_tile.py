"""The tile: reads through the periphery, updates in every mode, determinism, checkpoints, errors."""

import pytest
import torch

from analogtrain.algorithms import AnalogSGD, DigitalSGD
from analogtrain.devices.soft_bounds import SoftBounds, ald
from analogtrain.errors import ConfigError
from analogtrain.io import IOConfig
from analogtrain.pulses import UpdateConfig
from analogtrain.tile import AnalogTile, TileConfig

NOISY = SoftBounds(dw_min=0.001, dw_min_dtod=0.3, dw_min_std=0.3, up_down_dtod=0.01,
                   w_max_dtod=0.3, w_min_dtod=0.3, write_noise_std=0.5)


def signals(seed, b=4, n_in=12, n_out=7):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, n_in, generator=g), torch.randn(b, n_out, generator=g) * 0.2


def run(tile, steps=5, seed=0):
    for k in range(steps):
        x, d = signals(seed + k)
        tile.forward(x)
        tile.backward(d)
        tile.update(x, d, 0.05)
    return tile


@pytest.mark.parametrize("mode", ["stochastic", "expected", "pulses"])
def test_seeded_tiles_are_bit_identical_across_constructions(mode):
    cfg = TileConfig(device=NOISY, update=UpdateConfig(mode=mode))
    a, b = run(AnalogTile(7, 12, cfg, seed=3)), run(AnalogTile(7, 12, cfg, seed=3))
    c = run(AnalogTile(7, 12, cfg, seed=4))
    assert torch.equal(a.conductance, b.conductance) and torch.equal(a.write_noise, b.write_noise)
    assert not torch.equal(a.conductance, c.conductance)
    assert a.pulse_count == b.pulse_count


@pytest.mark.parametrize("mode", ["stochastic", "expected", "pulses"])
def test_state_dict_round_trip_continues_identically(mode):
    cfg = TileConfig(device=NOISY, update=UpdateConfig(mode=mode))
    a = run(AnalogTile(7, 12, cfg, seed=1), steps=3)
    state = a.state_dict()
    b = AnalogTile(7, 12, cfg, seed=99)  # other seed: everything must come from the state
    b.load_state_dict(state)
    run(a, steps=4, seed=50)
    run(b, steps=4, seed=50)
    assert torch.equal(a.conductance, b.conductance)
    assert torch.equal(a.weight, b.weight)
    assert a.pulse_count == b.pulse_count
    torch.testing.assert_close(a.forward(torch.ones(12)), b.forward(torch.ones(12)), rtol=0, atol=0)


def test_perfect_tile_with_ideal_response_is_digital_sgd():
    """q = 1 everywhere (ALD with a huge range), exact reads, expected mode: Analog SGD == SGD."""
    dev = ald(1e9, dw_min=1e-3)
    analog = AnalogSGD(AnalogTile(7, 12, TileConfig.perfect(dev), dtype=torch.float64))
    digital = DigitalSGD(AnalogTile(7, 12, TileConfig.perfect(dev), dtype=torch.float64))
    w0 = torch.randn(7, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.3
    analog.tile.program(w0)
    digital.tile.program(w0)
    for k in range(5):
        x, d = signals(k)
        x, d = x.double(), d.double()
        assert torch.equal(analog.forward(x), x @ analog.weight.T)
        analog.step(x, d, 0.1)
        digital.step(x, d, 0.1)
    torch.testing.assert_close(analog.weight, digital.weight, rtol=1e-7, atol=1e-12)
    assert not torch.equal(digital.weight, w0)


def test_stochastic_mode_follows_the_sgd_direction():
    """Averaged over many seeded steps, the pulse-train update points along -lr d x^T."""
    dev = SoftBounds(dw_min=1e-4, w_max=10.0, w_min=-10.0)
    tile = AnalogTile(7, 12, TileConfig(device=dev, forward=IOConfig.perfect(), backward=IOConfig.perfect()))
    x, d = signals(0, b=1)
    for _ in range(200):
        tile.update(x, d, 0.01)
    cos = torch.nn.functional.cosine_similarity(tile.weight.flatten(), (-(d.T @ x)).flatten(), dim=0)
    assert cos > 0.98


def test_program_read_and_symmetric_point():
    dev = SoftBounds(up_down=0.2)
    tile = AnalogTile(3, 4, TileConfig(device=dev, read=IOConfig.perfect()))
    target = torch.linspace(-0.5, 0.5, 12).view(3, 4)
    tile.program(target)
    torch.testing.assert_close(tile.read([1, 3]), target[:, [1, 3]])
    torch.testing.assert_close(tile.symmetric_point(), dev.symmetric_point().expand(3, 4))
    tile.program(torch.full((3, 4), 5.0))  # beyond the bounds: clipped
    assert (tile.conductance <= 0.6 + 1e-7).all()


def test_write_noise_is_redrawn_only_where_pulses_land():
    tile = AnalogTile(7, 12, TileConfig(device=NOISY), seed=2)
    before = tile.write_noise.clone()
    x, d = signals(0, b=1)
    x[:, 6:] = 0  # half the columns receive no pulse
    tile.update(x, d, 0.05)
    changed = tile.write_noise != before
    assert changed[:, :6].any() and not changed[:, 6:].any()


def test_bad_inputs_name_the_field():
    tile = AnalogTile(7, 12)
    x, d = signals(0)
    with pytest.raises(ConfigError, match="x"):
        tile.update(x.masked_fill(x > 0.5, float("nan")), d, 0.1)
    with pytest.raises(ConfigError, match="d"):
        tile.update(x, d.masked_fill(d > 0, float("inf")), 0.1)
    with pytest.raises(ConfigError, match=r"x has shape \(4, 5\)"):
        tile.forward(torch.zeros(4, 5))
    with pytest.raises(ConfigError, match="batch size"):
        tile.update(x, d[:2], 0.1)
    with pytest.raises(ConfigError, match="lr"):
        tile.update(x, d, -0.1)
    with pytest.raises(ConfigError, match="dW"):
        tile.apply(torch.zeros(3, 3))
    with pytest.raises(ConfigError, match="columns"):
        tile.read([12])
    with pytest.raises(ConfigError, match="dw_min"):
        SoftBounds(dw_min=0)
    with pytest.raises(ConfigError, match="w_min"):
        SoftBounds(w_min=0.7, w_max=0.6)
