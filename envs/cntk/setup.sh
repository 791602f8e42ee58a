#!/usr/bin/env bash
# CNTK 2.7 (wheels for Python 3.6 only) with Keras 2.2.4 on its CNTK backend. CNTK links against
# Open MPI under an older release's names (libmpi.so.12, libmpi_cxx.so.1); Debian's libopenmpi3
# (.so.40) serves under those names, linked into CNTK's own library folder.
set -euo pipefail
env=$1
multiarch=/usr/lib/x86_64-linux-gnu
if [ ! -e "$multiarch/libmpi_cxx.so.40" ]; then
  if [ "$(id -u)" != 0 ]; then echo "CNTK needs Debian's libopenmpi3: apt-get install libopenmpi3" >&2; exit 1; fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenmpi3 >/dev/null
fi
# Only wheels: PyYAML 5.4.1 and h5py 2.10.0 would otherwise try to build from source.
"$env/bin/python" -m pip install -q --only-binary=:all: -r "${REQUIREMENTS:-$(dirname "$0")/requirements.txt}" \
  -r "$(dirname "$0")/requirements-onnx.txt"
libs=$("$env/bin/python" -c "import importlib.util, os; print(os.path.join(os.path.dirname(importlib.util.find_spec('cntk').origin), 'libs'))")
ln -sf "$multiarch/libmpi.so.40" "$libs/libmpi.so.12"
ln -sf "$multiarch/libmpi_cxx.so.40" "$libs/libmpi_cxx.so.1"
mkdir -p "$HOME/.keras"
