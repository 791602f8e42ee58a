"""Run folders: where a run's results go, its run.json (the machine, the commit, a calibration),
finding an incomplete one to resume, and closing one with its manifest. Part of the lab's lowest floor.
"""
import datetime
import functools
import os
import subprocess
import sys
import time

import common
import datasets
from lab import results
from lab.envs import gpu_name


def same_machine(meta):
    """Whether a run.json's machine is this one (CPU, its features and cores, and GPU)."""
    return meta.get("machine") == dict(results.machine(), gpu=gpu_name())


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


@functools.lru_cache()  # once a process: the tests start many runs
def peak(budget=0.3):
    """The fastest square matrix product this machine ran, per precision: {precision: {"flops": FLOP/s,
    "by": what ran it}}. NumPy's and torch's (on the GPU where torch sees one), at several sizes, each
    timed alone for about `budget` seconds after one unmeasured call, the fastest counting (other
    work can slow a product, never speed it up): the measured peak that a row's FLOP/s are a share of."""
    import numpy as np
    found = {}

    def measure(precision, by, product, n, sync=lambda: None):
        product()
        sync()
        fastest, start = float("inf"), time.perf_counter()
        while time.perf_counter() - start < budget:
            begin = time.perf_counter()
            product()
            sync()
            fastest = min(fastest, time.perf_counter() - begin)
        flops = 2 * n ** 3 / fastest
        if flops > found.get(precision, {}).get("flops", 0):
            found[precision] = dict(flops=flops, by="{}, n={}".format(by, n))
    for n in (512, 1024, 2048):
        a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
        measure("float32", "NumPy {} matmul".format(np.__version__), lambda: a @ a, n)
    try:
        import torch
    except ImportError:
        return found
    gpu = torch.cuda.is_available()  # a GPU's peak wants larger products
    # bf16 only where the hardware has it: a tuned row computes in it only there (tuning.cpu_bf16),
    # and emulated, a product of 2048 takes seconds
    bf16 = gpu or {"avx512_bf16", "amx_bf16"} & set(results.cpu_features())
    for n in (2048, 4096, 8192) if gpu else (512, 1024, 2048):
        for precision in ("float32", "bfloat16") if bf16 else ("float32",):
            t = torch.randn(n, n, device="cuda" if gpu else "cpu").to(getattr(torch, precision))
            measure(precision, "torch {} mm on {}".format(torch.__version__, "the GPU" if gpu else "the CPU"),
                    lambda: torch.mm(t, t), n, torch.cuda.synchronize if gpu else lambda: None)
    return found


def fresh_wanted(check):
    """Whether FRESH (make html FRESH=all, or FRESH=parity,onnx,scale-out) asks to measure `check` again."""
    wanted = os.environ.get("FRESH", "").replace(" ", "").split(",")
    return "all" in wanted or check in wanted


def checked_found(check, key, root=None):
    """The table of `check` made under `key`: cached here, else committed in a reference run (with
    a "reference" field that says which), else None."""
    found = results.read_object(os.path.join(datasets.CACHE_DIR, check, key + ".json"))[0]
    if found:
        return found
    for run, meta in results.local_runs(root or common.RESULTS_DIR, "reference"):
        found = results.read_object(os.path.join(run, check + ".json"))[0]
        if found and found.get("key") == key:
            # the table's own commit: part II's are added to the run of its rows, made earlier
            return dict(found, reference=dict(run=os.path.basename(run), commit=found.get("commit") or meta.get("commit")))
    return None


MEASURED = {}  # (check, key) -> the complete table this process measured


def checked_table(check, key, measure, fresh=False, cached_only=False, root=None):
    """A check's table (parity, onnx, scale-out: a proof about code, not a benchmark): the one cached
    here or committed in a reference run (its <check>.json) under the same `key` (digest.check_key),
    unless `fresh` or FRESH asks for it again; else measure() (with `cached_only`, None). One taken
    from a reference says which in its "reference" field. A table with a failure is not cached. `root`:
    the results folder whose reference runs count (default common.RESULTS_DIR; the tests, which run
    with a results folder of their own, name the repository's)."""
    from lab import digest
    if fresh or fresh_wanted(check):  # FRESH measures a table once: a page may ask for it twice
        found = None if fresh else MEASURED.get((check, key))
    else:
        found = checked_found(check, key, root)
    if found or cached_only:
        return found
    start = time.perf_counter()
    measured, complete = measure()
    # the kind of machine the key was made on, the commit, and how long the check took
    measured.update(key=key, kind=digest.machine_kind(), commit=commit()[0], seconds=time.perf_counter() - start)
    if complete:
        results.write_json(os.path.join(datasets.CACHE_DIR, check, key + ".json"), measured)
        MEASURED[(check, key)] = measured
    return measured


def tuning_runs(root=None, kind=None):
    """[(run, path, meta)] of the complete ablations (make bench-tuning) here and committed, newest
    first; only those made on a machine of `kind` ((CPU features, GPU)) where it is given."""
    found = []
    for where in ("runs", "reference"):
        for path, meta in results.local_runs(root or common.RESULTS_DIR, where):
            made_on = meta.get("machine") or {}
            if meta.get("purpose") == "tuning" and meta.get("status") == "complete" and (
                    kind is None or (made_on.get("features"), made_on.get("gpu")) == kind):
                found.append((meta["run"], path, meta))
    return sorted(found, key=lambda item: item[0], reverse=True)  # by run name: its start time


def ablations(row, root=None, machine=None):
    """{change: dict(speedup, run, older, on, why)} for each change of tuned `row`: steady epoch without
    it over with it, from the ablations made on a machine of this kind (the same CPU features and GPU
    as `machine`, a run.json's; default this one). The newest that today's code of the row measured
    wins (lab.digest.row_code); else the newest, with older True. on, why: the change in its base row."""
    from lab import digest
    kind = (machine.get("features"), machine.get("gpu")) if machine else (results.cpu_features(), gpu_name())
    out = {}
    for run, path, _ in tuning_runs(root, kind):
        docs = {r.get("flipped"): r for r in results.load_run(path)[1] if r["framework"] == row}
        base = docs.get(None)
        older = bool(base) and digest.older_code(base, "tuning")
        for change in (base or {}).get("tuning") or []:
            flipped, known = docs.get(change["change"]), out.get(change["change"])
            if flipped and results.steady(base) and results.steady(flipped) and (
                    known is None or (known["older"] and not older)):
                with_, without = (base, flipped) if change["on"] else (flipped, base)
                out[change["change"]] = dict(speedup=results.steady(without) / results.steady(with_), run=run,
                                             older=older, on=change["on"], why=change["why"])
    return out


def ablation(row, root=None, machine=None):
    """{change: (speed-up, run)} from the newest ablation that today's code of the row measured on a
    machine of this kind: what tuning.change reads, through the harness, to keep a measured loss off.
    An ablation of older code of the row keeps nothing off (the pages say where one measured a loss)."""
    return {change: (found["speedup"], found["run"]) for change, found in ablations(row, root, machine).items()
            if not found["older"]}


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
                kind=kind, commit=head, dirty=dirty, calibration_seconds=calibrate(), peak_flops=peak(),
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
