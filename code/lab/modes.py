"""The runs the command line makes: the rows into one run (make bench, make html), the own-init pair
of the defaults chapter (make bench-defaults) and the tuning ablation (make bench-tuning).
"""
import os
import sys

import common
import datasets

from lab import digest, envs, own_init, plan, results, runner, runs


def bench(frameworks, profile, dataset, resume=False, timeout=None, skip=None, label="", init="glorot",
          purpose="", extra=None, kind="runs", skip_unchanged=False):
    """Run `frameworks` into one run folder; `skip` maps names to record, unrun, with a reason.
    init="own": the frameworks whose own weight init differs, with it. A run with init="own" or a
    purpose (see init_cost) is never the book's latest run; `extra` goes into its run.json.
    kind="reference": a reference run, to commit (data/results/reference/). skip_unchanged: a tuned
    row none of whose changes is on here is not run beside its twin, and says so."""
    skip = skip or {}
    gpu = envs.gpu_name()
    # Without a profile asked for, each framework's profile follows its device: full on the GPU,
    # quick for one whose build stays on the CPU. PROFILE=full runs full everywhere.
    cpu_profile = "quick" if gpu and not profile else None
    profile = profile or runs.default_profile(gpu)
    model = common.model_of(frameworks)
    purpose = purpose or common.MODELS[model]["purpose"]  # part II's runs are never the CNN's latest
    common.profile(profile, model)
    data = common.model_module(model, "data")
    dataset = data.resolve(dataset)
    data.prepare(dataset)
    path, meta = runs.start_run(frameworks, profile, dataset, gpu or results.cpu_name(), resume, init, purpose, kind)
    meta["label"] = label or meta.get("label") or ""
    meta.update(extra or {})
    runs.open_run(path, meta)
    sys.stderr.write("run {}: profile {}, dataset {}, device {}\n".format(
        meta["run"], profile, dataset, meta["device"]))
    skip = dict(plan.not_rerun(meta["frameworks"]) if skip_unchanged else {}, **skip)
    finished = [f for f in meta["frameworks"] if (results.read_result(os.path.join(path, f + ".json"))[0] or {})
                .get("status") == "ok"]
    todo = [f for f in meta["frameworks"] if f not in finished]
    estimates, how = plan.estimate(todo, profile, dataset, meta.get("calibration_seconds") or runs.calibrate(), purpose)
    plan.print_plan(todo, profile, dataset, meta["device"], estimates, how, skip)
    show = runner.Progress(todo, estimates=estimates)
    for framework in meta["frameworks"]:  # a resumed run also finishes what it was first asked for
        if framework in finished:
            sys.stderr.write("{:<17} done already in this run\n".format(framework))
            continue
        limit = timeout or common.profile(profile, model)["timeout"]
        if framework in skip:
            result = results.new_result(framework, profile, dataset, run=meta["run"], status="skipped",
                                        error="not run here: " + skip[framework])
        else:
            result = runner.run_framework(framework, profile, dataset, path, meta["run"], limit, show, init,
                                   cpu_profile, gpu)
        result["code"] = digest.row_code(framework)
        results.write_json(os.path.join(path, framework + ".json"), result)
        show.done(result)
    if "baseline" in common.MODELS[model]:
        write_baseline(path, model, profile, dataset)
    runs.finish_run(path, meta)
    if init == "glorot" and not purpose and kind == "runs":
        results.set_latest(path)
    return path


def write_baseline(path, model, profile, dataset):
    """A model's baseline beside its rows (part II's bag of words), on the same reviews, once per run."""
    out = os.path.join(path, results.BASELINE)
    if results.read_object(out)[0]:
        return
    found = common.model_module(model, common.MODELS[model]["baseline"]).baseline(dataset, common.profile(profile, model))
    results.write_json(out, dict(found, dataset=dataset, profile=profile))


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
    profile = profile or runs.default_profile(envs.gpu_name())
    dataset = datasets.resolve(dataset)
    key = digest.fingerprint(frameworks, profile, dataset)
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
    profile = profile or runs.default_profile(envs.gpu_name())
    dataset = datasets.resolve(dataset)
    datasets.prepare(dataset)
    path, meta = runs.start_run(frameworks, profile, dataset, envs.gpu_name() or results.cpu_name(), False, purpose="tuning",
                           kind=kind)
    runs.open_run(path, meta)
    limit = timeout or common.profile(profile)["timeout"]
    for framework in frameworks:
        show = runner.Progress([framework])
        base = runner.run_framework(framework, profile, dataset, path, meta["run"], limit, show)
        base["code"] = digest.row_code(framework)
        results.write_json(os.path.join(path, framework + ".json"), base)
        show.done(base)
        for change in base.get("tuning") or []:
            name = "{}@{}".format(framework, change["change"].replace(" ", "_"))
            flip = "{}={}".format(change["change"], 0 if change["on"] else 1)
            result = runner.run_framework(framework, profile, dataset, path, meta["run"], limit, show, name=name,
                                   env_extra=dict(ROSETTA_TUNING=flip))
            result.update(flipped=change["change"], code=base["code"])
            results.write_json(os.path.join(path, name + ".json"), result)
            show.done(result)
    runs.finish_run(path, meta)
    return path
