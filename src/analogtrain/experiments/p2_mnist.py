"""P2 Fig. 4: MNIST on P2's power-response device (papers.md §4(d)-(e)).

``p2-fig4``: the FCN (tau 0.6, 0.7) and LeNet-5 (tau 0.6, 0.7, 0.8) trained with digital SGD, Analog SGD and
residual learning / Tiki-Taka on the power response q_pm = (1 -+ w/tau)^0.5 (P2 eq. 148, gamma_res 0.5,
1200 states so dw_min = 2 tau / 1200 [C]), aihwkit's default periphery (P2 Table 4) and pulse trains, with
learnable output scales as in P1's MNIST runs. P2 reports (figure, no table): residual learning within 1 % of
digital on both nets; Analog SGD on the FCN needs a few epochs before it improves, on the CNN it stalls near
80 %.

Settings [V]: batch 10 (FCN) / 8 (CNN), lr 0.1 digital, 0.05 analog; [C] (the authors' NeurIPS-2025 MNIST
scripts) 30 epochs, StepLR(15, x0.5), and residual learning run as aihwkit's TT-v1 preset with fast_lr 0.01,
gamma 0, one column read per transfer, a transfer every mini-batch, transfer_lr 1 scaled by the lr: the
setting of P1's MNIST Tiki-Taka (``P1_TT_OPTIONS``). P2's "alpha 0.05, beta 0.01" are these two rates in P1's
letters (alpha the lr that drives the main array, beta the residual array's rate).
"""

from __future__ import annotations

from pathlib import Path

from ..config import TrainConfig
from ..train import read_metrics
from . import Cells, Experiment, check, register, run_cells
from .mnist_residual import P1_QUICK_TT, P1_TT_OPTIONS

P2_TAUS = {"fcn": (0.6, 0.7), "lenet5": (0.6, 0.7, 0.8)}
P2_BATCH = {"fcn": 10, "lenet5": 8}
P2_STATES = 1200  # P2 code [C]: dw_min = 2 tau / n_states
P2_QUICK = dict(model="fcn", dataset="mnist-subset", epochs=4)  # p1-mnist-tt's quick budget
METHODS = ("digital", "ASGD", "TT")


def p2_fig4_config(model: str, method: str, tau: float | None, quick: bool, seed: int) -> TrainConfig:
    """One cell: ``method`` in METHODS on ``model`` at ``tau`` (None for digital SGD)."""
    common = dict(model=model, batch=P2_BATCH[model], seed=seed, compare_digital=False)
    common.update(P2_QUICK if quick else dict(dataset="mnist", epochs=30, schedule="step", step_size=15, gamma=0.5))
    if method == "digital":
        return TrainConfig(**common, lr=0.1, algorithm="digital-sgd", device="ideal", periphery="perfect")
    device = dict(w_max=tau, w_min=-tau, dw_min=2 * tau / P2_STATES)
    tt = dict(P1_TT_OPTIONS, **(P1_QUICK_TT if quick else {}))
    algorithm, params = ("analog-sgd", {}) if method == "ASGD" else ("tiki-taka", tt)
    return TrainConfig(**common, lr=0.05, algorithm=algorithm, algorithm_params=params, device="p2-power",
                       device_params=device, learn_out_scale=True)


def _cells(quick: bool) -> list[tuple[str, str, str, float | None]]:
    if quick:
        return [("fcn", "digital", None), ("fcn", "ASGD", 0.6), ("fcn", "TT", 0.6)]
    return [(m, "digital", None) for m in P2_TAUS] + [(m, meth, t) for m in P2_TAUS for t in P2_TAUS[m]
                                                      for meth in ("ASGD", "TT")]


def _key(model: str, method: str, tau: float | None) -> str:
    return f"{model}/{method}" + ("" if tau is None else f"/tau={tau:g}")


