"""The GPU reference command, tried on the CPU with the smoke profile (as before a GPU run)."""
import json
import os

import pytest

from conftest import ROOT, run
import common

pytestmark = [pytest.mark.slow, pytest.mark.gpu_tools]
GPU_ROWS = {"pytorch", "jax", "keras-jax", "keras-torch"}
GPU_ROWS |= {name + "-tuned" for name in GPU_ROWS}


def test_gpu_reference_script_runs_the_gpu_rows_and_records_the_rest(tmp_path):
    env = dict(os.environ, PROFILE="smoke", DATASET="synthetic", ROSETTA_RESULTS_DIR=str(tmp_path),
               ROSETTA_SITE=str(tmp_path / "site"), ROSETTA_WHEELS=str(tmp_path / "no-wheels"),
               ROSETTA_PYTHON=os.path.join(ROOT, ".envs", "main", "bin", "python"))
    # On the GPU image Chainer comes from the carried wheels; on this CPU, from its own environment.
    chainer = os.path.join(ROOT, ".envs", "chainer", "bin", "python")
    if os.path.exists(chainer):
        env["ROSETTA_PYTHON_CHAINER"] = chainer
    out = run(["tools/gpu-reference.sh"], timeout=1800, env=env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    refs = os.listdir(str(tmp_path / "reference"))
    assert len(refs) == 1
    folder = tmp_path / "reference" / refs[0]
    with open(str(folder / "run.json")) as f:
        assert json.load(f)["label"] == "GPU reference"
    found = {}
    for name in common.implemented_frameworks(tuned=True):  # the CNN's rows: part II has no GPU reference yet
        with open(str(folder / (name + ".json"))) as f:
            found[name] = json.load(f)
    expected_ok = GPU_ROWS | ({"chainer"} if os.path.exists(chainer) else set())
    assert {n for n, d in found.items() if d["status"] == "ok"} == expected_ok
    for name, doc in found.items():
        if name not in expected_ok | {"chainer"}:
            assert doc["status"] == "skipped" and doc["error"].startswith("not run here: "), name
    assert "TensorFlow" in found["tensorflow"]["error"] and "predates this GPU" in found["mxnet"]["error"]
