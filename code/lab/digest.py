"""Which code measured a result: digests of a row's modules and of what a table depends on.

Part of the lab's lowest floor (with envs.py, runs.py and results.py). A committed reference stays
current as long as its rows' modules say the same: the digests read a module's name and its syntax
tree (meaning), never the path of its file, its comments, docstrings or layout, nor the order of
imports that stand together.
"""
import ast
import hashlib
import json
import os

import common
from lab import results
from lab.envs import gpu_name, python_for

CODE = os.path.join(common.ROOT, "code")


# Functions no benchmark run reaches: changing them leaves a row's measurements current.
UNTIMED = ("set_weights", "export_onnx")
# ... and the functions of the lab's modules that only the book's check tables run, never a run whose
# results record the module's digest (inference, scale-out).
NOT_RUN = {"onnx_check": ("code_digest", "table"), "scale_out": ("table",), "parity": ("table",),
           "features": ("table",)}
# What each check's table proves things about, beyond the rows' code and environments: the modules
# that run it (without their NOT_RUN functions), the rows' modules whole where it exports them, and
# the data-parallel modules where it launches them.
CHECKS = {"parity": dict(code=("parity", "reference", "tuning")),
          "onnx": dict(code=("onnx_check", "onnx_graph", "parity"), whole=True),
          "scale-out": dict(code=("launch", "parity", "reference", "scale_out"), parallel=True),
          "features": dict(code=("features", "reference"), whole=True),
          # part IV's defaults, read in each framework and what keeping one costs against its reference
          "defaults": dict(code=("attention_defaults", "introspect", "parity", "reference"), whole=True)}


def source_path(name, model=None):
    """Where module `name` lives: its model's folder, code/ or the lab; None if nowhere."""
    folders = ([common.model_dir(model)] if model else []) + [CODE, os.path.join(CODE, "lab")]
    return next((p for p in (os.path.join(f, name + ".py") for f in folders) if os.path.exists(p)), None)


def _canonical(node):
    """A syntax tree as text, without positions, and without the fields left empty (None, []), so that
    the fields a newer Python adds with nothing in them do not change it."""
    if isinstance(node, ast.AST):
        return "{}({})".format(type(node).__name__, ",".join(
            "{}={}".format(k, _canonical(v)) for k, v in ast.iter_fields(node) if v is not None and v != []))
    if isinstance(node, list):
        return "[{}]".format(",".join(_canonical(n) for n in node))
    return repr(node)


def _is_docstring(node):
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _body(statements):
    """Statements without a docstring, each run of adjacent imports in one order."""
    out, imports = [], []
    for node in statements[1:] if statements and _is_docstring(statements[0]) else statements:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(node)
            continue
        out.extend(sorted(imports, key=_canonical) + [node])
        imports = []
    return out + sorted(imports, key=_canonical)


def meaning(source, skip=()):
    """What a module's text does: its syntax tree without docstrings, positions or comments (which
    the tree never holds), adjacent imports in one order, and without the top-level functions named
    in `skip`. Reformatting a module leaves it unchanged; changing an operation changes it."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            node.body = _body(node.body)
    tree.body = [n for n in tree.body if not (isinstance(n, ast.FunctionDef) and n.name in skip)]
    return _canonical(tree.body)


def registry_entries(value, model):
    """A table of common.py's registry cut to `model`: MODELS' entry, or the rows (name -> spec with a
    "model") of that model; None for anything else."""
    if value is common.MODELS:
        return {model: value[model]}
    if isinstance(value, dict) and value and all(isinstance(v, dict) and "model" in v for v in value.values()):
        return {k: v for k, v in value.items() if v["model"] == model}
    return None


def common_text(model):
    """common.py's meaning as a key for `model`'s tables reads it: the registry's tables (MODELS and each
    table of rows) as the data of this model's entries alone, everything else as it is. A part added,
    or another model's entry changed, leaves the other parts' tables current; a change to this model's
    entries or to a function of common.py does not."""
    with open(source_path("common")) as f:
        tree = ast.parse(f.read())
    body = []
    for node in tree.body:
        names = [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
        entries = registry_entries(getattr(common, names[0], None), model) if len(names) == 1 else None
        if entries is None:
            body.append(node)
        elif entries:
            data = json.dumps(entries, sort_keys=True, default=repr)
            body.append(ast.Assign(targets=[ast.Name(id=names[0], ctx=ast.Store())], value=ast.Constant(data)))
    tree.body = body
    return meaning(ast.unparse(ast.fix_missing_locations(tree))).encode()


def module_text(name, model=None, skip=None):
    """Module `name`'s meaning as bytes, without the functions `skip` names (default: its NOT_RUN):
    what every digest reads of a module."""
    return file_text(source_path(name, model), skip)


def file_text(path, skip=None):
    """A file as a digest reads it: a module's meaning (without `skip`, default its NOT_RUN
    functions), any other file's bytes ("" where it is missing)."""
    if not path or not os.path.exists(path):
        return b""
    if path.endswith(".py"):
        with open(path) as f:
            return meaning(f.read(), NOT_RUN.get(os.path.basename(path)[:-3], ()) if skip is None else skip).encode()
    with open(path, "rb") as f:
        return f.read()


