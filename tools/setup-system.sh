#!/usr/bin/env bash
# Debian packages the project needs: Fashion-MNIST (the offline dataset), Chromium (browser tests),
# Open MPI's launcher (mpiexec: the scale-out rows of Chainer and CNTK),
# and a C++ compiler: on the CPU, torch.compile's Inductor writes C++ kernels and builds them with
# it (make bench-tuning switches compile on for the tuned PyTorch row).
set -euo pipefail
need=()
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need+=(dataset-fashion-mnist)
command -v chromium >/dev/null || need+=(chromium)
command -v npm >/dev/null || need+=(npm)
command -v g++ >/dev/null || need+=(g++)
command -v mpiexec >/dev/null || need+=(openmpi-bin)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "missing system packages: ${need[*]}; install them (Debian: apt-get install ${need[*]})" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
