"""The orchestrator: run each framework in its own environment, with a time limit, into one run.

    python code/bench.py --frameworks pytorch,jax --profile quick --dataset auto

Each framework runs code/harness.py as a subprocess with its environment's interpreter
(.envs/<env>/bin/python, or ROSETTA_PYTHON_<ENV> / ROSETTA_PYTHON where an image already has the
frameworks). One that fails, hangs or has no environment is recorded as such and the others go
on. Ctrl-C marks the run incomplete; `--resume` (what `make html` passes) continues the newest
incomplete run with the same profile and dataset, skipping frameworks already done.
"""
import argparse
import ast
import datetime
import hashlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import json

import common
import datasets
import own_init
import results

HERE = os.path.dirname(os.path.abspath(__file__))


def gpu_name():
    """The first NVIDIA GPU's name and compute capability, or None: decides the default profile."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.strip().splitlines() if out.returncode == 0 else []
    if not lines:
        return None
    name, _, capability = lines[0].partition(",")
    return name.strip() + (" (compute capability {})".format(capability.strip()) if capability.strip() else "")


def python_for(framework):
    """(interpreter, None) for the framework, or (None, why not and what to do).

    ROSETTA_PYTHON_<FRAMEWORK> (KERAS_JAX for keras-jax), ROSETTA_PYTHON_<ENV> (MAIN, MXNET, ...)
    or ROSETTA_PYTHON name an interpreter that already has the framework, most specific first.
    """
    env = common.ROWS[framework]["env"]
    names = ["ROSETTA_PYTHON_" + n for n in (framework.upper().replace("-", "_"), env.upper())]
    var = next((v for v in names + ["ROSETTA_PYTHON"] if os.environ.get(v)), None)
    if var:
        python = shutil.which(os.environ[var])
        return (python, None) if python else (None, "{}={} is not an interpreter that exists".format(
            var, os.environ[var]))
    path = os.path.join(common.ROOT, ".envs", env, "bin", "python")
    if os.path.exists(path):
        return path, None
    try:
        with open(os.path.join(common.ROOT, "envs", env, "python-version")) as f:
            version = f.read().strip()
    except OSError:
        version = "3"
    return None, ("no environment for {0}: .envs/{1} does not exist. It needs Python {3}: "
                  "`pyenv install {3} && make envs` creates it (or point {2} at an interpreter "
                  "that has {0}).".format(framework, env, names[1], version))


def run_script(framework, args, timeout=300):
    """Run a Python script in the framework's environment: its last stdout line parsed as JSON,
    or a sentence that says why not (no environment, a failure with its last line, a time-out)."""
    python, why_not = python_for(framework)
    if python is None:
        return why_not
    env = dict(os.environ, **common.ROWS[framework].get("vars", {}))
    try:
        out = subprocess.run([python] + list(args), env=env, cwd=common.ROOT, capture_output=True,
                             text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timed out after {:.0f} s".format(timeout)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no message"])[-1]
        return "failed (exit code {}): {}".format(out.returncode, last)
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return "printed no JSON result"


def _pump(stream, lines):
    for line in iter(stream.readline, ""):
        lines.put(line)
    lines.put(None)


def run_framework(framework, profile, dataset, run_path, run_id, timeout, show, init="glorot", cpu_profile=None,
                  gpu=None, name=None, env_extra=None):
    """Run one framework's harness; always returns a result document. `name`: the files' name in
    the run folder (default: the framework's); `env_extra`: more environment variables."""
    spec = common.ROWS[framework]
    python, why_not = python_for(framework)
    if python is None:
        return results.new_result(framework, profile, dataset, run=run_id, status="skipped", error=why_not)
    name = name or framework
    out = os.path.join(run_path, ".{}.partial".format(name))
    log_path = os.path.join(run_path, name + ".log")
    env = dict(os.environ, PYTHONUNBUFFERED="1", **dict(spec.get("vars", {}), **(env_extra or {})))
    cmd = [python, os.path.join(HERE, "harness.py"), framework, "--profile", profile,
           "--dataset", dataset, "--out", out, "--run", run_id, "--init", init]
    if cpu_profile:  # a GPU is here: the framework trains `profile` only if it really runs on it
        cmd += ["--cpu-profile", cpu_profile, "--gpu-seen", gpu or "a GPU"]
    start, timed_out = time.monotonic(), False
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env,
                                errors="replace", start_new_session=True)
        lines = queue.Queue()
        threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
        try:
            while True:
                left = timeout - (time.monotonic() - start)
                try:
                    line = lines.get(timeout=max(0.0, min(left, 1.0)))
                except queue.Empty:
                    if left <= 0:
                        timed_out = True
                        break
                    show(framework, None, time.monotonic() - start)
                    continue
                if line is None:
                    break
                log.write(line)
                show(framework, _progress(line), time.monotonic() - start)
        finally:
            _kill(proc)
    return _collect(framework, profile, dataset, run_id, out, log_path, proc.returncode, timed_out, timeout)


