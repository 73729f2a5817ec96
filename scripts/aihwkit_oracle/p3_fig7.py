"""P3 Fig. 7 (right), the scalar toy, on aihwkit's stock TransferCompound (papers.md §5(d); analogtrain: p3-fig7).

AnalogLinear(1, 1) of 2-bit soft-bounds tiles on [-1, 1] (dw_min 0.5), gamma 0.1, transfer every 2 * 2^n
mini-batches at lr 0.01 (unscaled), fast lr 0.01 (absolute), global lr 0.001, batch 1, update and BL management
off, no weight scaling; loss (w - b)^2 for targets b on the 16-bit grid of [-1, 1].  Prints the mean loss over
the last fifth of the steps for 1-5 tiles (1 tile: Analog SGD at lr 0.01, as analogtrain's p3-fig7).
usage: python p3_fig7.py --steps 10000 --targets 6 [--variation]
"""

import argparse

import torch
from aihwkit.nn import AnalogLinear
from aihwkit.optim import AnalogSGD
from aihwkit.simulator.configs import (IOParameters, SingleRPUConfig, SoftBoundsDevice, TransferCompound,
                                       UnitCellRPUConfig, UpdateParameters)

from common import perfect_mapping

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--steps", type=int, default=10000)
parser.add_argument("--targets", type=int, default=6)
parser.add_argument("--variation", action="store_true", help="keep aihwkit's default device variations "
                    "(30 %% d2d and c2c); without it the tiles are identical, as in analogtrain's p3-fig7")
args = parser.parse_args()
plain_update = UpdateParameters(update_bl_management=False, update_management=False)


def tile_device() -> SoftBoundsDevice:
    device = SoftBoundsDevice(w_max=1.0, w_min=-1.0, dw_min=0.5)
    if not args.variation:
        device.dw_min_dtod = device.dw_min_std = device.w_max_dtod = device.w_min_dtod = device.up_down_dtod = 0.0
    return device


def rpu_config(n: int):
    if n == 1:
        config = SingleRPUConfig(device=tile_device())
    else:
        N = n - 1
        config = UnitCellRPUConfig(device=TransferCompound(
            unit_cell_devices=[tile_device() for _ in range(n)], gamma_vec=[0.1 ** (N - i) for i in range(n)],
            transfer_every_vec=[2 * 2 ** i for i in range(n)], units_in_mbatch=True, transfer_lr_vec=[0.01] * n,
            scale_transfer_lr=False, fast_lr=0.01, scale_fast_lr=False,
            transfer_forward=IOParameters(is_perfect=True), transfer_update=plain_update))
    config.forward = IOParameters(is_perfect=True)
    config.backward = IOParameters(is_perfect=True)
    config.update = plain_update
    return perfect_mapping(config)


grid = torch.randint(0, 2 ** 16, (args.targets,), generator=torch.Generator().manual_seed(0))
targets = [-1 + int(k) * 2 / (2 ** 16 - 1) for k in grid]
x, window = torch.ones(1, 1), args.steps // 5
for n in range(1, 6):
    finals = []
    for j, b in enumerate(targets):
        torch.manual_seed(100 * n + j)
        layer = AnalogLinear(1, 1, bias=False, rpu_config=rpu_config(n))
        layer.set_weights(torch.zeros(1, 1))
        optimizer = AnalogSGD(layer.parameters(), lr=0.01 if n == 1 else 0.001)
        optimizer.regroup_param_groups(layer)
        tail = 0.0
        for k in range(args.steps):
            loss = ((layer(x) - b) ** 2).sum()
            if k >= args.steps - window:
                tail += loss.item()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        finals.append(tail / window)
    print(f"{n} tile(s): final loss {sum(finals) / len(finals):.2e} (per target: "
          f"{', '.join(f'{v:.1e}' for v in finals)})", flush=True)
