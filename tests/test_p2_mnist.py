"""P2 Fig. 4 (``analogtrain reproduce p2-fig4``): MNIST on P2's power-response device."""

import json

import pytest
import torch

from analogtrain.devices import make_device
from analogtrain.experiments import run_experiment
from analogtrain.experiments.mnist_residual import P1_TT_OPTIONS
from analogtrain.experiments.p2_mnist import P2_TAUS, _cells, _key, p2_fig4_config


def test_full_mode_uses_the_papers_and_scripts_settings():
    cells = _cells(quick=False)
    assert len(cells) == 2 + 2 * 2 + 3 * 2  # a digital row per net, Analog SGD and TT at each tau
    for model, method, tau in cells:
        cfg = p2_fig4_config(model, method, tau, quick=False, seed=0)
        assert (cfg.dataset, cfg.epochs, cfg.schedule, cfg.step_size, cfg.gamma) == ("mnist", 30, "step", 15, 0.5)
        assert cfg.batch == {"fcn": 10, "lenet5": 8}[model]
        if method == "digital":
            assert (cfg.algorithm, cfg.lr) == ("digital-sgd", 0.1)
            continue
        assert cfg.lr == 0.05 and cfg.learn_out_scale and tau in P2_TAUS[model]
        device = make_device(cfg.device, **cfg.device_params)
        assert device.w_max == tau and device.w_min == -tau and device.dw_min == pytest.approx(2 * tau / 1200)
        w = torch.tensor([0.0, tau / 2])
        # P2 eq. 148 at gamma_res 0.5: q_plus(w) = (1 - w / tau)^0.5, q_minus(w) = (1 + w / tau)^0.5; SP 0
        assert device.q_plus(w).tolist() == pytest.approx([1.0, 0.5 ** 0.5])
        assert device.q_minus(w).tolist() == pytest.approx([1.0, 1.5 ** 0.5])
        assert float(device.symmetric_point()) == pytest.approx(0, abs=1e-9)
        expected = ("analog-sgd", {}) if method == "ASGD" else ("tiki-taka", P1_TT_OPTIONS)
        assert (cfg.algorithm, cfg.algorithm_params) == expected


def test_quick_run_checks_the_fcn_claims(tmp_path):
    result = run_experiment("p2-fig4", quick=True, seed=0, out=tmp_path)
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["passed"] == result["passed"]
    first, final = saved["measured"]["test_acc_epoch_1"], saved["measured"]["test_acc"]
    assert set(final) == {_key(*c) for c in _cells(quick=True)} == set(first)
    assert [c["name"] for c in saved["checks"]][0].startswith("fcn tau=0.6: Analog SGD's first epoch")
    assert result["passed"], [c for c in result["checks"] if not c["passed"]]