def _progress(line):
    """A `PROGRESS {json}` line's fields, or None for anything else the framework printed."""
    if not line.startswith("PROGRESS "):
        return None
    try:
        fields = json.loads(line[len("PROGRESS "):])
    except ValueError:
        return None
    return fields if isinstance(fields, dict) else None


def _kill(proc):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def _collect(framework, profile, dataset, run_id, out, log_path, code, timed_out, timeout):
    doc, reason = results.read_result(out) if os.path.exists(out) else (None, "no result written")
    if os.path.exists(out):
        os.remove(out)
    if doc is not None and not timed_out:
        return doc
    with open(log_path, errors="replace") as f:
        tail = "".join(f.readlines()[-15:]).strip()
    why = ("timed out after {:.0f} s".format(timeout) if timed_out else
           "exited with code {} ({})".format(code, reason))
    result = results.new_result(framework, profile, dataset, run=run_id, status="failed",
                                error="{}. Last lines of {}:\n{}".format(why, os.path.basename(log_path), tail))
    if doc is not None:  # timed out after writing: keep what it measured, but it is not ok
        result.update({k: v for k, v in doc.items() if k not in ("status", "error")})
    return result


class Progress:
    """One terminal line per framework, rewritten in place on a terminal: the rows done and left, and
    the time left where the plan has estimates (seconds by row)."""

    def __init__(self, frameworks, stream=sys.stderr, estimates=None):
        self.names, self.stream, self.last = frameworks, stream, {}
        self.tty, self.estimates, self.finished = stream.isatty(), estimates or {}, set()

    def left(self, framework, elapsed):
        """Seconds left by the estimates, or None where a row still to run has none."""
        todo = [n for n in self.names if n not in self.finished and n != framework]
        if any(self.estimates.get(n) is None for n in todo + [framework]):
            return None
        return sum(self.estimates[n] for n in todo) + max(0.0, self.estimates[framework] - elapsed)

    def __call__(self, framework, fields, elapsed):
        if fields:
            self.last[framework] = fields
        elif not self.tty:
            return
        f = self.last.get(framework, {})
        epoch = "epoch {}/{} loss {:.3f}".format(f["epoch"], f["epochs"], f["loss"]) if f else "starting"
        left = self.left(framework, elapsed)
        line = "[{} done, {} left{}] {:<17} {:<28} elapsed {:5.0f} s".format(
            len(self.finished), len(self.names) - len(self.finished),
            ", about {:.0f} min".format(left / 60) if left is not None else "", framework, epoch, elapsed)
        self.stream.write(("\r" + line + "\033[K") if self.tty else line + "\n")
        self.stream.flush()

    def done(self, result):
        self.finished.add(result["framework"])
        acc = "{:.1%}".format(result["accuracy"]) if result.get("accuracy") is not None else "-"
        train = "{:.1f} s".format(result["train_seconds"]) if result.get("train_seconds") else "-"
        self.stream.write("{}{:<17} {:<8} train {:>9}  accuracy {:>6}{}\n".format(
            "\r\033[K" if self.tty else "", result["framework"], result["status"], train, acc,
            "  " + result["error"].splitlines()[0] if result.get("error") else ""))
        self.stream.flush()


def same_machine(meta):
    """Whether a run.json's machine is this one (CPU, its features and cores, and GPU)."""
    return meta.get("machine") == dict(results.machine(), gpu=gpu_name())


