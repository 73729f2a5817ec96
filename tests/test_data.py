"""Dataset loaders, the embedded MNIST subset, mini-batches and augmentations (analogtrain.data).

MNIST and Fashion-MNIST come from the shared data folder ($ANALOGTRAIN_DATA, set by conftest.py);
CIFAR-10 files are written by the tests.  Nothing here touches the network: downloads are tested
with a fake ``urllib.request.urlopen``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from analogtrain import data
from analogtrain.data import (
    DATASETS,
    batches,
    channel_stats,
    data_dir,
    epoch_generator,
    extract_tar_safely,
    load_dataset,
    random_crop,
    random_hflip,
)
from analogtrain.errors import ConfigError

SHARED = Path(os.environ["ANALOGTRAIN_DATA"])
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


@pytest.fixture(scope="module")
def mnist_train():
    return load_dataset("mnist", "train", download=False)


@pytest.fixture(scope="module")
def mnist_test():
    return load_dataset("mnist", "test", download=False)


def pixel_stats(images: torch.Tensor) -> tuple[float, float]:
    """Mean / std of all pixels scaled to [0, 1], from the exact histogram (independent of channel_stats)."""
    hist = np.bincount(images.numpy().ravel(), minlength=256).astype(np.float64)
    v = np.arange(256) / 255.0
    mean = (hist * v).sum() / hist.sum()
    return mean, float(np.sqrt((hist * (v - mean) ** 2).sum() / hist.sum()))


# ---- data folder -----------------------------------------------------------------------------------
def test_data_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("ANALOGTRAIN_DATA", str(tmp_path / "env"))
    assert data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert data_dir() == tmp_path / "env"
    monkeypatch.delenv("ANALOGTRAIN_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_dir() == tmp_path / "home" / ".cache" / "analogtrain" / "data"


def test_unknown_dataset_and_split():
    with pytest.raises(ConfigError, match="dataset"):
        load_dataset("imagenet")
    with pytest.raises(ConfigError, match="split"):
        load_dataset("mnist", "validation")


# ---- MNIST / Fashion-MNIST -------------------------------------------------------------------------
def test_mnist_shapes_and_test_label_counts(mnist_train, mnist_test):
    assert mnist_train.images.shape == (60000, 1, 28, 28) and mnist_train.images.dtype == torch.uint8
    assert mnist_train.labels.shape == (60000,) and mnist_train.labels.dtype == torch.int64
    assert mnist_test.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(mnist_test.labels, minlength=10).tolist() == MNIST_TEST_COUNTS
    assert mnist_test.classes == tuple("0123456789")
    assert (mnist_test.name, mnist_test.split, len(mnist_test)) == ("mnist", "test", 10000)


def test_mnist_pixel_stats(mnist_train, mnist_test):
    mean, std = pixel_stats(mnist_train.images)
    assert abs(mean - 0.1307) < 1e-3 and abs(std - 0.3081) < 1e-3
    # the stored statistics are those of the training split, also on the test split
    for ds in (mnist_train, mnist_test):
        assert ds.mean == pytest.approx((mean,), abs=1e-9) and ds.std == pytest.approx((std,), abs=1e-9)
    assert channel_stats(mnist_train.images) == (pytest.approx((mean,), abs=1e-12), pytest.approx((std,), abs=1e-12))


def test_fashion_mnist_shapes_counts_and_stats():
    train = load_dataset("fashion-mnist", "train", download=False)
    test = load_dataset("fashion-mnist", "test", download=False)
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(train.labels, minlength=10).tolist() == [6000] * 10
    assert torch.bincount(test.labels, minlength=10).tolist() == [1000] * 10
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot"
    mean, std = pixel_stats(train.images)
    assert abs(mean - 0.2860) < 1e-3 and abs(std - 0.3530) < 1e-3
    assert test.mean == pytest.approx((mean,), abs=1e-9) and test.std == pytest.approx((std,), abs=1e-9)


def test_tensors_normalisation(mnist_test):
    x, y = mnist_test.tensors()
    raw, _ = mnist_test.tensors(normalize=False)
    assert x.dtype == torch.float32 and x.shape == (10000, 1, 28, 28) and y is mnist_test.labels
    assert raw.min() == 0.0 and raw.max() == 1.0
    expected = (mnist_test.images.double() / 255 - mnist_test.mean[0]) / mnist_test.std[0]
    assert float((x.double() - expected).abs().max()) < 1e-5


def _copy_mnist(tmp_path: Path) -> Path:
    folder = tmp_path / "mnist"
    folder.mkdir()
    for f in MNIST_FILES:
        shutil.copyfile(SHARED / "mnist" / f, folder / f)
    return folder


def test_corrupt_byte_is_refused_by_sha256(tmp_path):
    folder = _copy_mnist(tmp_path)
    path = folder / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[16 + 28 * 14 + 14] ^= 0x01  # one pixel of the first image; the header stays valid
    path.write_bytes(gzip.compress(bytes(raw), compresslevel=1))
    with pytest.raises(ConfigError) as err:
        load_dataset("mnist", "test", data_dir=tmp_path, download=False)
    msg = str(err.value)
    assert "t10k-images-idx3-ubyte.gz" in msg and "sha256" in msg
    assert data._SHA256["mnist"]["t10k-images-idx3-ubyte"] in msg and "re-download" in msg
    # the untouched label file of the same folder is fine
    assert data._read_idx_path(folder / "t10k-labels-idx1-ubyte.gz", data._SHA256["mnist"]["t10k-labels-idx1-ubyte"], 1).shape == (10000,)


def test_corrupt_gzip_stream_is_refused(tmp_path):
    folder = _copy_mnist(tmp_path)
    path = folder / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ConfigError, match="t10k-labels-idx1-ubyte.gz"):
        load_dataset("mnist", "test", data_dir=tmp_path, download=False)


def test_bad_magic_and_wrong_rank_are_refused(tmp_path):
    folder = _copy_mnist(tmp_path)
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(b"\x12\x34\x08\x01" + (3).to_bytes(4, "big") + b"\x00\x01\x02"))
    with pytest.raises(ConfigError, match=r"t10k-labels-idx1-ubyte\.gz.*magic"):
        load_dataset("mnist", "test", data_dir=tmp_path, download=False)
    shutil.copyfile(folder / "t10k-images-idx3-ubyte.gz", labels)  # image file in the label slot
    with pytest.raises(ConfigError, match=r"t10k-labels-idx1-ubyte\.gz.*3 dimension"):
        load_dataset("mnist", "test", data_dir=tmp_path, download=False)
    with pytest.raises(ConfigError, match="truncated"):
        data.parse_idx(b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"\x00\x01", "x.idx")


def test_uncompressed_idx_files_are_accepted(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for f in MNIST_FILES[2:]:
        (folder / f[:-3]).write_bytes(gzip.decompress((SHARED / "mnist" / f).read_bytes()))
    ds = load_dataset("mnist", "test", data_dir=tmp_path, download=False)
    assert torch.bincount(ds.labels, minlength=10).tolist() == MNIST_TEST_COUNTS


def test_missing_directory_without_download(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_dataset("mnist", "train", data_dir=tmp_path / "nowhere", download=False)
    msg = str(err.value)
    assert str(tmp_path / "nowhere" / "mnist") in msg
    assert "train-images-idx3-ubyte.gz" in msg and "--data-dir" in msg and "ANALOGTRAIN_DATA" in msg


# ---- downloads (fake network) ----------------------------------------------------------------------
class FakeResponse(io.BytesIO):
    def __init__(self, payload: bytes):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}


def test_download_without_network_gives_clear_error(monkeypatch, tmp_path):
    urls = []

    def offline(request, *args, **kwargs):
        urls.append(request.full_url if hasattr(request, "full_url") else request)
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(ConfigError) as err:
        load_dataset("fashion-mnist", "test", data_dir=tmp_path, download=True)
    msg = str(err.value)
    folder = tmp_path / "fashion-mnist"
    assert str(folder) in msg and "t10k-images-idx3-ubyte.gz" in msg and "t10k-labels-idx1-ubyte.gz" in msg
    assert "download failed" in msg and "no route to host" in msg
    assert "--data-dir" in msg and "ANALOGTRAIN_DATA" in msg
    assert urls and all(u.endswith("t10k-images-idx3-ubyte.gz") for u in urls)
    assert len(urls) == len(data._MIRRORS["fashion-mnist"])  # every mirror tried
    assert list(folder.iterdir()) == []  # no partial files left behind

    with pytest.raises(ConfigError, match=r"cifar10.*--data-dir"):
        load_dataset("cifar10", "train", data_dir=tmp_path, download=True)
    assert not (tmp_path / "cifar10" / data.CIFAR_ARCHIVE).exists()


def test_download_verifies_and_falls_back_to_next_mirror(monkeypatch, tmp_path):
    served = []

    def fake(request, *args, **kwargs):
        url = request.full_url
        served.append(url)
        payload = (SHARED / "mnist" / url.rsplit("/", 1)[1]).read_bytes()
        if url.startswith(data._MIRRORS["mnist"][0]):
            payload = gzip.compress(gzip.decompress(payload)[:-1] + b"\x07", compresslevel=1)  # first mirror serves a bad file
        return FakeResponse(payload)

    monkeypatch.setattr(urllib.request, "urlopen", fake)
    ds = load_dataset("mnist", "test", data_dir=tmp_path, download=True)
    assert torch.bincount(ds.labels, minlength=10).tolist() == MNIST_TEST_COUNTS
    assert len(served) == 4  # two files, each: bad first mirror, good second
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    served.clear()
    load_dataset("mnist", "test", data_dir=tmp_path, download=True)
    assert served == []  # present files are not fetched again


# ---- CIFAR-10 --------------------------------------------------------------------------------------
CIFAR_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


def _cifar_batch(n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), [int(v) for v in rng.integers(0, 10, n)]


def write_cifar(root: Path, sizes=(2, 3, 1, 4, 2), test_size=5) -> tuple[Path, dict]:
    folder = root / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    written = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, (name, n) in enumerate(zip(names, list(sizes) + [test_size])):
        x, y = _cifar_batch(n, k)
        written[name] = (x, y)
        obj = {b"batch_label": name.encode(), b"labels": y, b"data": x, b"filenames": [b"f.png"] * n}
        (folder / name).write_bytes(pickle.dumps(obj, protocol=2 if k % 2 else pickle.DEFAULT_PROTOCOL))
    meta = {b"label_names": CIFAR_NAMES, b"num_cases_per_batch": 10000, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder, written


def test_cifar10_loads_standard_layout(tmp_path):
    folder, written = write_cifar(tmp_path)
    train = load_dataset("cifar10", "train", data_dir=tmp_path, download=False)
    test = load_dataset("cifar10", "test", data_dir=tmp_path, download=False)
    assert train.images.shape == (12, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (5, 3, 32, 32) and test.labels.dtype == torch.int64
    x = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    y = sum((written[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    assert train.labels.tolist() == y and test.labels.tolist() == written["test_batch"][1]
    # channel order: each row is the R plane, then G, then B, each 32 x 32 row-major
    for k in range(12):
        for c in range(3):
            assert np.array_equal(train.images[k, c].numpy(), x[k, 1024 * c : 1024 * (c + 1)].reshape(32, 32))
    assert train.images[3, 1, 5, 7] == x[3, 1024 + 5 * 32 + 7]
    assert train.classes == tuple(n.decode() for n in CIFAR_NAMES)
    mean = x.reshape(12, 3, 1024).transpose(1, 0, 2).reshape(3, -1).mean(1) / 255
    std = (x.reshape(12, 3, 1024).transpose(1, 0, 2).reshape(3, -1) / 255).std(1)
    for ds in (train, test):
        assert ds.mean == pytest.approx(tuple(mean), abs=1e-12) and ds.std == pytest.approx(tuple(std), abs=1e-12)
    xt, _ = train.tensors()
    assert xt.shape == (12, 3, 32, 32) and abs(float(xt[:, 2].mean())) < 1e-5


def _malformed(tmp_path, name: str, payload: bytes) -> str:
    folder, _ = write_cifar(tmp_path)
    (folder / name).write_bytes(payload)
    with pytest.raises(ConfigError) as err:
        load_dataset("cifar10", "test" if name == "test_batch" else "train", data_dir=tmp_path, download=False)
    assert name in str(err.value)
    return str(err.value)


X2, Y2 = _cifar_batch(2, 99)


@pytest.mark.parametrize(
    "name, obj, needle",
    [
        ("data_batch_2", {b"labels": Y2}, "b'data'"),
        ("data_batch_3", {b"data": X2}, "b'labels'"),
        ("data_batch_1", [X2, Y2], "dict"),
        ("data_batch_4", {b"data": X2[:, :3000], b"labels": Y2}, "shape"),
        ("data_batch_5", {b"data": X2.astype(np.float32), b"labels": Y2}, "uint8"),
        ("test_batch", {b"data": X2, b"labels": [0, 10]}, "label 10"),
        ("test_batch", {b"data": X2, b"labels": [0, -1]}, "label -1"),
        ("test_batch", {b"data": X2, b"labels": [0, 1, 2]}, "2 images but 3 labels"),
        ("test_batch", {b"data": X2, b"labels": ["a", "b"]}, "integers"),
        ("batches.meta", {b"label_names": CIFAR_NAMES[:9]}, "10 class names"),
    ],
)
def test_cifar10_malformed_pickles_are_refused(tmp_path, name, obj, needle):
    msg = _malformed(tmp_path, name, pickle.dumps(obj))
    assert needle in msg


def test_cifar10_garbage_and_unsafe_pickles_are_refused(tmp_path):
    msg = _malformed(tmp_path, "data_batch_1", b"this is not a pickle")
    assert "not a CIFAR-10 python pickle" in msg
    marker = tmp_path / "pwned"
    evil = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    msg = _malformed(tmp_path / "b", "data_batch_2", evil)
    assert "os.system" in msg and not marker.exists()


def test_cifar10_missing_without_download(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_dataset("cifar10", "train", data_dir=tmp_path, download=False)
    msg = str(err.value)
    assert str(tmp_path / "cifar10") in msg and "data_batch_1" in msg and "ANALOGTRAIN_DATA" in msg


def _tar_of(root: Path, out: Path) -> Path:
    with tarfile.open(out, "w:gz") as tar:
        tar.add(root, arcname="cifar-10-batches-py")
    return out


def test_cifar10_download_checks_md5_and_extracts(monkeypatch, tmp_path):
    folder, written = write_cifar(tmp_path / "src")
    archive = _tar_of(folder, tmp_path / "archive.tar.gz")
    payload = archive.read_bytes()
    monkeypatch.setattr(urllib.request, "urlopen", lambda req, *a, **k: FakeResponse(payload))
    dest = tmp_path / "data"
    with pytest.raises(ConfigError, match="md5"):  # not the official archive
        load_dataset("cifar10", "test", data_dir=dest, download=True)
    assert not (dest / "cifar10" / data.CIFAR_ARCHIVE).exists()
    monkeypatch.setattr(data, "CIFAR_MD5", hashlib.md5(payload).hexdigest())
    ds = load_dataset("cifar10", "test", data_dir=dest, download=True)
    assert ds.labels.tolist() == written["test_batch"][1]
    assert (dest / "cifar10" / data.CIFAR_ARCHIVE).read_bytes() == payload
    assert sorted(p.name for p in (dest / "cifar10").iterdir()) == sorted([data.CIFAR_ARCHIVE, "cifar-10-batches-py"])


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/evil.txt", "cifar-10-batches-py/../../evil.txt", "link"])
def test_extract_rejects_unsafe_members(tmp_path, member):
    archive = tmp_path / "bad.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo(member)
        if member == "link":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
    dest = tmp_path / "out"
    with pytest.raises(ConfigError, match="refusing to extract"):
        extract_tar_safely(archive, dest)
    assert not (tmp_path / "evil.txt").exists() and list(dest.iterdir()) == []


# ---- embedded MNIST subset -------------------------------------------------------------------------
def test_subset_loads_without_data_dir_and_matches_full_mnist(monkeypatch, tmp_path, mnist_train, mnist_test):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("ANALOGTRAIN_DATA", str(empty))

    def offline(*a, **k):
        raise AssertionError("the embedded subset must not download")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    for split, per_class, full in (("train", 400, mnist_train), ("test", 100, mnist_test)):
        sub = load_dataset("mnist-subset", split)
        assert sub.images.shape == (10 * per_class, 1, 28, 28) and sub.images.dtype == torch.uint8
        assert torch.bincount(sub.labels, minlength=10).tolist() == [per_class] * 10
        # documented rule: first `per_class` images of each digit, in original order
        idx = torch.sort(torch.cat([torch.nonzero(full.labels == c).flatten()[:per_class] for c in range(10)])).values
        assert torch.equal(sub.images, full.images[idx]) and torch.equal(sub.labels, full.labels[idx])
    assert list(empty.iterdir()) == []
    train = load_dataset("mnist-subset", "train")
    test = load_dataset("mnist-subset", "test")
    mean, std = pixel_stats(train.images)
    assert train.mean == pytest.approx((mean,), abs=1e-9) and test.std == pytest.approx((std,), abs=1e-9)
    x, _ = train.tensors()
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1) < 1e-3
    assert "mnist-subset" in DATASETS


def test_subset_files_are_small_package_data():
    folder = Path(data.__file__).parent / "datasets"
    files = sorted(folder.glob("mnist-subset-*.xz"))
    assert len(files) == 4
    assert sum(f.stat().st_size for f in files) < 900_000
    assert (folder / "README.md").read_text().count("CC BY-SA 3.0") >= 1


# ---- batches and generators ------------------------------------------------------------------------
def test_batches_same_seed_same_order_and_full_cover():
    x = torch.arange(103).view(103, 1).float()
    y = torch.arange(103)

    def order(seed, epoch):
        return [b[1].tolist() for b in batches(x, y, 10, shuffle=True, generator=epoch_generator(seed, epoch))]

    a, b = order(7, 3), order(7, 3)
    assert a == b
    flat = sum(a, [])
    assert sorted(flat) == list(range(103)) and flat != list(range(103))
    assert [len(v) for v in a] == [10] * 10 + [3]
    assert order(7, 4) != a and order(8, 3) != a
    for bx, by in batches(x, y, 10, shuffle=True, generator=epoch_generator(7, 3)):
        assert torch.equal(bx[:, 0].long(), by)  # images and labels stay paired


def test_batches_plain_and_drop_last():
    x, y = torch.zeros(25, 2), torch.arange(25)
    assert [b[1].tolist() for b in batches(x, y, 10, shuffle=False)] == [list(range(10)), list(range(10, 20)), list(range(20, 25))]
    assert [len(b[1]) for b in batches(x, y, 10, shuffle=True, generator=epoch_generator(0, 0), drop_last=True)] == [10, 10]
    assert list(batches(x[:0], y[:0], 4)) == []
    with pytest.raises(ConfigError, match="Generator"):
        batches(x, y, 10, shuffle=True)
    with pytest.raises(ConfigError, match="batch_size"):
        batches(x, y, 0)
    with pytest.raises(ConfigError, match="labels"):
        batches(x, y[:3], 10)


def test_epoch_generator_depends_only_on_seed_and_epoch():
    g1 = epoch_generator(123, 5)
    torch.randperm(10, generator=epoch_generator(123, 4))  # other draws in between do not matter
    g2 = epoch_generator(123, 5)
    assert torch.equal(torch.randperm(1000, generator=g1), torch.randperm(1000, generator=g2))
    seeds = {epoch_generator(s, e).initial_seed() for s in range(5) for e in range(5)}
    assert len(seeds) == 25
    with pytest.raises(ConfigError, match="epoch"):
        epoch_generator(1, 2.5)


# ---- augmentations ---------------------------------------------------------------------------------
def test_random_crop_deterministic_shape_preserving_and_a_window():
    x = torch.randint(1, 256, (16, 3, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    a = random_crop(x, 2, torch.Generator().manual_seed(5))
    b = random_crop(x, 2, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == x.shape and a.dtype == x.dtype
    assert not torch.equal(a, random_crop(x, 2, torch.Generator().manual_seed(6)))
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    offsets = set()
    for k in range(16):
        hits = [(i, j) for i in range(5) for j in range(5) if torch.equal(a[k], padded[k, :, i : i + 8, j : j + 8])]
        assert hits, f"sample {k} is not a window of its padded image"
        offsets.add(hits[0])
    assert len({i for i, _ in offsets}) > 1 and len({j for _, j in offsets}) > 1  # both offsets vary
    assert torch.equal(random_crop(x, 0, torch.Generator()), x)
    with pytest.raises(ConfigError, match="padding"):
        random_crop(x, -1, torch.Generator())
    with pytest.raises(ConfigError, match="N x C x H x W"):
        random_crop(x[0], 2, torch.Generator())


def test_random_hflip_deterministic_and_shape_preserving():
    x = torch.randn(64, 3, 4, 5, generator=torch.Generator().manual_seed(1))
    a = random_hflip(x, torch.Generator().manual_seed(9))
    assert torch.equal(a, random_hflip(x, torch.Generator().manual_seed(9))) and a.shape == x.shape
    flipped = [torch.equal(a[k], x[k].flip(-1)) for k in range(64)]
    kept = [torch.equal(a[k], x[k]) for k in range(64)]
    assert all(f or k for f, k in zip(flipped, kept)) and 10 < sum(flipped) < 54
    assert torch.equal(random_hflip(x, torch.Generator(), p=0.0), x)
    assert torch.equal(random_hflip(x, torch.Generator(), p=1.0), x.flip(-1))
