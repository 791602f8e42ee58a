"""The results chapter's pieces: what the book shows for odd, failed, missing and hostile results."""
import html
import json
import os
import re

from pages import base, results as results_page
from pages import weights as report_weights
from lab import digest, results

HOSTILE = '<script>alert("pwned")</script></script><img src=x onerror=alert(1)>'


def make_run(root, docs, name="20260101-000000-smoke", extra_files=()):
    path = os.path.join(root, "runs", name)
    os.makedirs(path)
    results.write_json(os.path.join(path, "run.json"), dict(
        run=name, profile="smoke", dataset="synthetic", device="Test CPU", started="2026-01-01T00:00:00",
        status="complete", frameworks=[d["framework"] for d in docs]))
    for doc in docs:
        results.write_json(os.path.join(path, doc["framework"] + ".json"), doc)
    for filename, text in extra_files:
        with open(os.path.join(path, filename), "w") as f:
            f.write(text)
    with open(os.path.join(root, "latest"), "w") as f:
        f.write("runs/" + name + "\n")
    return path


def ok(framework, seconds, accuracy):
    return results.new_result(framework, "smoke", "synthetic", status="ok", params=3441592,
                              epoch_seconds=[seconds * 0.6, seconds * 0.4], train_seconds=seconds,
                              accuracy=accuracy, framework_version="1.0", n_train=256)


def test_each_rows_share_of_the_peak_is_its_flops_over_the_peak_of_its_precision(tmp_path):
    import reference
    tuned = dict(ok("pytorch-tuned", 5.0, 0.3), tuning=[dict(change="bf16", on=True, why="")])
    make_run(str(tmp_path), [ok("pytorch", 5.0, 0.3), tuned])
    assert all(d["share_of_peak"] is None for d in base.rows(base.load_runs(str(tmp_path))[0], tuned=True))  # no peak
    (run,) = base.load_runs(str(tmp_path))
    run.meta["peak_flops"] = dict(float32=dict(flops=1e12), bfloat16=dict(flops=2e12))
    got = {d["framework"]: d for d in base.rows(run, tuned=True)}
    per_second = reference.flops(64)["train"] / 64 * 256 / 2.0  # 256 images in the steady epoch of 2 s
    assert got["pytorch"]["flops"] == per_second and got["pytorch"]["share_of_peak"] == per_second / 1e12
    assert got["pytorch-tuned"]["compute"] == "bfloat16" and got["pytorch-tuned"]["share_of_peak"] == per_second / 2e12
    assert "Share of the machine" in json.dumps(results_page.charts(run).to_dict())
    assert "<th>share of peak</th>" in results_page.table(run) and "{:.0%} (".format(per_second / 1e12) in results_page.table(run)


def test_the_breakdown_gives_each_part_of_a_step_its_share_and_its_flops_over_the_peak(tmp_path):
    assert "make bench-breakdown" in results_page.breakdown_html(str(tmp_path))  # none yet
    parts = {"convolutions, kernel gradients": 0.6, "convolutions, forward": 0.2, "the rest of the step": 0.2}
    doc = results.new_result("jax", "breakdown", "synthetic", status="ok", breakdown=dict(
        step=1.0, parts=parts, flops={"convolutions, kernel gradients": 3e9, "convolutions, forward": 8e9}, by="timed alone"))
    failed = results.new_result("pytorch", "breakdown", "synthetic", status="failed", error="no torch")
    path = make_run(str(tmp_path), [doc, failed], name="20260101-000000-breakdown")
    meta = results.read_object(os.path.join(path, "run.json"))[0]
    results.write_json(os.path.join(path, "run.json"), dict(meta, purpose="breakdown", peak_flops=dict(float32=dict(flops=1e11))))
    page = results_page.breakdown_html(str(tmp_path))
    assert "jax, convolutions, kernel gradients (60% of its 1.00 s step, at 5 GFLOP/s, 5% of the peak)" in page
    assert ">40<" in page and ">40%<" in page and "measured by: timed alone" in page  # the forward: 40 GFLOP/s
    assert "not measured" in page and "no torch" in page