def estimate(frameworks, profile, dataset, calibration):
    """({row: seconds or None}, how): from the newest complete run on this machine with the same
    profile and dataset that has the row; else from the newest reference run that has it, scaled by
    how much faster this machine ran the calibration (bench.calibrate) than the reference's did."""
    found, how = {}, set()
    sources = [(p, m, 1.0, "the newest run on this machine") for p, m in results.local_runs()
               if same_machine(m)] + [
        (p, m, calibration / m["calibration_seconds"], "the reference run {} scaled by this machine's speed "
         "on a fixed NumPy workload ({:.2f}x its time there)".format(m.get("run"), calibration / m["calibration_seconds"]))
        for p, m in results.local_runs(kind="reference") if m.get("calibration_seconds")]
    for path, meta, scale, source in sources:
        if (meta.get("profile"), meta.get("dataset"), meta.get("init", "glorot"), meta.get("purpose", "")) != (
                profile, dataset, "glorot", ""):
            continue
        for name in frameworks:
            done, _ = results.read_result(os.path.join(path, name + ".json"))
            seconds = results.row_seconds(done) if done and done["status"] == "ok" else None
            if name not in found and seconds:
                found[name] = seconds * scale
                how.add(source)
    return {n: found.get(n) for n in frameworks}, "; ".join(sorted(how)) or "no earlier run to estimate from"


def probe(framework):
    """The tuned row's changes on this device ([{change, on, why}]), from importing its module in its
    environment (cached by code, environment and machine), or a sentence that says why not."""
    path = os.path.join(datasets.CACHE_DIR, "probes", fingerprint([framework], "probe", "none") + ".json")
    got = results.read_object(path)[0]
    if got is None:
        got = run_script(framework, [os.path.join(HERE, "harness.py"), framework, "--probe"], timeout=120)
        if isinstance(got, dict):
            results.write_json(path, got)
    return got["tuning"] if isinstance(got, dict) else got


def not_rerun(frameworks):
    """{tuned row: why} for the tuned rows, run beside their twin, none of whose changes is on here:
    each would be its twin run a second time."""
    out = {}
    for name in frameworks:
        twin = common.ROWS[name].get("twin")
        if twin in frameworks and python_for(name)[0]:
            changes = probe(name)
            if isinstance(changes, list) and changes and not any(c["on"] for c in changes):
                out[name] = ("none of its changes is on for this device ({}), so it would be {} run a "
                             "second time".format("; ".join("{} off: {}".format(c["change"], c["why"])
                                                            for c in changes), twin))
    return out


def print_plan(names, profile, dataset, device, estimates, how, skip):
    """What the run will do, and how long it should take, before it starts."""
    w = sys.stderr.write
    w("plan: {} {}, {} profile, {} dataset, on {}\n".format(len(names), "row" if len(names) == 1 else "rows",
                                                           profile, dataset, device))
    for name in names:
        seconds = estimates.get(name)
        w("  {:<24} {}\n".format(name, "not run: " + skip[name] if name in skip else "about {:.1f} min".format(seconds / 60)
                                 if seconds else "no estimate (never run here or in a reference run)"))
    known = [estimates[n] for n in names if n not in skip and estimates.get(n)]
    unknown = len([n for n in names if n not in skip and not estimates.get(n)])
    if not known:
        w("in all: no estimate, as no run here or in a reference has these rows on this profile and dataset\n")
        return
    w("in all about {:.1f} min{}, estimated from {}\n".format(
        sum(known) / 60, " plus {} {} without an estimate".format(unknown, "row" if unknown == 1 else "rows")
        if unknown else "", how))


def older_code(result):
    """Whether older code than today's measured this result (its row's digest differs); a result of
    a row whose module no longer exists is not compared."""
    name = result["framework"]
    if name not in common.ROWS or not os.path.exists(os.path.join(HERE, common.ROWS[name]["module"] + ".py")):
        return False
    return result.get("code") != row_code(name)