def row_code(framework):
    """A digest of the code a row's measurements depend on: its module (a tuned row's twin and
    tuning.py too), without the functions in UNTIMED, keyed by the modules' names and meanings,
    never where their files live. A result whose digest differs was measured by older code."""
    spec = common.ROWS[framework]
    names = [spec["module"]] + ([common.ROWS[spec["twin"]]["module"], "tuning"] if "twin" in spec else [])
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode() + module_text(name, spec["model"], UNTIMED))
    return digest.hexdigest()[:16]


def beside_row(framework, names):
    """The row's digest, and the modules `names` whole (by name and meaning, but NOT_RUN) beside it."""
    digest = hashlib.sha256(row_code(framework).encode())
    for name in names:
        digest.update(name.encode() + module_text(name, common.ROWS[framework]["model"]))
    return digest.hexdigest()[:16]


def inference_code(framework):
    """What an inference result depends on beyond the row's digest: its module whole (export_onnx
    included) and the ONNX check and graph edits that export and time it."""
    return beside_row(framework, (common.ROWS[framework]["module"], "onnx_check", "onnx_graph"))


def scale_out_code(framework):
    """What a scale-out result depends on beyond the row's digest: its data-parallel module (and another
    row's that it imports, as Keras 2's takes CNTK's dropout seeds), the rank's steps and the launch
    (scale_out.py, launch.py)."""
    module = common.PARALLEL[framework]["module"]
    parallel = {spec["module"] for spec in common.PARALLEL.values()}
    with open(source_path(module, common.ROWS[framework]["model"])) as f:
        tree = ast.parse(f.read())
    imported = sorted({node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} & parallel)
    return beside_row(framework, tuple([module] + imported) + ("scale_out", "launch"))


# A run's purpose -> the digest its results record, where it is not the row's.
CODE_OF = {"inference": inference_code, "scale-out": scale_out_code}


def older_code(result, purpose=""):
    """Whether older code than today's measured this result (its digest differs: the row's, or the
    one CODE_OF names for the run's purpose); a result of a row whose module no longer exists is not compared."""
    name = result["framework"]
    if name not in common.ROWS or not os.path.exists(common.module_path(name)):
        return False
    return result.get("code") != CODE_OF.get(purpose, row_code)(name)


def machine_kind():
    """A machine as a check depends on it: its CPU's features and its GPU, not the CPU's name or cores."""
    return dict(features=results.cpu_features(), gpu=gpu_name())


def env_files(envs, more=()):
    """{name: path} of what pins each environment: its Python version and requirements (and the files
    `more` names: a model's own, as part III's model zoo)."""
    names = ("python-version", "requirements.txt", "requirements-gpu.txt", "requirements-onnx.txt",
             "requirements-scale.txt", "requirements-cuda.txt") + tuple(more)
    return {"envs/{}/{}".format(e, n): os.path.join(common.ROOT, "envs", e, n) for e in envs for n in names}


def fingerprint(frameworks, profile, dataset, code=("harness", "introspect", "own_init"), also=(), machine=None):
    """What an init-cost pair (or a check's table) depends on: the code (modules by name and meaning)
    and pinned environments the frameworks ran, the profile, the dataset, the machine (this one, or
    `machine`, say machine_kind()), and anything in `also`."""
    model = common.model_of(frameworks)
    roles = ("common", "datasets", "data", "weights") + tuple(code)  # a model's own by its name
    files = {n: source_path(n, model) for n in (common.MODELS[model].get(r, r) for r in roles)}
    files.update(env_files({common.ROWS[f]["env"] for f in frameworks}, common.MODELS[model].get("env_files", ())))
    gpu = gpu_name()
    gpu_set = os.environ.get("GPU") or ("1" if gpu else "0")  # the Makefile's default, outside make too
    digest = hashlib.sha256(json.dumps([frameworks, profile, dataset, machine or gpu or results.machine(), gpu_set]
                                       + [row_code(f) for f in frameworks] + list(also), sort_keys=True).encode())
    for name, path in sorted(files.items()):
        digest.update(name.encode() + (common_text(model) if name == "common" else file_text(path)))
    return digest.hexdigest()[:16]


def check_key(frameworks, check):
    """What a check's table (CHECKS: parity, ONNX, scale-out equivalence) proves things about: the
    code, the pinned environments (and which exist), the kind of machine. Not its path, CPU name or
    cores, so a table committed from a machine of this kind is as good as one measured here."""
    spec, model = CHECKS[check], common.model_of(frameworks)
    code = spec["code"] + tuple(common.PARALLEL[f]["module"] for f in frameworks if spec.get("parallel"))
    whole = [module_text(common.ROWS[f]["module"], model) for f in frameworks if spec.get("whole")]
    return fingerprint(frameworks, check, "synthetic", ("envs",) + code, machine=machine_kind(),
                       also=[python_for(f)[0] is not None for f in frameworks] + [hashlib.sha256(w).hexdigest() for w in whole])