def test_failed_and_skipped_frameworks_are_shown_not_dropped(tmp_path):
    make_run(str(tmp_path), [
        ok("pytorch", 6.0, 0.31),
        results.new_result("jax", "smoke", "synthetic", status="failed", error="RuntimeError: boom"),
        results.new_result("mxnet", "smoke", "synthetic", status="skipped", error="no environment for mxnet"),
    ])
    runs = base.load_runs(str(tmp_path))
    assert len(runs) == 1
    page = results_page.results_html(runs)
    for text in ("pytorch", "31.0%", "6.00", "failed", "RuntimeError: boom", "skipped", "no environment for mxnet"):
        assert text in page
    assert {r["framework"]: r["status"] for r in base.rows(runs[0])} == {
        "pytorch": "ok", "jax": "failed", "mxnet": "skipped"}
    spec = json.dumps(results_page.charts(runs[0]).to_dict())
    assert all(name in spec for name in ("pytorch", "jax", "mxnet"))
    assert "synthetic dataset, smoke profile, Test CPU, 2026-01-01" in runs[0].caption
    assert "<span>why not ok: RuntimeError: boom</span>" in page  # a sentence in a line of its own, under its row


def test_the_results_charts_leave_the_tuned_rows_to_make_it_fast(tmp_path):
    docs = [ok("pytorch", 5.0, 0.2), ok("pytorch-tuned", 3.0, 0.2)]
    for doc in docs:
        doc["phase_seconds"] = {"import": 1.0, "train": 3.0}
    make_run(str(tmp_path), docs)
    (run,) = base.load_runs(str(tmp_path))
    spec = json.dumps(results_page.charts(run).to_dict())
    assert '"pytorch"' in spec and "pytorch-tuned" not in spec


def test_a_single_framework_run(tmp_path):
    make_run(str(tmp_path), [ok("pytorch", 5.0, 0.2)])
    page = results_page.results_html(base.load_runs(str(tmp_path)))
    assert page.count('<td data-label="framework">') == 1 and "vegaEmbed" in page


def test_empty_results_folder_gives_a_message(tmp_path):
    page = results_page.results_html(base.load_runs(str(tmp_path)))
    assert "No benchmark results yet" in page and "make bench" in page


def test_invalid_files_are_reported_and_skipped(tmp_path):
    make_run(str(tmp_path), [ok("pytorch", 5.0, 0.2)], extra_files=[
        ("jax.json", "{not json"), ("tensorflow.json", json.dumps({"framework": "tensorflow"}))])
    run = base.load_runs(str(tmp_path))[0]
    assert [r["framework"] for r in run.results] == ["pytorch"]
    assert len(run.skipped) == 2 and "not valid JSON" in run.skipped[0] and "not a result" in run.skipped[1]
    page = results_page.results_html([run])
    assert "Skipped, not a result file" in page and "jax.json" in page


def test_error_text_with_html_reaches_the_page_only_as_text(tmp_path):
    bad = results.new_result("jax", "smoke", "synthetic", status="failed", error=HOSTILE)
    bad["framework_version"] = HOSTILE
    make_run(str(tmp_path), [ok("pytorch", 5.0, 0.2), bad])
    page = results_page.results_html(base.load_runs(str(tmp_path)))
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in page
    # Inside the chart's <script>, the spec carries the text with < and > escaped for JavaScript.
    script = page.split('<script type="text/javascript">', 1)[1].split("</script>", 1)[0]
    assert "</" not in script and "\\u003cscript\\u003e" in script