def stale_first(frameworks):
    """The rows with each tuned row after its twin, the groups whose newest reference result older
    code measured first: they are what a reader of the reference most needs measured anew."""
    ref = next((p for p, m in results.local_runs(kind="reference")
                if m.get("init", "glorot") == "glorot" and not m.get("purpose")), None)

    def stale(name):
        done = results.read_result(os.path.join(ref, name + ".json"))[0] if ref else None
        return bool(done) and older_code(done)
    groups = {}
    for name in frameworks:
        groups.setdefault(common.ROWS[name].get("twin", name), []).append(name)
    ordered = sorted(groups.values(), key=lambda group: not any(stale(n) for n in group))  # stable
    return [n for group in ordered for n in group]


# Functions no benchmark run reaches: changing them leaves a row's measurements current.
UNTIMED = ("set_weights", "export_onnx")


def row_code(framework):
    """A digest of the code a row's measurements depend on: its module (a tuned row's twin and
    tuning.py too), without the functions in UNTIMED. A result whose digest differs was measured
    by older code."""
    spec = common.ROWS[framework]
    names = [spec["module"]] + ([common.ROWS[spec["twin"]]["module"], "tuning"] if "twin" in spec else [])
    digest = hashlib.sha256()
    for name in names:
        with open(os.path.join(HERE, name + ".py")) as f:
            source = f.read()
        tree = ast.parse(source)
        kept = [ast.get_source_segment(source, node) for node in tree.body
                if not (isinstance(node, ast.FunctionDef) and node.name in UNTIMED)]
        digest.update(name.encode() + "\n".join(kept).encode())
    return digest.hexdigest()[:16]


def commit():
    """(the checked-out commit, whether tracked files differ from it), or (None, None) outside git."""
    def git(*args):
        return subprocess.run(["git", "-C", common.ROOT] + list(args), capture_output=True, text=True, timeout=30)
    try:
        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None, None
    return (head.stdout.strip(), bool(dirty.stdout.strip())) if head.returncode == 0 else (None, None)


def calibrate(repeats=5):
    """Seconds for a fixed float32 NumPy workload (ten 1024x1024 matrix products), the fastest of
    `repeats`: how fast this machine is against the one a reference run was made on."""
    import numpy as np
    a = np.random.default_rng(0).standard_normal((1024, 1024), dtype=np.float32)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(10):
            a @ a
        times.append(time.perf_counter() - start)
    return min(times)


def find_resumable(profile, dataset, init="glorot", purpose="", kind="runs"):
    """The newest run of `kind` left incomplete with this profile, dataset, init and purpose, or None."""
    for path, meta in results.local_runs(common.RESULTS_DIR, kind):
        if (meta.get("profile"), meta.get("dataset"), meta.get("init", "glorot"), meta.get("purpose", "")) == (
                profile, dataset, init, purpose):
            return path if meta.get("status") == "incomplete" else None
    return None


def start_run(frameworks, profile, dataset, device, resume, init="glorot", purpose="", kind="runs"):
    """A run folder (under data/results/<kind>/) and its run.json: the newest incomplete one of the
    same kind with `resume`, else a new one that records the machine and the commit it runs."""
    path = find_resumable(profile, dataset, init, purpose, kind) if resume else None
    if path:
        meta = results.read_object(os.path.join(path, "run.json"))[0]
        meta["frameworks"] = list(dict.fromkeys(meta["frameworks"] + frameworks))
        sys.stderr.write("resuming incomplete run {}\n".format(meta["run"]))
        return path, meta
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-") + profile + (
        "-own-init" if init == "own" else {"init-cost": "-glorot-init", "": "", profile: ""}.get(purpose, "-" + purpose))
    run_id = next(r for r in [stamp] + ["{}-{}".format(stamp, i) for i in range(2, 100)]
                  if not os.path.exists(results.run_dir(r, kind)))
    path = results.run_dir(run_id, kind)
    head, dirty = commit()
    meta = dict(schema=results.SCHEMA, run=run_id, profile=profile, dataset=dataset, device=device, init=init,
                purpose=purpose, frameworks=frameworks, started=results.now(), finished=None, status="incomplete",
                kind=kind, commit=head, dirty=dirty, calibration_seconds=calibrate(),
                machine=dict(results.machine(), gpu=gpu_name()))
    return path, meta


