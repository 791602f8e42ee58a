"""Each framework's whole program (book/_ext/programs.py), part I's CNN and part II's GRU: complete,
self-contained, and it runs.

The notebooks are executed with nbclient, each in its framework's own environment (a kernel spec
made for the test points at that environment's Python), on the smoke-sized synthetic data.
"""
import ast
import builtins
import json
import os
import re
import symtable
import sys

import pytest

from conftest import ROOT, env_python
import common

sys.path.insert(0, os.path.join(ROOT, "book", "_ext"))
pytest.importorskip("sphinx")
import framework_tabs  # noqa: E402
import programs  # noqa: E402

TABS = programs.tab_frameworks()
PAIRS = [(model, tab) for model in programs.PARTS for tab in programs.tab_frameworks(model)]
# Functions the chapters do not show: where a module finds its device and what it reports.
UNSHOWN = {"runtime_info", "gpu_or_why_not", "probe", "no_gpu_reason", "_backend", "backend_device",
           "import_torchvision"}  # the setup: module-level code calls them, so the program has them first


def module_functions(framework):
    with open(common.module_path(framework)) as f:
        return [n.name for n in ast.parse(f.read()).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]


@pytest.mark.parametrize("model", list(programs.PARTS))
def test_every_function_of_every_module_is_in_a_chapter(model):
    shown = {name for step in framework_tabs.steps(model) for name in step["names"]}
    for framework in programs.tab_frameworks(model).values():
        assert set(module_functions(framework)) - UNSHOWN <= shown, framework


@pytest.mark.parametrize("model, tab", PAIRS)
def test_program_is_the_whole_module_and_imports_nothing_of_the_book(model, tab):
    text = programs.script(tab, dataset="synthetic", profile="smoke", model=model)
    tree = ast.parse(text)  # valid Python
    defined = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert set(module_functions(programs.tab_frameworks(model)[tab])) <= set(defined)
    assert len(defined) == len(set(defined)), "a function is defined twice"
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            assert node.module not in programs.LIBRARY, node.module
        if isinstance(node, ast.Import):
            assert not any(a.name in programs.LIBRARY or a.name.startswith(model + "_") for a in node.names)
    modules = {"common", "datasets"}  # what code/ imports whole (reviews and weights also name variables)
    assert not [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and getattr(n.value, "id", None) in modules]
    assert not re.search(r"\b(cnn|rnn|resnet)_\w+\.(?!py\b)\w", text) and "ROOT" not in text  # nothing of code/ is referenced
    titles = re.findall(r"^# ## (.+)$", text, re.M)
    assert titles[:len(framework_tabs.steps(model))] == [s["title"] for s in framework_tabs.steps(model)]


def undefined_names(text):
    """The global names a program reads that it neither defines, imports nor has as builtins: what
    would be a NameError on a path its run in the tests never takes (a GPU's, say)."""
    top = symtable.symtable(text, "program", "exec")
    defined = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported() or s.is_namespace()}
    defined |= set(dir(builtins))
    missing = set()

    def walk(table):
        for s in table.get_symbols():
            if s.is_referenced() and (table.get_type() == "module" or s.is_global()) and s.get_name() not in defined:
                missing.add(s.get_name())
        for child in table.get_children():
            walk(child)
    walk(top)
    return missing


@pytest.mark.parametrize("model, tab", PAIRS)
def test_program_reads_no_name_it_does_not_define(model, tab):
    assert undefined_names(programs.script(tab, model=model)) == set()


def test_the_script_is_the_notebook_cell_by_cell():
    notebook = programs.notebook("pytorch")
    script = programs.script("pytorch")
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.source in script
    assert notebook.cells[1].metadata["tags"] == ["parameters"]


@pytest.mark.parametrize("model, tab", [("cnn", "pytorch"), ("rnn", "jax")])
def test_a_program_whose_dataset_host_does_not_answer_says_what_to_set_and_stops(model, tab, tmp_path):
    """A reader's copy, as it comes (CIFAR-10, IMDB), where no host answers (a proxy that refuses every
    connection): one sentence that names the download and what to set instead, exit status 1, no traceback."""
    import subprocess
    program = tmp_path / "program.py"
    program.write_text(programs.script(tab, model=model))
    refused = "http://127.0.0.1:9"
    env = dict(os.environ, https_proxy=refused, HTTPS_PROXY=refused, no_proxy="", NO_PROXY="")
    out = subprocess.run([env_python(programs.tab_frameworks(model)[tab]), str(program)], cwd=str(tmp_path), env=env,
                         capture_output=True, text=True, timeout=300)
    last = out.stderr.strip().splitlines()[-1]
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert re.match(r"https://\S+ could not be downloaded \(.+\): set DATASET to \".+ instead, or put the file at ",
                    last), last
    assert not list(tmp_path.glob("data/cache/*.part"))


