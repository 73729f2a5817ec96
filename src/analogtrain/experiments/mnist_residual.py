"""Image-benchmark reproductions of the residual-learning family (papers.md §3(e), §5(e), §7(e)).

* ``p1-mnist-tt``: P1 Fig. 5 tables, Tiki-Taka rows (FCN tau 0.70/0.78/0.80, LeNet-5 tau 0.6/0.7/0.8),
  same setting as ``p1-mnist-fcn``/``-cnn`` (``p1_mnist.py``) with TT-v1 (gamma 0, fast lr 0.01 absolute,
  transfer lr = the SGD lr 0.05, one column per transfer every step).
* ``p5-tables``: P5 Table 1's first row (LeNet-5, reference mean 0, std 0.05) and the corner of Table 2 (FCN,
  mean 0 / 0.4, std 0.05 / 1.0): TT-v2, AGAD, E-RIDER on ReRAM HfO2 with an offset reference on P.
* ``p5-fig5``: P5 Fig. 5, E-RIDER on that FCN at chopper probabilities p = 0 (RIDER) to 0.2.
* ``p3-table1``: P3 Table 1, LeNet-5 rows: MNIST with 10 states (batch 8) and Fashion-MNIST with 4 states
  (batch 16): TT-v1, TT-v2, mixed precision, multi-tile with 3/4/6 tiles (papers.md §5(d) settings).

Every run reports the measured test accuracy next to the paper's (``measured.paper_test_acc``) and lists
the mappings of the papers' aihwkit settings onto our options that had to be interpreted ([I] notes).
Quick modes train the FCN on the embedded MNIST subset for a few epochs and check one qualitative claim.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..config import TrainConfig
from ..train import read_metrics
from . import Cells, Experiment, check, register, run_cells


# =============================================================================================
# p1-mnist-tt: P1 Fig. 5 tables, Tiki-Taka rows
# =============================================================================================
P1_TT = {  # test accuracy %, mean of 3 runs (P1 Fig. 5 tables, Tiki-Taka row)
    "fcn": {0.70: 97.64, 0.78: 97.62, 0.80: 97.50},
    "lenet5": {0.6: 98.84, 0.7: 98.87, 0.8: 98.86},
}
P1_ASGD = {"fcn": {0.70: 11.35, 0.78: 97.71, 0.80: 97.78}, "lenet5": {0.6: 88.99, 0.7: 92.15, 0.8: 93.45}}
P1_BATCH = {"fcn": 10, "lenet5": 8}
P1_TT_OPTIONS = dict(gamma=0.0, fast_lr=0.01, scale_fast_lr=False, transfer_lr=1.0, scale_transfer_lr=True,
                     n_columns=1, transfer_every=1)
P1_QUICK = dict(dataset="mnist-subset", epochs=4)  # p1-mnist-fcn's quick budget: 4000/1000 images, 4 epochs
# quick only: the paper's rates need ~10^5 steps (80 epochs of 6000); 1600 steps need a 10x fast lr and
# 16 columns per transfer (every column of the first layer read every 49 steps instead of 784)
P1_QUICK_TT = dict(fast_lr=0.1, n_columns=16)
P1_QUICK_CNN = dict(dataset="mnist-subset", epochs=1, train_limit=2000, test_limit=500)  # 250 steps of LeNet-5


def p1_tt_config(model: str, tau: float, quick: bool, seed: int, algorithm: str = "tiki-taka") -> TrainConfig:
    """One cell of P1's Fig. 5 table: Tiki-Taka (or, for the quick comparison, Analog SGD) at ``tau``."""
    common = dict(model=model, batch=P1_BATCH[model], lr=0.05, seed=seed, compare_digital=False,
                  device="softbounds-reference", device_params={"w_max": tau, "w_min": -tau}, learn_out_scale=True)
    if quick:
        common.update(P1_QUICK if model == "fcn" else P1_QUICK_CNN)
    else:
        common.update(dataset="mnist", epochs=80, schedule="step", step_size=35, gamma=0.1)
    params = dict(P1_TT_OPTIONS, **(P1_QUICK_TT if quick else {})) if algorithm == "tiki-taka" else {}
    return TrainConfig(**common, algorithm=algorithm, algorithm_params=params)