def open_run(path, meta):
    """Create the run folder and its run.json, or say what to do where it cannot be written."""
    try:
        os.makedirs(path, exist_ok=True)
        results.write_json(os.path.join(path, "run.json"), meta)
    except OSError as e:
        raise common.UsageError("cannot write the results folder {} ({}): make it writable, or set "
                                "ROSETTA_RESULTS_DIR to a folder that is".format(path, e))


def finish_run(path, meta):
    meta.update(status="complete", finished=results.now())
    results.write_json(os.path.join(path, "run.json"), meta)
    results.write_manifest(path)
    sys.stderr.write("results in {}\n".format(os.path.relpath(path, common.ROOT)))


def default_profile(gpu):
    return "full" if gpu else "quick"


def bench(frameworks, profile, dataset, resume=False, timeout=None, skip=None, label="", init="glorot",
          purpose="", extra=None, kind="runs", skip_unchanged=False):
    """Run `frameworks` into one run folder; `skip` maps names to record, unrun, with a reason.
    init="own": the frameworks whose own weight init differs, with it. A run with init="own" or a
    purpose (see init_cost) is never the book's latest run; `extra` goes into its run.json.
    kind="reference": a reference run, to commit (data/results/reference/). skip_unchanged: a tuned
    row none of whose changes is on here is not run beside its twin, and says so."""
    skip = skip or {}
    gpu = gpu_name()
    # Without a profile asked for, each framework's profile follows its device: full on the GPU,
    # quick for one whose build stays on the CPU. PROFILE=full runs full everywhere.
    cpu_profile = "quick" if gpu and not profile else None
    profile = profile or default_profile(gpu)
    common.profile(profile)
    dataset = datasets.resolve(dataset)
    datasets.prepare(dataset)
    path, meta = start_run(frameworks, profile, dataset, gpu or results.cpu_name(), resume, init, purpose, kind)
    meta["label"] = label or meta.get("label") or ""
    meta.update(extra or {})
    open_run(path, meta)
    sys.stderr.write("run {}: profile {}, dataset {}, device {}\n".format(
        meta["run"], profile, dataset, meta["device"]))
    skip = dict(not_rerun(meta["frameworks"]) if skip_unchanged else {}, **skip)
    finished = [f for f in meta["frameworks"] if (results.read_result(os.path.join(path, f + ".json"))[0] or {})
                .get("status") == "ok"]
    todo = [f for f in meta["frameworks"] if f not in finished]
    estimates, how = estimate(todo, profile, dataset, meta.get("calibration_seconds") or calibrate())
    print_plan(todo, profile, dataset, meta["device"], estimates, how, skip)
    show = Progress(todo, estimates=estimates)
    for framework in meta["frameworks"]:  # a resumed run also finishes what it was first asked for
        if framework in finished:
            sys.stderr.write("{:<17} done already in this run\n".format(framework))
            continue
        limit = timeout or common.profile(profile)["timeout"]
        if framework in skip:
            result = results.new_result(framework, profile, dataset, run=meta["run"], status="skipped",
                                        error="not run here: " + skip[framework])
        else:
            result = run_framework(framework, profile, dataset, path, meta["run"], limit, show, init,
                                   cpu_profile, gpu)
        result["code"] = row_code(framework)
        results.write_json(os.path.join(path, framework + ".json"), result)
        show.done(result)
    finish_run(path, meta)
    if init == "glorot" and not purpose and kind == "runs":
        results.set_latest(path)
    return path


def fingerprint(frameworks, profile, dataset, code=("harness", "introspect", "own_init"), also=()):
    """What an init-cost pair (or the parity table) depends on: the code and pinned environments
    the frameworks ran, the profile, the dataset, the machine, and anything in `also`."""
    envs = {common.ROWS[f]["env"] for f in frameworks}
    files = ["code/{}.py".format(n) for n in ("common", "datasets", "weights") + tuple(code)]
    files += ["envs/{}/{}".format(e, n) for e in envs for n in ("requirements.txt", "requirements-gpu.txt")]
    gpu = gpu_name()
    gpu_set = os.environ.get("GPU") or ("1" if gpu else "0")  # the Makefile's default, outside make too
    digest = hashlib.sha256(json.dumps([frameworks, profile, dataset, gpu or results.machine(), gpu_set]
                                       + [row_code(f) for f in frameworks] + list(also)).encode())
    for name in sorted(files):
        path = os.path.join(common.ROOT, name)
        digest.update(name.encode() + (open(path, "rb").read() if os.path.exists(path) else b""))
    return digest.hexdigest()[:16]


