"""Datasets, mini-batches and small augmentations for the training experiments.

Supported sets (``DATASETS``):

* ``mnist`` and ``fashion-mnist``: the four standard gzipped idx files in ``<data_dir>/mnist/`` and
  ``<data_dir>/fashion-mnist/``.  The idx format is parsed here; the sha256 of the decompressed bytes
  is checked against the published files, so a corrupt or wrong file is refused instead of silently
  training on garbage.
* ``cifar10``: the standard ``cifar-10-batches-py`` pickle layout under ``<data_dir>/cifar10/``.
  The pickles are read with a restricted unpickler (only the numpy array constructors are allowed),
  and shapes and labels are validated.
* ``mnist-subset``: 4000 training and 1000 test images of MNIST shipped inside the package
  (``analogtrain/datasets/``, see its README), so the default job runs on a fresh machine without
  any download.  It ignores ``data_dir``.

The data folder is the explicit argument (CLI ``--data-dir``), else the environment variable
``ANALOGTRAIN_DATA``, else ``~/.cache/analogtrain/data``.  Missing files are downloaded from the usual
public mirrors when ``download=True`` (written to a temporary file, checksum-verified, then renamed
into place); without network the error says which files to put where.

Determinism: the shuffle order of :func:`batches` and the draws of :func:`random_crop` /
:func:`random_hflip` come only from the ``torch.Generator`` passed in, and :func:`epoch_generator`
derives an epoch's generator from ``(seed, epoch)`` alone, so a run resumed at an epoch boundary sees
exactly the same batches as an uninterrupted one.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import lzma
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

import numpy as np
import torch
import torch.nn.functional as F

from analogtrain.errors import ConfigError, check_choice

DATASETS = ("mnist", "fashion-mnist", "cifar10", "mnist-subset")
SPLITS = ("train", "test")
ENV_VAR = "ANALOGTRAIN_DATA"
DEFAULT_DIR = Path("~/.cache/analogtrain/data")

# ---- MNIST-like sets: file names, checksums, mirrors ---------------------------------------------
_IDX_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# sha256 of the decompressed idx bytes (the published files; /work/shared/data/README.md).
_SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    # the embedded subset (scripts/make_mnist_subset.py prints these after generating it)
    "mnist-subset": {
        "train-images-idx3-ubyte": "1edb0376ad770d05deea6c696693f5882c993d72d1a2f8ea7f0e3f057f1cfb2f",
        "train-labels-idx1-ubyte": "eff120e01f651c4673776d501e2c9cb8986959930f915af888eeda19e96879f6",
        "t10k-images-idx3-ubyte": "b97c8bfeb834d8e7999eaa2d69239abe06653dc09c1e5d7eb0c974c5965bc6a9",
        "t10k-labels-idx1-ubyte": "41cf2f530031915ba9fbb241407c369dba1acd7515053edff48cebeee8b260f4",
    },
}

# Base URLs tried in order; the file name ``<stem>.gz`` is appended.
_MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}

# Per-pixel mean / std of the training images scaled to [0, 1].  Exact for the checksum-verified
# files (tests recompute them); other sets compute theirs from their training split.
_TRAIN_STATS = {
    "mnist": ((0.1306604762738429,), (0.30810780385646264,)),
    "fashion-mnist": ((0.2860405969887955,), (0.35302424451492254,)),
}

_CLASSES = {
    "mnist": tuple(str(i) for i in range(10)),
    "mnist-subset": tuple(str(i) for i in range(10)),
    "fashion-mnist": (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
}

SUBSET_PACKAGE = "analogtrain.datasets"
SUBSET_PREFIX = "mnist-subset-"  # files: mnist-subset-<stem>.xz

# ---- CIFAR-10 --------------------------------------------------------------------------------------
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR_DIRNAME = "cifar-10-batches-py"
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_FILES = ("test_batch",)
CIFAR_META = "batches.meta"
_CIFAR_PIXELS = 3 * 32 * 32

_FOLDERS = {"mnist": "mnist", "fashion-mnist": "fashion-mnist", "cifar10": "cifar10"}
_TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10", "mnist-subset": "MNIST subset"}


@dataclass(frozen=True, eq=False)
class Dataset:
    """One split of a dataset, held in memory as uint8 images and int64 labels.

    ``mean``/``std`` are per-channel statistics of the *training* split (pixels scaled to [0, 1]),
    also on the test split, so both are normalised the same way.
    """

    images: torch.Tensor  # uint8, N x C x H x W
    labels: torch.Tensor  # int64, N
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str
    split: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    def tensors(self, normalize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """``(float32 images, int64 labels)``: ``(x/255 - mean)/std`` per channel, or ``x/255`` without normalising."""
        x = self.images.to(torch.float32).div_(255.0)
        if normalize:
            shape = (1, -1) + (1,) * (x.ndim - 2)
            mean = torch.tensor(self.mean, dtype=torch.float32).view(shape)
            std = torch.tensor(self.std, dtype=torch.float32).view(shape)
            x.sub_(mean).div_(std)
        return x, self.labels


# ---- data folder -----------------------------------------------------------------------------------
def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The data folder: ``explicit`` if given, else ``$ANALOGTRAIN_DATA``, else ``~/.cache/analogtrain/data``."""
    if explicit is not None and str(explicit) != "":
        return Path(explicit).expanduser()
    env = os.environ.get(ENV_VAR, "")
    if env:
        return Path(env).expanduser()
    return DEFAULT_DIR.expanduser()