def test_reference_runs_are_shown_beside_the_local_run_and_labelled(tmp_path):
    make_run(str(tmp_path), [ok("pytorch", 5.0, 0.2)])
    ref = tmp_path / "reference" / "20261201-120000-full"
    ref.mkdir(parents=True)
    results.write_json(str(ref / "run.json"), dict(run=ref.name, profile="full", dataset="fashion-mnist",
                                                   device="NVIDIA H100 80GB HBM3", label="GPU reference",
                                                   started="2026-12-01T12:00:00", status="complete"))
    gpu = ok("jax", 6.5, 0.9)
    gpu.update(profile="full", dataset="fashion-mnist", gpu="NVIDIA H100 80GB HBM3", device="gpu")
    results.write_json(str(ref / "jax.json"), gpu)
    runs = base.load_runs(str(tmp_path))
    assert [r.label for r in runs] == ["this build", "reference (GPU reference)"]
    assert "fashion-mnist dataset, full profile, NVIDIA H100 80GB HBM3, 2026-12-01" in runs[1].caption
    page = results_page.results_html(runs)
    assert page.count("<h3>") == 2 and "reference (GPU reference)" in page
    sources = {r["source"] for r in results_page.comparison_rows(runs, base.load_seed())}
    assert "reference (GPU reference) (NVIDIA H100 80GB HBM3)" in sources


def test_a_run_says_how_long_its_rows_took_counting_only_the_rows_that_ran(tmp_path):
    docs = [ok("pytorch", 5.0, 0.2), ok("pytorch-tuned", 3.0, 0.2), ok("jax", 4.0, 0.2),
            results.new_result("mxnet", "smoke", "synthetic", status="skipped", error="no environment")]
    for doc, (start, end) in zip(docs, [("10:00:00", "10:01:30"), ("10:01:31", "10:02:31"),
                                        ("10:02:32", None), ("10:02:33", "10:02:33")]):
        doc.update(started="2026-01-01T{}+00:00".format(start), finished=end and "2026-01-01T{}+00:00".format(end))
    make_run(str(tmp_path), docs)
    (run,) = base.load_runs(str(tmp_path))
    assert base.wall_time(run) == (2, 1, 150.0)  # jax never finished; mxnet never ran
    assert ("The 2 rows that ran (1 of them tuned, drawn in Make it fast) took 2.5 min, one after another"
            in results_page.results_html([run]))


def test_a_run_is_drawn_apart_by_profile_and_device(tmp_path):
    from pages import base, results as results_page
    from lab import results
    run_path = str(tmp_path / "run")
    docs = [results.new_result("pytorch", "full", "synthetic", status="ok", device="gpu", gpu="H100"),
            results.new_result("jax", "full", "synthetic", status="ok", device="gpu", gpu="H100"),
            results.new_result("mxnet", "quick", "synthetic", status="ok", device="cpu"),
            results.new_result("caffe2", "full", "synthetic", status="skipped", error="no environment")]
    for doc in docs:
        results.write_json(os.path.join(run_path, doc["framework"] + ".json"), doc)
    results.write_json(os.path.join(run_path, "run.json"), dict(profile="full", dataset="synthetic", device="H100"))
    parts = base.split(base.Run(run_path, "this build"))
    assert [sorted(r["framework"] for r in p.results) for p in parts] == [["caffe2", "jax", "pytorch"], ["mxnet"]]
    assert "full profile, H100" in parts[0].caption and "quick profile, " + results.cpu_name() in parts[1].caption


def test_a_run_that_asked_for_full_on_a_gpu_but_ran_quick_on_the_cpu_says_so(tmp_path):
    from pages import base, results as results_page
    from lab import results
    run_path = str(tmp_path / "run")
    doc = results.new_result("pytorch", "quick", "synthetic", status="ok", device="cpu")
    results.write_json(os.path.join(run_path, "pytorch.json"), doc)
    results.write_json(os.path.join(run_path, "run.json"), dict(profile="full", dataset="synthetic", device="H100"))
    (part,) = base.split(base.Run(run_path, "this build"))
    assert "quick profile, " + results.cpu_name() in part.caption and "H100" not in part.caption