def run_p1_tt(quick: bool, seed: int, out: Path, selection: Cells = Cells()) -> dict:
    cells = ([("fcn", "tiki-taka", 0.70), ("fcn", "tiki-taka", 0.78), ("fcn", "analog-sgd", 0.70),
              ("lenet5", "tiki-taka", 0.7)] if quick else
             [(m, "tiki-taka", t) for m in ("fcn", "lenet5") for t in P1_TT[m]])
    acc, result = run_cells([(f"{model}/{'TT' if algo == 'tiki-taka' else 'ASGD'}/tau={tau:g}",
                              p1_tt_config(model, tau, quick, seed, algo),
                              (P1_TT if algo == "tiki-taka" else P1_ASGD)[model][tau])
                             for model, algo, tau in cells], out, selection)
    if quick:
        tt70, tt78, sgd70 = acc["fcn/TT/tau=0.7"], acc["fcn/TT/tau=0.78"], acc["fcn/ASGD/tau=0.7"]
        checks = [
            check("Tiki-Taka tau=0.70 beats Analog SGD tau=0.70 by (points)", tt70 - sgd70, ">=", 4),
            check("Tiki-Taka tau=0.70 learns (test acc %)", tt70, ">=", 60),
            check("Tiki-Taka tau=0.78 learns (test acc %)", tt78, ">=", 60),
            check("Tiki-Taka on LeNet-5 tau=0.7 learns (test acc %)", acc["lenet5/TT/tau=0.7"], ">=", 60),
        ]
        tol = ("quick: TT(0.70) - ASGD(0.70) >= 4 points (measured 12.6 / 12.1 / 6.4 / 10.4 for seeds 0-3 at two "
               "threads), TT(0.70) and TT(0.78) >= 60 % (84.8-88.8 %), LeNet-5 TT(0.7) >= 60 % (81.2-83.2 %)")
    else:
        paper = result["measured"]["paper_test_acc"]
        checks = [check(f"Tiki-Taka {k} within 1.5 points of the paper (|diff|)", abs(v - paper[k]), "<=", 1.5)
                  for k, v in acc.items()]
        tol = "full: every Tiki-Taka cell within 1.5 points of the paper's mean (paper std <= 0.17)"
    notes = [
        "TT-v1 = tiki-taka with gamma 0, fast_lr 0.01 absolute (scale_fast_lr false), transfer_lr 1 scaled by "
        "the SGD lr 0.05, one column per transfer, a transfer every step (papers.md §3(c)-(d)); the rest of the "
        "setting (device, periphery, learnable out scales, schedule) is p1-mnist-fcn/-cnn's.",
        "The Analog SGD rows (and digital SGD) are experiments p1-mnist-fcn / p1-mnist-cnn; here Analog SGD runs "
        "only in quick mode, as the comparison of the quick check.",
    ]
    if quick:
        notes.append("quick: FCN cells 4 epochs on the embedded 4000/1000-image MNIST subset, no schedule (the "
                     "budget of p1-mnist-fcn --quick); Tiki-Taka with fast_lr 0.1 (paper 0.01) and 16 columns per "
                     "transfer (paper 1): with the paper's rates TT-v1 does not move off chance level in 1600 "
                     "steps (measured: 9.5 % at tau 0.70 after 4 epochs on 2000 images), it needs the paper's "
                     "~480k steps.  Analog SGD runs with the paper's settings.  One LeNet-5 cell (tau 0.7) for 250 "
                     "steps (one epoch of 2000 subset images, 500 test images) with the same quick rates checks "
                     "that Tiki-Taka learns on the conv layers (measured 83.2 %).  The paper numbers are 80 "
                     "epochs on full MNIST")
    return {**result, "tolerance": tol, "checks": checks, "notes": notes}


# =============================================================================================
# p3-table1: P3 Table 1 (LeNet-5, limited conductance states)
# =============================================================================================
P3_PAPER = {  # test accuracy %, mean ± std (P3 Table 1)
    "mnist": {"TT-v1": 78.65, "TT-v2": 95.43, "MP": 99.13, "3 tiles": 95.07, "4 tiles": 97.10, "6 tiles": 98.53},
    "fashion-mnist": {"TT-v1": 10.01, "TT-v2": 47.51, "MP": 75.61, "3 tiles": 68.09, "4 tiles": 73.35,
                      "6 tiles": 75.11},
}
P3_DATA = {  # states, batch, lr of ours / of the baselines, gamma of the tile sum, TT-v2 fast lr
    "mnist": dict(n_states=10, batch=8, lr_ours=0.05, lr_base=0.05, tile_gamma=0.5, ttv2_fast=0.1),
    "fashion-mnist": dict(n_states=4, batch=16, lr_ours=0.2, lr_base=0.1, tile_gamma=0.2, ttv2_fast=0.05),
}
P3_METHODS = ("TT-v1", "TT-v2", "MP", "3 tiles", "4 tiles", "6 tiles")
P3_QUICK = dict(model="fcn", dataset="mnist-subset", epochs=3, train_limit=2000, test_limit=1000, batch=10)
P3_QUICK_LR = 0.5  # quick only: at the paper's 0.05 nothing leaves chance level in 600 steps (MP: 10.0 %)


