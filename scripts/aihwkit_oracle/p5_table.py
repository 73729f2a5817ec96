"""A cell of P5 Table 1 (LeNet-5) or Table 2 (FCN) on aihwkit's stock compounds (papers.md §7(d)).

ReRamArrayHfO2 preset on both arrays, the residual array's reference at SP + mean + std * xi; Table 3 / 5
rates, Table 6 periphery.  AGAD is DynamicTransferCompound.  ``--method E-RIDER`` runs the E-RIDER fields
with gamma 0.1 on the same compound ("AGAD with gamma", the nearest stock reading of them, papers.md §7(c));
it is not analogtrain's ``erider`` (P5 Alg. 3), which aihwkit does not have.  ``--method TT-v2`` runs the
TT-v2 fields on BufferedTransferCompound.  After every epoch it prints how many elements of the slow array
have moved (TT-v2's threshold transfer never fires at Table 5's rates: README, p5-tables).
usage: python p5_table.py mnist.pt --model fcn --method AGAD --mean 0 --std 0.05 --epochs 40
"""

import argparse

import torch
import torch.nn as nn
from aihwkit.nn import AnalogConv2d, AnalogLinear, AnalogSequential
from aihwkit.optim import AnalogSGD
from aihwkit.simulator.configs import (BufferedTransferCompound, DynamicTransferCompound, IOParameters,
                                       UnitCellRPUConfig)
from aihwkit.simulator.parameters.enums import BoundManagementType, NoiseManagementType
from aihwkit.simulator.presets.devices import ReRamArrayHfO2PresetDevice

from common import fit, perfect_mapping

# fast lr, transfer lr, transfer lr scaled by the global lr, in_chop_prob, gamma, global lr (P5 Tables 3 / 5;
# the global lr is given for LeNet-5 only and used for the FCN too, as in analogtrain's p5_config)
RATES = {
    "lenet5": {"TT-v2": (0.005, 0.005, True, 0.0, 0.0, 0.005), "AGAD": (0.01, 0.2, True, 0.1, 0.0, 0.05),
               "E-RIDER": (0.5, 0.05, False, 0.05, 0.1, 0.05)},
    "fcn": {"TT-v2": (0.03, 0.01, True, 0.0, 0.0, 0.005), "AGAD": (0.05, 0.3, True, 0.1, 0.0, 0.05),
            "E-RIDER": (0.5, 0.05, False, 0.05, 0.1, 0.05)},
}
BATCH = {"lenet5": 8, "fcn": 10}

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("data", help="mnist.pt from export_data.py")
parser.add_argument("--model", choices=tuple(RATES), default="fcn")
parser.add_argument("--method", choices=("AGAD", "E-RIDER", "TT-v2"), default="AGAD")
parser.add_argument("--mean", type=float, default=0.0)
parser.add_argument("--std", type=float, default=0.05)
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--train-limit", type=int, default=0)
args = parser.parse_args()
fast, transfer, scaled, chop, gamma, lr = RATES[args.model][args.method]
torch.manual_seed(0)
common = dict(
    unit_cell_devices=[ReRamArrayHfO2PresetDevice(reference_mean=args.mean, reference_std=args.std),
                       ReRamArrayHfO2PresetDevice()],
    transfer_every=1, units_in_mbatch=True, transfer_columns=True, no_self_transfer=True, n_reads_per_transfer=1,
    fast_lr=fast, scale_fast_lr=False, transfer_lr=transfer, scale_transfer_lr=scaled, forget_buffer=True,
    gamma=gamma, transfer_forward=IOParameters(noise_management=NoiseManagementType.NONE,
                                               bound_management=BoundManagementType.NONE))
if args.method == "TT-v2":
    device = BufferedTransferCompound(**common, momentum=0.1, thres_scale=0.8)
else:
    device = DynamicTransferCompound(**common, in_chop_prob=chop, in_chop_random=False, out_chop_prob=0.0,
                                     auto_granularity=1000, auto_scale=False, auto_momentum=0.99, momentum=0.0,
                                     tail_weightening=5.0)
config = perfect_mapping(UnitCellRPUConfig(device=device))  # forward / backward: aihwkit's default periphery
if args.model == "fcn":
    layers = [nn.Flatten(), AnalogLinear(784, 256, rpu_config=config), nn.Sigmoid(),
              AnalogLinear(256, 128, rpu_config=config), nn.Sigmoid(), AnalogLinear(128, 10, rpu_config=config)]
else:
    layers = [AnalogConv2d(1, 16, 5, rpu_config=config), nn.Tanh(), nn.MaxPool2d(2),
              AnalogConv2d(16, 32, 5, rpu_config=config), nn.Tanh(), nn.MaxPool2d(2), nn.Flatten(),
              AnalogLinear(512, 128, rpu_config=config), nn.Tanh(), AnalogLinear(128, 10, rpu_config=config)]
model = AnalogSequential(*layers, nn.LogSoftmax(dim=1))
optimizer = AnalogSGD(model.parameters(), lr=lr)
optimizer.regroup_param_groups(model)
tiles = [next(m.analog_tiles()) for m in model if isinstance(m, (AnalogLinear, AnalogConv2d))]
slow_start = [t.get_hidden_parameters()["hidden_weights_1"].clone() for t in tiles]


def slow_array_moved(epoch: int) -> None:
    moved = sum(int((t.get_hidden_parameters()["hidden_weights_1"] != w0).sum()) for t, w0 in zip(tiles, slow_start))
    print(f"  after epoch {epoch}: {moved} of {sum(w.numel() for w in slow_start)} slow-array elements moved")


print(f"{args.model} {args.method} ({type(device).__name__}, gamma {gamma}), reference mean {args.mean} "
      f"std {args.std}", flush=True)
fit(model, optimizer, args.data, BATCH[args.model], args.epochs, args.train_limit, on_epoch=slow_array_moved)