_resolve_data_dir = data_dir  # load_dataset's argument shadows the function name


def _where_hint(folder: Path, name: str) -> str:
    return (
        f"Put them into {folder} (or select another data folder, the one that contains '{_FOLDERS[name]}/', "
        f"with --data-dir or the {ENV_VAR} environment variable). "
        "The 'mnist-subset' dataset ships with the package and needs no files."
    )


# ---- public entry point ----------------------------------------------------------------------------
def load_dataset(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> Dataset:
    """Load one split of ``name`` (one of ``DATASETS``) from the data folder (see :func:`data_dir`).

    Missing files are downloaded when ``download`` is true; every file is validated (checksum for
    the MNIST-like sets, shapes and label ranges for all) and a bad one raises ConfigError.
    """
    check_choice("dataset", name, DATASETS)
    check_choice("split", split, SPLITS)
    if name == "mnist-subset":
        return _load_subset(split)
    root = _resolve_data_dir(data_dir)
    if name == "cifar10":
        return _load_cifar10(root, split, download)
    return _load_idx_set(name, root, split, download)


# ---- idx format ------------------------------------------------------------------------------------
_IDX_UBYTE = 0x08


def parse_idx(raw: bytes, source: str, ndim: int | None = None) -> torch.Tensor:
    """Parse the bytes of an (uncompressed) idx file holding unsigned bytes into a uint8 tensor.

    Layout: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, then one
    big-endian uint32 per dimension, then the data in row-major order.  ``ndim`` (if given) is the
    expected number of dimensions (3 for images, 1 for labels).
    """
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        head = raw[:4].hex() or "empty file"
        raise ConfigError(
            f"{source} is not an idx file (bad magic number {head}; idx files start with 0x0000, then type "
            "and rank bytes). Delete it and run again to re-download it, or replace it with the original file."
        )
    if raw[2] != _IDX_UBYTE:
        raise ConfigError(
            f"{source}: idx data type code 0x{raw[2]:02x} is not supported (MNIST-style files hold unsigned "
            "bytes, code 0x08). Replace it with the original file."
        )
    rank = raw[3]
    if ndim is not None and rank != ndim:
        raise ConfigError(
            f"{source}: idx file has {rank} dimension(s), expected {ndim} "
            f"({'images' if ndim == 3 else 'labels'}); is it the right file? Replace it with the original file."
        )
    header = 4 + 4 * rank
    if len(raw) < header:
        raise ConfigError(f"{source}: idx file is truncated inside its header. Delete it and run again to re-download it.")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank))
    count = int(np.prod(dims, dtype=np.int64)) if dims else 1
    if len(raw) - header != count:
        raise ConfigError(
            f"{source}: idx header promises {count} bytes of data (shape {dims}) but the file holds "
            f"{len(raw) - header}; it is truncated or corrupt. Delete it and run again to re-download it."
        )
    data = torch.frombuffer(bytearray(memoryview(raw)[header:]), dtype=torch.uint8) if count else torch.empty(0, dtype=torch.uint8)
    return data.reshape(dims)


def _decompress(raw: bytes, source: str, suffix: str) -> bytes:
    try:
        if suffix == ".gz":
            return gzip.decompress(raw)
        if suffix == ".xz":
            return lzma.decompress(raw)
    except (OSError, EOFError, zlib.error, lzma.LZMAError) as e:
        raise ConfigError(
            f"{source} is not a valid {suffix[1:]} file ({e}); it is corrupt or truncated. "
            "Delete it and run again to re-download it."
        ) from None
    return raw


