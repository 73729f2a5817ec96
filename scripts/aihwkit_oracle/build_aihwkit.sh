#!/usr/bin/env bash
# Build IBM's aihwkit 1.2.0 from its PyPI source, CPU only, into its own venv (default ./aihwkit-venv), beside the
# pinned CPU torch: the oracle for the cross-checks in README.md. Not a dependency of analogtrain.
# Needs gcc/g++, cmake >= 3.18 and OpenBLAS headers (Debian: apt-get install libopenblas-dev); ~8 min on 2 cores.
set -euo pipefail
venv=$(realpath -m "${1:-aihwkit-venv}")
work=$(mktemp -d)
python3 -m venv "$venv"
"$venv/bin/pip" install -q torch==2.13.0  # first: aihwkit's declared dependencies would pull another torch
"$venv/bin/pip" install -q "scikit-build>=0.18.1" "pybind11>=3.0.1" ninja wheel numpy scipy protobuf requests tqdm mypy
"$venv/bin/pip" download -q --no-deps --no-binary aihwkit aihwkit==1.2.0 -d "$work"
tar -xzf "$work"/aihwkit-1.2.0.tar.gz -C "$work"
cd "$work/aihwkit-1.2.0"
export VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" USE_CUDA=OFF CMAKE_BUILD_PARALLEL_LEVEL=2 SKBUILD_BUILD_OPTIONS=-j2
export CMAKE_ARGS="-DUSE_CUDA=OFF -DRPU_BLAS=OpenBLAS -DBUILD_TEST=OFF -DCMAKE_BUILD_TYPE=Release"
pip install --no-build-isolation --no-deps .  # --no-deps: its torchvision requirement would replace torch
"$venv/bin/python" -c "import aihwkit; print('aihwkit', aihwkit.__version__, 'built in', '$venv')"
