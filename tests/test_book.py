"""End to end: `make html` runs the benchmark and builds the book from what it measured."""
import glob
import json
import os
import re

import pytest

from conftest import ROOT, run
import common

pytestmark = pytest.mark.slow
HTML = os.path.join(ROOT, "_build", "html", "book")
STEPS = ["01-load-data", "02-model", "03-loss-optimizer", "04-train", "05-predict", "06-evaluate", "07-weights", "08-export"]


@pytest.fixture(scope="module")
def built(built_book):
    return built_book


def page(name):
    with open(os.path.join(HTML, name + ".html")) as f:
        return f.read()


def text(name):
    """A page's text, as a reader sees it: highlighting splits code into many spans."""
    return re.sub(r"<[^>]+>", "", page(name)).replace("&quot;", '"')


def test_every_framework_has_a_result(built):
    for name in common.implemented_frameworks(tuned=True):
        with open(os.path.join(built, name + ".json")) as f:
            doc = json.load(f)
        if doc["status"] == "skipped" and name in common.TUNED:  # a CPU without bf16 turns off all of some rows' changes
            assert "none of its changes is on for this device" in doc["error"], (name, doc["error"])
            continue
        assert doc["status"] == "ok", (name, doc["error"])
        assert doc["params"] == 3441592 and doc["profile"] == "smoke" and doc["dataset"] == "synthetic"


def test_part_two_rows_run_beside_their_baseline_and_their_page_shows_them(built):
    """make html also runs part II's rows, into a run of their own that never becomes the CNN's latest."""
    results_dir = os.path.dirname(os.path.dirname(built))
    runs = sorted(glob.glob(os.path.join(results_dir, "runs", "*-smoke-rnn")))
    assert len(runs) == 1, runs
    for name in common.implemented_frameworks(model="rnn"):
        with open(os.path.join(runs[0], name + ".json")) as f:
            doc = json.load(f)
        assert doc["status"] == "ok", (name, doc["error"])
        assert doc["params"] == 3818302 and doc["adam"]["lr"] == 0.001 and doc["momentum"] is None
    with open(os.path.join(runs[0], "baseline.json")) as f:
        baseline = json.load(f)
    assert 0 <= baseline["accuracy"] <= 1 and baseline["n_train"] == common.profile("smoke", "rnn")["n_train"]
    shown = text("rnn")
    assert "this machine: synthetic dataset, smoke profile" in shown and "bag-of-words baseline" in shown
    assert all(common.ROWS[n]["label"] in shown for n in common.implemented_frameworks(model="rnn"))
    assert "epsilon hat, steps counted from 2" in shown and "nnx.GRUCell" in shown
    assert "def export_onnx(model, path)" in shown and "GRU rows of this run reach" in shown
    results = text("results")
    assert "this machine: synthetic dataset, smoke profile" in results[results.index("eleven GRU rows are a run of their own"):]


def test_part_two_shows_each_exporters_verdict_its_compare_page_and_its_programs(built):
    from lab import onnx_check
    html = page("rnn")
    for name in common.implemented_frameworks(model="rnn"):
        row = re.search(r'<td data-label="framework">{}</td>(.*?)</tr>'.format(re.escape(name)), html)
        verdict = "cannot export|does not run" if name in onnx_check.CANNOT else "yes"
        assert row and re.search(r'<td data-label="within tolerance">({})</td>$'.format(verdict), row.group(1)), (
            name, row.group(0) if row else "no row")
    compare = text("rnn-compare")
    assert "class GRUCell" in compare and "def export_onnx(model, path)" in compare
    for module in ("rnn_pytorch", "rnn_caffe2"):  # the tabs' downloads: part II's whole programs
        found = glob.glob(os.path.join(ROOT, "_build", "html", "_downloads", "*", module + ".ipynb"))
        with open(found[0]) as f:
            assert "def reviews_for_library" in f.read()


def test_step_chapters_have_synchronized_tabs_with_the_modules_code(built):
    tabs = {spec["module"] for spec in common.FRAMEWORKS.values()} & {
        os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "code", "cnn", "cnn_*.py"))}
    for step in STEPS:
        html = page(step)
        assert html.count('data-sync-group="framework"') >= len(tabs), step
        for key in (m[len("cnn_"):] for m in tabs):
            assert 'data-sync-id="{}"'.format(key) in html, (step, key)
    assert "nn.Conv2d(3, 50, 3" in text("02-model") and "optimizer.step()" in text("04-train")


def test_results_page_has_the_charts_of_this_run(built):
    html = page("results")
    assert html.count('class="rosetta-chart"') >= 1 and "vegaEmbed" in html
    with open(os.path.join(built, "run.json")) as f:
        meta = json.load(f)
    assert "synthetic dataset, smoke profile" in html and meta["started"][:10] in html
    assert "&quot;framework&quot;" not in html  # the chart specs are data, not escaped HTML
    assert all(name in html for name in common.implemented_frameworks())
    assert re.search(r"The \d+ rows that ran \(\d+ of them tuned, drawn in Make it fast\) took \d+\.\d min", html)
    assert "dropdown-download-buttons" not in html  # the theme's menu offers the page's MyST source
    assert html.index("<h3>this build: synthetic dataset, smoke profile") < html.index("<h3>reference (")


