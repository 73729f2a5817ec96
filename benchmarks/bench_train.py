"""Speed of whole training steps (forward, backward, update of every layer, digital parameters).

Prints ms per step of the papers' FCN (784-256-128-10, sigmoid, all layers analog) at batch 8 and
64 for: plain digital torch (nn.Linear + torch.optim.SGD), analog tiles with ``expected`` updates,
and analog tiles with ``stochastic`` pulse-train updates (soft-bounds device with aihwkit's default
30 % variations, BL 31 with update-BL and update management, default periphery); the same
stochastic step for the residual-learning algorithms (Tiki-Taka, c-TTv2, AGAD, default options; timed in
alternating rounds with analog SGD, median over rounds, so that their ratios to it hold on a loaded machine);
and images per second of the LeNet-5 CNN at batch 8 (digital and stochastic).  Real MNIST batches from the
embedded subset; the first steps (numba compilation, warm-up) are not timed.

and, with ``--paper-cells``, the step time of the full-mode reproduction cells (P1 Tiki-Taka CNN, P3
Table 1, P5 Tables 1-2) with their exact settings, and the minutes per MNIST epoch that follow.

    python benchmarks/bench_train.py [--steps 200] [--threads N] [--rounds 10] [--algorithms-only | --paper-cells]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from analogtrain.data import batches, load_dataset
from analogtrain.devices import make_device
from analogtrain.models import build_model
from analogtrain.nn import AnalogLayerConfig, AnalogOptimizer
from analogtrain.pulses import UpdateConfig
from analogtrain.tile import TileConfig


def model_for(name: str, mode: str | None, algorithm: str = "analog-sgd"):
    if mode is None:
        return build_model(name, seed=0)
    tile = TileConfig(device=make_device("softbounds-reference"), update=UpdateConfig(mode=mode, bl=31))
    return build_model(name, analog=AnalogLayerConfig(tile=tile, algorithm=algorithm), seed=0)


def ms_per_step(name: str, mode: str | None, batch: int, steps: int, x, y, algorithm: str = "analog-sgd") -> float:
    model = model_for(name, mode, algorithm)
    opt = AnalogOptimizer(model.parameters(), lr=0.05) if mode else torch.optim.SGD(model.parameters(), lr=0.05)
    it = batches(x, y, batch, True, torch.Generator().manual_seed(0), drop_last=True)
    data = [next(it) for _ in range(min(steps + 20, len(y) // batch))]
    for xb, yb in data[:20]:  # warm-up (compilation)
        opt.zero_grad()
        F.nll_loss(model(xb), yb).backward()
        opt.step()
    t = time.perf_counter()
    for xb, yb in data[20:]:
        opt.zero_grad()
        F.nll_loss(model(xb), yb).backward()
        opt.step()
    return (time.perf_counter() - t) / len(data[20:]) * 1e3


def ms_per_step_interleaved(algorithms, batch: int, steps: int, x, y, rounds: int = 10) -> list[float]:
    """``ms_per_step`` of several algorithms (stochastic FCN), timed in alternating rounds of
    ``steps // rounds`` steps: on a shared machine the load then drifts over all of them alike, so their
    ratios are steadier than from back-to-back runs.  Returns the median over rounds, per algorithm."""
    runs = []
    for a in algorithms:
        model = model_for("fcn", "stochastic", a)
        opt = AnalogOptimizer(model.parameters(), lr=0.05)
        it = batches(x, y, batch, True, torch.Generator().manual_seed(0), drop_last=True)
        data = [next(it) for _ in range(min(steps + 20, len(y) // batch))]
        runs.append((model, opt, data))
    per_round = max((len(runs[0][2]) - 20) // rounds, 1)
    times = [[] for _ in algorithms]
    for r in range(-1, rounds):  # round -1: warm-up (compilation), not timed
        for (model, opt, data), ts in zip(runs, times):
            chunk = data[:20] if r < 0 else data[20 + r * per_round: 20 + (r + 1) * per_round]
            t = time.perf_counter()
            for xb, yb in chunk:
                opt.zero_grad()
                F.nll_loss(model(xb), yb).backward()
                opt.step()
            if r >= 0 and chunk:
                ts.append((time.perf_counter() - t) / len(chunk) * 1e3)
    return [statistics.median(ts) for ts in times]


def _separate_reads(cfg):
    """``cfg`` with one MVM per array (``mixed_read = separate``) instead of one of the summed weight."""
    return dataclasses.replace(cfg, algorithm_params={**cfg.algorithm_params, "mixed_read": "separate"})


def paper_cells():
    """(label, TrainConfig) of the full-mode table cells whose length sets how long a reproduction takes."""
    from analogtrain.experiments.mnist_residual import p1_tt_config, p3_config, p5_config

    return [("P1 TT CNN tau 0.7", p1_tt_config("lenet5", 0.7, False, 0)),
            ("P3 LeNet MP", p3_config("mnist", "MP", False, 0)),
            ("P3 LeNet 3 tiles", p3_config("mnist", "3 tiles", False, 0)),
            ("P3 LeNet 6 tiles", p3_config("mnist", "6 tiles", False, 0)),
            ("P5 LeNet E-RIDER", p5_config("lenet5", "E-RIDER", 0.0, 0.05, False, 0)),
            ("  separate reads", _separate_reads(p5_config("lenet5", "E-RIDER", 0.0, 0.05, False, 0))),
            ("P5 FCN E-RIDER", p5_config("fcn", "E-RIDER", 0.0, 0.05, False, 0))]


def ms_per_cell_step(cfg, steps: int, x, y) -> float:
    """ms per training step of a reproduction cell's exact model, arrays and algorithm options."""
    from analogtrain.train import layer_config

    model = build_model(cfg.model, analog=layer_config(cfg), seed=0)
    opt = AnalogOptimizer(model.parameters(), lr=cfg.lr)
    it = batches(x, y, cfg.batch, True, torch.Generator().manual_seed(0), drop_last=True)
    data = [next(it) for _ in range(min(steps + 20, len(y) // cfg.batch))]
    for i, (xb, yb) in enumerate(data):
        if i == 20:  # the first steps compile the kernels
            t = time.perf_counter()
        opt.zero_grad()
        F.nll_loss(model(xb), yb).backward()
        opt.step()
    return (time.perf_counter() - t) / (len(data) - 20) * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--rounds", type=int, default=10,
                    help="alternating timing rounds of the algorithm table (median over rounds)")
    ap.add_argument("--algorithms-only", action="store_true",
                    help="only the table of residual algorithms (skip digital/expected and LeNet-5)")
    ap.add_argument("--paper-cells", action="store_true",
                    help="only the full-mode reproduction cells: ms per step and minutes per MNIST epoch")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import numba

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    x, y = load_dataset("mnist-subset", "train").tensors()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, threads {args.threads}")
    if args.paper_cells:
        print(f"{'cell':>18} {'batch':>5} {'ms/step':>8} {'min/epoch':>9}   (60000 MNIST images per epoch)")
        for label, cfg in paper_cells():
            ms = ms_per_cell_step(cfg, args.steps, x, y)
            print(f"{label:>18} {cfg.batch:>5} {ms:>8.2f} {ms * 60000 / cfg.batch / 6e4:>9.2f}")
        return
    if not args.algorithms_only:
        print(f"{'model':>7} {'batch':>5} {'digital':>9} {'expected':>9} {'stochastic':>10}   (ms per training step)")
        for batch in (8, 64):
            row = [ms_per_step("fcn", m, batch, args.steps, x, y) for m in (None, "expected", "stochastic")]
            print(f"{'fcn':>7} {batch:>5} {row[0]:>9.2f} {row[1]:>9.2f} {row[2]:>10.2f}")
    from analogtrain.algorithms import ALGORITHMS

    algorithms = [a for a in ("analog-sgd", "tiki-taka", "cttv2", "agad") if a in ALGORITHMS]
    print(f"{'model':>7} {'batch':>5} " + " ".join(f"{a:>10}" for a in algorithms) + "   (ms per stochastic step)")
    for batch in (8, 64):
        row = ms_per_step_interleaved(algorithms, batch, args.steps, x, y, args.rounds)
        print(f"{'fcn':>7} {batch:>5} " + " ".join(f"{v:>10.2f}" for v in row))
        print(f"{'':>7} {'':>5} " + " ".join(f"{v / row[0]:>9.2f}x" for v in row) + f"   (vs {algorithms[0]})")
    if args.algorithms_only:
        return
    dig = ms_per_step("lenet5", None, 8, args.steps // 2, x, y)
    sto = ms_per_step("lenet5", "stochastic", 8, args.steps // 2, x, y)
    print(f"{'lenet5':>7} {8:>5} {8e3 / dig:>9.0f} {'':>9} {8e3 / sto:>10.0f}   (images per second)")


if __name__ == "__main__":
    main()