def p3_config(dataset: str, method: str, quick: bool, seed: int) -> TrainConfig:
    """One cell of P3 Table 1 (quick: the FCN on the MNIST subset with ``dataset``'s number of states)."""
    d = P3_DATA[dataset]
    if method == "TT-v1":
        algo, params = "tiki-taka", dict(gamma=0.0, fast_lr=0.01, scale_fast_lr=False, transfer_lr=0.1,
                                         scale_transfer_lr=True)
    elif method == "TT-v2":
        algo, params = "ttv2", dict(gamma=0.0, fast_lr=d["ttv2_fast"], scale_fast_lr=False, transfer_lr=1.0,
                                    scale_transfer_lr=True)
    elif method == "MP":
        algo, params = "mixed-precision", {}
    else:
        algo, params = "multi-tile", dict(n_tiles=int(method.split()[0]), gamma=d["tile_gamma"], transfer_every=2,
                                          transfer_every_growth=5, transfer_lr=0.1, transfer_lr_growth=1.2,
                                          scale_transfer_lr=False, global_periods=True, warm_start=True,
                                          warm_start_rule="code")
    lr = d["lr_ours"] if algo == "multi-tile" else d["lr_base"]
    common = dict(model="lenet5", dataset=dataset, batch=d["batch"], epochs=100, schedule="step", step_size=30,
                  gamma=0.5)
    if quick:
        common.update(P3_QUICK, schedule="none")
        lr = P3_QUICK_LR
        if algo == "multi-tile":  # 3 epochs of falling loss would never leave the warm start's first tile
            params["warm_start"] = False
    return TrainConfig(**common, lr=lr, seed=seed, compare_digital=False, device="softbounds-reference",
                       device_params={"n_states": d["n_states"]}, periphery="perfect", algorithm=algo,
                       algorithm_params=params)