def kernel_spec(folder, framework):
    """A Jupyter kernel that runs the framework's own environment's Python."""
    name = "rosetta-" + common.ROWS[framework]["env"]
    path = os.path.join(folder, "kernels", name)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "kernel.json"), "w") as f:
        json.dump({"argv": [env_python(framework), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                   "display_name": name, "language": "python"}, f)
    return name


@pytest.mark.parametrize("tab", [pytest.param(t, marks=pytest.mark.slow if t == "pytorch" else pytest.mark.programs_cnn)
                                 for t in TABS])
def test_downloaded_notebook_trains_and_prints_an_accuracy(tab, tmp_path, monkeypatch):
    """Part I's programs: PyTorch's in CI (make test-slow), the others in make test-programs-cnn; one
    notebook of each part runs in CI, and every program is checked statically above."""
    nbclient = pytest.importorskip("nbclient")
    framework = TABS[tab]
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    name = kernel_spec(str(tmp_path / "jupyter"), framework)
    notebook = programs.notebook(tab, dataset="synthetic", profile="smoke")
    work = tmp_path / "outside"  # not the repository: the notebook must find everything in itself
    work.mkdir()
    nbclient.NotebookClient(notebook, kernel_name=name, timeout=600,
                            resources={"metadata": {"path": str(work)}}).execute()
    out = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    losses = [float(x) for x in re.findall(r"^epoch \d+: loss ([0-9.]+)", out, re.M)]
    assert len(losses) == common.profile("smoke")["epochs"] and all(0 < x < 10 for x in losses), out
    accuracy = float(re.search(r"^accuracy: ([0-9.]+) on 128 test images$", out, re.M).group(1))
    assert 0 <= accuracy <= 1 and "3,441,592 parameters" in out
    assert (work / "data" / "cache" / "synthetic" / "x_train.npy").exists()


REVIEW_TABS = {model: programs.tab_frameworks(model) for model in ("rnn", "attention")}


@pytest.mark.parametrize("model, tab", [pytest.param(m, t, marks=pytest.mark.slow if t == "pytorch" else getattr(
    pytest.mark, "programs_" + m)) for m, tabs in REVIEW_TABS.items() for t in tabs])
def test_downloaded_reviews_notebook_trains_and_prints_an_accuracy(model, tab, tmp_path, monkeypatch):
    """Part II's and part IV's programs: PyTorch's in CI (make test-slow), the others in make
    test-programs-rnn (2.5 min) and test-programs-attention. PyTorch's makes the synthetic corpus
    itself; the others are given its cache, which they would make the same way (20 s each)."""
    nbclient = pytest.importorskip("nbclient")
    reviews = common.model_module(model, "data")
    framework = REVIEW_TABS[model][tab]
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    name = kernel_spec(str(tmp_path / "jupyter"), framework)
    notebook = programs.notebook(tab, dataset="synthetic", profile="smoke", model=model)
    work = tmp_path / "outside"
    cache = work / "data" / "cache" / os.path.basename(reviews.cache_dir("synthetic"))
    if tab != "pytorch":
        reviews.prepare("synthetic")
        cache.parent.mkdir(parents=True)
        cache.symlink_to(reviews.cache_dir("synthetic"))
    work.mkdir(exist_ok=True)
    nbclient.NotebookClient(notebook, kernel_name=name, timeout=600,
                            resources={"metadata": {"path": str(work)}}).execute()
    out = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    losses = [float(x) for x in re.findall(r"^epoch \d+: loss ([0-9.]+)", out, re.M)]
    assert len(losses) == common.profile("smoke", model)["epochs"] and all(0 < x < 10 for x in losses), out
    accuracy = float(re.search(r"^accuracy: ([0-9.]+) on 128 test reviews$", out, re.M).group(1))
    assert 0 <= accuracy <= 1 and "{:,} parameters".format(common.n_params(model)) in out, out
    assert (cache / "x_train.npy").exists()


RESNET_TABS = programs.tab_frameworks("resnet")


@pytest.mark.parametrize("tab", [pytest.param(t, marks=pytest.mark.slow if t == "pytorch" else pytest.mark.programs_resnet)
                                 for t in RESNET_TABS])
def test_downloaded_resnet_notebook_extracts_features(tab, tmp_path, monkeypatch):
    """Part III's programs: PyTorch's in CI (make test-slow), the others in make test-programs-resnet.
    Each makes its 224x224 images from the synthetic set itself, outside the repository."""
    nbclient = pytest.importorskip("nbclient")
    framework = RESNET_TABS[tab]
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    name = kernel_spec(str(tmp_path / "jupyter"), framework)
    notebook = programs.notebook(tab, dataset="synthetic", profile="smoke", model="resnet")
    work = tmp_path / "outside"
    work.mkdir()
    nbclient.NotebookClient(notebook, kernel_name=name, timeout=600,
                            resources={"metadata": {"path": str(work)}}).execute()
    out = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert "2 batches of (32, " in out and re.search(r"^features \(64, 2048\) in [0-9.]+ s$", out, re.M), out
    params = int(re.search(r"^([0-9,]+) parameters$", out, re.M).group(1).replace(",", ""))
    assert params >= 23508032 and "'variant': 'v1" in out, out
    assert list(work.glob("data/cache/synthetic/resnet-224x224-64.npy"))
