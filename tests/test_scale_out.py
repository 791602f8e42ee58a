"""Scale out: two processes on a framework's own distributed engine compute what one process
computes (2 workers x 32 = 1 worker x 64, against the NumPy reference), and a rank that dies,
raises or hangs ends the whole launch with a sentence that names it."""
import os
import time

import pytest

from conftest import COMMITTED

import common
from lab import envs, launch, parity, scale_out

FRAMEWORKS = list(common.PARALLEL)  # the book's order: its table is the tests' cached one
LAUNCHERS = ["pytorch", "jax", "chainer"]  # the faults, one row per kind of launch: torchrun, ranks started here, mpiexec


@pytest.fixture(scope="module")
def table():
    """Every row with an environment here, launched unless today's code made the table on a machine of
    this kind (as test_parity's); the book shows this one."""
    return scale_out.table([f for f in FRAMEWORKS if envs.python_for(f)[0]], root=COMMITTED)["table"]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_two_processes_compute_what_one_computes(table, framework):
    if envs.python_for(framework)[0] is None:
        pytest.skip(envs.python_for(framework)[1])
    row = table[framework]
    assert "error" not in row, row.get("error")
    assert row["world_size"] == 2 and row["devices"] == ["cpu", "cpu"]
    assert row["ranks_identical"], "the ranks' weights differ after the steps"
    assert row["losses"] < parity.TOLERANCE, (row["losses_seen"], row["reference_losses"])
    assert row["weights"] < parity.TOLERANCE, "weights differ by {:.2e}".format(row["weights"])
    assert row["update"] < parity.UPDATE_TOLERANCE, "update off by {:.1%}".format(row["update"])  # a summed gradient
    assert scale_out.passes(row)


@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_training_runs_as_two_processes(framework):
    """What make scale-out runs, at the smoke profile: the harness's steps in two processes."""
    if envs.python_for(framework)[0] is None:
        pytest.skip(envs.python_for(framework)[1])
    first, ranks = scale_out.train(framework, "smoke", "synthetic", 2, timeout=300)
    assert first is not None, ranks
    assert [r["status"] for r in ranks] == ["ok", "ok"] and [r["rank"] for r in ranks] == [0, 1]
    assert all(r["world_size"] == 2 and r["device"] == "cpu" and len(r["epoch_seconds"]) == 2 for r in ranks)
    assert ranks[0]["accuracy"] == ranks[1]["accuracy"] is not None  # the same weights predict alike


def leftovers(out_dir):
    """Processes still running that were started for `out_dir`."""
    import psutil
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.info["pid"] != os.getpid() and out_dir in " ".join(proc.info["cmdline"] or []):
            found.append(proc.info["pid"])
    return found


@pytest.mark.parametrize("framework", LAUNCHERS)
@pytest.mark.parametrize("fault", ["kill", "raise"])
def test_a_rank_that_dies_ends_the_launch_and_is_named(framework, fault, tmp_path, monkeypatch):
    monkeypatch.setenv("ROSETTA_SCALE_FAULT", fault)
    start = time.monotonic()
    why = launch.launch(framework, str(tmp_path), timeout=120)
    assert time.monotonic() - start < 60 and why and why.startswith("rank 1 failed: "), why
    assert ("signal 9" if fault == "kill" else "RuntimeError: rank 1 raised") in why, why
    assert leftovers(str(tmp_path)) == []


@pytest.mark.parametrize("framework", LAUNCHERS)
def test_a_rank_that_hangs_is_ended_with_all_the_others_at_the_time_limit(framework, tmp_path, monkeypatch):
    monkeypatch.setenv("ROSETTA_SCALE_FAULT", "hang")
    why = launch.launch(framework, str(tmp_path), timeout=25)
    assert why.startswith("timed out after 25 s") and "had not finished" in why, why
    assert leftovers(str(tmp_path)) == []


@pytest.mark.parametrize("backend, call, error", [
    ("torch", "keras.distribution.DataParallel()", "'NoneType' object has no attribute 'list_devices'"),
    ("tensorflow", "keras.distribution.initialize('127.0.0.1:1', 1, 0)", "has no attribute 'initialize'"),
])
def test_keras_has_no_distribution_on_torch_or_tensorflow_as_the_chapter_says(backend, call, error):
    """The Keras tab's reason for a loop of torch's own (and no TensorFlow row): a Keras release that
    adds keras.distribution to these backends fails this, and the chapter must change."""
    import subprocess
    import sys
    got = subprocess.run([sys.executable, "-c", "import keras\ntry:\n    {}\nexcept AttributeError as e:\n    print(e)".format(call)],
                         env=dict(os.environ, KERAS_BACKEND=backend), capture_output=True, text=True, timeout=120)
    assert error in got.stdout, (got.stdout, got.stderr[-500:])


def test_a_port_taken_by_another_process_is_not_a_failure(tmp_path, monkeypatch):
    """The coordinator's port is free when chosen; another process binds it before rank 0 does."""
    import socket
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        chosen, first = [], launch.free_port

        def free_port():
            chosen.append(first())
            if len(chosen) > 1:
                return chosen[-1]
            launch.CHOSEN[-1] = other.getsockname()[1]  # what a race with another process gives
            return launch.CHOSEN[-1]
        monkeypatch.setattr(launch, "free_port", free_port)
        assert launch.launch("jax", str(tmp_path), timeout=120) is None
    assert len(chosen) == 2 and os.path.exists(str(tmp_path / "rank1.json"))
