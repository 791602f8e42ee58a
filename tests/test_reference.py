"""The committed reference runs (data/results/reference/): what a fresh clone's book shows. Each is
what the code wrote (its manifest's hashes), every result in it is a valid result of this schema,
and together they fill every chapter: every row, the own-init pair, the ablation, the tables."""
import glob
import os

import pytest

from conftest import ROOT
import common
from lab import digest
from lab import results

REFERENCE = os.path.join(ROOT, "data", "results", "reference")
RUNS = sorted(glob.glob(os.path.join(REFERENCE, "*")))


@pytest.mark.parametrize("path", RUNS, ids=[os.path.basename(p) for p in RUNS])
def test_a_reference_run_is_what_the_code_wrote(path):
    assert results.manifest_problems(path) == []
    meta, found, skipped = results.load_run(path)
    assert skipped == []  # every other file is a valid result of this schema
    assert meta["status"] == "complete" and meta["kind"] == "reference" and len(meta["commit"]) == 40
    assert meta["machine"]["cpu"] and meta["machine"]["cores"] and meta["calibration_seconds"] > 0
    for doc in found:
        assert doc["framework"] in common.ROWS and doc.get("code"), doc["framework"]


def test_the_tests_can_read_the_cpu_as_every_kind_of_machine_a_reference_ran_on(monkeypatch):
    """make test-cpu-kinds runs the tests that depend on the CPU as each kind (tests/cpuinfo/): every
    kind a committed reference records must be one of them, with the name and features it recorded."""
    kinds = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "cpuinfo", "*"))):
        monkeypatch.setenv("ROSETTA_CPUINFO", path)
        kinds[(results.cpu_name(), tuple(results.cpu_features()))] = os.path.basename(path)
    assert len(kinds) >= 4  # AMD EPYC with AVX2 only and with AVX512-BF16, Intel Xeon with AVX-512 and with AMX
    for path in RUNS:
        machine = results.load_run(path)[0]["machine"]
        if "features" in machine and not machine.get("gpu"):
            assert (machine["cpu"], tuple(machine["features"])) in kinds, (path, machine)


def rows_runs():
    """Every committed quick run of the book's rows, newest first (each its own machine's)."""
    return [path for path, meta in results.local_runs(os.path.dirname(REFERENCE), "reference")
            if meta.get("init", "glorot") == "glorot" and not meta.get("purpose") and meta.get("profile") == "quick"]


def test_the_reference_has_every_row_on_the_quick_profile_all_ok():
    assert rows_runs(), "no quick reference run: make reference-rows makes one"
    for path in rows_runs():
        found = {r["framework"]: r for r in results.load_run(path)[1]}
        assert sorted(found) == sorted(common.implemented_frameworks(tuned=True)), path
        assert all(r["status"] == "ok" for r in found.values()), {n: r["error"] for n, r in found.items() if r["status"] != "ok"}


def test_the_reference_has_the_defaults_and_parity_tables_of_every_framework():
    from pages import defaults as report_defaults
    path, meta = report_defaults.reference_tables(os.path.dirname(REFERENCE))
    assert path, "no reference of the book's tables: make reference-tables makes one"
    defaults = results.read_object(os.path.join(path, "defaults.json"))[0]
    assert sorted(defaults) == sorted({common.tab(n) for n in common.implemented_frameworks()})
    assert all(isinstance(rows, list) and rows for rows in defaults.values()), defaults
    parity = results.read_object(os.path.join(path, "parity.json"))[0]
    assert sorted(parity["table"]) == sorted(common.implemented_frameworks(tuned=True))
    exported = results.read_object(os.path.join(path, "onnx.json"))[0]
    assert exported and sorted(exported["table"]) == sorted(common.implemented_frameworks())


def purpose_reference(purpose):
    """The newest complete committed run of `purpose` (local runs of it do not count here)."""
    for path, meta in results.local_runs(os.path.dirname(REFERENCE), "reference"):
        if meta.get("purpose") == purpose and meta.get("status") == "complete":
            return path
    return None


def test_the_reference_has_every_part_two_row_ok_beside_its_baseline_and_made_by_todays_code():
    path = purpose_reference("rnn")
    assert path, "no reference run of part II: make reference-rnn makes one"
    found = {r["framework"]: r for r in results.load_run(path)[1]}
    assert sorted(found) == sorted(common.implemented_frameworks(model="rnn"))
    for name, r in found.items():
        assert r["status"] == "ok" and r["profile"] == "quick", (name, r["error"])
        assert not digest.older_code(r), "{}: its module changed since: make reference-rnn".format(name)
    baseline = results.read_object(os.path.join(path, results.BASELINE))[0]
    assert baseline and baseline["n_test"] == common.profile("quick", "rnn")["n_test"]


