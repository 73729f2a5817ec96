"""Build the embedded MNIST subset (``src/analogtrain/datasets/mnist-subset-*.xz``) from the full MNIST files.

Selection (deterministic, no random numbers involved): for each digit 0..9, the first
``--train-per-class`` (default 400) images of that digit in the official training file and the first
``--test-per-class`` (default 100) images of that digit in the official test file.  The selected
images keep their original relative order (ascending original index), so the classes stay interleaved
as in the full files.  Each split is written in the standard idx format (same headers as the
originals) and compressed with xz (preset 9 extreme), which is byte-for-byte reproducible.

The full files are read through ``analogtrain.data.load_dataset("mnist", download=False)``, so their
sha256 is verified first.  The script prints the sha256 of the decompressed subset files: they must
match the ``"mnist-subset"`` entries of ``_SHA256`` in ``src/analogtrain/data.py``.

Usage:  PYTHONPATH=src python scripts/make_mnist_subset.py [--data-dir DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import lzma
import sys
from pathlib import Path

import torch

from analogtrain.data import _IDX_STEMS, SUBSET_PREFIX, data_dir, load_dataset


def select_indices(labels: torch.Tensor, per_class: int) -> torch.Tensor:
    """Ascending indices of the first ``per_class`` samples of each class 0..9."""
    picked = []
    for c in range(10):
        idx = torch.nonzero(labels == c).flatten()[:per_class]
        if idx.numel() < per_class:
            raise SystemExit(f"class {c} has only {idx.numel()} samples, need {per_class}")
        picked.append(idx)
    return torch.sort(torch.cat(picked)).values


def idx_bytes(tensor: torch.Tensor) -> bytes:
    """Serialize a uint8 tensor in the idx format (type code 0x08, big-endian uint32 dims)."""
    header = bytes([0, 0, 0x08, tensor.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in tensor.shape)
    return header + tensor.contiguous().numpy().tobytes()


def main(argv=None) -> int:
    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="folder containing mnist/ (default: $ANALOGTRAIN_DATA)")
    parser.add_argument("--out", default=str(root / "src" / "analogtrain" / "datasets"))
    parser.add_argument("--train-per-class", type=int, default=400)
    parser.add_argument("--test-per-class", type=int, default=100)
    args = parser.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"source: {data_dir(args.data_dir) / 'mnist'}")
    total = 0
    for split, per_class in (("train", args.train_per_class), ("test", args.test_per_class)):
        full = load_dataset("mnist", split, data_dir=args.data_dir, download=False)
        sel = select_indices(full.labels, per_class)
        images = full.images[sel, 0]  # N x 28 x 28, as in the idx file
        labels = full.labels[sel].to(torch.uint8)
        for stem, tensor in zip(_IDX_STEMS[split], (images, labels)):
            raw = idx_bytes(tensor)
            packed = lzma.compress(raw, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=9 | lzma.PRESET_EXTREME)
            path = out / f"{SUBSET_PREFIX}{stem}.xz"
            path.write_bytes(packed)
            total += len(packed)
            print(f"{path.name}: {tuple(tensor.shape)}, {len(packed)} bytes, sha256 {hashlib.sha256(raw).hexdigest()}")
        print(f"{split}: {sel.numel()} images, first/last original index {int(sel[0])}/{int(sel[-1])}")
    print(f"total {total} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
