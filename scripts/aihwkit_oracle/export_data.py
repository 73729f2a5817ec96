"""Write MNIST / Fashion-MNIST as analogtrain feeds them (normalised float32 tensors) for the oracle scripts.

Run with analogtrain's environment:  python scripts/aihwkit_oracle/export_data.py OUT_DIR
(reads the data folder of ``--data-dir`` / ``$ANALOGTRAIN_DATA`` and writes OUT_DIR/mnist.pt, OUT_DIR/fashion-mnist.pt)
"""

import argparse
from pathlib import Path

import torch

from analogtrain.data import load_dataset

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("out", type=Path)
parser.add_argument("--data-dir", default=None)
args = parser.parse_args()
args.out.mkdir(parents=True, exist_ok=True)
for name in ("mnist", "fashion-mnist"):
    splits = {s: load_dataset(name, s, data_dir=args.data_dir).tensors() for s in ("train", "test")}
    torch.save(splits, args.out / f"{name}.pt")
    print(f"{args.out / name}.pt: {len(splits['train'][1])} train, {len(splits['test'][1])} test images")
