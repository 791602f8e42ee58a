"""Fidelity: the same network on the same batches must reach about the same accuracy everywhere.

Every implemented framework, and every tuned row, trains on real data (Fashion-MNIST) with the
`fidelity` profile; each test accuracy must lie within 5 points of the median of all of them. A framework that misses is a
bug to find (a wrong init, a missing dropout, a flatten in another order), not a tolerance to widen.
"""
import json
import os
import statistics

import pytest

from conftest import ROOT, run
from lab import envs
import common
import datasets

pytestmark = [pytest.mark.slow, pytest.mark.fidelity]


@pytest.mark.timeout(9000)  # 17 rows, each trained for 400 steps on two CPU cores (the JAX ones are slow there)
def test_every_framework_within_5_points_of_the_median(tmp_path):
    if datasets.fashion_dir() is None:
        pytest.fail("Fashion-MNIST is missing: make envs installs it (dataset-fashion-mnist)")
    frameworks = [f for f in common.implemented_frameworks(tuned=True) if envs.python_for(f)[0]]
    out = run([os.path.join(ROOT, ".envs", "main", "bin", "python"), "code/bench.py", "--profile", "fidelity",
               "--dataset", "fashion-mnist", "--frameworks", ",".join(frameworks)], timeout=9000,
              env=dict(os.environ, ROSETTA_RESULTS_DIR=str(tmp_path)))
    assert out.returncode == 0, out.stderr[-3000:]
    with open(str(tmp_path / "latest")) as f:
        run_path = str(tmp_path / f.read().strip())
    accuracy = {}
    for name in frameworks:
        with open(os.path.join(run_path, name + ".json")) as f:
            doc = json.load(f)
        assert doc["status"] == "ok", (name, doc["error"])
        accuracy[name] = doc["accuracy"]
    median = statistics.median(accuracy.values())
    report = ", ".join("{} {:.1%}".format(k, v) for k, v in sorted(accuracy.items()))
    print("fidelity accuracies: " + report)
    assert median > 0.7, report  # they all learned something real
    off = {k: v for k, v in accuracy.items() if abs(v - median) > 0.05}
    assert not off, "more than 5 points from the median {:.1%}: {}".format(median, report)
