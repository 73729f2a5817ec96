"""Speed of the tile's hot paths on the papers' FCN (784-256-128-10, sigmoid), printed as a table.

Realistic signals: an FCN is trained digitally for a few hundred steps on MNIST (from
``$ANALOGTRAIN_DATA`` or ../shared/data), then the inputs x and back-propagated errors d of each
layer for one batch are captured and fed to three analog tiles (soft-bounds device with 30 %
device-to-device and 30 % cycle-to-cycle variation, pulse trains of at most 31 with update-BL and
update management, default periphery), lr 0.05.

Reports the median ms over repeats of: forward, backward, ``stochastic`` update, ``expected`` update
of all three tiles, the plain digital outer-product update ``W -= lr d^T x`` of the same three
weights ("outer", the floor for an update), the pulses fired per stochastic step, and a whole plain
digital torch step (forward + backward + SGD) of the same network; then one zero-shifting round (a random
+-1 pulse on every element of the three tiles, P5 Alg. 1) against the torch reference path, with additive
and with multiplicative cycle-to-cycle noise.

    python benchmarks/bench_tile.py [--repeats 50] [--threads N]
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import statistics
import struct
import time
from pathlib import Path

import torch

from analogtrain.devices.soft_bounds import SoftBounds
from analogtrain.pulses import UpdateConfig
from analogtrain.tile import AnalogTile, TileConfig

SIZES = [784, 256, 128, 10]
LR = 0.05


def mnist_images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    root = Path(os.environ.get("ANALOGTRAIN_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    with gzip.open(root / "mnist" / "train-images-idx3-ubyte.gz") as f:
        _, count, rows, cols = struct.unpack(">IIII", f.read(16))
        x = torch.frombuffer(bytearray(f.read(n * rows * cols)), dtype=torch.uint8)
    with gzip.open(root / "mnist" / "train-labels-idx1-ubyte.gz") as f:
        f.read(8)
        y = torch.frombuffer(bytearray(f.read(n)), dtype=torch.uint8)
    return x.view(n, -1).float() / 255, y.long()


def digital_fcn() -> torch.nn.Sequential:
    layers = []
    for k, (i, o) in enumerate(zip(SIZES, SIZES[1:])):
        layers += [torch.nn.Linear(i, o, bias=False)] + ([torch.nn.Sigmoid()] if k < 2 else [])
    return torch.nn.Sequential(*layers, torch.nn.LogSoftmax(dim=1))


def capture_signals(model, x, y):
    """Inputs and output errors (dLoss/dy, summed-loss convention) of each Linear for one batch."""
    xs, ds = [], []

    def hook(module, inputs, output):
        xs.append(inputs[0].detach())
        output.register_hook(lambda g: ds.append(g.detach()))  # errors of the mean loss, as a layer receives them

    hooks = [m.register_forward_hook(hook) for m in model if isinstance(m, torch.nn.Linear)]
    loss = torch.nn.functional.nll_loss(model(x), y, reduction="mean")
    loss.backward()
    for h in hooks:
        h.remove()
    return xs, ds[::-1]


def timed(fn, repeats: int) -> float:
    fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out) * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--batches", type=int, nargs="+", default=[8, 64])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import numba

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))

    torch.manual_seed(0)
    images, labels = mnist_images(20000)
    model = digital_fcn()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(300):  # a little digital training so the errors look like mid-training ones
        idx = torch.randint(0, len(images), (32,))
        opt.zero_grad()
        torch.nn.functional.nll_loss(model(images[idx]), labels[idx]).backward()
        opt.step()

    device = SoftBounds(dw_min=0.001, w_max=0.6, w_min=-0.6, dw_min_dtod=0.3, dw_min_std=0.3,
                        up_down_dtod=0.01, w_max_dtod=0.3, w_min_dtod=0.3)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, threads {args.threads}")
    print(f"{'batch':>5} {'forward':>9} {'backward':>9} {'stoch.upd':>9} {'expect.upd':>10} "
          f"{'outer':>9} {'pulses/step':>11} {'digital step':>12}   (ms, all three layers)")
    for batch in args.batches:
        x = images[:batch]
        xs, ds = capture_signals(model, x, labels[:batch])
        tiles = {}
        for mode in ("stochastic", "expected"):
            cfg = TileConfig(device=device, update=UpdateConfig(mode=mode, bl=31))
            tiles[mode] = [AnalogTile(o, i, cfg, seed=k) for k, (i, o) in enumerate(zip(SIZES, SIZES[1:]))]
            for t, m in zip(tiles[mode], [m for m in model if isinstance(m, torch.nn.Linear)]):
                t.program(m.weight.detach().clamp(-0.5, 0.5))
        st = tiles["stochastic"]
        fwd = timed(lambda: [t.forward(a) for t, a in zip(st, xs)], args.repeats)
        bwd = timed(lambda: [t.backward(d) for t, d in zip(st, ds)], args.repeats)
        p0 = sum(t.pulse_count for t in st)
        upd = timed(lambda: [t.update(a, d, LR) for t, a, d in zip(st, xs, ds)], args.repeats)
        pulses_per_step = (sum(t.pulse_count for t in st) - p0) / (args.repeats + 1)
        exp = timed(lambda: [t.update(a, d, LR) for t, a, d in zip(tiles["expected"], xs, ds)], args.repeats)

        def digital_step():
            opt.zero_grad()
            torch.nn.functional.nll_loss(model(x), labels[:batch]).backward()
            opt.step()

        dig = timed(digital_step, args.repeats)
        weights = [t.conductance.clone() for t in st]
        outer = timed(lambda: [w.add_(d.T @ a, alpha=-LR) for w, a, d in zip(weights, xs, ds)], args.repeats)
        print(f"{batch:>5} {fwd:>9.2f} {bwd:>9.2f} {upd:>9.2f} {exp:>10.2f} {outer:>9.2f} "
              f"{pulses_per_step:>11.0f} {dig:>12.2f}")

    # zero-shifting (P5 Alg. 1): one random +-1 pulse on every element of the three tiles per round, with
    # additive cycle noise (this device: a closed form per element) and multiplicative (aihwkit's: per pulse)
    gen = torch.Generator().manual_seed(0)
    signs = [torch.randint(0, 2, (o, i), generator=gen).double() * 2 - 1 for i, o in zip(SIZES, SIZES[1:])]
    n = sum(s.numel() for s in signs)
    for c2c in ("additive", "multiplicative"):
        cfg = TileConfig(device=device.replace(c2c_mode=c2c))
        zs = [AnalogTile(*s.shape, cfg, seed=k) for k, s in enumerate(signs)]
        fast = timed(lambda: [t.send_pulses(s) for t, s in zip(zs, signs)], args.repeats)
        ref = timed(lambda: [t._send_pulses_reference(s) for t, s in zip(zs, signs)], args.repeats)
        print(f"zero-shifting round, {c2c} c2c ({n} elements, one pulse each): {fast:.2f} ms "
              f"({n / fast / 1e3:.0f} M pulses/s); torch reference path {ref:.2f} ms")


if __name__ == "__main__":
    main()
