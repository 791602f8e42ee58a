"""Each framework's whole program (book/_ext/programs.py): complete, self-contained, and it runs.

The notebooks are executed with nbclient, each in its framework's own environment (a kernel spec
made for the test points at that environment's Python), on the smoke-sized synthetic data.
"""
import ast
import json
import os
import re
import sys

import pytest

from conftest import ROOT, env_python
import common

sys.path.insert(0, os.path.join(ROOT, "book", "_ext"))
pytest.importorskip("sphinx")
import framework_tabs  # noqa: E402
import programs  # noqa: E402

TABS = programs.tab_frameworks()
# Functions the chapters do not show: where a module finds its device and what it reports.
UNSHOWN = {"runtime_info", "gpu_or_why_not", "probe", "no_gpu_reason", "_backend"}


def module_functions(framework):
    with open(common.module_path(framework)) as f:
        return [n.name for n in ast.parse(f.read()).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]


def test_every_function_of_every_module_is_in_a_chapter():
    shown = {name for step in framework_tabs.steps() for name in step["names"]}
    for framework in TABS.values():
        assert set(module_functions(framework)) - UNSHOWN <= shown, framework


@pytest.mark.parametrize("tab", list(TABS))
def test_program_is_the_whole_module_and_imports_nothing_of_the_book(tab):
    text = programs.script(tab, dataset="synthetic", profile="smoke")
    tree = ast.parse(text)  # valid Python
    defined = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert set(module_functions(TABS[tab])) <= set(defined)
    assert len(defined) == len(set(defined)), "a function is defined twice"
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            assert node.module not in programs.LIBRARY, node.module
        if isinstance(node, ast.Import):
            assert not any(a.name in programs.LIBRARY or a.name.startswith("cnn_") for a in node.names)
    assert not re.search(r"\bcnn_\w+\.(?!py\b)\w", text) and "ROOT" not in text  # nothing of code/ is referenced
    titles = re.findall(r"^# ## (.+)$", text, re.M)
    assert titles[:len(framework_tabs.steps())] == [s["title"] for s in framework_tabs.steps()]


def test_the_script_is_the_notebook_cell_by_cell():
    notebook = programs.notebook("pytorch")
    script = programs.script("pytorch")
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.source in script
    assert notebook.cells[1].metadata["tags"] == ["parameters"]


def kernel_spec(folder, framework):
    """A Jupyter kernel that runs the framework's own environment's Python."""
    name = "rosetta-" + common.FRAMEWORKS[framework]["env"]
    path = os.path.join(folder, "kernels", name)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "kernel.json"), "w") as f:
        json.dump({"argv": [env_python(framework), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                   "display_name": name, "language": "python"}, f)
    return name


@pytest.mark.slow
@pytest.mark.parametrize("tab", list(TABS))
def test_downloaded_notebook_trains_and_prints_an_accuracy(tab, tmp_path, monkeypatch):
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
