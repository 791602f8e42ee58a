"""The environments' GPU sets (envs/*/requirements-gpu.txt) resolve against the registry as pinned.

`pip install --dry-run --ignore-installed --report` resolves each file for its environment's
Python without installing anything, with pip's configuration files and local wheel folders left out,
as tools/make-env.sh installs the GPU set. Needs the package registry (CI has it).
"""
import glob
import json
import os
import re

import pytest

from conftest import ROOT, run

pytestmark = pytest.mark.slow
GPU_FILES = sorted(glob.glob(os.path.join(ROOT, "envs", "*", "requirements-gpu.txt")))
# The package that makes each set a GPU set: it must be what the file resolves to.
CUDA_BUILD = {"main": ["tensorflow", "jax-cuda12-plugin", "nvidia-cudnn-cu12", "nvidia-cudnn-cu13", "torch"],
              "mxnet": ["mxnet-cu117"], "chainer": ["cupy-cuda12x"], "cntk": ["cntk-gpu"], "caffe2": ["torch"]}


def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path):
    found = {}
    for line in open(path):
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            found[norm(name.split("[")[0])] = version
    return found


def resolve(env, path, report):
    """pip's dry run for the environment's Python: its own pip where that has --dry-run (22.2 and
    newer), else the main environment's pip asked for wheels of that Python (CNTK's 3.6)."""
    with open(os.path.join(ROOT, "envs", env, "python-version")) as f:
        version = f.read().strip()
    own = os.path.join(ROOT, ".envs", env, "bin", "python")
    cmd = [own, "-m", "pip"]
    if version == "3.6" or not os.path.exists(own):
        if env == "chainer":
            pytest.skip("Chainer is a source distribution: resolving it needs .envs/chainer (make envs)")
        abi = "cp{}{}".format(version.replace(".", ""), "m" if version in ("3.6", "3.7") else "")
        cmd = [os.path.join(ROOT, ".envs", "main", "bin", "python"), "-m", "pip", "--python-version", version,
               "--implementation", "cp", "--abi", abi, "--platform", "manylinux1_x86_64",
               "--platform", "manylinux2014_x86_64", "--platform", "linux_x86_64", "--only-binary=:all:"]
    cmd[3:3] = ["install", "--dry-run", "--ignore-installed", "--quiet", "--report", report, "-r", path]
    env_vars = dict(os.environ, PIP_CONFIG_FILE=os.devnull, PIP_FIND_LINKS="")
    constraints = os.path.join(ROOT, "envs", env, "constraints.txt")
    if os.path.exists(constraints):
        env_vars["PIP_CONSTRAINT"] = constraints
    return run(cmd, timeout=900, env=env_vars)


@pytest.mark.parametrize("path", GPU_FILES, ids=[p.split(os.sep)[-2] for p in GPU_FILES])
def test_gpu_requirements_resolve_as_pinned(path, tmp_path):
    env = path.split(os.sep)[-2]
    out = resolve(env, path, str(tmp_path / "report.json"))
    assert out.returncode == 0, out.stderr[-3000:]
    with open(str(tmp_path / "report.json")) as f:
        resolved = {norm(i["metadata"]["name"]): i["metadata"]["version"] for i in json.load(f)["install"]}
    wanted = pins(path)
    assert {n: resolved.get(n) for n in wanted} == wanted  # every pin holds, nothing else slips in
    assert set(resolved) == set(wanted), sorted(set(resolved) ^ set(wanted))
    for name in CUDA_BUILD[env]:
        assert name in resolved and "+cpu" not in resolved[name], (name, resolved.get(name))


def test_every_environment_has_a_gpu_set():
    envs = {os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(ROOT, "envs", "*", "python-version"))}
    assert {p.split(os.sep)[-2] for p in GPU_FILES} == envs == set(CUDA_BUILD)