def test_make_it_fast_shows_each_tuned_row_beside_its_twin_with_its_diff(built):
    ran = 0
    for name, spec in common.TUNED.items():
        with open(os.path.join(built, name + ".json")) as f:
            doc = json.load(f)
        if doc["status"] == "skipped":  # none of its changes is on here: it says so (the test above)
            continue
        ran += 1
        assert doc["twin"] == spec["twin"] and {c["change"] for c in doc["tuning"]} >= {"bf16"}, name
        assert all(c["why"] for c in doc["tuning"]), doc["tuning"]
    assert ran >= 2, "fewer than two tuned rows ran"
    html = page("fast")
    # this build's pairs, then each committed reference's (conftest copies them in, as a clone has them)
    references = [m for m in (json.load(open(p)) for p in glob.glob(os.path.join(ROOT, "data/results/reference/*/run.json")))
                  if not m.get("purpose") and m.get("init", "glorot") == "glorot"
                  and any(f in common.TUNED for f in m["frameworks"])]
    assert html.count('class="rosetta-chart"') == 1 + len(references) and "Faithful against tuned: this build" in html
    assert "Faithful against tuned: reference (" in html
    table = re.search(r'<table class="rosetta-results rosetta-tuned">(.*?)</table>', html, re.S).group(1)
    assert all('<td data-label="tuned row">{}</td>'.format(name) in table for name in common.TUNED)
    assert html.count('data-sync-group="framework"') >= len({common.tab(n) for n in common.implemented_frameworks()})
    assert html.count("highlight-diff") >= 4  # the changed functions, as diffs
    words = text("fast")
    assert "memory_format=LAYOUT" in words and "steps_per_execution=STEPS_PER_EXECUTION" in words
    assert "jax.lax.scan" in words and "has no tuned row" in words


def test_weights_chapter_shows_every_framework_matching_the_reference(built):
    html = page("07-weights")
    for name in common.implemented_frameworks(tuned=True):
        row = re.search(r'<td data-label="row">{}</td>(.*?)</tr>'.format(re.escape(name)), html)
        assert row and row.group(1).endswith('<td data-label="within tolerance">yes</td>'), (
            name, row.group(0) if row else "no row")
    assert "def get_weights(model)" in text("07-weights") and "def chw_rows_to_hwc(kernel)" in text("07-weights")


def test_defaults_chapter_shows_the_cost_of_each_own_init(built):
    html = text("defaults")
    assert "Kaiming-uniform" in html and "points" in html and "max pooling, stride left out" in html
    # make html PROFILE=smoke makes no own-init pair of its own: the committed reference's, labelled
    assert re.search(r"Reference run \d+-\d+-fidelity-own-init, committed with the book: measured on .+ at commit", html)
    assert "Caffe2" in text("05-predict") and "Theano" in text("05-predict")  # the seed's dropout note


def test_no_page_loads_anything_from_the_network(built):
    for path in glob.glob(os.path.join(ROOT, "_build", "html", "**", "*.html"), recursive=True):
        with open(path) as f:
            html = f.read()
        external = re.findall(r'<(?:script|link|img|iframe)[^>]+(?:src|href)="((?:https?:)?//[^"]+)"', html)
        assert not external, (path, external)
    assert os.path.exists(os.path.join(ROOT, "_build", "html", "_static", "vendor", "vega-embed.min.js"))


def test_make_bench_quick_pytorch_writes_a_complete_result(tmp_path):
    out = run(["make", "bench", "PROFILE=quick", "INIT_PROFILE=smoke", "FRAMEWORKS=pytorch", "DATASET=synthetic"],
              timeout=1200,
              env=dict(os.environ, ROSETTA_RESULTS_DIR=str(tmp_path)))
    assert out.returncode == 0, out.stderr[-3000:]
    with open(str(tmp_path / "latest")) as f:
        run_path = str(tmp_path / f.read().strip())
    with open(os.path.join(run_path, "pytorch.json")) as f:
        doc = json.load(f)
    assert doc["status"] == "ok" and doc["params"] == 3441592 and doc["profile"] == "quick"
    assert len(doc["epoch_seconds"]) == common.PROFILES["quick"]["epochs"]


def test_export_chapter_shows_every_framework_in_onnx_runtime_and_the_inference_chart(built):
    from lab import onnx_check
    html = page("08-export")
    for name in common.implemented_frameworks():
        row = re.search(r'<td data-label="framework">{}</td>(.*?)</tr>'.format(re.escape(name)), html)
        verdict = "does not run" if name in onnx_check.CANNOT else "yes"
        assert row and row.group(1).endswith('<td data-label="within tolerance">{}</td>'.format(verdict)), (
            name, row.group(0) if row else "no row")
    # make html runs no inference benchmark: the committed reference's chart, labelled
    assert 'class="rosetta-chart"' in html and re.search(r"Reference run \d+-\d+-inference, committed", html)
    assert "def export_onnx(model, path)" in text("08-export") and "def any_batch(model)" in text("08-export")


def test_scale_out_chapter_has_each_rows_diff_launch_lines_and_equivalence(built):
    from lab import scale_out
    html, words = page("09-scale-out"), text("09-scale-out")
    for name, row in common.PARALLEL.items():  # every data-parallel row: checked, diffed, launched
        assert re.search(r'<td data-label="row">{}</td>.*?<td data-label="passes">yes</td>'.format(
            re.escape(name)), html), name
        assert "code/cnn/{}.py".format(row["module"]) in words, name
        assert "-m lab.scale_out {} OUT".format(name) in words, name
    assert "torch.distributed.run --standalone --nproc-per-node 2" in words and "mpiexec -n 2" in words
    assert "changed, against code/cnn/cnn_pytorch.py" in words and "DenseNet-121" in words
    # make html runs no scale-out: the committed reference's table, labelled
    assert re.search(r"Reference run \d+-\d+-quick-scale-out, committed", html)