def test_parity_table_names_its_data_and_machine():
    from pages import base, results as results_page
    from lab import results
    page = report_weights.parity_table({"mxnet": {"error": "no environment for mxnet"}})
    assert "synthetic dataset" in page and results.cpu_name() in page and "no environment for mxnet" in page


def test_parity_table_lists_the_rows_in_the_books_order_each_tuned_row_after_its_twin():
    failed = {"error": "no environment"}
    page = report_weights.parity_table({name: failed for name in ("caffe2", "jax-tuned", "pytorch-tuned", "jax", "pytorch")})
    order = re.findall(r'<td data-label="row">([^<]+)</td>', page.split("<tbody>")[1])
    assert order == ["pytorch", "pytorch-tuned", "jax", "jax-tuned", "caffe2"]


def test_a_busy_machine_cannot_make_a_row_faster_and_is_flagged(tmp_path):
    quiet = ok("pytorch", 90.0, 0.3)
    quiet["epoch_seconds"] = [40.0, 37.0, 56.6]  # one steady epoch slowed by other work
    calm = ok("jax", 30.0, 0.3)
    calm.update(epoch_seconds=[12.0, 9.0, 9.1], others_busy=0.9)  # epochs agree, but the machine was busy
    make_run(str(tmp_path), [quiet, calm])
    (run,) = base.load_runs(str(tmp_path))
    got = {d["framework"]: d for d in base.rows(run)}
    assert got["pytorch"]["steady_epoch"] == 37.0  # the fastest, not the mean of the two
    assert "steady epochs differ by 53%" in got["pytorch"]["flag"]
    assert "other processes kept 0.9 cores busy" in got["jax"]["flag"]
    page = results_page.results_html([run])
    assert "Timing flagged: pytorch (its steady epochs differ by 53%)" in page and "37.00 (+53%)" in page


def reference_run(root, docs, name="20261130-000000-quick", **meta):
    path = os.path.join(root, "reference", name)
    os.makedirs(path)
    results.write_json(os.path.join(path, "run.json"), dict(dict(
        run=name, profile="quick", dataset="fashion-mnist", device="AMD EPYC", started="2026-11-30T00:00:00",
        status="complete", commit="8d2a3d9" + "0" * 33, machine=dict(cpu="AMD EPYC", cores=2, features=["avx2"], gpu=None),
        calibration_seconds=0.2), **meta))
    for doc in docs:
        results.write_json(os.path.join(path, doc["framework"] + ".json"), doc)
    results.write_manifest(path)
    return path


def test_a_reference_run_says_where_and_when_it_was_measured_and_which_rows_older_code_measured(tmp_path):
    from lab import digest
    current, older = ok("pytorch", 5.0, 0.2), ok("jax", 4.0, 0.2)
    current["code"], older["code"] = digest.row_code("pytorch"), "an older digest"
    reference_run(str(tmp_path), [current, older])
    (run,) = base.load_runs(str(tmp_path))
    assert run.reference and run.stale() == {"jax": "its module changed since"}
    assert run.caption.endswith("2026-11-30, commit 8d2a3d9")
    page = results_page.results_html([run])
    assert "measured on AMD EPYC, 2 cores (avx2) at commit 8d2a3d9." in page
    assert "Measured by an older commit: the code of jax has changed since" in page
    assert "measured by an older commit: its module changed since" in page  # under the jax row


def test_a_scale_out_result_is_stale_when_its_parallel_module_changed_though_its_row_did_not(tmp_path, monkeypatch):
    from lab import digest
    result = dict(ok("pytorch", 5.0, 0.2), code=digest.scale_out_code("pytorch"))
    assert not digest.older_code(result, "scale-out") and digest.older_code(result)  # not the row's digest
    real = digest.source_path
    monkeypatch.setattr(digest, "source_path", lambda name, model=None: str(tmp_path / "changed.py")
                        if name == "cnn_pytorch_parallel" else real(name, model))
    (tmp_path / "changed.py").write_text("# another module\n")
    assert digest.older_code(result, "scale-out") and digest.row_code("pytorch") == digest.row_code("pytorch")


