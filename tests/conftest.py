import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CODE = os.path.join(ROOT, "code")
sys.path[:0] = [CODE, os.path.join(CODE, "cnn")]  # the lab and the CNN's modules, as a row's process has them
# Tests never touch the real results: every run they make lands in a temporary folder.
os.environ["ROSETTA_RESULTS_DIR"] = tempfile.mkdtemp(prefix="rosetta-results-")
# ... but the check tables committed with the repository are the proofs its tests assert on, where
# today's code made them on a machine of this kind (runs.checked_table's root).
COMMITTED = os.path.join(ROOT, "data", "results")


def env_python(framework):
    """The interpreter that runs `framework`, or skip the test where its environment is missing."""
    from lab import envs
    python, why_not = envs.python_for(framework)
    if python is None:
        pytest.skip(why_not)
    return python


def row_of(table, framework):
    """A check table's row of `framework`: skipped where its environment is missing, failed on its error."""
    env_python(framework)
    row = table[framework]
    assert "error" not in row, row.get("error")
    return row


def assert_weights_move(row, rows):
    """A parity row's import pass: the weights of every row with an environment here moved into this one
    give the logits they give their own framework and the reference's."""
    from lab import envs, parity
    assert sorted(row["imported"]) == sorted(f for f in rows if envs.python_for(f)[0])
    worst = max(row["imported"].items(), key=lambda kv: kv[1])
    assert worst[1] < parity.TOLERANCE, "weights from {}: logits differ by {:.2e}".format(*worst)
    assert max(row["as_source"].values()) < parity.TOLERANCE


def run(cmd, timeout=600, **kwargs):
    kwargs.setdefault("cwd", ROOT)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    """A fresh results folder for one test, in this process and in the ones it starts."""
    import common
    from lab import results
    path = str(tmp_path / "results")
    monkeypatch.setenv("ROSETTA_RESULTS_DIR", path)
    monkeypatch.setattr(common, "RESULTS_DIR", path)
    monkeypatch.setattr(results, "RESULTS_DIR", path)
    return path


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """`make html` once per session (smoke profile, synthetic data); returns the run's folder."""
    results_dir = str(tmp_path_factory.mktemp("book-results"))
    reference = os.path.join(ROOT, "data", "results", "reference")
    if os.path.isdir(reference):  # as a clone has them: the book shows them beside the smoke run
        shutil.copytree(reference, os.path.join(results_dir, "reference"))
    out = run(["make", "html", "PROFILE=smoke", "DATASET=synthetic"], timeout=3000,
              env=dict(os.environ, ROSETTA_RESULTS_DIR=results_dir))
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert re.search(r"^make html took \d+ s$", out.stdout, re.M)  # what a build costs, printed by the build
    with open(os.path.join(results_dir, "latest")) as f:
        return os.path.join(results_dir, f.read().strip())
