#!/usr/bin/env bash
# The GPU reference run, on a machine whose Python already has the frameworks (PyTorch, JAX, Flax,
# Optax, CuPy) and no network: the `full` profile for every row that can run there (the tuned rows
# of those frameworks too, each right after its twin), written as a reference run, with its commit,
# machine and manifest, to data/results/reference/<run>/ (and copied to $OUT, if set).
#
#   tools/fetch-gpu-wheels.sh        # beforehand, where there is network: fills .whl/
#   tools/gpu-reference.sh           # on the GPU machine, in the checkout (with .whl/ carried)
#
# PROFILE=smoke tries it out on a CPU machine; ROSETTA_PYTHON picks the interpreter (python3),
# ROSETTA_WHEELS the folder of wheels (.whl).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${ROSETTA_PYTHON:-python3}
site=${ROSETTA_SITE:-/tmp/rosetta-site}
wheels=${ROSETTA_WHEELS:-.whl}
if compgen -G "$wheels/*.whl" >/dev/null; then
  for wheel in "$wheels"/*.whl; do  # one by one: a wheel for another Python (a CPU trial) is left out
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$site" "$wheel" 2>/dev/null || echo "not installed, not for this Python: $wheel"
  done
  # Chainer 7.8.1 imports numpy.distutils, which numpy 2 no longer has: an empty stand-in is enough.
  cp tools/gpu/sitecustomize.py "$site/"
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export ROSETTA_PYTHON=$python
tf="the CUDA build of TensorFlow cannot be brought to this machine (no network, and its wheels are larger than what can be carried)"
old="its last release's CUDA build predates this GPU"
frameworks=pytorch,pytorch-tuned,jax,jax-tuned,keras-jax,keras-jax-tuned,keras-torch,keras-torch-tuned
skip=(--skip "tensorflow=$tf" --skip "keras-tensorflow=$tf" --skip "mxnet=$old" --skip "cntk=$old"
      --skip "keras-cntk=$old" --skip "caffe2=$old" --skip "tensorflow-tuned=$tf" --skip "keras-tensorflow-tuned=$tf")
if [ -f code/cnn/cnn_chainer.py ]; then frameworks+=,chainer; else skip+=(--skip "chainer=no Chainer module yet"); fi
"$python" code/bench.py --reference --profile "${PROFILE:-full}" --dataset "${DATASET:-auto}" \
  --frameworks "$frameworks" --label "${LABEL:-GPU reference}" --timeout "${TIMEOUT:-900}" "${skip[@]}"
results=${ROSETTA_RESULTS_DIR:-data/results}
dest=$(ls -d "$results"/reference/*/ | sort | tail -1)
dest=${dest%/}
[ -z "${OUT:-}" ] || cp -r "$dest" "$OUT/"
echo "reference run in $dest: commit it to show it in the book"
