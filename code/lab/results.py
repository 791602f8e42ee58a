"""Result documents: the schema, atomic writes, run folders, and reading them back safely.

    data/results/runs/<run>/run.json          the run: profile, dataset, frameworks, status
    data/results/runs/<run>/<framework>.json  one result per framework
    data/results/runs/<run>/<framework>.log   what the framework printed
    data/results/runs/<run>/manifest.json     every file of a finished run with its SHA-256
    data/results/reference/<run>/...          committed reference runs, made by `make reference`
    data/results/latest                       the newest complete local run, as 'runs/<run>'

Python 3.6 compatible: the harness writes results from every environment.
"""
import datetime
import hashlib
import json
import os
import platform
import tempfile

from common import BATCH_SIZE, FLOAT, LR, MOMENTUM, RESULTS_DIR, TF32

SCHEMA = 1
STATUSES = ("ok", "failed", "skipped")
REQUIRED = {"schema": int, "framework": str, "status": str, "dataset": str, "profile": str,
            "run": str, "epoch_seconds": list, "phase_seconds": dict}


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def cpuinfo():
    """Where this machine's CPU is described: /proc/cpuinfo, or the file ROSETTA_CPUINFO names (the
    tests read the CPU as each kind of machine this project runs on: tests/cpuinfo/)."""
    return os.environ.get("ROSETTA_CPUINFO") or "/proc/cpuinfo"


def cpu_name():
    try:
        with open(cpuinfo()) as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# The CPU features that change which kernels frameworks pick (oneDNN, bf16): two machines of the
# same model name can differ in them.
FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_bf16")


def cpu_features():
    try:
        with open(cpuinfo()) as f:
            flags = next((line for line in f if line.startswith("flags")), ":").split(":", 1)[1].split()
    except OSError:
        flags = []
    return [name for name in FEATURES if name in flags]


def machine():
    """This machine as a benchmark sees it: the CPU, its features and cores (the GPU: bench adds it)."""
    return dict(cpu=cpu_name(), features=cpu_features(), cores=os.cpu_count())


def new_result(framework, profile, dataset, run="", status="failed", error=None, **extra):
    result = dict(schema=SCHEMA, run=run, framework=framework, status=status, error=error,
                  dataset=dataset, profile=profile, batch_size=BATCH_SIZE, lr=LR, momentum=MOMENTUM,
                  float=FLOAT, tf32_policy=TF32, started=now(), finished=None, framework_version=None,
                  device=None, gpu=None, cpu=cpu_name(), params=None, epoch_seconds=[], losses=[],
                  phase_seconds={}, train_seconds=None, predict_seconds=None, accuracy=None)
    result.update(extra)
    return result


def row_seconds(result):
    """How long a row took, from its process' start to its result (as the runner measured it; in older
    results, from the harness's first line, a second or so later), or None (it never finished, or its
    times were written by hand). Not for Python 3.6, which has no fromisoformat."""
    if result.get("wall_seconds"):
        return result["wall_seconds"]
    try:
        return (datetime.datetime.fromisoformat(result["finished"])
                - datetime.datetime.fromisoformat(result["started"])).total_seconds()
    except (KeyError, TypeError, ValueError):
        return None


def write_json(path, doc):
    """Write to a temporary file beside `path`, then rename: a reader never sees half a file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp makes it private; results are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def problems(doc):
    """What makes `doc` not a result of this schema: an empty list when it is one."""
    if not isinstance(doc, dict):
        return ["not a JSON object"]
    found = ["{} missing or not {}".format(k, t.__name__) for k, t in sorted(REQUIRED.items())
             if not isinstance(doc.get(k), t)]
    if doc.get("schema") not in (None, SCHEMA) and isinstance(doc.get("schema"), int):
        found.append("schema {} is not {}".format(doc["schema"], SCHEMA))
    if doc.get("status") not in STATUSES:
        found.append("status {!r} is not one of {}".format(doc.get("status"), ", ".join(STATUSES)))
    return found


def read_result(path):
    """(result, None) for a valid result file, (None, reason) for anything else."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        return None, "{}: not valid JSON ({})".format(path, e)
    found = problems(doc)
    return (None, "{}: not a result ({})".format(path, "; ".join(found))) if found else (doc, None)


