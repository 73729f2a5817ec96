"""P5 Table 2, an AGAD cell of the FCN, on aihwkit's stock DynamicTransferCompound (papers.md §7(d)).

ReRamArrayHfO2 preset on both arrays, the residual array's reference at SP + mean + std * xi; Table 5 rates,
Table 6 periphery.  ``--method E-RIDER`` runs Table 5's E-RIDER fields with gamma 0.1 on the same compound
("AGAD with gamma", the nearest stock reading of them, papers.md §7(c)); it is not analogtrain's ``erider``
(P5 Alg. 3), which aihwkit does not have.
usage: python p5_fcn.py mnist.pt --method AGAD --mean 0 --std 0.05 --epochs 40
"""

import argparse

import torch
import torch.nn as nn
from aihwkit.nn import AnalogLinear, AnalogSequential
from aihwkit.optim import AnalogSGD
from aihwkit.simulator.configs import DynamicTransferCompound, IOParameters, UnitCellRPUConfig
from aihwkit.simulator.parameters.enums import BoundManagementType, NoiseManagementType
from aihwkit.simulator.presets.devices import ReRamArrayHfO2PresetDevice

from common import fit, perfect_mapping

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("data", help="mnist.pt from export_data.py")
parser.add_argument("--mean", type=float, default=0.0)
parser.add_argument("--std", type=float, default=0.05)
parser.add_argument("--method", choices=("AGAD", "E-RIDER"), default="AGAD")
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--train-limit", type=int, default=0)
args = parser.parse_args()
# P5 Table 5 (FCN): fast lr, transfer lr, whether it scales with the global lr, in_chop_prob, gamma
fast, transfer, scaled, chop, gamma = {"AGAD": (0.05, 0.3, True, 0.1, 0.0),
                                       "E-RIDER": (0.5, 0.05, False, 0.05, 0.1)}[args.method]
torch.manual_seed(0)
device = DynamicTransferCompound(
    unit_cell_devices=[ReRamArrayHfO2PresetDevice(reference_mean=args.mean, reference_std=args.std),
                       ReRamArrayHfO2PresetDevice()],
    transfer_every=1, units_in_mbatch=True, transfer_columns=True, no_self_transfer=True, n_reads_per_transfer=1,
    in_chop_prob=chop, in_chop_random=False, out_chop_prob=0.0, fast_lr=fast, scale_fast_lr=False,
    transfer_lr=transfer, scale_transfer_lr=scaled, auto_granularity=1000, auto_scale=False, auto_momentum=0.99,
    momentum=0.0, forget_buffer=True, tail_weightening=5.0, gamma=gamma,
    transfer_forward=IOParameters(noise_management=NoiseManagementType.NONE,
                                  bound_management=BoundManagementType.NONE))
config = perfect_mapping(UnitCellRPUConfig(device=device))  # forward / backward: aihwkit's default periphery
model = AnalogSequential(
    nn.Flatten(), AnalogLinear(784, 256, rpu_config=config), nn.Sigmoid(),
    AnalogLinear(256, 128, rpu_config=config), nn.Sigmoid(), AnalogLinear(128, 10, rpu_config=config),
    nn.LogSoftmax(dim=1))
optimizer = AnalogSGD(model.parameters(), lr=0.05)
optimizer.regroup_param_groups(model)
print(f"{args.method} (DynamicTransferCompound, gamma {gamma}), reference mean {args.mean} std {args.std}", flush=True)
fit(model, optimizer, args.data, 10, args.epochs, args.train_limit)
