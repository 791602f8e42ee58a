"""The house's rules: what a reader copies (code/common.py, datasets.py, reviews.py, tuning.py, onnx_graph.py and
each model's folder) imports nothing of the lab; the lab's floors import only downwards, with no
circle; the command line and the pages sit on top; no file of code/ grows past about 400 lines; and
what runs inside the framework environments imports on their own Pythons."""
import ast
import glob
import os

import pytest

from conftest import CODE, env_python, run

# Floor of every module of code/ (a model's folder is floor 0, as the shared pieces are).
FLOORS = {"common": 0, "datasets": 0, "reviews": 0, "tuning": 0, "onnx_graph": 0,
          "lab.results": 1, "lab.envs": 1, "lab.runs": 1, "lab.digest": 1,
          "lab.harness": 2, "lab.introspect": 2, "lab.attention_defaults": 2, "lab.own_init": 2, "lab.runner": 2, "lab.plan": 2,
          "lab.modes": 2, "lab.parity": 2, "lab.features": 2, "lab.onnx_check": 2, "lab.launch": 2, "lab.scale_out": 2, "lab.breakdown": 2,
          "bench": 3}
MODEL_FOLDERS = ["cnn", "rnn", "resnet", "attention"]  # attention: part IV, being built (not yet registered)
LONGEST = 420  # "about 400 lines"


def modules():
    """{module name: file} for every Python file of code/."""
    found = {}
    for path in glob.glob(os.path.join(CODE, "**", "*.py"), recursive=True):
        rel = os.path.relpath(path, CODE)[:-3].split(os.sep)
        if rel[0] in MODEL_FOLDERS:
            found[rel[-1]] = path  # imported by name: the folder is on the path
        elif rel[-1] != "__init__":
            found[".".join(rel)] = path
    return found


def floor(name):
    return 3 if name.startswith("pages.") else FLOORS.get(name, 0)


def imports(path, known):
    """The modules of code/ that a file imports, at its top or inside a function."""
    out = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module in known:
                out.add(node.module)
            out |= {node.module + "." + a.name for a in node.names if node.module + "." + a.name in known}
    return out


def graph():
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


def test_every_module_of_code_has_a_floor():
    unplaced = [n for n in modules() if "." in n and not n.startswith("pages.") and n not in FLOORS]
    assert not unplaced, "give these a floor in FLOORS (and in lab/__init__.py's docstring): {}".format(unplaced)


def test_imports_go_down_never_up():
    up = ["{} (floor {}) imports {} (floor {})".format(a, floor(a), b, floor(b))
          for a, targets in graph().items() for b in targets if floor(b) > floor(a)]
    assert not up, up


def test_the_pages_and_the_lab_never_import_the_command_line():
    assert not [a for a, targets in graph().items() if "bench" in targets]


def test_the_import_graph_has_no_circle():
    edges, state, path = graph(), {}, []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                raise AssertionError("circle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = "done"
    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_no_file_of_code_is_past_about_400_lines():
    long = {os.path.relpath(p, CODE): n for p in modules().values() for n in [len(open(p).read().splitlines())]
            if n > LONGEST}
    assert not long, long


def test_a_readers_modules_import_nothing_of_the_lab():
    reader = [n for n in graph() if floor(n) == 0]
    assert "cnn_pytorch" in reader and "weights" in reader and "reference" in reader
    assert not {n: sorted(t) for n in reader for t in [graph()[n]] if any(floor(x) > 0 for x in t)}


@pytest.mark.parametrize("framework", ["mxnet", "chainer", "cntk", "caffe2"])
def test_what_runs_in_a_legacy_environment_imports_on_its_python(framework):
    """Python 3.6 (CNTK), 3.7 (Caffe2), 3.8 (MXNet, Chainer): the workers the lab starts there."""
    from lab import envs
    workers = "lab.harness, lab.introspect, lab.own_init, lab.parity, lab.onnx_check, lab.scale_out, lab.attention_defaults"
    out = run([env_python(framework), "-c", "import {}; print('ok')".format(workers)], env=envs.row_env(framework))
    assert out.returncode == 0 and out.stdout.split()[-1] == "ok", out.stderr[-2000:]


def test_no_machinery_branches_on_a_models_name():
    """What differs between models is declared in common.MODELS; the lab, the pages and the command line
    read it there instead of comparing a model's name (`model == "cnn"`), so a new model adds its
    declaration and its folder and touches no `if` of theirs."""
    import common
    found = []
    for name, path in modules().items():
        if not (name.startswith(("lab.", "pages.")) or name == "bench"):
            continue
        for node in ast.walk(ast.parse(open(path).read(), path)):
            if isinstance(node, ast.Compare) and any(
                    isinstance(side, ast.Constant) and side.value in common.MODELS
                    for side in [node.left] + node.comparators):
                found.append("{}:{}".format(os.path.relpath(path, CODE), node.lineno))
    assert not found, "branches on a model's name (declare the difference in common.MODELS): {}".format(found)
