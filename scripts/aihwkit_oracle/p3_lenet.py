"""P3 Table 1, a multi-tile LeNet-5 cell, on aihwkit's stock TransferCompound (papers.md §5(d)).

The stock cascade runs from the first step (no warm start: that is P3's fork, not aihwkit).  Compare with
``analogtrain train`` on ``p3_config(dataset, "N tiles")`` with ``warm_start=false`` (README, cross-check).
usage: python p3_lenet.py DATA.pt --tiles 3 --epochs 4 [--fast-lr 1.0]
"""

import argparse

import torch
import torch.nn as nn
from aihwkit.nn import AnalogConv2d, AnalogLinear, AnalogSequential
from aihwkit.optim import AnalogSGD
from aihwkit.simulator.configs import IOParameters, SoftBoundsDevice, TransferCompound, UnitCellRPUConfig

from common import fit, perfect_mapping

SETTINGS = {  # P3 Table 1: states, batch, global lr of the tiles, gamma of the tile sum
    "mnist": dict(states=10, batch=8, lr=0.05, gamma=0.5),
    "fashion-mnist": dict(states=4, batch=16, lr=0.2, gamma=0.2),
}

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("data", help="mnist.pt or fashion-mnist.pt from export_data.py")
parser.add_argument("--tiles", type=int, default=3)
parser.add_argument("--fast-lr", type=float, default=None, help="absolute lr of the gradient tile "
                    "(default: the dataset's global lr, as analogtrain; P3's code: 1.0)")
parser.add_argument("--epochs", type=int, default=4)
parser.add_argument("--train-limit", type=int, default=0)
args = parser.parse_args()
s = SETTINGS["fashion-mnist" if "fashion" in args.data else "mnist"]
fast_lr = s["lr"] if args.fast_lr is None else args.fast_lr
torch.manual_seed(0)
N = args.tiles - 1
device = TransferCompound(  # device 0 is the gradient tile W^(N); rates and periods indexed by source device
    unit_cell_devices=[SoftBoundsDevice(w_max=0.6, w_min=-0.6, dw_min=1.2 / s["states"]) for _ in range(N + 1)],
    gamma_vec=[s["gamma"] ** (N - i) for i in range(N + 1)],
    transfer_every_vec=[2 * 5 ** i for i in range(N + 1)], units_in_mbatch=True,
    transfer_lr_vec=[0.1 * 1.2 ** (N - i) for i in range(N + 1)], scale_transfer_lr=False,
    fast_lr=fast_lr, scale_fast_lr=False, n_reads_per_transfer=1, transfer_columns=True,
    transfer_forward=IOParameters(is_perfect=True))
config = perfect_mapping(UnitCellRPUConfig(device=device))
config.forward = IOParameters(is_perfect=True)
config.backward = IOParameters(is_perfect=True)
model = AnalogSequential(
    AnalogConv2d(1, 16, 5, rpu_config=config), nn.Tanh(), nn.MaxPool2d(2),
    AnalogConv2d(16, 32, 5, rpu_config=config), nn.Tanh(), nn.MaxPool2d(2), nn.Flatten(),
    AnalogLinear(512, 128, rpu_config=config), nn.Tanh(), AnalogLinear(128, 10, rpu_config=config),
    nn.LogSoftmax(dim=1))
optimizer = AnalogSGD(model.parameters(), lr=s["lr"])
optimizer.regroup_param_groups(model)
print(f"{args.tiles} tiles, fast lr {fast_lr}: gamma {device.gamma_vec}, every {device.transfer_every_vec}, "
      f"transfer lr {[round(v, 4) for v in device.transfer_lr_vec]}", flush=True)
fit(model, optimizer, args.data, s["batch"], args.epochs, args.train_limit)
