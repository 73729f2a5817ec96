"""docs/extending.md: its code blocks run as written, and what they build behaves as the page says."""

import dataclasses
import re
from pathlib import Path

import pytest
import torch

from analogtrain.algorithms import ALGORITHMS
from analogtrain.algorithms.steps import Gradient
from analogtrain.devices import FAMILIES, make_device
from analogtrain.errors import ConfigError
from analogtrain.tile import TileConfig
from analogtrain.train import read_metrics, train

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The page's code blocks run once, in order, in a folder of their own; the namespace they leave. The
    registrations they make are undone after this module's tests."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 3
    before = (set(FAMILIES), set(ALGORITHMS))
    ns: dict = {"__name__": "extending_doc"}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path_factory.mktemp("extending"))
        try:
            exec(compile("\n".join(blocks), str(DOC), "exec"), ns)
            ns["run_folder"] = Path("runs/extending").resolve()
            yield ns
        finally:
            for registry, names in zip((FAMILIES, ALGORITHMS), before):
                for name in set(registry) - names:
                    del registry[name]


def test_the_page_runs_and_its_run_learns(page):
    acc = page["summary"]["analog"]["test_acc"]
    assert 30 <= acc <= 100  # learns (chance 10 %; measured 60.0 %)
    rows = read_metrics(page["run_folder"])
    assert [r["epoch"] for r in rows] == [1, 2] and rows[-1]["pulses"] > rows[0]["pulses"] > 0


def test_the_device_is_a_full_family(page):
    cls = page["CurvedBounds"]
    soft = FAMILIES["soft-bounds"](up_down=0.1)
    flat = cls(curvature=0.0, up_down=0.1)  # curvature 0 is soft bounds
    w = torch.linspace(-0.6, 0.6, 13, dtype=torch.float64)
    assert torch.allclose(flat.q_plus(w), soft.q_plus(w)) and torch.allclose(flat.q_minus(w), soft.q_minus(w))
    curved = cls(curvature=1.0)  # quadratic: q+ = z^2 with soft bounds' z = 1 - w / w_max
    assert torch.allclose(curved.q_plus(w), (1 - w / 0.6) ** 2)
    assert torch.allclose(curved.q_minus(w), (1 + w / 0.6) ** 2)
    assert page["device"].symmetric_point().item() > 0  # the up bias moves it up (printed on the page)
    with pytest.raises(ConfigError, match="curvature"):
        cls(curvature=2.0)
    with pytest.raises(ConfigError, match="w_min < 0 < w_max"):
        cls(w_min=0.1, w_max=0.6)


def test_the_algorithm_moves_each_array_one_way_and_resumes_bit_for_bit(page, tmp_path):
    cls = page["PairMixedPrecision"]
    dev = make_device("curved-bounds", n_states=100)
    alg = cls.build(4, 3, TileConfig.perfect(dev), seed=0, dtype=torch.float64)
    alg.program(torch.zeros(4, 3))
    g_plus, g_minus = alg.G_plus.conductance.clone(), alg.G_minus.conductance.clone()
    grad = torch.tensor([[1.0, -2.0, 0.5, 0.0]]).T @ torch.tensor([[1.0, 1.0, -1.0]])  # (4, 3), mixed signs
    for _ in range(20):
        alg.update(Gradient.dense(grad), 0.05)
    assert (alg.G_plus.conductance >= g_plus).all() and (alg.G_minus.conductance >= g_minus).all()  # never depressed
    assert (alg.G_plus.conductance > g_plus).any() and (alg.G_minus.conductance > g_minus).any()
    # the page's run, stopped after its first epoch and resumed, ends where the straight run ended
    cfg = page["cfg"]
    train(dataclasses.replace(cfg, epochs=1), tmp_path / "split", progress=False, log=lambda *a: None)
    resumed = train(cfg, tmp_path / "split", resume=True, progress=False, log=lambda *a: None)
    assert resumed["analog"]["test_acc"] == page["summary"]["analog"]["test_acc"]
    untimed = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert untimed(read_metrics(tmp_path / "split")) == untimed(read_metrics(page["run_folder"]))