def test_a_digest_reads_what_a_module_does_not_how_it_is_written(tmp_path, monkeypatch):
    from lab import digest
    real = digest.source_path
    with open(real("cnn_pytorch", "cnn")) as f:
        source = f.read()
    monkeypatch.setattr(digest, "source_path", lambda name, model=None: str(tmp_path / "cnn_pytorch.py")
                        if name == "cnn_pytorch" else real(name, model))

    def row_code_of(text):
        (tmp_path / "cnn_pytorch.py").write_text(text)
        return digest.row_code("pytorch"), digest.inference_code("pytorch"), digest.scale_out_code("pytorch")

    today = row_code_of(source)
    tidied = (source.replace("    torch.manual_seed(SEED)\n", "    # one seed for every row\n\n    torch.manual_seed( SEED )\n")
              .replace("import torch\nimport torch.nn as nn\n", "import torch.nn as nn\nimport torch\n")
              .replace('"""PyTorch 2: the model', '"""PyTorch 2, reworded: the model'))
    assert tidied != source and row_code_of(tidied) == today  # a comment, blank lines, spaces, imports, docstring
    for changed in (source.replace("nn.Dropout(0.25)", "nn.Dropout(0.3)", 1),  # an operation's argument
                    source.replace("nn.ReLU(),\n        nn.Conv2d(50, 50", "nn.GELU(),\n        nn.Conv2d(50, 50", 1),
                    source.replace("import numpy as np\nimport torch\n", "import torch\nimport numpy as np\n"
                                   "torch.set_num_threads(1)\n")):  # a statement between imports
        assert changed != source and all(a != b for a, b in zip(row_code_of(changed), today))


def test_a_check_key_reads_only_its_own_models_entries_of_the_registry(tmp_path, monkeypatch):
    """A fourth part registered in common.py leaves the other parts' committed check tables current; a
    change to a model's own entry, or to a function of common.py, makes its tables stale."""
    from collections import OrderedDict
    import common
    from lab import digest
    real, path = digest.source_path, tmp_path / "common.py"
    with open(real("common")) as f:
        source = f.read()
    monkeypatch.setattr(digest, "source_path", lambda name, model=None: str(path) if name == "common" else real(name, model))
    monkeypatch.setattr(digest, "python_for", lambda f: ("python", ""))

    def keys(text, **registry):
        path.write_text(text)
        for name, value in registry.items():
            monkeypatch.setattr(common, name, value, raising=False)
        return [digest.check_key(common.implemented_frameworks(model=m), "parity") for m in ("cnn", "rnn")]

    today = keys(source)
    attention = OrderedDict(("attention-" + n, dict(s, model="attention")) for n, s in common.FRAMEWORKS.items())
    added = source.replace("\n])\n\n# name -> model", "\n    (\"attention\", dict(folder=\"attention\")),\n])\n\n# name -> model", 1)
    added = added.replace("ROWS = OrderedDict(", "ATTENTION = OrderedDict((\"attention-\" + n, dict(s, model=\"attention\")) "
                          "for n, s in FRAMEWORKS.items())\nROWS = OrderedDict(list(ATTENTION.items()) + ", 1)
    assert added.count("attention") > 3
    assert keys(added, MODELS=OrderedDict(common.MODELS, attention=dict(folder="attention")), ATTENTION=attention,
                ROWS=OrderedDict(list(common.ROWS.items()) + list(attention.items()))) == today
    rnn = OrderedDict(common.MODELS, rnn=dict(common.MODELS["rnn"], other_form="A"))
    assert keys(source.replace('other_form="B"', 'other_form="A"'), MODELS=rnn)[0] == today[0]
    assert keys(source.replace('other_form="B"', 'other_form="A"'), MODELS=rnn)[1] != today[1]
    monkeypatch.setattr(common, "MODELS", OrderedDict(common.MODELS, rnn=dict(common.MODELS["rnn"], other_form="B")))
    changed = source.replace("def tab(framework):\n", "def tab(framework):\n    framework = framework.strip()\n", 1)
    assert changed != source and all(a != b for a, b in zip(keys(changed), today))