def run_p3(quick: bool, seed: int, out: Path, selection: Cells = Cells()) -> dict:
    cells = [("mnist", "TT-v1"), ("mnist", "MP"), ("mnist", "3 tiles")] if quick else [(d, m) for d in P3_PAPER for m in P3_METHODS]
    acc, result = run_cells([(f"{dataset}/{method}", p3_config(dataset, method, quick, seed), P3_PAPER[dataset][method])
                             for dataset, method in cells], out, selection)
    if quick:
        checks = [check("MP beats TT-v1 with 10 states by (points)", acc["mnist/MP"] - acc["mnist/TT-v1"], ">=", 10),
                  check("MP learns with 10 states (test acc %)", acc["mnist/MP"], ">=", 60),
                  check("3 tiles beat TT-v1 with 10 states by (points)",
                        acc["mnist/3 tiles"] - acc["mnist/TT-v1"], ">=", 10)]
        tol = ("quick: MP - TT-v1 >= 10 points, MP >= 60 %, 3 tiles - TT-v1 >= 10 points (10 states, FCN on the "
               "MNIST subset)")
    else:
        checks = []
        for ds in P3_PAPER:
            a = {m: acc[f"{ds}/{m}"] for m in P3_METHODS}
            checks += [check(f"{ds}: MP beats TT-v1 by (points)", a["MP"] - a["TT-v1"], ">=", 10),
                       check(f"{ds}: 6 tiles beat TT-v2 by (points)", a["6 tiles"] - a["TT-v2"], ">=", 1),
                       check(f"{ds}: 6 tiles minus 3 tiles (points)", a["6 tiles"] - a["3 tiles"], ">=", 0)]
        tol = "full: the table's orderings per dataset: MP >> TT-v1 (10 points), 6 tiles > TT-v2, 6 tiles >= 3 tiles"
    notes = [
        "[I] device: aihwkit SoftBounds defaults = our softbounds-reference preset (bounds +-0.6, 30 % d2d, 30 % c2c) "
        "with n_states N (dw_min = 1.2 / N); P3 gives no tau_max for Table 1 (Fig. 7 left: insensitive).",
        "near-ideal IO = periphery 'perfect' (no noise, no quantisation, exact transfer reads).",
        "LambdaLR x0.5 every 30 epochs = schedule 'step', step_size 30, gamma 0.5.",
        "TT-v1: fast_lr 0.01 absolute (aihwkit 0.9.2 has no scale_fast_lr: absolute), transfer_lr 0.1 scaled; "
        "TT-v2: alpha = fast_lr (absolute [I]) 0.1 (MNIST) / 0.05 (F-MNIST), beta = transfer_lr 1 scaled, our "
        "threshold buffer in W's dw_min (aihwkit's granularity/auto-scaling are not modelled).",
        "multi-tile: transfer_every_vec [2 * 5^n] counted as aihwkit's TransferCompound counts it, in global "
        "steps (global_periods; P3 says Table 1 ran on that compound [V], as does its public code [C]), "
        "transfer_lr 0.1 * 1.2^n unscaled for the transfer out of tile n (the gradient tile's the fastest, as P3's "
        "code indexes it), gamma 0.5 (MNIST) / 0.2 (F-MNIST); fast lr = the global lr (0.05 / "
        "0.2; the baselines use 0.05 / 0.1); warm start on (Algorithm 1 step 3: 'only in experiments' [V]) with "
        "the rule of P3's public code [C]: the plateau test reads each epoch's mean training loss (Algorithm 1's "
        "text reads every step's loss, whose noise ends the warm start within a few steps) and the warm-start "
        "copy runs every transfer_every_vec[1] steps.",
        "Full run, MNIST 3 tiles (seed 0): 87.5 % test accuracy at epoch 12 in the warm start (stages 0 -> 1 after "
        "epoch 3, -> 2 after epoch 9, cascade from epoch 14), then the training loss rose from 0.44 to 0.86 and "
        "the run ended at 73.7 % (paper 95.07 %): the open-loop cascade at these rates violates the three-tile "
        "stability bound of multi_tile.py in the net's flat directions.",
        "[C] not adopted: the public code's snapshot (7 tiles of 4 states on MNIST, 200 epochs, x0.1 every 50) is "
        "not Table 1's setting; its devices span [-1, 1] (ours: aihwkit SoftBounds' default +-0.6, the same "
        "number of states), and its TT-v1 uses fast_lr 0.1 where papers.md has 0.01.",
        "[C] not adopted either: the code leaves the gradient tile's lr at aihwkit 0.9's fast_lr default, 1.0 "
        "absolute (that version has no scale_fast_lr), so its global lr moves only the digital biases. With the "
        "cascade from step 1, 3 tiles on MNIST reach 68.1 / 73.3 % after epochs 1 / 6 at fast lr 1.0 against "
        "82.4 / 80.5 % at 0.05; stock aihwkit 1.2.0 gives 67.4 / 76.6 % and 80.2 / 82.8 % "
        "(scripts/aihwkit_oracle). At 0.05 both stall: after 20 epochs aihwkit 81.7 % (training loss 0.61, "
        "lowest 0.59), ours 78.1 % (0.70, lowest 0.58); on Fashion-MNIST 3 tiles give 60.7 % (aihwkit) and "
        "57.9 % (ours) after 3 epochs. The code's GPU path warm-starts unlike its CPU path (it keeps the gradient "
        "tile's transfer running and copies tile 1, not the gradient tile, into the pointed tile, once onto "
        "itself); the code rule here follows the CPU path, which is Algorithm 1's.",
    ]
    if quick:
        notes.append("quick: FCN (not LeNet-5) for 3 epochs on the first 2000 images of the embedded MNIST subset "
                     "(tested on 1000), batch 10, 10 states, no schedule, global lr 0.5 for all three (paper 0.05: with 600 steps MP "
                     "stays at chance level, 10.0 %, because chi needs ~dw_min = 0.12 of accumulated lr * grad per "
                     "pulse); no warm start for the tiles (the code's rule waits for an epoch whose loss rises, "
                     "so 3 epochs would never leave its first stage and the cascade would not run); paper "
                     "numbers are LeNet-5, 100 epochs")
    return {**result, "tolerance": tol, "checks": checks, "notes": notes}


# =============================================================================================
# p5-table1 / p5-table2: P5 Tables 1-2 (reference offsets, ReRAM HfO2)
# =============================================================================================
P5_METHODS = ("TT-v2", "AGAD", "E-RIDER")
P5_PAPER = {  # test accuracy %, mean of 3 runs: (model, reference mean, reference std) -> method -> acc
    ("lenet5", 0.0, 0.05): {"TT-v2": 75.19, "AGAD": 90.81, "E-RIDER": 93.75},
    ("fcn", 0.0, 0.05): {"TT-v2": 90.26, "AGAD": 92.59, "E-RIDER": 95.45},
    ("fcn", 0.0, 1.0): {"TT-v2": 79.20, "AGAD": 91.37, "E-RIDER": 93.86},
    ("fcn", 0.4, 0.05): {"TT-v2": 72.00, "AGAD": 92.55, "E-RIDER": 96.07},
    ("fcn", 0.4, 1.0): {"TT-v2": 57.79, "AGAD": 90.43, "E-RIDER": 95.14},
}
P5_LR = {"TT-v2": 0.005, "AGAD": 0.05, "E-RIDER": 0.05}  # global lr (given for LeNet-5; [I] also the FCN's)
# P5 Table 3 (LeNet-5) / Table 5 (FCN): fast lr, transfer lr, in_chop_prob per method
P5_RATES = {
    "lenet5": {"TT-v2": (0.005, 0.005, 0.0), "AGAD": (0.01, 0.2, 0.1), "E-RIDER": (0.5, 0.05, 0.05)},
    "fcn": {"TT-v2": (0.03, 0.01, 0.0), "AGAD": (0.05, 0.3, 0.1), "E-RIDER": (0.5, 0.05, 0.05)},
}
P5_BATCH = {"lenet5": 8, "fcn": 10}