def _check_sha256(raw: bytes, source: str, expected: str | None) -> None:
    if expected is None:
        return
    actual = hashlib.sha256(raw).hexdigest()
    if actual != expected:
        raise ConfigError(
            f"{source}: sha256 of the decompressed data is {actual}, expected {expected}. The file is corrupt "
            "or not the official one: delete it and run again to re-download it (or copy a good copy in its place)."
        )


def _find_idx(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _read_idx_path(path: Path, expected_sha256: str | None, ndim: int) -> torch.Tensor:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e}") from None
    raw = _decompress(raw, str(path), path.suffix if path.suffix in (".gz", ".xz") else "")
    tensor = parse_idx(raw, str(path), ndim)
    _check_sha256(raw, str(path), expected_sha256)
    return tensor


def _assemble_idx(name: str, split: str, images: torch.Tensor, labels: torch.Tensor, src: str) -> tuple[torch.Tensor, torch.Tensor]:
    if images.shape[1:] != (28, 28):
        raise ConfigError(f"{src}: images have shape {tuple(images.shape[1:])}, expected 28 x 28")
    if images.shape[0] != labels.shape[0]:
        raise ConfigError(
            f"{src}: {images.shape[0]} images but {labels.shape[0]} labels; the image and label files do not "
            "belong together. Replace them with the original files."
        )
    if labels.numel() and int(labels.max()) >= 10:
        raise ConfigError(f"{src}: label {int(labels.max())} is outside 0..9")
    return images.unsqueeze(1).contiguous(), labels.to(torch.int64)


def _load_idx_set(name: str, root: Path, split: str, download: bool) -> Dataset:
    folder = root / _FOLDERS[name]
    stems = _IDX_STEMS[split]
    missing = [s for s in stems if _find_idx(folder, s) is None]
    if missing:
        _obtain_idx(name, folder, split, missing, download)
    img_stem, lab_stem = stems
    images = _read_idx_path(_find_idx(folder, img_stem), _SHA256[name][img_stem], ndim=3)
    labels = _read_idx_path(_find_idx(folder, lab_stem), _SHA256[name][lab_stem], ndim=1)
    images, labels = _assemble_idx(name, split, images, labels, str(folder))
    mean, std = _TRAIN_STATS[name]
    return Dataset(images, labels, _CLASSES[name], mean, std, name, split)


def _obtain_idx(name: str, folder: Path, split: str, missing: Sequence[str], download: bool) -> None:
    files = ", ".join(f"{s}.gz" for s in missing)
    title = _TITLES[name]
    if not download:
        raise ConfigError(
            f"{title} {split} data not found: missing {files} in {folder} (download is off). " + _where_hint(folder, name)
        )
    for stem in missing:
        expected = _SHA256[name][stem]

        def verify(tmp: Path, stem=stem, expected=expected) -> None:
            raw = _decompress(tmp.read_bytes(), f"downloaded {stem}.gz", ".gz")
            _check_sha256(raw, f"downloaded {stem}.gz", expected)

        urls = [base + f"{stem}.gz" for base in _MIRRORS[name]]
        errors = _download(urls, folder / f"{stem}.gz", verify, f"{title} {stem}")
        if errors is not None:
            raise ConfigError(
                f"{title} {split} data not found: missing {files} in {folder}, and the download failed "
                f"({'; '.join(errors)}). " + _where_hint(folder, name)
            )


# ---- downloads -------------------------------------------------------------------------------------
_CHUNK = 1 << 20


def _download(urls: Sequence[str], dest: Path, verify: Callable[[Path], None], desc: str) -> list[str] | None:
    """Fetch ``dest`` from the first working URL (temp file, ``verify``, atomic rename).

    Returns None on success, else the list of per-URL errors.
    """
    from tqdm import tqdm

    errors = []
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return [f"cannot create {dest.parent}: {e}"]
    for url in urls:
        tmp = None
        try:
            fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
            tmp = Path(tmp_name)
            request = urllib.request.Request(url, headers={"User-Agent": "analogtrain"})
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=60) as response:
                total = response.headers.get("Content-Length") if getattr(response, "headers", None) else None
                with tqdm(total=int(total) if total else None, unit="B", unit_scale=True, desc=desc, disable=None) as bar:
                    while chunk := response.read(_CHUNK):
                        out.write(chunk)
                        bar.update(len(chunk))
            verify(tmp)
            os.replace(tmp, dest)
            return None
        except (OSError, http.client.HTTPException, ConfigError) as e:
            errors.append(f"{url}: {e}")
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
    return errors


