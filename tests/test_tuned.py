"""The tuned rows ("Make it fast"): each reads as a small set of changes to its faithful twin, its
switches say why they are on or off, and the chapter shows each pair from the same run."""
import ast
import json
import os
import sys

import pytest

from conftest import ROOT, env_python, run
import common
from pages import base, results as results_page
from pages import fast as report_fast
from lab import digest, envs, results, runs
import tuning
from test_report import make_run, ok

sys.path.insert(0, os.path.join(ROOT, "book", "_ext"))
import tuned as tuned_ext  # noqa: E402

CONTRACT = ["load_data", "create_model", "init_model", "train_epoch", "predict", "count_params",
            "get_weights", "set_weights", "runtime_info"]


def module_ast(module):
    with open(os.path.join(ROOT, "code", "cnn", module + ".py")) as f:
        return ast.parse(f.read())


@pytest.mark.parametrize("name", list(common.TUNED))
def test_a_tuned_module_has_the_contract_and_changes_it_in_its_twins_order(name):
    spec = common.TUNED[name]
    twin = common.ROWS[spec["twin"]]["module"]
    tree = module_ast(spec["module"])
    defined = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    imported = {a.name for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == twin for a in n.names}
    assert set(CONTRACT) <= set(defined) | imported, set(CONTRACT) - set(defined) - imported
    assert not set(defined) & imported, "defined and imported both"
    twin_order = [n.name for n in module_ast(twin).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    shared = [n for n in defined if n in twin_order]
    assert shared == sorted(shared, key=twin_order.index), "not in {}'s order".format(twin)
    assert len(shared) < len(twin_order), "it redefines everything: import what does not change"


@pytest.mark.parametrize("name", list(common.TUNED))
def test_the_chapter_shows_every_redefinition_as_a_diff_or_whole(name):
    spec = common.TUNED[name]
    twin = common.ROWS[spec["twin"]]["module"]
    found = tuned_ext.changes(twin, spec["module"])
    assert found
    for what, kind, text in found:
        if kind == "diff":
            lines = text.splitlines()
            assert lines[0].startswith("@@") and any(l.startswith("+") for l in lines), (what, text)
        else:
            assert text.lstrip().startswith(("def ", "class ", "@")), (what, kind)
    header = tuned_ext.header(os.path.join(ROOT, "code", "cnn", spec["module"] + ".py"))
    assert "tuning.change(" in header and '"""' not in header.split("\n")[0]


def test_changes_switch_on_and_off_with_a_reason_and_rosetta_tuning_overrides_them(monkeypatch):
    monkeypatch.setattr(tuning, "_changes", [])
    monkeypatch.setenv("ROSETTA_TUNING", "bf16=1,scan=0")
    assert tuning.change("bf16", False, "no bf16 units") is True
    assert tuning.change("scan", True, "one dispatch") is False
    assert tuning.change("donate", True, "reuse") is True
    got = {c["change"]: c for c in tuning.report()}
    assert got["bf16"]["why"] == "ROSETTA_TUNING switched it on (by default: no bf16 units)"
    assert got["donate"] == dict(change="donate", on=True, why="reuse")
    monkeypatch.setenv("ROSETTA_TUNING", "bf16=1,nonesuch=0")
    with pytest.raises(common.UsageError, match="nonesuch, which this module does not have"):
        tuning.report()
    monkeypatch.setenv("ROSETTA_TUNING", "bf16=yes")
    with pytest.raises(common.UsageError, match="name=0 or name=1"):
        tuning.forced()


def test_bf16_follows_the_hardware():
    assert tuning.gpu_bf16((9, 0))[0] and not tuning.gpu_bf16((7, 5))[0]
    on, why = tuning.cpu_bf16()
    assert on == bool({"amx_bf16", "avx512_bf16"} & set(results.cpu_features())), why


def test_bf16_is_said_plainly():
    on, why = tuning.cpu_bf16()
    assert "matrix units" not in why  # AVX512-BF16 is a set of dot-product instructions, AMX the matrix unit
    assert ("in hardware" in why) if on else ("emulated" in why and "AMX" in why)


@pytest.mark.parametrize("bf16", ["0", "1"])
def test_the_tuned_jax_row_predicts_in_the_precision_it_trains_in(bf16):
    """Like the tuned PyTorch, TensorFlow and Keras rows: the forward pass of predict in bf16 where bf16 is on."""
    script = """if True:
        import sys; sys.path[:0] = ["code", "code/cnn"]
        import jax, numpy as np
        from flax import nnx
        import cnn_jax_tuned as m
        seen, make_copy = [], m.in_compute
        def spy(model):
            half = make_copy(model)
            seen.extend(sorted({str(p.dtype) for p in jax.tree.leaves(nnx.state(half, nnx.Param))}))
            return half
        m.in_compute = spy
        m.predict(m.init_model(m.create_model()), [np.zeros((2, 32, 32, 3), np.float32)])
        print(seen)"""
    out = run([env_python("jax-tuned"), "-c", script], env=dict(os.environ, ROSETTA_TUNING="bf16=" + bf16))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[-2] == str(["bfloat16" if bf16 == "1" else "float32"])


def tuned_doc(name, seconds, accuracy, changes):
    doc = ok(name, seconds, accuracy)
    doc.update(tuning=changes, twin=common.TUNED[name]["twin"], compile_seconds=1.5, precision="float32",
               epoch_seconds=[seconds * 0.7, seconds * 0.3 / 2, seconds * 0.3 / 2])
    return doc


def test_the_chapter_pairs_each_tuned_row_with_its_twin_from_the_same_run(tmp_path):
    faithful = ok("pytorch", 6.0, 0.31)
    faithful["epoch_seconds"] = [3.0, 1.5, 1.5]
    on_off = [dict(change="channels_last", on=True, why="NHWC"), dict(change="bf16", on=False, why="no <units>")]
    make_run(str(tmp_path), [faithful, tuned_doc("pytorch-tuned", 3.0, 0.30, on_off),
                             tuned_doc("jax-tuned", 2.0, 0.3, on_off)])  # no jax twin in this run: not paired
    run_ = base.load_runs(str(tmp_path))[0]
    assert [d["framework"] for d in base.rows(run_)] == ["pytorch"]  # the results chapter: faithful only
    pairs = report_fast.tuned_pairs(run_)
    assert [(f["framework"], t["framework"]) for f, t in pairs] == [("pytorch", "pytorch-tuned")]
    assert report_fast.speedup(*pairs[0]) == pytest.approx(1.5 / 0.45)
    table = report_fast.tuned_table(run_)
    assert "3.33x" in table and "-1.0 points" in table and "channels_last (NHWC)" in table
    assert "no &lt;units&gt;" in table and "<units>" not in table
    chart = report_fast.tuned_chart(run_).to_dict()
    assert "pytorch: 3.33x" in " ".join(chart["title"]["subtitle"])
    assert "share of peak" not in table  # a run without the machine's peak
    run_.meta["peak_flops"] = dict(float32=dict(flops=1e12))
    assert "share of peak, faithful → tuned" in report_fast.tuned_table(run_)  # bf16 off: both over float32's


@pytest.mark.parametrize("on, said", [(True, "0.67x: no faster here"),
                                      (False, "0.67x: no change is on here, so both ran the same code")])
def test_a_tuned_row_that_is_slower_says_why(tmp_path, on, said):
    faithful = ok("tensorflow", 4.0, 0.3)
    faithful["epoch_seconds"] = [2.0, 1.0, 1.0]
    make_run(str(tmp_path), [faithful, tuned_doc("tensorflow-tuned", 10.0, 0.3, [dict(change="xla", on=on, why="x")])])
    table = report_fast.tuned_table(base.load_runs(str(tmp_path))[0])
    assert said in table and "changes on here: {}".format("xla (x)" if on else "none") in table


def write_ablation(tmp_path):
    """A run of make bench-tuning: pytorch-tuned, channels_last on (it saves), bf16 off (it would cost)."""
    on_off = [dict(change="channels_last", on=True, why="NHWC"), dict(change="bf16", on=False, why="no units")]
    base = tuned_doc("pytorch-tuned", 3.0, 0.3, on_off)  # steady 0.45
    no_cl = tuned_doc("pytorch-tuned", 4.0, 0.3, on_off)  # steady 0.6
    no_cl["flipped"] = "channels_last"
    with_bf16 = tuned_doc("pytorch-tuned", 30.0, 0.3, on_off)  # steady 4.5
    with_bf16["flipped"] = "bf16"
    path = os.path.join(str(tmp_path), "runs", "20260101-000000-quick-tuning")
    os.makedirs(path)
    results.write_json(os.path.join(path, "run.json"), dict(
        run="20260101-000000-quick-tuning", purpose="tuning", status="complete", profile="quick",
        dataset="synthetic", machine=dict(results.machine(), gpu=envs.gpu_name())))
    for name, doc in [("pytorch-tuned", base), ("pytorch-tuned@channels_last", no_cl), ("pytorch-tuned@bf16", with_bf16)]:
        results.write_json(os.path.join(path, name + ".json"), dict(doc, code=digest.row_code("pytorch-tuned")))
    return path


def test_the_ablation_table_reads_each_change_with_and_without(tmp_path):
    path = write_ablation(tmp_path)
    assert report_fast.ablation_runs(str(tmp_path)) == [(path, False)]
    got = {r["change"]: r for r in report_fast.ablation_rows(path)}
    assert got["channels_last"]["speedup"] == pytest.approx(0.6 / 0.45)  # on here: it saves
    assert got["bf16"]["speedup"] == pytest.approx(0.45 / 4.5)  # off here: it would cost
    html_ = report_fast.ablation_html(str(tmp_path))
    assert "1.33x" in html_ and "0.10x" in html_ and "off in this run: no units" in html_


def test_a_change_measured_a_loss_on_a_machine_of_this_kind_stays_off(tmp_path, monkeypatch):
    path = write_ablation(tmp_path)
    found = runs.ablation("pytorch-tuned", str(tmp_path))
    assert found == dict(channels_last=(pytest.approx(0.6 / 0.45), os.path.basename(path)),
                         bf16=(pytest.approx(0.1), os.path.basename(path)))
    assert runs.ablation("pytorch-tuned", str(tmp_path), dict(features=["a CPU unlike this one"], gpu=None)) == {}
    monkeypatch.setattr(tuning, "_changes", [])
    monkeypatch.setenv("ROSETTA_MEASURED", json.dumps(found))  # as the harness sets it
    monkeypatch.delenv("ROSETTA_TUNING", raising=False)
    assert tuning.change("channels_last", True, "NHWC") is True  # it measured 1.33x
    assert tuning.change("bf16", True, "bf16 units") is False
    assert tuning.report()[1]["why"] == ("bf16 units, but on a machine of this kind it measured 0.10x "
                                         "(ablation 20260101-000000-quick-tuning): off")
    monkeypatch.setenv("ROSETTA_TUNING", "bf16=1")  # as make bench-tuning measures it again
    assert tuning.change("bf16", True, "bf16 units") is True


def test_a_tuned_rows_probe_switches_off_what_its_ablation_here_measured_a_loss(tmp_path, results_dir):
    from lab import plan
    path = os.path.join(results_dir, "runs", "20260101-000000-quick-tuning")
    os.makedirs(path)
    results.write_json(os.path.join(path, "run.json"), dict(
        run=os.path.basename(path), purpose="tuning", status="complete", profile="quick", dataset="synthetic",
        machine=dict(results.machine(), gpu=envs.gpu_name())))
    grad = [dict(change="weight_grad", on=True, why="products")]
    slow = tuned_doc("jax-tuned", 10.0, 0.3, grad)
    slow["flipped"] = "weight_grad"
    for name, doc in [("jax-tuned", tuned_doc("jax-tuned", 20.0, 0.3, grad)), ("jax-tuned@weight_grad", slow)]:
        results.write_json(os.path.join(path, name + ".json"), dict(doc, code=digest.row_code("jax-tuned")))
    why = {c["change"]: c for c in plan.probe("jax-tuned")}["weight_grad"]  # measured 0.50x: off
    assert not why["on"] and why["why"].endswith("it measured 0.50x (ablation 20260101-000000-quick-tuning): off")


def test_a_tuned_row_slower_than_its_twin_says_what_each_of_its_changes_measured_alone(tmp_path):
    write_ablation(tmp_path)
    faithful = ok("pytorch", 2.0, 0.3)
    slower = tuned_doc("pytorch-tuned", 10.0, 0.3, [dict(change="channels_last", on=True, why="NHWC")])
    path = make_run(str(tmp_path), [faithful, slower])
    meta = results.read_object(os.path.join(path, "run.json"))[0]
    results.write_json(os.path.join(path, "run.json"), dict(meta, machine=dict(results.machine(), gpu=envs.gpu_name())))
    table = report_fast.tuned_table(base.load_runs(str(tmp_path))[0])
    assert "no faster here" in table and "channels_last 1.33x (20260101-000000-quick-tuning)" in table


def test_bench_tuning_needs_tuned_rows():
    out = run([sys.executable, os.path.join(ROOT, "code", "bench.py"), "--tuning", "--frameworks", "pytorch"])
    assert out.returncode == 2 and "measures the tuned rows" in out.stderr


def test_the_tuned_tensorflow_row_says_whether_onednn_or_eigen_runs_its_cpu_convolutions():
    script = """if True:
        import sys; sys.path[:0] = ["code", "code/cnn"]
        import tuning, cnn_tensorflow_tuned as m
        from tensorflow.python.util import _pywrap_util_port
        why = {c["change"]: c["why"] for c in tuning.report()}["jit_compile"]
        print(_pywrap_util_port.IsMklEnabled(), "with oneDNN" in why, "with Eigen" in why)"""
    out = run([env_python("tensorflow-tuned"), "-c", script], env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    assert out.returncode == 0, out.stderr[-2000:]
    mkl, onednn, eigen = out.stdout.split()[-3:]
    assert (onednn, eigen) == (("True", "False") if mkl == "True" else ("False", "True"))