def p5_config(model: str, method: str, mean: float, std: float, quick: bool, seed: int,
              quick_overrides: dict | None = None) -> TrainConfig:
    """One cell of P5 Table 1 (LeNet-5) / Table 2 (FCN): ``method`` at reference offset (mean, std)."""
    fast, transfer, chop = P5_RATES[model][method]
    common = dict(transfer_every=1, n_columns=1, fast_lr=fast, scale_fast_lr=False, transfer_lr=transfer,
                  scale_transfer_lr=method != "E-RIDER", forget_buffer=True, max_pulses=1,
                  auto_granularity=1000.0, units_in_mbatch=True)
    if method == "TT-v2":
        algo, params = "ttv2", dict(common, momentum=0.1, threshold_scale=0.8)
    elif method == "AGAD":
        algo, params = "agad", dict(common, in_chop_prob=chop, in_chop_random=False, tail_weightening=5.0)
    else:  # E-RIDER; AGAD's running-mean rate tail_weightening * p is Q's rate eta (papers.md §7(c)-(d) [I])
        algo, params = "erider", dict(common, in_chop_prob=chop, in_chop_random=False, eta=min(5.0 * chop, 1.0),
                                      gamma=0.1)
    cfg = dict(model=model, dataset="mnist", batch=P5_BATCH[model], epochs=40, lr=P5_LR[method], seed=seed,
               compare_digital=False, device="reram-hfo2",
               reference={"symmetric_point": True, "mean": mean, "std": std, "arrays": "P"},
               algorithm=algo, algorithm_params=params)
    if quick:
        cfg.update({"dataset": "mnist-subset", "epochs": 3, **(quick_overrides or {})})
    return TrainConfig(**cfg)


P5_QUICK_CELLS = [("fcn", "E-RIDER", 0.0, 0.05), ("fcn", "TT-v2", 0.0, 0.05)]