def test_the_reference_has_every_part_three_row_ok_beside_onnx_runtime_and_made_by_todays_code():
    path = purpose_reference("resnet")
    assert path, "no reference run of part III: make reference-resnet makes one"
    found = {r["framework"]: r for r in results.load_run(path)[1]}
    assert sorted(found) == sorted(common.implemented_frameworks(model="resnet"))
    for name, r in found.items():
        assert r["status"] == "ok" and r["profile"] == "quick", (name, r["error"])
        assert r["n_images"] == common.profile("quick", "resnet")["n_test"] and r["seconds_per_1000"] > 0
        assert not digest.older_code(r), "{}: its module changed since: make reference-resnet".format(name)
    peer = results.read_object(os.path.join(path, results.BASELINE))[0]
    assert peer and peer["framework"] == "onnxruntime" and peer["n_images"] == found["resnet-pytorch"]["n_images"]


def test_the_reference_has_every_part_four_row_ok_and_its_tables_made_by_todays_code():
    from lab import onnx_check
    from test_onnx_attention import CANNOT
    path = purpose_reference("attention")
    assert path, "no reference run of part IV: make reference-attention makes one"
    found = {r["framework"]: r for r in results.load_run(path)[1]}
    names = common.implemented_frameworks(model="attention")
    assert sorted(found) == sorted(names)
    for name, r in found.items():
        assert r["status"] == "ok" and r["profile"] == "quick", (name, r["error"])
        assert not digest.older_code(r), "{}: its module changed since: make reference-attention".format(name)
    measured = results.read_object(os.path.join(path, "onnx.json"))[0]
    assert measured and measured["code"] == onnx_check.code_digest(names), "export code changed: make reference-attention"
    for name in names:
        row = measured["table"][name]
        assert onnx_check.passes(row) != (name in CANNOT), (name, row.get("error") or row.get("export"))


def test_the_reference_has_part_twos_onnx_table_by_todays_exporters():
    """make test-onnx-rnn measures it (four minutes); the committed one must be today's."""
    from lab import onnx_check
    names = common.implemented_frameworks(model="rnn")
    measured = results.read_object(os.path.join(purpose_reference("rnn"), "onnx.json"))[0]
    assert measured and measured["code"] == onnx_check.code_digest(names), "export code changed: make reference-rnn"
    for name in names:
        row = measured["table"][name]
        assert onnx_check.passes(row) != (name in onnx_check.CANNOT), (name, row.get("error") or row.get("export"))


def test_the_reference_has_the_onnx_table_by_todays_exporters():
    from lab import onnx_check
    from pages.defaults import reference_tables
    measured = results.read_object(os.path.join(reference_tables(os.path.dirname(REFERENCE))[0], "onnx.json"))[0]
    assert measured and measured["code"] == onnx_check.code_digest(common.implemented_frameworks()), \
        "export code changed: make reference-tables"
    assert all(row.get("input") for row in measured["table"].values() if "logits" in row)  # what a server reads


def test_the_reference_has_every_frameworks_inference_measured_or_why_not():
    from lab import onnx_check
    path = purpose_reference("inference")
    assert path, "no inference reference: make reference-inference makes one"
    found = {r["framework"]: r for r in results.load_run(path)[1]}
    assert sorted(found) == sorted(common.implemented_frameworks())
    for name, r in found.items():
        assert r["status"] == "ok" or (name in onnx_check.CANNOT and r["error"]), (name, r["error"])
        assert not digest.older_code(r, "inference"), "{}: its module, onnx_check or onnx_graph changed since".format(name)
        for timing in [r["native"]] + ([r["onnx"]] if r.get("onnx") else []):
            low, high = timing["latency_range"]
            assert low <= timing["latency"] <= high and len(timing["throughput_range"]) == 2, (name, timing)
        assert bool(r.get("served")) == (common.tab(name) == "keras"), name  # Keras' predict_on_batch


def test_the_reference_has_an_ablation_of_every_tuned_row():
    """Each tuned row's newest committed ablation flips each of its changes, once."""
    from pages import fast as report_fast
    runs = [path for path, reference in report_fast.ablation_runs(os.path.dirname(REFERENCE)) if reference]
    assert runs, "no ablation reference: make reference-tuning makes one"
    for name in common.TUNED:
        path = next((p for p in runs if os.path.exists(os.path.join(p, name + ".json"))), None)
        assert path, "{}: no ablation reference has it".format(name)
        found = [r for r in results.load_run(path)[1] if r["framework"] == name]
        base = [r for r in found if not r.get("flipped")]
        assert len(base) == 1 and base[0]["status"] == "ok", name
        assert sorted(r["flipped"] for r in found if r.get("flipped")) == sorted(c["change"] for c in base[0]["tuning"])
        assert len([r for r in report_fast.ablation_rows(path) if r["framework"] == name]) == len(found) - 1