def test_a_manifest_catches_a_hand_edit_a_missing_file_and_an_added_one(tmp_path):
    path = reference_run(str(tmp_path), [ok("pytorch", 5.0, 0.2)])
    assert results.manifest_problems(path) == []
    with open(os.path.join(path, "pytorch.json")) as f:
        doc = json.load(f)
    doc["accuracy"] = 0.99
    results.write_json(os.path.join(path, "pytorch.json"), doc)
    with open(os.path.join(path, "extra.json"), "w") as f:
        f.write("{}")
    os.remove(os.path.join(path, "run.json"))
    assert sorted(results.manifest_problems(path)) == [
        "extra.json: not in the manifest", "pytorch.json: changed since the run wrote it",
        "run.json: in the manifest, missing"]


def test_tables_put_sentences_under_their_row_and_label_every_cell_for_a_narrow_screen():
    page = base.html_table(["a", "b"], [(["1", "<2>"], [("why", "because <x>"), ("empty", "")], [("k", "v")])])
    assert '<td data-label="a">1</td><td data-label="b">&lt;2&gt;</td>' in page
    assert '<tr class="rosetta-note"><td colspan="2"><span>why: because &lt;x&gt;</span> <details>' in page
    assert "empty" not in page and "<summary>details</summary>k: v</details>" in page


def test_chapter_9_reads_the_machine_and_the_devices_of_its_runs(monkeypatch, results_dir):
    from lab import envs
    from pages import scale
    monkeypatch.setattr(envs, "gpu_name", lambda: "NVIDIA H200 (compute capability 9.0)")
    monkeypatch.setattr(scale, "measured_equivalence", lambda results_dir=None: (
        {"table": {"pytorch": {"devices": ["cuda:0", "cuda:1"]}}}, ""))
    page = scale.machine_html(results_dir)
    assert "has a GPU, the NVIDIA H200" in page and "used cuda:0, cuda:1; none had a second machine" in page
    monkeypatch.setattr(envs, "gpu_name", lambda: None)
    monkeypatch.setattr(scale, "measured_equivalence", lambda results_dir=None: ({"table": {"pytorch": {"devices": ["cpu", "cpu"]}}}, ""))
    page = scale.machine_html(results_dir)
    assert "has no GPU and {} cores".format(os.cpu_count()) in page and "None of the runs this chapter shows had a GPU" in page


def test_chapter_9_says_how_far_one_process_accuracy_is_from_twos(tmp_path):
    from pages import scale
    docs = [dict(ok(name, 5.0, 0.5), processes_1=dict(accuracy=one), processes_2=dict(accuracy=two))
            for name, one, two in (("pytorch", 0.70, 0.72), ("jax", 0.70, 0.65), ("mxnet", 0.70, None))]
    make_run(str(tmp_path), docs)
    page = scale.accuracy_html(base.load_runs(str(tmp_path))[0])
    assert "differ by 3.5 points on average, and by 5.0 at most (jax)" in page  # mxnet's second is missing
    assert "one of the 128 test images is 0.78 points" in page