def run_p5(quick: bool, seed: int, out: Path, selection: Cells = Cells()) -> dict:
    cells = P5_QUICK_CELLS if quick else [(model, m, mean, std) for (model, mean, std) in P5_PAPER for m in P5_METHODS]
    acc, result = run_cells([(f"{model}/mean={mean:g}/std={std:g}/{method}",
                              p5_config(model, method, mean, std, quick, seed), P5_PAPER[model, mean, std][method])
                             for model, method, mean, std in cells], out, selection)
    if quick:
        er, tt = acc["fcn/mean=0/std=0.05/E-RIDER"], acc["fcn/mean=0/std=0.05/TT-v2"]
        checks = [check("E-RIDER learns in 3 epochs on the subset (test acc %)", er, ">=", 30),
                  check("E-RIDER minus TT-v2 (points)", er - tt, ">=", 20)]
        tol = ("quick: E-RIDER >= 30 % (chance 10 %; measured 40.0 / 42.4 / 63.8 % for seeds 0 / 1 / 2 at two "
               "threads, 50.0 / 47.0 / 57.4 % at one: 600 steps leave a wide spread) and >= TT-v2 + 20 points "
               "after 3 epochs of the FCN on the MNIST subset")
    else:
        checks = []
        for model, mean, std in P5_PAPER:
            a = {m: acc[f"{model}/mean={mean:g}/std={std:g}/{m}"] for m in P5_METHODS}
            cell = f"{model} mean {mean:g} std {std:g}"
            checks += [check(f"{cell}: E-RIDER minus AGAD (points)", a["E-RIDER"] - a["AGAD"], ">=", 0),
                       check(f"{cell}: AGAD minus TT-v2 (points)", a["AGAD"] - a["TT-v2"], ">=", 0),
                       check(f"{cell}: E-RIDER within 3 points of the paper (|diff|)",
                             abs(a["E-RIDER"] - P5_PAPER[model, mean, std]["E-RIDER"]), "<=", 3)]
        tol = "full: per cell E-RIDER >= AGAD >= TT-v2, and E-RIDER within 3 points of the paper's mean"
    notes = [
        "device: reram-hfo2 preset (aihwkit ReRamArrayHfO2PresetDevice, ~4.3 states) for every array; the residual "
        "array P reads against a reference r = SP + mean + std * xi sampled per element (reference.arrays = P, "
        "[I]: P5 studies the gradient array's reference; W reads against zero); default periphery = P5 Table 6.",
        "[I] which table axis is the mean and which the std is not labelled in P5 (papers.md §7(d)); rows = mean.",
        "P5 Tables 3 / 5 mapped onto our options: transfer_every 1, one column per transfer, fast_lr absolute, "
        "transfer_lr scaled by the lr (TT-v2, AGAD) or absolute (E-RIDER), forget_buffer, threshold_scale 0.8 and "
        "momentum 0.1 (TT-v2), in_chop_prob 0.1 / 0.05 periodic (AGAD / E-RIDER), tail_weightening 5, gamma 0.1 "
        "(E-RIDER); auto_granularity 1000 with units_in_mbatch for all three ([I] for TT-v2, whose column is '-': "
        "without it TT-v2's buffer gains 2.5e-5 per read against a threshold of 0.37 and W never changes; with "
        "it, 3.9e-5, and it still never fires: a first pulse needs ~7,400 same-sign reads of size 1 and a column "
        "is read ~306 times in 40 epochs. aihwkit's own TT-v2 (BufferedTransfer, H += transfer_lr * lr * read, "
        "threshold thres_scale * dw_min, no other factor) behaves the same, so Table 5's TT-v2 row cannot be "
        "the setting behind P5's TT-v2 numbers; the cells run it as transcribed); "
        "at most one pulse per element and transfer (aihwkit's transfer update clips trunc(H) to its desired "
        "BL, 1 by default); the buffer rate is beta * in_size * transfer_every / 1000 with no batch factor "
        "(aihwkit's buffer granularity). Runs before this reading used rows x the rate (10x for the FCN, up "
        "to 4608x for LeNet-5's first conv layer) and no pulse cap; the next note compares the two.",
        "E-RIDER = algorithm erider in its practical form (one column read per step, buffer and threshold "
        "transfer), with Q's rate eta = tail_weightening * in_chop_prob = 0.25 per read, AGAD's running-mean "
        "rate [I]; one chopper per input column (rider.py).",
        "[I] global lr for the FCN: P5 gives it for LeNet-5 only (TT-v2 0.005, AGAD 0.05, E-RIDER 0.05); the "
        "same values are used for the FCN.",
        "Level gap (FCN, mean 0, std 0.05), under the earlier reading of the buffer (rate x the batch's rows, "
        "no pulse cap): the full 40-epoch runs reached E-RIDER 72.1 %, AGAD 62.3 %, TT-v2 24.7 % (paper 95.5 / "
        "92.6 / 90.3 %). Test accuracy after one epoch, varying one thing at a time from that reading: 73.8 % "
        "as configured; W also read against its own symmetric point 71.9 %; perfect periphery 72.1 %; the "
        "784-input layer split into two 392-input tiles (aihwkit's max_input_size 512) 69.8 %; W on the "
        "1200-state softbounds-reference device 80.5 %; P and W both on it 93.6 %. With aihwkit's buffer "
        "granularity (no batch factor) and one pulse per transfer, the reading used now, E-RIDER goes 68.2 / "
        "76.3 / 82.6 / 86.0 % over its first four epochs instead of staying near 72 %, and ends at 88.9 % after "
        "40 epochs (paper 95.5 %; all these with each array read separately, mixed_read separate); LeNet-5 "
        "E-RIDER 21.5 % after one epoch (10.5 % before; its first conv layer "
        "had 4608x the rate). The mapping some public aihwkit scripts with this device use (weight_scaling_omega "
        "0.6 per column and a learned output scale; P5 states none) gives 17.8 % after one epoch instead of 68.2 %.",
        "Stock aihwkit 1.2.0 on the same FCN cells (DynamicTransferCompound with Table 5's AGAD fields, "
        "ReRamArrayHfO2 preset, the residual array's reference offset; scripts/aihwkit_oracle/p5_table.py): AGAD "
        "reaches 87.3 % (mean 0, std 0.05) and 86.9 % (mean 0.4, std 1.0) after 40 epochs, against 86.3 / 86.2 % "
        "here and 92.6 / 90.4 % in P5, and tracks our run epoch by epoch (79.2 vs 79.3 % at epoch 13). So the "
        "level gap is in the transcribed settings, not in the simulation. Its TT-v2 (BufferedTransferCompound, "
        "Table 5's fields) moves not one element of the slow array in 40 epochs (29.4 %, from the digital "
        "biases), as ours (24.7 %). Table 5's E-RIDER fields on the same compound with gamma 0.1 ('AGAD with "
        "gamma', the nearest stock reading; not P5 Alg. 3) reach 87.6 % (our erider 88.9 % with mixed_read "
        "separate, P5 95.5 %).",
    ]
    if quick:
        notes.append("quick: FCN for 3 epochs on the embedded 4000/1000-image MNIST subset, the paper's rates; "
                     "AGAD is not run (it has not left chance level after 1200 steps: measured 11.1 %), nor "
                     "LeNet-5 (250 steps of LeNet-5 leave E-RIDER at 13 %); paper numbers are 40 epochs on MNIST")
    return {**result, "tolerance": tol, "checks": checks, "notes": notes}


