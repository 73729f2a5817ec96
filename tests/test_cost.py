"""The hardware cost model (analogtrain.cost) and the cost tables it reproduces (p3-cost, p2-table3)."""

import pytest
from torch import nn

from analogtrain.cost import ALGORITHMS, Hardware, area_mm2, array_shapes, largest_side, update_latency
from analogtrain.errors import ConfigError
from analogtrain.experiments import run_experiment
from analogtrain.models import build_model, fcn, lenet5
from analogtrain.nn import AnalogLayerConfig


def test_parts_add_up_and_each_algorithm_costs_at_least_analog_sgd():
    sgd = update_latency("analog-sgd", 512)["total"]
    for algorithm in ALGORITHMS:
        cost = update_latency(algorithm, 512)
        assert cost["total"] == pytest.approx(cost["pulses"] + cost["reads"] + cost["digital"])
        assert cost["total"] >= sgd


def test_multi_tile_reduces_to_analog_sgd_and_rises_to_p3s_bound():
    assert update_latency("multi-tile", 512, tiles=1) == update_latency("analog-sgd", 512)
    by_tiles = [update_latency("multi-tile", 512, tiles=t)["total"] for t in range(1, 40)]
    bound = update_latency("multi-tile", 512)["total"]
    assert all(a < b for a, b in zip(by_tiles, by_tiles[1:]))
    assert by_tiles[-1] == pytest.approx(bound, rel=1e-9)


def test_transfer_cost_shrinks_with_a_longer_transfer_period():
    """TT-v2's reads and buffer updates happen once per n_s samples: a longer period leaves analog SGD's cost."""
    costs = [update_latency("ttv2", 512, Hardware(transfer_every=ns))["total"] for ns in (1, 10, 1e6)]
    assert costs[0] > costs[1] > costs[2] == pytest.approx(update_latency("analog-sgd", 512)["total"], rel=1e-4)


def test_shapes_area_and_largest_side_of_the_papers_nets():
    shapes = array_shapes(lenet5())
    assert shapes == [(16, 25), (32, 400), (128, 512), (10, 128)]
    assert sum(r * c for r, c in shapes) == 80_016  # LeNet-5's weights (P5 / L1)
    assert largest_side(shapes) == 512 and largest_side(array_shapes(fcn())) == 784
    assert area_mm2(shapes) == pytest.approx(80_016 * 0.16e-6)
    assert array_shapes(nn.Conv2d(8, 16, 3, groups=2)) == [(16, 36)]
    assert array_shapes(build_model("lenet5", analog=AnalogLayerConfig())) == shapes  # analog layers too


@pytest.mark.parametrize("call, message", [
    (lambda: update_latency("sgd", 512), "algorithm = 'sgd' has no cost model"),
    (lambda: update_latency("ttv2", 0), "n = 0 is outside the allowed range"),
    (lambda: update_latency("multi-tile", 8, tiles=0), "tiles = 0 is outside the allowed range"),
    (lambda: update_latency("multi-tile", 8, Hardware(transfer_every=1)), "transfer_every = 1 must exceed 1"),
    (lambda: Hardware(tflops=0), "tflops = 0 is outside the allowed range"),
    (lambda: Hardware(t_pulse=-1), "t_pulse = -1 is outside the allowed range"),
    (lambda: array_shapes(nn.Sequential(nn.ReLU())), "no linear or convolutional layer"),
])
def test_bad_input_names_the_field(call, message):
    with pytest.raises(ConfigError, match=message):
        call()


@pytest.mark.parametrize("name, checks", [("p3-cost", 19), ("p2-table3", 4)])
def test_cost_tables_reproduce_the_printed_numbers(tmp_path, name, checks):
    result = run_experiment(name, quick=True, out=tmp_path)
    assert len(result["checks"]) == checks
    assert result["passed"], [c for c in result["checks"] if not c["passed"]]


def test_tiki_taka_transferring_every_sample_is_p2s_residual_learning():
    hw = Hardware(pulses=32, transfer_every=1)
    sgd = update_latency("analog-sgd", 512, hw)["total"]
    assert update_latency("tiki-taka", 512, hw)["total"] == pytest.approx(2 * sgd + hw.t_mvm)


def test_cli_cost_prints_every_algorithm_and_refuses_unknown_fields(capsys):
    from analogtrain.cli import main

    assert main(["cost", "--model", "fcn", "--set", "pulses=1", "--tiles", "3"]) == 0
    out = capsys.readouterr().out
    assert "N = 784" in out and "multi-tile: 3 tiles" in out
    for algorithm in ALGORITHMS:
        assert f"\n  {algorithm} " in out
    assert main(["cost", "--set", "t_read=40"]) == 2
    assert "unknown hardware field(s) t_read; known: t_pulse" in capsys.readouterr().err
