#!/usr/bin/env bash
# Create .envs/NAME from envs/NAME/: its Python (envs/NAME/python-version, found through pyenv or
# on PATH), its pinned requirements (and constraints.txt, if any), and its own setup steps
# (envs/NAME/setup.sh, if any, instead of the requirements). With GPU=1 (the Makefile's default
# where nvidia-smi lists a GPU) it installs requirements-gpu.txt, the CUDA builds, where there is one;
# requirements-onnx.txt (the exporters, and ONNX Runtime in main) goes in with either, and so does
# requirements-scale.txt where there is one (the scale-out rows' packages: mpi4py for ChainerMN), and
# requirements-zoo.txt (part III's model zoo: torchvision in main);
# with GPU=1, requirements-cuda.txt too (the CUDA libraries a CUDA build does not bring itself).
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1
spec=envs/$name
version=$(cat "$spec/python-version" 2>/dev/null || echo 3.11)
python=
if command -v pyenv >/dev/null; then  # pyenv's shims refuse versions that are not active
  found=$(pyenv versions --bare | grep -E "^${version//./\\.}(\.[0-9]+)?$" | tail -1 || true)
  [ -z "$found" ] || python="$(pyenv prefix "$found")/bin/python"
fi
[ -n "$python" ] || python=$(command -v "python$version" || true)
if [ -z "$python" ] || ! "$python" -c pass 2>/dev/null; then
  echo "no Python $version for environment $name: install it (pyenv install $version) and run make envs" >&2
  exit 1
fi
# A constraints file applies to builds too (pip passes PIP_CONSTRAINT on to build environments).
[ ! -f "$spec/constraints.txt" ] || export PIP_CONSTRAINT="$PWD/$spec/constraints.txt"
requirements=$spec/requirements.txt
cuda=()
if [ "${GPU:-0}" = 1 ] && [ -f "$spec/requirements-gpu.txt" ]; then
  requirements=$spec/requirements-gpu.txt
  [ ! -f "$spec/requirements-cuda.txt" ] || cuda=(-r "$PWD/$spec/requirements-cuda.txt")
  # No pip configuration files: a local index or folder of CPU wheels (torch 2.13.0+cpu, say)
  # would otherwise win over the registry's CUDA builds of the same version.
  export PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS=
fi
export REQUIREMENTS=$PWD/$requirements
dir=${ENVS_DIR:-.envs}/$name  # ENVS_DIR: a scratch folder (make test-gpu-sets)
rm -rf "$dir"
"$python" -m venv "$dir"
case $version in  # an old venv's pip ignores Requires-Python: name the last pip for that Python
  3.6) pip_spec="pip<22" ;;
  3.7) pip_spec="pip<24.1" ;;
  *) pip_spec=pip ;;
esac
"$dir/bin/python" -m pip install -q --upgrade "$pip_spec"
if [ -f "$spec/setup.sh" ]; then
  bash "$spec/setup.sh" "$dir"
else  # the ONNX packages and the scale-out ones with the rest, so that pip keeps every pin
  scale=()
  [ ! -f "$spec/requirements-scale.txt" ] || scale=(-r "$spec/requirements-scale.txt")
  [ ! -f "$spec/requirements-zoo.txt" ] || scale+=(-r "$spec/requirements-zoo.txt")
  "$dir/bin/python" -m pip install -q -r "$requirements" -r "$spec/requirements-onnx.txt" "${scale[@]}" "${cuda[@]}"
fi
# A CUDA build that expects the CUDA libraries on the system (MXNet's, CuPy's) gets them from the
# NVIDIA wheels in requirements-cuda.txt, and the environment's python becomes a script that puts
# their library folders on the loader's path before it starts Python.
if [ ${#cuda[@]} -gt 0 ]; then
  libs=$("$dir/bin/python" - "$spec/requirements-cuda.txt" <<'PY'
import importlib.metadata as m, os, re, sys
names = [re.split(r"[=<>\[; ]", line.strip())[0] for line in open(sys.argv[1]) if line.strip()[:1] not in ("", "#")]
found = {os.path.dirname(os.path.realpath(f.locate())) for n in names for f in m.files(n) or []
         if re.search(r"\.so(\.\d+)*$", f.name)}
print(":".join(sorted(found)))
PY
)
  [ -e "$dir/bin/python$version" ] || mv "$dir/bin/python" "$dir/bin/python$version"  # the interpreter itself
  rm -f "$dir/bin/python"
  printf '#!/bin/sh\nLD_LIBRARY_PATH="%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$(dirname "$0")/python%s" "$@"\n' \
    "$libs" "$version" > "$dir/bin/python"
  chmod +x "$dir/bin/python"
fi
echo "$requirements" > "$dir/.installed"
echo "environment $name ready ($dir, Python $version, $requirements)"
