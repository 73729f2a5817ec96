"""Atomic file writes: write to a temporary file in the same folder, then rename over the target.

An interrupted write leaves either the old file or the new one, never a torn one.  ``make_dir`` creates
an output folder, naming a link to a missing folder on its path instead of failing inside ``mkdir``.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import torch

from .errors import ConfigError


def make_dir(path: str | Path) -> Path:
    """``mkdir -p path``; a link to a missing folder, or a file, anywhere on the path is a ConfigError naming it."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.is_symlink() and not p.exists():
            raise ConfigError(f"{path}: {p} is a link to a missing folder ({os.readlink(p)}); create it or "
                              "remove the link")
        if p.exists() and not p.is_dir():
            raise ConfigError(f"{path}: {p} is a file, not a folder; choose another output folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. no permission
        raise ConfigError(f"cannot create the folder {path}: {exc.strerror}") from None
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(obj, path: str | Path) -> None:
    """``torch.save`` made atomic."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def load(path: str | Path):
    return torch.load(path, map_location="cpu", weights_only=False)