def test_chapter_8_names_what_a_server_reads_off_each_file():
    from lab import onnx_check
    from pages import export
    table = dict(pytorch=dict(input="x", output="logits", opset=20), cntk=dict(input="Input759", opset=9),
                 jax=dict(error="no file"))
    page = export.names_html(dict(table=table, onnxruntime="1.32.0"))
    assert "named <code>Input759</code>, <code>x</code> by their exporters" in page
    assert "ONNX Runtime 1.32.0 runs opsets up to {}".format(onnx_check.runtime_opset()) in page
    assert "the files here say 9 to 20" in page and onnx_check.runtime_opset() >= 20


def test_a_committed_onnx_table_by_other_export_code_says_so():
    import common
    from lab import onnx_check
    from pages import export
    names = common.implemented_frameworks()
    assert export.older(dict(code=onnx_check.code_digest(names)), names, "make reference-tables") == ""
    assert export.older(dict(code="older"), names, "make reference-tables") == (
        "; other export code than today's measured it (make reference-tables measures it again)")


def test_an_onnx_file_without_a_producer_or_with_a_placeholder_version_is_said_as_such():
    from pages import export
    assert export.producer(dict(producer="")) == ("not named", "an empty producer_name and producer_version (the exporter sets neither)")
    name, said = export.producer(dict(producer="CNTK CNTK_VERSION"))
    assert name == "CNTK" and "the literal text CNTK_VERSION: a placeholder" in said
    assert export.producer(dict(producer="pytorch 2.13.0")) == ("pytorch", "pytorch 2.13.0")



def test_an_inference_timing_whose_rounds_disagree_is_flagged_and_keras_shows_its_server_route(tmp_path):
    from pages import base
    from pages import export
    path = str(tmp_path / "r")
    os.makedirs(path)
    timing = dict(latency=0.01, latency_range=[0.009, 0.02], throughput=100.0, throughput_range=[95.0, 105.0])
    results.write_json(os.path.join(path, "run.json"), dict(run="r", purpose="inference", status="complete"))
    results.write_json(os.path.join(path, "keras-jax.json"), results.new_result(
        "keras-jax", "inference", "synthetic", run="r", status="ok", native=timing, served=dict(timing, latency=0.002)))
    run = base.Run(path, "this machine")
    page = export.inference_table(run)
    assert "its own predict one image: its rounds differ by 122%" in page and "2.00 ms for one image" in page
    assert {d["engine"] for d in export.inference_rows(run)} == {"its own predict", "Keras' predict_on_batch"}


def test_a_check_table_shown_from_a_reference_says_which_and_one_measured_here_says_nothing_more(monkeypatch):
    from lab import parity
    from pages import weights
    monkeypatch.setattr(weights.envs, "python_for", lambda f: ("python", ""))
    table = dict(measured="2026-12-07T00:00:00", machine="a CPU", table={})
    for found, said in ((dict(table, reference=dict(run="20261207-045727-parity-book-tables", commit="4491cd8" + "0" * 33)),
                         ", shown from the committed reference run 20261207-045727-parity-book-tables (commit 4491cd8; "),
                        (table, "")):
        monkeypatch.setattr(parity, "table", lambda names, found=found: found)
        measured, source = weights.measured_table()
        assert source.startswith(said) and (said or source == "")
        assert ("Measured 2026-12-07 on a CPU" + said) in html.unescape(weights.parity_table(
            measured["table"], measured["measured"], measured["machine"], source))


def test_a_scale_out_digest_reads_the_other_rows_parallel_module_it_imports(monkeypatch):
    """Keras 2's data-parallel module takes the CNTK row's per-process dropout seeds: a change to that
    function must mark Keras 2's scale-out results stale too."""
    seen = {}
    monkeypatch.setattr(digest, "beside_row", lambda framework, names: seen.setdefault(framework, names))
    digest.scale_out_code("keras-cntk")
    digest.scale_out_code("cntk")
    assert seen["keras-cntk"] == ("cnn_keras2_parallel", "cnn_cntk_parallel", "scale_out", "launch")
    assert seen["cntk"] == ("cnn_cntk_parallel", "scale_out", "launch")