def run_dir(run, kind="runs"):
    return os.path.join(RESULTS_DIR, kind, run)


def latest_run(root=None):
    """The newest complete local run's folder under `root` (the results folder), or None."""
    root = root or RESULTS_DIR
    try:
        with open(os.path.join(root, "latest")) as f:
            rel = f.read().strip()
    except OSError:
        return None
    path = os.path.join(root, rel)
    return path if rel and os.path.isdir(path) else None


def set_latest(path):
    rel = os.path.relpath(path, RESULTS_DIR)
    fd, tmp = tempfile.mkstemp(dir=RESULTS_DIR, prefix=".tmp-latest")
    with os.fdopen(fd, "w") as f:
        f.write(rel + "\n")
    os.replace(tmp, os.path.join(RESULTS_DIR, "latest"))


def local_runs(root=None, kind="runs"):
    """(path, run.json or {}) of every run under `root` (the results folder), newest first: the local
    ones, or with kind="reference" the committed ones."""
    runs = os.path.join(root or RESULTS_DIR, kind)
    for name in sorted(os.listdir(runs) if os.path.isdir(runs) else [], reverse=True):
        yield os.path.join(runs, name), read_object(os.path.join(runs, name, "run.json"))[0] or {}


def steady(result):
    """The steady epoch: the fastest epoch after the first. Other work on the machine can make an
    epoch slower, never faster, so the fastest is the one it disturbed least."""
    epochs = (result.get("epoch_seconds") or [])[1:]
    return min(epochs) if epochs else None


# The files of a run folder that are not results: the run, its manifest, and the book's tables of a
# reference (pages.weights.write_reference, pages.recurrent.write_reference).
MANIFEST = "manifest.json"
BASELINE = "baseline.json"  # beside a model's rows: part II's bag of words, part III's ONNX Runtime
NOT_RESULTS = ("run.json", MANIFEST, "defaults.json", "parity.json", "onnx.json", "scale-out.json", "features.json",
               BASELINE)


def load_run(path):
    """A run folder -> (run.json or {}, [results], [reasons for files that were skipped])."""
    meta, _ = read_object(os.path.join(path, "run.json"))
    found, skipped = [], []
    for name in sorted(os.listdir(path)):
        if name.endswith(".json") and name not in NOT_RESULTS and not name.startswith("."):
            doc, reason = read_result(os.path.join(path, name))
            (found.append(doc) if doc else skipped.append(reason))
    return meta or {}, found, skipped


def read_object(path):
    """(a JSON object, None) or (None, why not): for run.json, which has no schema of its own."""
    try:
        with open(path) as f:
            doc = json.load(f)
        return (doc, None) if isinstance(doc, dict) else (None, "not an object")
    except (OSError, ValueError) as e:
        return None, str(e)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def write_manifest(path):
    """List every file of a finished run folder with its SHA-256: a committed reference run is then
    known to be what the code wrote, not edited by hand."""
    files = {name: sha256(os.path.join(path, name)) for name in sorted(os.listdir(path))
             if name != MANIFEST and not name.startswith(".") and os.path.isfile(os.path.join(path, name))}
    write_json(os.path.join(path, MANIFEST), dict(written_by="code/bench.py", written=now(), files=files))


def manifest_problems(path):
    """What differs between a run folder and its manifest: an empty list when nothing does."""
    manifest, why = read_object(os.path.join(path, MANIFEST))
    if manifest is None or not isinstance(manifest.get("files"), dict):
        return ["{}: no manifest ({})".format(path, why or "no file list")]
    found = [name for name in sorted(os.listdir(path)) if name != MANIFEST and not name.startswith(".")]
    out = ["{}: not in the manifest".format(n) for n in found if n not in manifest["files"]]
    out += ["{}: in the manifest, missing".format(n) for n in manifest["files"] if n not in found]
    out += ["{}: changed since the run wrote it".format(n) for n in found
            if n in manifest["files"] and sha256(os.path.join(path, n)) != manifest["files"][n]]
    return out
