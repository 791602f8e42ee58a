#!/usr/bin/env bash
# Fetch, on a machine with network, the wheels that a GPU image with PyTorch, JAX, Flax, Optax and
# CuPy (Python 3.12, no network) lacks for this benchmark, into .whl/ (git-ignored): Keras 3 with
# namex and optree, and Chainer 7.8.1 (built here; pure Python) with setuptools<81 for pkg_resources.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
py=${GPU_PYTHON_VERSION:-3.12}
mkdir -p .whl
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version "$py" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl keras==3.15.1 namex==0.1.0 optree==0.20.0 setuptools==80.9.0
constraint=$(mktemp)  # a real file: pip's build subprocess cannot read a /dev/fd path
trap 'rm -f "$constraint"' EXIT
echo "setuptools<81" > "$constraint"
PIP_CONSTRAINT=$constraint "$python" -m pip wheel -q --no-deps -w .whl chainer==7.8.1
ls -1 .whl
