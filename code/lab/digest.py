"""Which code measured a result: digests of a row's modules and of what a table depends on.

Part of the lab's lowest floor (with envs.py, runs.py and results.py). A committed reference stays
current as long as its rows' modules say the same: the digests read the modules' names and text,
never the paths of their files.
"""
import ast
import hashlib
import json
import os

import common
from lab import results
from lab.envs import gpu_name

CODE = os.path.join(common.ROOT, "code")


# Functions no benchmark run reaches: changing them leaves a row's measurements current.
UNTIMED = ("set_weights", "export_onnx")


def source_path(name, model=None):
    """Where module `name` lives: its model's folder, code/ or the lab; None if nowhere."""
    folders = ([common.model_dir(model)] if model else []) + [CODE, os.path.join(CODE, "lab")]
    return next((p for p in (os.path.join(f, name + ".py") for f in folders) if os.path.exists(p)), None)


def row_code(framework):
    """A digest of the code a row's measurements depend on: its module (a tuned row's twin and
    tuning.py too), without the functions in UNTIMED, keyed by the modules' names and their text,
    never where their files live. A result whose digest differs was measured by older code."""
    spec = common.ROWS[framework]
    names = [spec["module"]] + ([common.ROWS[spec["twin"]]["module"], "tuning"] if "twin" in spec else [])
    digest = hashlib.sha256()
    for name in names:
        with open(source_path(name, spec["model"])) as f:
            source = f.read()
        tree = ast.parse(source)
        kept = [ast.get_source_segment(source, node) for node in tree.body
                if not (isinstance(node, ast.FunctionDef) and node.name in UNTIMED)]
        digest.update(name.encode() + "\n".join(kept).encode())
    return digest.hexdigest()[:16]


def beside_row(framework, names):
    """The row's digest, and the modules `names` whole (by name and text) beside it."""
    digest = hashlib.sha256(row_code(framework).encode())
    for name in names:
        with open(source_path(name, common.ROWS[framework]["model"]), "rb") as f:
            digest.update(name.encode() + f.read())
    return digest.hexdigest()[:16]


def inference_code(framework):
    """What an inference result depends on beyond the row's digest: its module whole (export_onnx
    included) and the ONNX check and graph edits that export and time it."""
    return beside_row(framework, (common.ROWS[framework]["module"], "onnx_check", "onnx_graph"))


def scale_out_code(framework):
    """What a scale-out result depends on beyond the row's digest: its data-parallel module, the
    rank's steps and the launch (scale_out.py, launch.py)."""
    return beside_row(framework, (common.PARALLEL[framework]["module"], "scale_out", "launch"))


# A run's purpose -> the digest its results record, where it is not the row's.
CODE_OF = {"inference": inference_code, "scale-out": scale_out_code}


def older_code(result, purpose=""):
    """Whether older code than today's measured this result (its digest differs: the row's, or the
    one CODE_OF names for the run's purpose); a result of a row whose module no longer exists is not compared."""
    name = result["framework"]
    if name not in common.ROWS or not os.path.exists(common.module_path(name)):
        return False
    return result.get("code") != CODE_OF.get(purpose, row_code)(name)


def fingerprint(frameworks, profile, dataset, code=("harness", "introspect", "own_init"), also=()):
    """What an init-cost pair (or the parity table) depends on: the code (modules by name and text)
    and pinned environments the frameworks ran, the profile, the dataset, the machine, and anything
    in `also`."""
    envs = {common.ROWS[f]["env"] for f in frameworks}
    model = common.model_of(frameworks)
    roles = ("common", "datasets", "data", "weights") + tuple(code)  # a model's own by its name
    files = {n: source_path(n, model) for n in (common.MODELS[model].get(r, r) for r in roles)}
    files.update(("envs/{}/{}".format(e, n), os.path.join(common.ROOT, "envs", e, n))
                 for e in envs for n in ("requirements.txt", "requirements-gpu.txt"))
    gpu = gpu_name()
    gpu_set = os.environ.get("GPU") or ("1" if gpu else "0")  # the Makefile's default, outside make too
    digest = hashlib.sha256(json.dumps([frameworks, profile, dataset, gpu or results.machine(), gpu_set]
                                       + [row_code(f) for f in frameworks] + list(also)).encode())
    for name, path in sorted(files.items()):
        digest.update(name.encode() + (open(path, "rb").read() if path and os.path.exists(path) else b""))
    return digest.hexdigest()[:16]
