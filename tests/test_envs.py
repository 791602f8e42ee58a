"""The environments' GPU sets (envs/*/requirements-gpu.txt, with requirements-cuda.txt where there is
one) resolve against the registry as pinned.

`pip install --dry-run --ignore-installed --report` resolves each file for its environment's
Python without installing anything, with pip's configuration files and local wheel folders left out,
as tools/make-env.sh installs the GPU set (tools/gpu_builds.py's resolve, which also measures what
the sets take on disk). Needs the package registry (CI has it).
"""
import glob
import json
import os
import sys

import pytest

from conftest import ROOT
sys.path.insert(0, os.path.join(ROOT, "tools"))
from gpu_builds import CUDA_BUILDS as BUILDS, norm, resolve  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.registry]
GPU_FILES = sorted(glob.glob(os.path.join(ROOT, "envs", "*", "requirements-gpu.txt")))
# The package that makes each set a GPU set: it must be what the file resolves to.
CUDA_BUILD = {"main": ["tensorflow", "jax-cuda12-plugin", "nvidia-cudnn-cu12", "nvidia-cudnn-cu13", "torch"],
              "mxnet": ["mxnet-cu117"], "chainer": ["cupy-cuda12x"], "cntk": ["cntk-gpu"], "caffe2": ["torch"]}


def pins(path):
    found = {}
    for line in open(path):
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            found[norm(name.split("[")[0])] = version
    return found


@pytest.mark.parametrize("path", GPU_FILES, ids=[p.split(os.sep)[-2] for p in GPU_FILES])
def test_gpu_requirements_resolve_as_pinned(path, tmp_path):
    env = path.split(os.sep)[-2]
    out = resolve(env, path, str(tmp_path / "report.json"))
    if out is None:
        pytest.skip("Chainer is a source distribution: resolving it needs .envs/chainer (make envs)")
    assert out.returncode == 0, out.stderr[-3000:]
    with open(str(tmp_path / "report.json")) as f:
        resolved = {norm(i["metadata"]["name"]): i["metadata"]["version"] for i in json.load(f)["install"]}
    wanted = pins(path)
    cuda = os.path.join(os.path.dirname(path), "requirements-cuda.txt")  # resolved with it, as make-env.sh installs it
    wanted.update(pins(cuda) if os.path.exists(cuda) else {})
    assert {n: resolved.get(n) for n in wanted} == wanted  # every pin holds, nothing else slips in
    assert set(resolved) == set(wanted), sorted(set(resolved) ^ set(wanted))
    for name in CUDA_BUILD[env]:
        assert name in resolved and "+cpu" not in resolved[name], (name, resolved.get(name))


def test_every_environment_has_a_gpu_set():
    envs = {os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(ROOT, "envs", "*", "python-version"))}
    assert {p.split(os.sep)[-2] for p in GPU_FILES} == envs == set(CUDA_BUILD) == set(BUILDS)