def run_p2_fig4(quick: bool, seed: int, out: Path, selection: Cells = Cells()) -> dict:
    cells = _cells(quick)
    acc, result = run_cells([(_key(m, meth, t), p2_fig4_config(m, meth, t, quick, seed), None) for m, meth, t in cells],
                            out, selection)
    files = result["measured"]["metrics_files"]
    first = {k: read_metrics(Path(f).parent)[0]["test_acc"] for k, f in files.items()}
    result["measured"]["test_acc_epoch_1"] = first
    fcn_taus = (0.6,) if quick else P2_TAUS["fcn"]
    checks = [check(f"fcn tau={t:g}: Analog SGD's first epoch below digital's by (points)",
                    first["fcn/digital"] - first[_key("fcn", "ASGD", t)], ">=", 20 if quick else 10) for t in fcn_taus]
    if quick:
        dig, tt = acc["fcn/digital"], acc["fcn/TT/tau=0.6"]
        checks += [check("digital SGD learns (test acc %)", dig, ">=", 75),
                   check("residual learning within 3 points of digital (points below)", dig - tt, "<=", 3)]
        tol = ("quick (FCN, tau 0.6, 4 subset epochs): Analog SGD's first epoch at least 20 points below digital's "
               "(measured 47-54 for seeds 0-2), digital >= 75 % (86-88 %), residual learning at most 3 points below "
               "digital at the end (it ends 0.3-2.6 points above)")
    else:
        for m in P2_TAUS:
            dig = acc[f"{m}/digital"]
            checks += [check(f"{m} tau={t:g}: residual learning within 1 point of digital (points below)",
                             dig - acc[_key(m, 'TT', t)], "<=", 1.0) for t in P2_TAUS[m]]
        checks += [check(f"lenet5 tau={t:g}: Analog SGD below residual learning by (points)",
                         acc[_key("lenet5", "TT", t)] - acc[_key("lenet5", "ASGD", t)], ">=", 5)
                   for t in P2_TAUS["lenet5"]]
        tol = ("full: residual learning within 1 point of digital on every net and tau; on LeNet-5 Analog SGD at "
               "least 5 points below residual learning (P2: it stalls near 80 %); on the FCN Analog SGD's first "
               "epoch at least 10 points below digital's (P2: it needs a few epochs to start)")
    notes = [
        "Device: P2's power response (P2 eq. 148, the p2-power preset) at bounds +-tau, gamma_res 0.5, dw_min = "
        f"2 tau / {P2_STATES} [C], no variations; periphery and pulse trains: aihwkit's defaults (P2 Table 4; "
        "its 'BL 32' is aihwkit's desired_bl 31, which the scripts leave as is [C]); learnable output scales [C].",
        "Residual learning = tiki-taka with gamma 0, fast_lr 0.01 absolute, transfer_lr 1 scaled by the lr, one "
        "column per transfer every step: the scripts' TT-v1 (P2: 'RL-v1 can be implemented by TT-v1'), the same "
        "as p1-mnist-tt's.",
        "[C] not adopted: the public README runs these scripts with their default soft-bounds device (no --RPU) "
        "at tau 0.5-0.7 for the FCN; the paper's Fig. 4 names the power response at gamma_res 0.5 and tau 0.6, "
        "0.7 (FCN) / 0.6-0.8 (CNN), which these cells use. The scripts' power device is aihwkit's PowStepDevice "
        "with its default 30 % dw_min variations; P2's eq. 148 and our preset have none.",
        "P2 gives the figure, no numbers: the verdict checks its qualitative claims; the paper column is empty.",
    ]
    if quick:
        notes.append("quick: the FCN alone at tau 0.6 for 4 epochs of the embedded 4000/1000-image subset, no "
                     "schedule; residual learning with p1-mnist-tt's quick rates (fast_lr 0.1, 16 columns per "
                     "transfer), since the paper's need ~10^5 steps")
    return {**result, "tolerance": tol, "checks": checks, "notes": notes}


register(Experiment(
    name="p2-fig4",
    title="MNIST on P2's power response: residual learning near digital, Analog SGD behind",
    claim="on the power response, residual learning stays within 1 % of digital SGD on the FCN and the CNN; Analog "
          "SGD needs a few epochs to start on the FCN and stalls near 80 % on the CNN",
    source="P2 Fig. 4, papers.md §4(d)-(e)",
    run=run_p2_fig4,
    resumable=True,
))