def test_the_reference_has_a_breakdown_of_a_step_of_each_row_by_todays_code():
    from lab import breakdown
    path = purpose_reference("breakdown")
    assert path, "no breakdown reference: make reference-breakdown makes one"
    meta, found, _ = results.load_run(path)
    assert meta["peak_flops"]["float32"]["flops"] > 0
    found = {r["framework"]: r for r in found}
    assert sorted(found) == sorted(breakdown.ROWS)
    for name, r in found.items():
        assert r["status"] == "ok", (name, r["error"])
        assert breakdown.within_bounds(name, r["breakdown"]), (name, r["breakdown"])  # the rest is never checked
        assert not digest.older_code(r), "{}: its module changed since: make reference-breakdown".format(name)


def test_the_reference_has_every_parallel_row_as_two_processes_equal_to_one():
    from lab import scale_out
    path = purpose_reference("scale-out")
    assert path, "no scale-out reference: make reference-scale-out makes one"
    found = {r["framework"]: r for r in results.load_run(path)[1]}
    assert sorted(found) == sorted(common.PARALLEL)
    for name, r in found.items():
        assert r["status"] == "ok" and r["world_size"] == 2 and r["devices"] == ["cpu", "cpu"], (name, r["error"])
        assert scale_out.passes(r["equivalence"]) and r["processes_1"]["epoch_seconds"], name
        assert not digest.older_code(r, "scale-out"), "{}: its modules, scale_out or launch changed since".format(name)


def key_of(check, table_of, frameworks, machine, monkeypatch):
    """The key today's code gives `check`'s table on `machine` (a run.json's) with every environment
    there: what runs.checked_table is handed, caught before anything is measured."""
    from lab import runs
    monkeypatch.setattr(results, "cpu_features", lambda: list(machine.get("features") or []))
    monkeypatch.setattr(digest, "gpu_name", lambda: machine.get("gpu"))
    monkeypatch.setattr(digest, "python_for", lambda f: ("python", ""))
    monkeypatch.setenv("GPU", "1" if machine.get("gpu") else "0")
    caught = {}
    monkeypatch.setattr(runs, "checked_table", lambda name, key, *a, **k: caught.setdefault(name, key))
    table_of(frameworks)
    return caught[check]


@pytest.mark.parametrize("model,check", [("cnn", "parity"), ("cnn", "onnx"), ("cnn", "scale-out"),
                                         ("rnn", "parity"), ("rnn", "onnx"), ("resnet", "features"),
                                         ("attention", "parity"), ("attention", "onnx"), ("attention", "defaults")])
def test_the_committed_check_tables_are_keyed_by_todays_code(model, check, monkeypatch):
    """A fresh clone on a machine of the reference's kind shows these instead of measuring them (the
    book's build spends its time on the benchmarks); a change to what they prove makes them stale:
    make reference-tables (part I) or make reference-rnn (part II) measures them again."""
    from lab import features, onnx_check, parity, scale_out
    from pages import attention, defaults as report_defaults
    path, meta = (report_defaults.reference_tables(os.path.dirname(REFERENCE)) if model == "cnn"
                  else (purpose_reference(model), None))
    meta = meta or results.read_object(os.path.join(path, "run.json"))[0]
    table_of, names = {"parity": (parity.table, common.implemented_frameworks(tuned=True, model=model)),
                       "onnx": (onnx_check.table, common.implemented_frameworks(model=model)),
                       "scale-out": (scale_out.table, list(common.PARALLEL)),
                       "features": (features.table, common.implemented_frameworks(model=model)),
                       "defaults": (attention.defaults_table, common.implemented_frameworks(model=model))}[check]
    committed = results.read_object(os.path.join(path, check + ".json"))[0]
    rows = sorted({common.tab(n) for n in names}) if check == "defaults" else sorted(names)  # one probe per tab
    assert committed and sorted(committed["table"]) == rows
    machine = committed.get("kind") or meta["machine"]  # a table added to a run of another machine says its own
    assert committed.get("key") == key_of(check, table_of, names, machine, monkeypatch), \
        "{}'s {} table was measured by older code: make {}".format(
            model, check, "reference-tables" if model == "cnn" else "reference-" + model)