def current_pair(key):
    """(Glorot run, own-init run) of a complete init-cost pair made under fingerprint `key`, local or
    committed (a reference made by the same code counts), or None."""
    for kind in ("runs", "reference"):
        for path, meta in results.local_runs(common.RESULTS_DIR, kind):
            twin = meta.get("twin") and results.read_object(os.path.join(results.run_dir(meta["twin"], kind),
                                                                         "run.json"))[0]
            if meta.get("code") == key and meta.get("status") == "complete" and (twin or {}).get("status") == "complete":
                return results.run_dir(meta["twin"], kind), path
    return None


def init_cost(frameworks, profile, dataset, resume=False, timeout=None, kind="runs", only_if_stale=False):
    """What the frameworks' own weight init costs (the defaults chapter): the frameworks whose own
    default is not Glorot-uniform, trained twice on `profile`, with Glorot-uniform and with their
    own default, into two runs that never become the book's latest. A pair that the same code,
    environments, profile, dataset and machine made already (here, or as the reference) is kept, not
    run again. `make html` only says when none is current (only_if_stale): `make bench-defaults` runs it."""
    frameworks = [f for f in frameworks if f in own_init.FRAMEWORKS]
    profile = profile or default_profile(gpu_name())
    dataset = datasets.resolve(dataset)
    key = fingerprint(frameworks, profile, dataset)
    pair = current_pair(key) if kind == "runs" else None
    if pair:
        sys.stderr.write("init cost: runs {} and {} were made by this code already; kept\n".format(
            *(os.path.relpath(p, common.RESULTS_DIR) for p in pair)))
        return pair
    if only_if_stale:
        sys.stderr.write("init cost: no pair of runs made by this code on this machine ({} profile, {}); the "
                         "defaults chapter shows the newest there is, labelled with its machine, date and commit. "
                         "`make bench-defaults` measures it here.\n".format(profile, dataset))
        return None
    glorot = bench(frameworks, profile, dataset, resume, timeout, purpose="init-cost", extra=dict(code=key), kind=kind)
    own = bench(frameworks, profile, dataset, resume, timeout, init="own", purpose="init-cost",
                extra=dict(code=key, twin=os.path.basename(glorot)), kind=kind)
    return glorot, own