# =============================================================================================
# p5-fig5: the chopper-probability ablation of E-RIDER (FCN)
# =============================================================================================
P5_FIG5_PROBS = (0.0, 0.01, 0.05, 0.1, 0.2)
P5_FIG5_ETA = 0.25  # Q's rate held at its Table 5 value (tail_weightening 5 x p 0.05) while p varies
P5_FIG5_QUICK = dict(probs=(0.0, 0.05, 0.2), n_columns=16)
P5_FIG5_LAST = 10  # epochs averaged for the comparison (all of a shorter run's)
P5_FIG5_SLOW_ETA = 0.02  # full mode also runs p = 0 and 0.05 with this slower Q: the verdict's sensitivity to eta


def p5_fig5_config(prob: float, quick: bool, seed: int, eta: float = P5_FIG5_ETA) -> TrainConfig:
    """E-RIDER on the FCN of P5 Table 2 (reference mean 0, std 0.05) with chopper probability ``prob``.

    ``prob = 0`` is RIDER (``rider``): E-RIDER's analog copy Q~ is refreshed only at chopper flips, so
    at p = 0 it would read P against its first copy forever and never use the tracked Q (``erider``
    refuses p = 0 for that reason).
    """
    cfg = p5_config("fcn", "E-RIDER", 0.0, 0.05, quick, seed)
    params = dict(cfg.algorithm_params, in_chop_prob=prob, eta=eta)
    if quick:
        params["n_columns"] = P5_FIG5_QUICK["n_columns"]
    return dataclasses.replace(cfg, epochs=cfg.epochs if quick else 50, algorithm_params=params,
                               algorithm="erider" if prob else "rider")


def run_p5_fig5(quick: bool, seed: int, out: Path, selection: Cells = Cells()) -> dict:
    probs = P5_FIG5_QUICK["probs"] if quick else P5_FIG5_PROBS
    cells = [(f"p={p:g}", p5_fig5_config(p, quick, seed), None) for p in probs]
    slow = [] if quick else [(f"p={p:g}/eta={P5_FIG5_SLOW_ETA:g}", p5_fig5_config(p, quick, seed, P5_FIG5_SLOW_ETA),
                              None) for p in (0.0, 0.05)]
    acc, result = run_cells(cells + slow, out, selection)
    # one epoch's test accuracy moves by about half a point (measured), so cells are compared by the mean
    # over their last epochs
    last = min(P5_FIG5_LAST, p5_fig5_config(0.0, quick, seed).epochs)
    late = {k: float(np.mean([r["test_acc"] for r in read_metrics(Path(f).parent)[-last:]]))
            for k, f in result["measured"]["metrics_files"].items()}
    best = max((k for k, _, _ in cells if k != "p=0"), key=late.get)
    result["measured"]["test_acc_last_epochs_mean"] = late
    result["measured"]["best_chopped"] = {"cell": best, "test_acc_last_epochs_mean": late[best],
                                          "over_p0_points": late[best] - late["p=0"]}
    if slow:  # reported, not checked: how much the verdict owes to eta
        rider, chopped = (late[k] for k, _, _ in slow)
        result["measured"]["slow_eta"] = {"eta": P5_FIG5_SLOW_ETA, "rider_minus_p0.05_points": rider - chopped}
    checks = [check(f"some p > 0 beats p = 0 (RIDER): best ({best}) minus p = 0, mean test accuracy of the last "
                    f"{last} epochs (points)", late[best] - late["p=0"], ">=", 1.0)]
    notes = [
        "Setting of p5-tables' FCN E-RIDER cell at reference mean 0, std 0.05 (P5 Table 5 rates, ReRAM HfO2, P5 "
        "Table 6 periphery), for 50 epochs (P5 Fig. 5: 'E-RIDER, MNIST-FCN, 50 epochs'; papers.md gives no "
        "other setting of the figure). [I] which reference offset Fig. 5 used is not stated: Table 2's first "
        "cell. [I] the chopper flips periodically (in_chop_random false, as Table 5), every max(ceil(1/p), 2) "
        f"reads of a column; Q's rate is held at eta = {P5_FIG5_ETA} (p5-tables' tail_weightening x p at p = "
        "0.05) for every p, so that p alone varies and p = 0 is RIDER (Alg. 2) with the same filter, not a "
        "frozen Q (tail_weightening x 0). The p = 0 cell runs algorithm rider, which subtracts the tracked Q "
        "itself: P5's 'RIDER = E-RIDER with p = 0' cannot be taken literally, since E-RIDER refreshes its analog "
        "copy of Q only at chopper flips, so at p = 0 it would read P against its first copy for the whole run "
        "(no tracking). A first full run did that by mistake (erider, p = 0): 88.56 % after 50 epochs, mean "
        "88.89 % over the last 10 (docs/full-runs.md).",
        "'Clearly beats' is read as at least one point of test accuracy (no numbers are given for Fig. 5), "
        f"averaged over the last {P5_FIG5_LAST} epochs of each cell: single epochs of these cells scatter by "
        "0.4-0.7 points (standard deviation over epochs 41-50, measured).",
        f"Full mode also runs p = 0 and p = 0.05 with a slower Q, eta = {P5_FIG5_SLOW_ETA} (cells p=0/eta=0.02 and "
        "p=0.05/eta=0.02), reported as slow_eta and not checked: RIDER's W can move only beta / eta times as far "
        "as its Q (the invariant of p5-tracking), so the comparison depends on eta, which P5 does not give.",
    ]
    if quick:
        notes.append(
            "quick: 3 epochs of the embedded MNIST subset, p in {0, 0.05, 0.2}, and 16 columns per transfer instead "
            "of 1 (with one column the 784-input layer reads each column ~1.5 times in 3 epochs, so no chopper "
            "would flip: p = 0.01 and 0.05 then give identical runs, measured). Mean test accuracy of the three "
            "epochs 12.1 / 53.4 / 24.2 % for p = 0 / 0.05 / 0.2 at one thread, 12.1 / 52.1 / 24.2 % at two: RIDER "
            "(p = 0) does not learn, its training loss rises from 2.51 to 2.65. That is the invariant of eq. 11b + "
            "12 that p5-tracking measures (W - (beta/eta) Q stays constant, so W moves only by beta/eta times Q's "
            "net change); the chopper breaks it. (The earlier reading, erider at p = 0 with its frozen copy of Q, "
            "gave quick means 55.8 / 56.1 %: residual learning against a fixed reference learns.) The verdict rests on "
            "holding eta at 0.25: W can then move only beta / eta ~ 0.16 times as far as Q (beta = the buffer rate "
            "of the 784-input layer, 0.05 x 784 / 1000). With a slower Q RIDER learns and beats the chopper: last "
            "epoch 61.1 % (eta 0.02) and 66.1 % (eta 0.002) against E-RIDER p = 0.05's 54.5 / 47.1 % at the same "
            "eta (seed 0, one thread), though its Q then moves only eta / beta ~ 0.5 and 0.05 times as far as W "
            "(towards residual learning against P's initial reference, not tracking). P5 gives no eta; which one "
            "its Fig. 5 used decides the figure.")
    return {**result, "tolerance": f"best p > 0 at least 1 point above p = 0 (mean of the last {last} epochs)",
            "checks": checks, "notes": notes}


