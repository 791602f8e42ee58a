"""Before a run: how long each row should take, which tuned rows would only repeat their twin, what
the run will do, and which rows to run first.
"""
import json
import os
import sys

import common
import datasets
from lab import digest, envs, results, runs


def estimate(frameworks, profile, dataset, calibration, purpose=""):
    """({row: seconds or None}, how): from the newest complete run on this machine with the same
    profile and dataset that has the row; else from the newest reference run that has it, scaled by
    how much faster this machine ran the calibration (runs.calibrate) than the reference's did."""
    found, how = {}, set()
    sources = [(p, m, 1.0, "the newest run on this machine") for p, m in results.local_runs()
               if runs.same_machine(m)] + [
        (p, m, calibration / m["calibration_seconds"], "the reference run {} scaled by this machine's speed "
         "on a fixed NumPy workload ({:.2f}x its time there)".format(m.get("run"), calibration / m["calibration_seconds"]))
        for p, m in results.local_runs(kind="reference") if m.get("calibration_seconds")]
    for path, meta, scale, source in sources:
        if (meta.get("profile"), meta.get("dataset"), meta.get("init", "glorot"), meta.get("purpose", "")) != (
                profile, dataset, "glorot", purpose):
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
    environment (cached by code, environment, machine and what its ablation measured), or a sentence
    that says why not."""
    measured = sorted(runs.ablation(framework).items())  # a new ablation can switch a change off
    path = os.path.join(datasets.CACHE_DIR, "probes", digest.fingerprint([framework], "probe", "none", also=[
        json.dumps(measured)]) + ".json")
    got = results.read_object(path)[0]
    if got is None:
        got = envs.run_script(framework, "harness", [framework, "--probe"], timeout=120)
        if isinstance(got, dict):
            results.write_json(path, got)
    return got["tuning"] if isinstance(got, dict) else got


def not_rerun(frameworks):
    """{tuned row: why} for the tuned rows, run beside their twin, none of whose changes is on here:
    each would be its twin run a second time."""
    out = {}
    for name in frameworks:
        twin = common.ROWS[name].get("twin")
        if twin in frameworks and envs.python_for(name)[0]:
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
    w("in all about {:.1f} min{}, estimated from {}; the countdown goes at the pace of the rows done\n".format(
        sum(known) / 60, " plus {} {} without an estimate".format(unknown, "row" if unknown == 1 else "rows")
        if unknown else "", how))


# The rows each check's table covers, for a model.
CHECK_ROWS = {"parity": lambda model: common.implemented_frameworks(tuned=True, model=model),
              "onnx": lambda model: common.implemented_frameworks(model=model),
              "scale-out": lambda model: list(common.PARALLEL),
              "features": lambda model: common.implemented_frameworks(model=model),
              "defaults": lambda model: common.implemented_frameworks(model=model)}


def whole(profile, dataset):
    """make html's first lines: every part's rows and what they should take, then each check table
    the book's pages show, made already by this code on a machine of this kind (cached here or
    committed) or measured while the book builds."""
    w = sys.stderr.write
    gpu, calibration = envs.gpu_name(), runs.calibrate()
    profile = profile or runs.default_profile(gpu)
    w("make html: every part's rows, then the book\n")
    for model, spec in common.MODELS.items():
        names = common.implemented_frameworks(tuned=True, model=model)
        data = common.model_module(model, "data").resolve(dataset if dataset in common.datasets_of(model) else "auto")
        skip = not_rerun(names)
        estimates, how = estimate([n for n in names if n not in skip], profile, data, calibration, spec["purpose"])
        known = [s for s in estimates.values() if s]
        w("  {}: {} rows{}, {} profile, {} dataset: {}\n".format(
            spec["label"], len(names) - len(skip), " ({} tuned not run: none of its changes is on here)".format(
                len(skip)) if skip else "", profile, data,
            "about {:.1f} min{}".format(sum(known) / 60, "" if len(known) == len(estimates) else " and {} rows "
                                        "without an estimate".format(len(estimates) - len(known))) if known else how))
    for model, spec in common.MODELS.items():
        for check in spec.get("book_checks", ()):
            w("  the book's {} table ({}): {}\n".format(check, model, table_source(check, CHECK_ROWS[check](model))))


def table_source(check, rows):
    """Where the book's table of `check` for `rows` will come from, as make html's plan says it."""
    missing = [n for n in rows if envs.python_for(n)[0] is None]
    if missing:
        return "from the committed reference ({} without an environment here)".format(", ".join(missing))
    if runs.fresh_wanted(check):
        return "measured again (FRESH)" + took(check, rows)
    found = runs.checked_found(check, digest.check_key(rows, check))
    if not found:
        return "measured while the book builds" + took(check, rows)
    return "as {} made it with this code (not measured again)".format(
        "the reference run " + found["reference"]["run"] if "reference" in found else "this machine")


def took(check, rows):
    """How long the newest committed table of `check` for `rows` (or their tabs) took to measure, and
    where: what measuring it here should take, roughly."""
    for run, _ in results.local_runs(kind="reference"):
        found = results.read_object(os.path.join(run, check + ".json"))[0] or {}
        keys = set(found.get("table") or ())
        if found.get("seconds") and (set(rows) <= keys or {common.tab(n) for n in rows} <= keys):
            return ": about {:.1f} min, as on {} ({})".format(found["seconds"] / 60, found.get("machine"), os.path.basename(run))
    return ""


def stale_first(frameworks):
    """The rows with each tuned row after its twin, the groups whose newest reference result older
    code measured first: they are what a reader of the reference most needs measured anew."""
    ref = next((p for p, m in results.local_runs(kind="reference")
                if m.get("init", "glorot") == "glorot" and not m.get("purpose")), None)

    def stale(name):
        done = results.read_result(os.path.join(ref, name + ".json"))[0] if ref else None
        return bool(done) and digest.older_code(done)
    groups = {}
    for name in frameworks:
        groups.setdefault(common.ROWS[name].get("twin", name), []).append(name)
    ordered = sorted(groups.values(), key=lambda group: not any(stale(n) for n in group))  # stable
    return [n for group in ordered for n in group]
