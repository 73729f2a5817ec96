"""Shared test settings: slow full-length reproductions run only with --runslow."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("ANALOGTRAIN_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data"))


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run full-length (slow) reproductions")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="full-length run: use --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