def tuning_ablation(frameworks, profile, dataset, timeout=None, kind="runs"):
    """What each change of the tuned rows costs or saves on this machine ("Make it fast"): every
    tuned row once as it is, then once per change with that change flipped (ROSETTA_TUNING), into
    one run (purpose "tuning") that is never the book's latest. Files: <row>.json, <row>@<change>.json."""
    frameworks = [f for f in frameworks if f in common.TUNED]
    profile = profile or default_profile(gpu_name())
    dataset = datasets.resolve(dataset)
    datasets.prepare(dataset)
    path, meta = start_run(frameworks, profile, dataset, gpu_name() or results.cpu_name(), False, purpose="tuning",
                           kind=kind)
    open_run(path, meta)
    limit = timeout or common.profile(profile)["timeout"]
    for framework in frameworks:
        show = Progress([framework])
        base = run_framework(framework, profile, dataset, path, meta["run"], limit, show)
        base["code"] = row_code(framework)
        results.write_json(os.path.join(path, framework + ".json"), base)
        show.done(base)
        for change in base.get("tuning") or []:
            name = "{}@{}".format(framework, change["change"].replace(" ", "_"))
            flip = "{}={}".format(change["change"], 0 if change["on"] else 1)
            result = run_framework(framework, profile, dataset, path, meta["run"], limit, show, name=name,
                                   env_extra=dict(ROSETTA_TUNING=flip))
            result.update(flipped=change["change"], code=base["code"])
            results.write_json(os.path.join(path, name + ".json"), result)
            show.done(result)
    finish_run(path, meta)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frameworks", default="",
                        help="comma-separated names (default: every implemented framework, tuned rows included)")
    parser.add_argument("--profile", default="", help="full, quick, fidelity or smoke (default: full on a GPU, else quick)")
    parser.add_argument("--dataset", default="auto", help="auto, cifar10, fashion-mnist or synthetic")
    parser.add_argument("--resume", action="store_true",
                        help="continue the newest incomplete run of this profile and dataset")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per framework")
    parser.add_argument("--skip", action="append", default=[], metavar="NAME=REASON",
                        help="record NAME as skipped with REASON instead of running it (repeatable)")
    parser.add_argument("--label", default="", help="a name for the run, shown in the book")
    parser.add_argument("--init", default="glorot", choices=["glorot", "own"],
                        help="own: the frameworks whose own weight init differs, run with it")
    parser.add_argument("--init-cost", action="store_true",
                        help="a Glorot run and an own-init run of those frameworks, for the defaults chapter")
    parser.add_argument("--tuning", action="store_true",
                        help="each tuned row as it is and with each of its changes flipped (Make it fast)")
    parser.add_argument("--inference", action="store_true",
                        help="each framework's predict against ONNX Runtime on its exported file (Export and serve)")
    parser.add_argument("--scale-out", action="store_true",
                        help="each row with a data-parallel module as one process and as two (Scale out)")
    parser.add_argument("--only-if-stale", action="store_true",
                        help="with --init-cost: keep a pair made by this code (here or committed), never run one")
    parser.add_argument("--reference", action="store_true",
                        help="a reference run, into data/results/reference/ to be committed (make reference)")
    args = parser.parse_args(argv)
    kind = "reference" if args.reference else "runs"
    # Started from a shell that ignores SIGINT (a background job, nohup), Python leaves it ignored:
    # Ctrl-C (SIGINT) must still stop a run and mark it incomplete.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        frameworks = (common.parse_frameworks(args.frameworks) if args.frameworks
                      else common.implemented_frameworks(tuned=True))
        if args.init == "own" or args.init_cost:
            frameworks = [f for f in frameworks if f in own_init.FRAMEWORKS]
            if not frameworks:
                sys.stderr.write("no framework here has an own weight init to measure\n")
                return 0
        if args.profile:
            common.profile(args.profile)
        common.check_choice("dataset", args.dataset, common.DATASETS)
        skip = dict(item.split("=", 1) for item in args.skip if "=" in item)
        if len(skip) != len(args.skip):
            raise common.UsageError("--skip takes NAME=REASON")
        if skip:
            common.parse_frameworks(",".join(skip))
        if args.init_cost:
            init_cost(frameworks, args.profile or None, args.dataset, args.resume, args.timeout, kind,
                      args.only_if_stale)
            return 0
        if args.scale_out:
            import scale_out
            chosen = [f for f in frameworks if f in scale_out.ROWS] if args.frameworks else list(scale_out.ROWS)
            if not chosen:
                raise common.UsageError("--scale-out runs the rows with a data-parallel module: {}".format(
                    ", ".join(scale_out.ROWS)))
            scale_out.run(chosen, args.profile or None, args.dataset, kind, args.resume)
            return 0
        if args.inference:
            import onnx_check
            onnx_check.inference([f for f in frameworks if f in common.FRAMEWORKS], kind)
            return 0
        if args.tuning:
            if not any(f in common.TUNED for f in frameworks):
                raise common.UsageError("--tuning measures the tuned rows: name some (FRAMEWORKS=pytorch-tuned,...)")
            tuning_ablation(frameworks, args.profile or None, args.dataset, args.timeout, kind)
            return 0
        if not args.frameworks and kind == "runs":
            frameworks = stale_first(frameworks)
        bench(frameworks + [n for n in skip if n not in frameworks], args.profile or None, args.dataset,
              args.resume, args.timeout, skip, args.label, args.init, kind=kind,
              skip_unchanged=kind == "runs" and args.init == "glorot")
    except (common.UsageError, datasets.DatasetError) as e:
        sys.stderr.write("error: {}\n".format(e))
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted: the run is marked incomplete; `make html` (or bench.py "
                         "--resume) continues it\n")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