# ---- embedded MNIST subset -------------------------------------------------------------------------
def _subset_bytes(stem: str) -> tuple[bytes, str]:
    fname = f"{SUBSET_PREFIX}{stem}.xz"
    ref = resources.files(SUBSET_PACKAGE).joinpath(fname)
    source = f"embedded {fname} (package {SUBSET_PACKAGE})"
    try:
        raw = ref.read_bytes()
    except OSError:
        raise ConfigError(
            f"{source} is missing: the analogtrain installation is incomplete. Reinstall the package "
            "(pip install -e .), or regenerate it with scripts/make_mnist_subset.py."
        ) from None
    return raw, source


def _load_subset_split(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    out = []
    for stem, ndim in zip(_IDX_STEMS[split], (3, 1)):
        raw, source = _subset_bytes(stem)
        raw = _decompress(raw, source, ".xz")
        tensor = parse_idx(raw, source, ndim)
        _check_sha256(raw, source, _SHA256["mnist-subset"][stem])
        out.append(tensor)
    return _assemble_idx("mnist-subset", split, out[0], out[1], f"embedded mnist-subset {split}")


def _load_subset(split: str) -> Dataset:
    images, labels = _load_subset_split(split)
    train_images = images if split == "train" else _load_subset_split("train")[0]
    mean, std = channel_stats(train_images)
    return Dataset(images, labels, _CLASSES["mnist-subset"], mean, std, "mnist-subset", split)


# ---- statistics ------------------------------------------------------------------------------------
def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 ``N x C x H x W`` images scaled to [0, 1].

    Exact integer sums over chunks of samples, so large sets need no float64 copy.
    """
    n, c = images.shape[0], images.shape[1]
    if n == 0:
        raise ConfigError("cannot compute normalisation statistics of an empty training split")
    s = torch.zeros(c, dtype=torch.int64)
    s2 = torch.zeros(c, dtype=torch.int64)
    for start in range(0, n, chunk):
        x = images[start : start + chunk].reshape(-1, c, images[0, 0].numel()).to(torch.int64)
        s += x.sum(dim=(0, 2))
        s2 += (x * x).sum(dim=(0, 2))
    count = n * images[0, 0].numel()
    mean = s.double() / count
    var = s2.double() / count - mean * mean
    std = var.clamp_min(0).sqrt()
    return tuple(float(m) / 255 for m in mean), tuple(float(v) / 255 for v in std)


# ---- CIFAR-10 --------------------------------------------------------------------------------------
_ALLOWED_GLOBALS = {
    ("_codecs", "encode"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that builds only plain containers and numpy arrays (a pickle can run arbitrary code)."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays are allowed)")
        if module.startswith("numpy.core."):
            try:  # numpy >= 2 moved numpy.core to numpy._core; avoid its deprecation shim
                return super().find_class(module.replace("numpy.core.", "numpy._core.", 1), name)
            except (ImportError, AttributeError):
                pass
        return super().find_class(module, name)


def _unpickle(path: Path):
    try:
        with open(path, "rb") as f:
            return _ArrayUnpickler(f, encoding="bytes").load()
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e}") from None
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise ConfigError(
            f"{path} is not a CIFAR-10 python pickle ({type(e).__name__}: {e}). Delete the folder "
            f"{path.parent} and run again to re-download, or replace the file with the original."
        ) from None


def _get(d: dict, key: str):
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    raise KeyError(key)


def _read_cifar_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    obj = _unpickle(path)
    hint = f"Replace {path} with the original file (delete {path.parent} and run again to re-download)."
    if not isinstance(obj, dict):
        raise ConfigError(f"{path}: expected a dict with keys b'data' and b'labels', got {type(obj).__name__}. {hint}")
    try:
        data, labels = _get(obj, "data"), _get(obj, "labels")
    except KeyError as e:
        raise ConfigError(f"{path}: key b'{e.args[0]}' is missing (a CIFAR-10 batch has b'data' and b'labels'). {hint}") from None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _CIFAR_PIXELS:
        desc = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ConfigError(f"{path}: b'data' must be a uint8 array of shape (N, {_CIFAR_PIXELS}), got {desc}. {hint}")
    try:
        lab = np.asarray(labels)
        if lab.ndim != 1 or not (lab.size == 0 or np.issubdtype(lab.dtype, np.integer)):
            raise ValueError
        lab = lab.astype(np.int64)
    except (ValueError, TypeError):
        raise ConfigError(f"{path}: b'labels' must be a list of integers. {hint}") from None
    if lab.shape[0] != data.shape[0]:
        raise ConfigError(f"{path}: {data.shape[0]} images but {lab.shape[0]} labels. {hint}")
    if lab.size and (lab.min() < 0 or lab.max() > 9):
        bad = int(lab.min()) if lab.min() < 0 else int(lab.max())
        raise ConfigError(f"{path}: label {bad} is outside 0..9. {hint}")
    # each row: 1024 red, 1024 green, 1024 blue values, each plane row-major 32 x 32
    images = torch.from_numpy(np.ascontiguousarray(data).reshape(-1, 3, 32, 32).copy())
    return images, torch.from_numpy(lab)


def _read_cifar_meta(path: Path) -> tuple[str, ...]:
    obj = _unpickle(path)
    try:
        names = _get(obj, "label_names") if isinstance(obj, dict) else None
    except KeyError:
        names = None
    if not isinstance(names, (list, tuple)) or len(names) != 10 or not all(isinstance(n, (bytes, str)) for n in names):
        raise ConfigError(
            f"{path}: expected a dict whose b'label_names' is a list of 10 class names. Replace it with the original file."
        )
    return tuple(n.decode() if isinstance(n, bytes) else n for n in names)


def _cat(parts: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


_cifar_stats_cache: dict[tuple, tuple] = {}


def _cifar_train_stats(batch_dir: Path, train: tuple[torch.Tensor, torch.Tensor] | None):
    key = tuple((str(batch_dir / f), (batch_dir / f).stat().st_size, (batch_dir / f).stat().st_mtime_ns) for f in CIFAR_TRAIN_FILES)
    if key not in _cifar_stats_cache:
        if train is None:
            train = _cat([_read_cifar_batch(batch_dir / f) for f in CIFAR_TRAIN_FILES])
        _cifar_stats_cache.clear()
        _cifar_stats_cache[key] = channel_stats(train[0])
    return _cifar_stats_cache[key]


def _load_cifar10(root: Path, split: str, download: bool) -> Dataset:
    folder = root / _FOLDERS["cifar10"]
    batch_dir = folder / CIFAR_DIRNAME
    needed = CIFAR_TRAIN_FILES + CIFAR_TEST_FILES + (CIFAR_META,)
    missing = [f for f in needed if not (batch_dir / f).is_file()]
    if missing:
        _obtain_cifar(folder, batch_dir, missing, download)
    classes = _read_cifar_meta(batch_dir / CIFAR_META)
    if split == "train":
        images, labels = _cat([_read_cifar_batch(batch_dir / f) for f in CIFAR_TRAIN_FILES])
        mean, std = _cifar_train_stats(batch_dir, (images, labels))
    else:
        images, labels = _cat([_read_cifar_batch(batch_dir / f) for f in CIFAR_TEST_FILES])
        mean, std = _cifar_train_stats(batch_dir, None)
    return Dataset(images, labels, classes, mean, std, "cifar10", split)


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _check_cifar_archive(path: Path, source: str) -> None:
    actual = _md5(path)
    if actual != CIFAR_MD5:
        raise ConfigError(
            f"{source}: md5 is {actual}, expected {CIFAR_MD5}. The archive is corrupt or not the official one: "
            "delete it and run again to re-download it."
        )


def _obtain_cifar(folder: Path, batch_dir: Path, missing: Sequence[str], download: bool) -> None:
    archive = folder / CIFAR_ARCHIVE
    files = ", ".join(missing)
    hint = (
        f"Put the extracted '{CIFAR_DIRNAME}' folder (data_batch_1..5, test_batch, batches.meta) or the archive "
        f"{CIFAR_ARCHIVE} into {folder} (or select another data folder, the one that contains 'cifar10/', with "
        f"--data-dir or the {ENV_VAR} environment variable)."
    )
    if not archive.is_file():
        if not download:
            raise ConfigError(f"CIFAR-10 data not found: missing {files} in {batch_dir} (download is off). {hint}")
        errors = _download([CIFAR_URL], archive, lambda tmp: _check_cifar_archive(tmp, f"downloaded {CIFAR_ARCHIVE}"), "CIFAR-10")
        if errors is not None:
            raise ConfigError(
                f"CIFAR-10 data not found: missing {files} in {batch_dir}, and the download failed "
                f"({'; '.join(errors)}). {hint}"
            )
    else:
        _check_cifar_archive(archive, str(archive))
    extract_tar_safely(archive, folder)
    still = [f for f in missing if not (batch_dir / f).is_file()]
    if still:
        raise ConfigError(f"{archive} does not contain {CIFAR_DIRNAME}/{', '.join(still)}; delete it and run again.")


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    name = member.name
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts:
        raise ConfigError(f"{archive}: refusing to extract member {name!r} (absolute path or '..'); the archive is not safe.")
    if not (member.isfile() or member.isdir()):
        raise ConfigError(f"{archive}: refusing to extract member {name!r} (links and special files are not allowed).")


def extract_tar_safely(archive: Path, dest: Path) -> None:
    """Extract a tar archive into ``dest``, refusing absolute paths, '..', links and device files.

    Members are extracted into a temporary folder inside ``dest`` first and moved into place only when
    the whole archive was read, so an interrupted extraction leaves no half-written data set behind.
    Files that already exist in ``dest`` are kept.
    """
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest, prefix=".extract-"))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = tar.getmembers()
                for m in members:
                    _check_member(m, archive)
                kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(tmp, members=members, **kwargs)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            raise ConfigError(f"cannot extract {archive} ({e}); delete it and run again to re-download it.") from None
        for path in sorted(tmp.rglob("*")):
            target = dest / path.relative_to(tmp)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- mini-batches ----------------------------------------------------------------------------------
_M64 = (1 << 64) - 1


def _splitmix64(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU ``torch.Generator`` whose state depends only on ``(seed, epoch)``.

    Use one per epoch for the shuffle (and augmentations): a run resumed at the start of epoch ``e``
    then draws exactly what the uninterrupted run drew, without storing any generator state.
    """
    for field, v in (("seed", seed), ("epoch", epoch)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ConfigError(f"{field} must be an integer, got {v!r}")
    mixed = _splitmix64(_splitmix64(int(seed) & _M64) ^ (int(epoch) & _M64))
    return torch.Generator().manual_seed(mixed >> 1)  # 63 bits: always a valid seed


def batches(
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Iterate over ``(images, labels)`` mini-batches.

    With ``shuffle`` the permutation is drawn from ``generator`` only (required), so the same
    generator state gives the same order.  ``drop_last`` skips a final incomplete batch.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    n = int(images.shape[0])
    if int(labels.shape[0]) != n:
        raise ConfigError(f"batches: {n} images but {int(labels.shape[0])} labels")
    if shuffle and generator is None:
        raise ConfigError("batches: shuffle=True needs a torch.Generator (e.g. epoch_generator(seed, epoch))")
    batch_size = int(batch_size)
    order = None
    if shuffle:
        order = torch.randperm(n, generator=generator, device=generator.device).to(images.device)

    def it() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            end = min(start + batch_size, n)
            if order is None:
                yield images[start:end], labels[start:end]
            else:
                idx = order[start:end]
                yield images[idx], labels[idx.to(labels.device)]

    return it()


# ---- augmentations (CIFAR) -------------------------------------------------------------------------
def _check_batch(x: torch.Tensor, fn: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ConfigError(f"{fn}: expected a batch tensor N x C x H x W, got {shape}")


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad each image by ``padding`` pixels on every side and cut a random H x W window per image.

    Offsets are drawn from ``generator`` (one pair per image), so the result is deterministic given
    its state.  Shape and dtype are preserved.
    """
    _check_batch(x, "random_crop")
    if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ConfigError(f"random_crop: padding must be a non-negative integer, got {padding!r}")
    padding = int(padding)
    if padding == 0:
        return x.clone()
    n, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    offsets = torch.randint(0, 2 * padding + 1, (n, 2), generator=generator, device=generator.device).to(x.device)
    rows = offsets[:, 0:1] + torch.arange(h, device=x.device)  # n x h
    cols = offsets[:, 1:2] + torch.arange(w, device=x.device)  # n x w
    ni = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    ci = torch.arange(c, device=x.device).view(1, c, 1, 1)
    return padded[ni, ci, rows.view(n, 1, h, 1), cols.view(n, 1, 1, w)]


def random_hflip(x: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability ``p`` (one draw per image from ``generator``)."""
    _check_batch(x, "random_hflip")
    if not 0.0 <= float(p) <= 1.0:
        raise ConfigError(f"random_hflip: p = {p} is outside [0, 1]")
    flip = torch.rand(x.shape[0], generator=generator, device=generator.device).to(x.device) < p
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