register(Experiment(
    "p1-mnist-tt", "P1 Fig. 5 tables, Tiki-Taka rows: FCN tau 0.70/0.78/0.80 and LeNet-5 tau 0.6/0.7/0.8",
    "Tiki-Taka stays within 1 % of digital SGD on both nets (97.6 % FCN, 98.9 % CNN) where Analog SGD fails "
    "at tau = 0.70 (FCN) or loses > 6 % (CNN)",
    "P1 Fig. 5 tables, papers.md §3(d)-(e)", run_p1_tt, resumable=True))
register(Experiment(
    "p3-table1", "P3 Table 1, LeNet-5 with 10 (MNIST) / 4 (Fashion-MNIST) states: TT-v1, TT-v2, MP, 3/4/6 tiles",
    "with few conductance states TT-v1 fails, mixed precision is best, and multi-tile residual learning "
    "approaches MP as tiles are added (MNIST 95.1 / 97.1 / 98.5 % vs MP 99.1 %)",
    "P3 Table 1, papers.md §5(d)-(e)", run_p3, resumable=True))
register(Experiment(
    "p5-fig5", "P5 Fig. 5: E-RIDER's chopper probability p on the FCN, p = 0 (RIDER) to 0.2",
    "a small chopper probability p > 0 clearly beats p = 0 (RIDER) on MNIST-FCN",
    "P5 Fig. 5, papers.md §7(d)-(e)", run_p5_fig5, resumable=True))
register(Experiment(
    "p5-tables", "P5 Tables 1-2 with reference offsets on ReRAM HfO2: LeNet-5 row (mean 0, std 0.05) and the "
    "FCN corner (mean 0 / 0.4, std 0.05 / 1.0): TT-v2, AGAD, E-RIDER",
    "with a residual array whose reference is offset from its symmetric point, E-RIDER is best and stable, AGAD "
    "is stable, TT-v2 degrades (LeNet-5 93.8 / 90.8 / 75.2 %; FCN at mean 0.4, std 1.0: 95.1 / 90.4 / 57.8 %)",
    "P5 Tables 1-2, 3, 5, 6; papers.md §7(d)-(e)", run_p5, resumable=True))
