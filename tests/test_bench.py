"""The orchestrator under faults: every framework's fate is recorded and the others still run.

Faulty frameworks are stand-in interpreters (ROSETTA_PYTHON_<FRAMEWORK>) that the orchestrator
starts exactly as it starts a real one; PyTorch runs for real beside them.
"""
import io
import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from conftest import CODE, ROOT
from lab import breakdown, digest, envs, modes, plan, runner, runs
import common
import datasets
from lab import harness
from lab import results

FAKE = '''#!{python}
import json, os, signal, sys, time
sys.path.insert(0, {code!r})
MODE = {mode!r}
framework, opts = sys.argv[3], dict(zip(sys.argv[4::2], sys.argv[5::2]))  # FAKE -m lab.harness FRAMEWORK ...
if MODE == "raises":
    raise RuntimeError("the framework exploded")
if MODE == "hangs":
    time.sleep(600)
if MODE == "garbage":
    sys.stdout.buffer.write(bytes(range(256)) * 8)
    print("\\nPROGRESS {{broken\\nPROGRESS [1, 2]", flush=True)
    sys.exit(3)
if MODE == "killed":
    print('PROGRESS {{"epoch": 1, "epochs": 2, "seconds": 1.0, "loss": 2.3}}', flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
if MODE == "slow":
    time.sleep(600)
from lab import results
r = results.new_result(framework, opts["--profile"], opts["--dataset"], run=opts["--run"], status="ok",
                       params=3441592, epoch_seconds=[1.0, 0.5], train_seconds=1.5, accuracy=0.5)
if MODE == "tuned":  # two changes, one on and one off, as ROSETTA_TUNING leaves them
    forced = dict(i.split("=") for i in os.environ.get("ROSETTA_TUNING", "").split(",") if i)
    r["tuning"] = [dict(change=n, on=forced.get(n, d) == "1", why="w") for n, d in (("fast", "1"), ("bf16", "0"))]
results.write_json(opts["--out"], r)
'''


def fake(tmp_path, monkeypatch, framework, mode):
    path = tmp_path / "fake-{}-{}".format(mode, framework)
    path.write_text(FAKE.format(python=sys.executable, code=CODE, mode=mode))
    path.chmod(0o755)
    monkeypatch.setenv("ROSETTA_PYTHON_" + framework.upper().replace("-", "_"), str(path))
    return str(path)


def load(run_path, framework):
    with open(os.path.join(run_path, framework + ".json")) as f:
        return json.load(f)


def test_faults_are_recorded_and_the_others_still_run(tmp_path, monkeypatch, results_dir):
    fake(tmp_path, monkeypatch, "tensorflow", "raises")
    fake(tmp_path, monkeypatch, "keras-torch", "garbage")
    fake(tmp_path, monkeypatch, "keras-tensorflow", "killed")
    monkeypatch.setenv("ROSETTA_PYTHON_JAX", str(tmp_path / "no-such-python"))
    names = ["tensorflow", "keras-torch", "pytorch", "keras-tensorflow", "jax"]
    path = modes.bench(names, "smoke", "synthetic", timeout=300)

    raised = load(path, "tensorflow")
    assert raised["status"] == "failed" and "the framework exploded" in raised["error"]
    garbage = load(path, "keras-torch")
    assert garbage["status"] == "failed" and "exited with code 3" in garbage["error"]
    killed = load(path, "keras-tensorflow")
    assert killed["status"] == "failed" and "exited with code -9" in killed["error"]
    missing = load(path, "jax")
    assert missing["status"] == "skipped" and "ROSETTA_PYTHON_JAX" in missing["error"]
    real = load(path, "pytorch")
    assert real["status"] == "ok" and real["params"] == 3441592 and len(real["epoch_seconds"]) == 2
    assert 0 <= real["accuracy"] <= 1 and real["dataset"] == "synthetic" and real["profile"] == "smoke"
    assert 0.5 < real["cpu_busy"] < os.cpu_count() + 0.5  # cores kept busy, measured
    assert real["nvidia_tf32_override"] == "0"  # float32 policy: no TF32 in any CUDA library
    for name in names:
        doc, reason = results.read_result(os.path.join(path, name + ".json"))
        assert doc is not None, reason
    with open(os.path.join(path, "run.json")) as f:
        assert json.load(f)["status"] == "complete"
    assert results.latest_run() == path
    assert not [n for n in os.listdir(path) if n.startswith(".")]  # no partial files left behind


def test_a_hanging_framework_is_killed_at_its_limit(tmp_path, monkeypatch, results_dir):
    fake(tmp_path, monkeypatch, "jax", "hangs")
    fake(tmp_path, monkeypatch, "pytorch", "ok")
    start = time.monotonic()
    path = modes.bench(["jax", "pytorch"], "smoke", "synthetic", timeout=3)
    assert time.monotonic() - start < 60
    hung = load(path, "jax")
    assert hung["status"] == "failed" and hung["error"].startswith("timed out after 3 s")
    assert load(path, "pytorch")["status"] == "ok"


def test_missing_environment_is_skipped_with_the_fix(monkeypatch, results_dir):
    monkeypatch.setattr(common, "ROOT", results_dir)  # no .envs/ there
    for var in [v for v in os.environ if v.startswith("ROSETTA_PYTHON")]:
        monkeypatch.delenv(var)
    python, why_not = envs.python_for("mxnet")
    assert python is None and "make envs" in why_not and ".envs/mxnet" in why_not


def start_bench(args, env, ignore_sigint=False):
    """bench.py in a process of its own; ignore_sigint: started as from a shell that ignores SIGINT
    (a background job, nohup, some CI runners), where Python installs no KeyboardInterrupt handler."""
    restore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else (
        lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return subprocess.Popen([sys.executable, os.path.join(CODE, "bench.py")] + args, cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=restore)


def test_interrupted_run_is_marked_incomplete_and_resumed(tmp_path, monkeypatch, results_dir):
    fake(tmp_path, monkeypatch, "pytorch", "ok")
    earlier = modes.bench(["pytorch"], "smoke", "synthetic")
    with open(os.path.join(earlier, "pytorch.json")) as f:
        before = f.read()
    fake(tmp_path, monkeypatch, "jax", "slow")
    args = ["--frameworks", "pytorch,jax", "--profile", "smoke", "--dataset", "synthetic"]
    proc = start_bench(args, dict(os.environ), ignore_sigint=True)  # Ctrl-C stops it even so
    run_root = os.path.join(results_dir, "runs")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = [r for r in sorted(os.listdir(run_root)) if os.path.join(run_root, r) != earlier]
        if runs and os.path.exists(os.path.join(run_root, runs[-1], "pytorch.json")):
            break
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "marked incomplete" in err
    interrupted = os.path.join(run_root, runs[-1])
    with open(os.path.join(interrupted, "run.json")) as f:
        assert json.load(f)["status"] == "incomplete"
    assert results.latest_run() == earlier  # the newest *complete* run is still the earlier one
    with open(os.path.join(earlier, "pytorch.json")) as f:
        assert f.read() == before

    fake(tmp_path, monkeypatch, "jax", "ok")
    # Resumed asking for pytorch alone, the run still finishes jax, which it was first asked for.
    resume = ["--frameworks", "pytorch", "--profile", "smoke", "--dataset", "synthetic", "--resume"]
    proc = start_bench(resume, dict(os.environ))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "resuming incomplete run " + runs[-1] in err and "pytorch           done already" in err
    with open(os.path.join(interrupted, "run.json")) as f:
        assert json.load(f)["status"] == "complete"
    assert load(interrupted, "jax")["status"] == "ok" and results.latest_run() == interrupted


@pytest.mark.parametrize("args, message", [
    (["--frameworks", "pytorch,theano"], "unknown framework 'theano': choose one of pytorch"),
    (["--profile", "huge"], "unknown profile 'huge': choose one of full, quick, fidelity, smoke"),
    (["--dataset", "imagenet"], "unknown dataset 'imagenet': choose one of auto"),
])
def test_bad_names_give_a_clear_error(args, message, results_dir):
    proc = start_bench(args, dict(os.environ))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and message in err
    assert not os.path.exists(os.path.join(results_dir, "runs"))


def test_unwritable_results_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    env = dict(os.environ, ROSETTA_RESULTS_DIR=str(blocker / "results"))
    proc = start_bench(["--frameworks", "pytorch", "--profile", "smoke", "--dataset", "synthetic"], env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "cannot write the results folder" in err and "ROSETTA_RESULTS_DIR" in err


def test_corrupt_cache_stops_the_run_before_it_starts(tmp_path, monkeypatch, results_dir):
    import datasets
    monkeypatch.setattr(datasets, "CACHE_DIR", str(tmp_path / "cache"))
    datasets.prepare("synthetic")
    with open(str(tmp_path / "cache" / "synthetic" / "y_test.npy"), "wb") as f:
        f.write(b"\x93NUMPY broken")
    env = dict(os.environ, ROSETTA_DATA_DIR=str(tmp_path))
    proc = start_bench(["--frameworks", "pytorch", "--profile", "smoke", "--dataset", "synthetic"], env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "y_test.npy is corrupt" in err and "delete" in err
    assert not os.path.exists(os.path.join(results_dir, "runs"))


def test_own_init_run_keeps_the_framework_default_and_leaves_latest_alone(results_dir):
    main = modes.bench(["pytorch"], "smoke", "synthetic")
    own = modes.bench(["pytorch"], "smoke", "synthetic", init="own")
    assert results.latest_run() == main and own != main
    glorot, default = load(main, "pytorch"), load(own, "pytorch")
    assert glorot["init"] == "glorot" and glorot["init_rule"] == "Glorot-uniform"
    assert default["status"] == "ok" and default["init"] == "own"
    assert default["init_rule"].startswith("Kaiming-uniform")  # PyTorch's own, measured in the run
    from pages import defaults as report_defaults
    page = report_defaults.init_cost_html(results_dir)
    assert "Kaiming-uniform" in page and "points" in page and os.path.basename(own) in page


def test_init_cost_pair_is_made_once_per_code_and_shown_beside_its_own_glorot_run(results_dir, monkeypatch):
    main = modes.bench(["pytorch", "tensorflow"], "smoke", "synthetic")
    glorot, own = modes.init_cost(["pytorch", "tensorflow"], "smoke", "synthetic")  # tensorflow: no own init
    assert results.latest_run() == main and main not in (glorot, own)
    assert [r["framework"] for r in results.load_run(glorot)[1]] == ["pytorch"]
    assert results.load_run(own)[0]["twin"] == os.path.basename(glorot)
    assert load(glorot, "pytorch")["init_rule"] == "Glorot-uniform"
    assert load(own, "pytorch")["init_rule"].startswith("Kaiming-uniform")
    from pages import defaults as report_defaults
    assert report_defaults.own_init_pair(results_dir) == (glorot, own)
    page = report_defaults.init_cost_html(results_dir)
    assert os.path.basename(glorot) in page and os.path.basename(own) in page and "tf.nn has no initializer" in page
    # The same code again: the pair is kept; another profile makes a new one.
    assert modes.init_cost(["pytorch"], "smoke", "synthetic") == (glorot, own)
    monkeypatch.setattr(digest, "fingerprint", lambda *a: "other code")
    assert modes.init_cost(["pytorch"], "smoke", "synthetic")[1] != own


def test_with_a_gpu_seen_each_framework_trains_the_profile_of_its_own_device(tmp_path, monkeypatch, results_dir):
    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir()
    smi.write_text("#!/bin/sh\necho 'NVIDIA H100 80GB HBM3, 9.0'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", "{}:{}".format(smi.parent, os.environ["PATH"]))
    assert envs.gpu_name() == "NVIDIA H100 80GB HBM3 (compute capability 9.0)"
    path = modes.bench(["pytorch"], None, "synthetic")  # no profile asked for: full on a GPU
    with open(os.path.join(path, "run.json")) as f:
        assert json.load(f)["profile"] == "full"
    r = load(path, "pytorch")  # this machine's torch is a CPU build: it says so and trains quick
    assert r["status"] == "ok" and r["device"] == "cpu" and r["profile"] == "quick" and r["epochs"] == 3
    assert len(r["epoch_seconds"]) == 3
    assert r["device_note"].startswith("NVIDIA H100 80GB HBM3 (compute capability 9.0) is here, but this torch "
                                       "is a CPU build: on the CPU with the quick profile instead of full")


class Cuda13TorchOnVolta:
    """torch's CUDA 13 build on a Volta: it lists the GPU, and its first kernel fails."""
    version = SimpleNamespace(cuda="13.0")
    cuda = SimpleNamespace(is_available=lambda: True)

    @staticmethod
    def ones(*args, **kwargs):
        raise RuntimeError("CUDA error: no kernel image is available for execution on the device\nmore")


def test_keras_on_torch_gets_the_cpu_and_the_reason_where_torch_lists_a_gpu_it_cannot_run_on(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", Cuda13TorchOnVolta)
    monkeypatch.setenv("KERAS_TORCH_DEVICE", "unset below")
    monkeypatch.delenv("KERAS_TORCH_DEVICE")
    for backend in ("tensorflow", "jax"):  # not torch: nothing to do
        monkeypatch.setenv("KERAS_BACKEND", backend)
        assert harness.keras_torch_device() is None and "KERAS_TORCH_DEVICE" not in os.environ
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert harness.keras_torch_device() == ("torch's CUDA 13.0 build cannot run on this GPU: "
                                            "CUDA error: no kernel image is available for execution on the device")
    assert os.environ["KERAS_TORCH_DEVICE"] == "cpu"  # what Keras' torch backend reads when imported
    assert harness.keras_torch_device() is None  # a device already chosen is left alone


def test_tuning_ablation_runs_a_tuned_row_as_it_is_then_with_each_change_flipped(tmp_path, monkeypatch, results_dir):
    fake(tmp_path, monkeypatch, "pytorch-tuned", "tuned")
    path = modes.tuning_ablation(["pytorch", "pytorch-tuned"], "smoke", "synthetic", timeout=300)
    assert path.endswith("-smoke-tuning") and results.latest_run() is None  # never the book's latest
    with open(os.path.join(path, "run.json")) as f:
        meta = json.load(f)
    assert meta["status"] == "complete" and meta["purpose"] == "tuning" and meta["frameworks"] == ["pytorch-tuned"]
    assert meta["peak_flops"]["float32"]["flops"] > 1e9  # the machine's fastest matrix product, with the run
    assert sorted(n for n in os.listdir(path) if n.endswith(".json") and n not in ("run.json", "manifest.json")) == [
        "pytorch-tuned.json", "pytorch-tuned@bf16.json", "pytorch-tuned@fast.json"]
    assert [c["on"] for c in load(path, "pytorch-tuned")["tuning"]] == [True, False]
    fast_off, bf16_on = load(path, "pytorch-tuned@fast"), load(path, "pytorch-tuned@bf16")
    assert fast_off["flipped"] == "fast" and [c["on"] for c in fast_off["tuning"]] == [False, False]
    assert bf16_on["flipped"] == "bf16" and [c["on"] for c in bf16_on["tuning"]] == [True, True]


def test_the_plan_gives_each_row_and_an_estimate_before_anything_runs(tmp_path, monkeypatch, results_dir):
    fake(tmp_path, monkeypatch, "pytorch", "ok")
    fake(tmp_path, monkeypatch, "jax", "ok")
    earlier = modes.bench(["pytorch"], "smoke", "synthetic")  # an earlier run on this machine: pytorch took 30 s
    doc = load(earlier, "pytorch")
    assert 0 < doc["wall_seconds"] < 120  # the runner's own measure, from the row's start to its result
    doc.update(wall_seconds=30.0)
    results.write_json(os.path.join(earlier, "pytorch.json"), doc)
    proc = start_bench(["--frameworks", "pytorch,jax", "--profile", "smoke", "--dataset", "synthetic"], dict(os.environ))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    plan = err[err.index("plan: 2 rows, smoke profile, synthetic dataset"):err.index("pytorch           ok")]
    assert "pytorch                  about 0.5 min" in plan
    assert "jax                      no estimate" in plan
    assert "in all about 0.5 min plus 1 row without an estimate, estimated from the newest run on this machine" in plan


def test_scale_out_names_the_rows_it_runs_when_asked_for_another():
    proc = start_bench(["--scale-out", "--frameworks", "pytorch-tuned"], dict(os.environ))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "--scale-out runs the rows with a data-parallel module: pytorch," in err


def test_the_machines_peak_is_the_fastest_matrix_product_per_precision():
    found = runs.peak(budget=0.02)
    bf16 = {"avx512_bf16", "amx_bf16"} & set(results.cpu_features()) or envs.gpu_name()
    assert sorted(found) == (["bfloat16", "float32"] if bf16 else ["float32"])  # bf16 only with its units
    assert all(p["flops"] > 1e9 and ", n=" in p["by"] for p in found.values())


def test_pytorchs_profile_splits_a_step_into_parts_that_add_up_to_it():
    got = envs.run_script("pytorch", "breakdown", ["pytorch"], timeout=300)
    assert isinstance(got, dict), got
    # The last part is the step less the others: what can fail is the profiler's parts, which must lie within the step.
    assert breakdown.within_bounds("pytorch", got), got
    assert got["parts"]["convolutions"] > got["parts"]["matrix products"] > 0  # most FLOPs are the convolutions'


def test_the_countdown_goes_at_the_pace_of_the_rows_done():
    out = io.StringIO()
    show = runner.Progress(["a", "b", "c"], stream=out, estimates={"a": 10.0, "b": 10.0, "c": 20.0})
    assert show.left("a", 0.0) == 40.0
    show.done(dict(framework="a", status="ok", wall_seconds=15.0))
    assert show.pace() == 1.5 and show.left("b", 3.0) == 1.5 * 20 + 15 - 3  # the rows done took 1.5x their estimates
    show.done(dict(framework="b", status="failed", error="it broke", wall_seconds=1.0))  # a failure says nothing of pace
    assert show.pace() == 1.5 and "it broke" in out.getvalue()


def test_a_row_without_the_runners_measure_is_timed_from_its_harness(results_dir):
    doc = results.new_result("pytorch", "smoke", "synthetic", started="2026-11-30T00:00:00+00:00",
                             finished="2026-11-30T00:01:40+00:00")
    assert results.row_seconds(doc) == 100.0 and results.row_seconds(dict(doc, wall_seconds=102.5)) == 102.5


def test_a_reference_run_is_scaled_by_the_calibration_to_estimate_here(results_dir):
    ref = os.path.join(results_dir, "reference", "20261130-000000-smoke")
    doc = results.new_result("pytorch", "smoke", "synthetic", status="ok", started="2026-11-30T00:00:00+00:00",
                             finished="2026-11-30T00:01:40+00:00")
    results.write_json(os.path.join(ref, "pytorch.json"), doc)
    results.write_json(os.path.join(ref, "run.json"), dict(run="r", profile="smoke", dataset="synthetic",
                                                           status="complete", calibration_seconds=0.5))
    estimates, how = plan.estimate(["pytorch", "jax"], "smoke", "synthetic", calibration=0.25)
    assert estimates == {"pytorch": 50.0, "jax": None}  # 100 s there, on a machine twice as slow
    assert how.startswith("the reference run r scaled by this machine's speed") and "0.50x" in how


def test_a_tuned_row_with_no_change_on_here_is_not_rerun_and_says_why(tmp_path, monkeypatch, results_dir):
    fake(tmp_path, monkeypatch, "jax", "ok")
    fake(tmp_path, monkeypatch, "jax-tuned", "ok")
    monkeypatch.setattr(plan, "probe", lambda name: [dict(change="scan", on=False, why="no GPU")])
    path = modes.bench(["jax", "jax-tuned"], "smoke", "synthetic", skip_unchanged=True)
    skipped = load(path, "jax-tuned")
    assert skipped["status"] == "skipped" and "none of its changes is on for this device (scan off: no GPU)" in skipped["error"]
    assert "so it would be jax run a second time" in skipped["error"] and load(path, "jax")["status"] == "ok"
    assert plan.not_rerun(["jax-tuned"]) == {}  # without its twin in the run, a tuned row runs


def test_the_tuned_rows_probe_reads_their_changes_in_their_environment():
    changes = plan.probe("jax-tuned")
    assert [c["change"] for c in changes] == ["onednn", "bf16", "weight_grad", "scan", "donate"] and all(c["why"] for c in changes)


def test_rows_whose_reference_older_code_measured_run_first(results_dir):
    ref = os.path.join(results_dir, "reference", "20261130-000000-quick")
    for name in ("pytorch", "pytorch-tuned", "jax", "jax-tuned"):
        doc = results.new_result(name, "quick", "synthetic", status="ok")
        doc["code"] = "older" if name == "jax-tuned" else digest.row_code(name)
        results.write_json(os.path.join(ref, name + ".json"), doc)
    results.write_json(os.path.join(ref, "run.json"), dict(run="r", status="complete"))
    assert plan.stale_first(["pytorch", "pytorch-tuned", "jax", "jax-tuned"]) == [
        "jax", "jax-tuned", "pytorch", "pytorch-tuned"]


def test_a_run_records_its_machine_commit_and_manifest_and_each_row_its_code(tmp_path, monkeypatch, results_dir):
    fake(tmp_path, monkeypatch, "pytorch", "ok")
    path = modes.bench(["pytorch"], "smoke", "synthetic", kind="reference")
    assert os.path.dirname(path) == os.path.join(results_dir, "reference") and results.latest_run() is None
    with open(os.path.join(path, "run.json")) as f:
        meta = json.load(f)
    assert len(meta["commit"]) == 40 and meta["machine"]["cores"] == os.cpu_count() and meta["calibration_seconds"] > 0
    assert load(path, "pytorch")["code"] == digest.row_code("pytorch")
    assert results.manifest_problems(path) == []


def test_a_checks_table_is_measured_once_per_key_and_a_committed_one_of_the_same_key_is_shown(tmp_path, monkeypatch,
                                                                                               results_dir):
    from lab import results as lab_results
    monkeypatch.setattr(datasets, "CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("FRESH", raising=False)
    measured = []

    def measure(complete=True):
        measured.append(1)
        return dict(measured="2026-12-07", table={"pytorch": {"logits": 1e-7}}), complete

    ref = os.path.join(results_dir, "reference", "20261207-000000-parity-book-tables")
    lab_results.write_json(os.path.join(ref, "run.json"), dict(run=os.path.basename(ref), commit="abc1234" + "0" * 33))
    lab_results.write_json(os.path.join(ref, "parity.json"), dict(measured="2026-12-06", key="committed", table={}))
    got = runs.checked_table("parity", "committed", measure)
    assert not measured and got["reference"]["run"] == os.path.basename(ref)
    assert runs.checked_table("parity", "other code", lambda: measure(False))["key"] == "other code"
    runs.checked_table("parity", "other code", measure)  # a table with a failure was not kept: measured again
    runs.checked_table("parity", "other code", measure)  # ... and this one was
    assert len(measured) == 2
    monkeypatch.setenv("FRESH", "onnx,parity")
    monkeypatch.setattr(runs, "MEASURED", {})
    assert "reference" not in runs.checked_table("parity", "committed", measure) and len(measured) == 3
    runs.checked_table("parity", "committed", measure)  # FRESH measures it once: chapter 9 asks twice
    assert len(measured) == 3
    runs.checked_table("parity", "committed", measure, fresh=True)  # fresh (make reference-tables): always
    assert len(measured) == 4


def test_a_checks_key_follows_the_code_and_the_kind_of_machine_not_its_name_cores_or_path(monkeypatch):
    from lab import results as lab_results

    def key(features, check="parity"):
        monkeypatch.setattr(lab_results, "cpu_features", lambda: list(features))
        return digest.check_key(["pytorch", "jax"], check)
    here = key(["avx2"])
    monkeypatch.setattr(lab_results, "cpu_name", lambda: "another CPU")
    monkeypatch.setattr(os, "cpu_count", lambda: 96)
    monkeypatch.setattr(digest, "python_for", lambda f: ("/elsewhere/.envs/{}/bin/python".format(f), ""))
    assert key(["avx2"]) == here
    assert key(["avx2", "avx512f"]) != here and key(["avx2"], "scale-out") != here
    monkeypatch.setitem(digest.CHECKS, "parity", dict(code=("parity", "reference")))  # what it runs changed
    assert key(["avx2"]) != here


def test_make_htmls_plan_covers_every_part_and_says_which_check_tables_it_measures(tmp_path, monkeypatch, results_dir,
                                                                                   capsys):
    from lab import results as lab_results
    monkeypatch.setattr(datasets, "CACHE_DIR", str(tmp_path / "cache"))  # none measured here: the tests' own aside
    monkeypatch.setattr(runs, "calibrate", lambda: 1.0)
    monkeypatch.setattr(plan, "not_rerun", lambda names: {})
    monkeypatch.setattr(envs, "python_for", lambda f: ("python", ""))
    monkeypatch.setattr(digest, "python_for", envs.python_for)
    monkeypatch.delenv("FRESH", raising=False)
    rows = common.implemented_frameworks(tuned=True)
    ref = os.path.join(results_dir, "reference", "20261207-000000-parity-book-tables")
    lab_results.write_json(os.path.join(ref, "run.json"), dict(run=os.path.basename(ref)))
    lab_results.write_json(os.path.join(ref, "parity.json"), dict(key=digest.check_key(rows, "parity"), table={}))
    onnx_rows = plan.CHECK_ROWS["onnx"]("cnn")  # an older table of them: how long it took is the estimate
    lab_results.write_json(os.path.join(ref, "onnx.json"), dict(key="older code", seconds=90, machine="a Xeon",
                                                                table={r: {} for r in onnx_rows}))
    plan.whole("quick", "synthetic")
    said = capsys.readouterr().err
    for spec in common.MODELS.values():
        assert spec["label"] + ": " in said
    assert "parity table (cnn): as the reference run 20261207-000000-parity-book-tables made it" in said
    assert "onnx table (cnn): measured while the book builds: about 1.5 min, as on a Xeon (20261207-000000" in said
    assert "parity table (rnn): measured while the book builds" in said


WAIT_FOR_OTHER = """
import json, os, sys, time
folder, me, other, wait = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
open(os.path.join(folder, me), "w").close()
start = time.monotonic()
while not os.path.exists(os.path.join(folder, other)) and time.monotonic() - start < wait:
    time.sleep(0.05)
print(json.dumps(dict(me=me, met=os.path.exists(os.path.join(folder, other)),
                      cache=os.environ.get("JAX_COMPILATION_CACHE_DIR"))))
"""


@pytest.mark.parametrize("gpu", [None, "NVIDIA H200"])
def test_a_checks_processes_run_two_at_once_without_a_gpu_one_at_a_time_with_one(tmp_path, monkeypatch, gpu):
    monkeypatch.setattr(envs, "gpu_name", lambda: gpu)
    wait = "20" if gpu is None else "2"  # two at once meet at once; one at a time, the first waits in vain
    jobs = [("pytorch", None, ["-c", WAIT_FOR_OTHER, str(tmp_path), me, other, seconds])
            for me, other, seconds in (("a", "b", wait), ("b", "a", wait), ("c", "none", "0"))]
    got = envs.run_scripts(jobs, timeout=60)
    assert [g["me"] for g in got] == ["a", "b", "c"]  # in the jobs' order
    assert [g["met"] for g in got] == ([True, True, False] if gpu is None else [False, True, False])
    assert all(g["cache"].endswith(os.path.join("cache", "jax-checks")) for g in got)
