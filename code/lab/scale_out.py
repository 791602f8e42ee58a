"""Scale out: a framework's data-parallel module run as two processes on its own distributed
engine, and checked against one process.

    python -m lab.scale_out FRAMEWORK OUT_DIR      (each rank, in the framework's environment)

Each rank builds the model, puts in the shared weights (parity.py's), and trains parity.STEPS steps
on the shared batches of 64 with dropout off, each rank on its share of every batch; it writes its
losses to OUT_DIR/rank<r>.json and its weights to OUT_DIR/rank<r>.npz. `equivalence` (in the main
environment) starts the ranks with the framework's launcher (launch.py), ends the whole process group at a time
limit, and compares: the losses and weights with the NumPy reference's for the whole batch (2 x 32
must be 1 x 64), and the ranks' weights with each other, bit for bit.
"""
import json
import os
import signal
import sys
from itertools import islice

import numpy as np

import common
import datasets
from lab import launch
from lab.launch import WORLD


# --- In each rank ---------------------------------------------------------------------------------

def fault(rank):
    """ROSETTA_SCALE_FAULT=kill|raise|hang: rank 1 dies, raises or hangs after its first step (the tests)."""
    what = os.environ.get("ROSETTA_SCALE_FAULT") if rank == 1 else None
    if what == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif what == "raise":
        raise RuntimeError("rank 1 raised, as ROSETTA_SCALE_FAULT asked")
    elif what == "hang":
        import time
        time.sleep(3600)


def rank_run(framework, out_dir):
    from lab import parity
    parity.no_dropout(common.tab(framework))
    neutral = parity.oracle(common.ROWS[framework]["model"])[0]
    module = common.model_module(common.ROWS[framework]["model"], common.PARALLEL[framework]["module"])
    x_train, _, y_train, _ = module.load_data("synthetic", parity.PROFILE)
    batches = list(islice(datasets.minibatches(x_train, y_train), parity.STEPS))
    model = module.create_model()
    trainer = module.init_model(model)
    module.set_weights(model, neutral.random_weights(parity.WEIGHT_SEED))
    info = module.runtime_info()
    losses = []
    for batch in batches:
        losses.append(module.train_epoch(trainer, iter([batch])))
        fault(info["rank"])
    neutral.save(os.path.join(out_dir, "rank{}.npz".format(info["rank"])), module.get_weights(model))
    with open(os.path.join(out_dir, "rank{}.json".format(info["rank"])), "w") as f:
        json.dump(dict(losses=losses, info=info), f)


def rank_train(framework, out_dir, profile, dataset):
    """The harness's steps (harness.run: load, build, train the profile's epochs, predict), with the
    data-parallel module in the row's place; the rank's result goes to OUT_DIR/rank<r>.json."""
    from lab import harness, results
    common.ROWS[framework] = dict(common.ROWS[framework], module=common.PARALLEL[framework]["module"])
    result = results.new_result(framework, profile, dataset)
    try:
        harness.run(framework, profile, dataset, result)
        result["status"] = "ok"
    finally:  # what was measured is kept, and the error says why
        result["finished"] = results.now()
        results.write_json(os.path.join(out_dir, "rank{}.json".format(result.get("rank", rank_seen()))), result)


def rank_seen():
    return os.environ.get("RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "?"))


# --- In the main environment ------------------------------------------------------------------------

def compare(framework, out_dir):
    """The ranks' losses and weights against the NumPy reference (batch 64), and each other."""
    from lab import parity
    neutral, reference = parity.oracle(common.ROWS[framework]["model"])
    shared = neutral.random_weights(parity.WEIGHT_SEED)
    ref_losses, ref_trained = reference.train(shared, parity.reference_batches())
    ranks = []
    for r in range(WORLD):
        with open(os.path.join(out_dir, "rank{}.json".format(r))) as f:
            ranks.append(dict(json.load(f), weights=neutral.load(os.path.join(out_dir, "rank{}.npz".format(r)))))
    trained = ranks[0]["weights"]
    losses = np.mean([rank["losses"] for rank in ranks], axis=0)  # each rank's share: the batch's, averaged
    return dict(world_size=WORLD, engine=ranks[0]["info"].get("engine"),
                devices=[rank["info"].get("device") for rank in ranks],
                losses=parity.max_diff(losses, ref_losses), **parity.after_steps(trained, ref_trained, shared),
                losses_seen=[float(v) for v in losses], reference_losses=[float(v) for v in ref_losses],
                ranks_identical=all(np.array_equal(a, b) for rank in ranks[1:]
                                    for pa, pb in zip(trained, rank["weights"]) for a, b in zip(pa, pb)))


def equivalence(framework, timeout=300):
    """One framework's two-process run against the reference: compare's row, or {"error": why}."""
    import tempfile
    datasets.prepare("synthetic")
    with tempfile.TemporaryDirectory(prefix="rosetta-scale-") as out_dir:
        failed = launch.launch(framework, out_dir, timeout)
        if failed:
            return dict(error=failed)
        row = compare(framework, out_dir)
    row["launcher"] = common.PARALLEL[framework]["launcher"]
    return row


def table(frameworks, fresh=False, root=None):
    """{"measured": when, "machine": where, "table": {framework: equivalence's row}}: measured now if
    `fresh`, else the one this code, these environments and a machine of this kind measured, cached or
    committed (runs.checked_table, under `root`'s reference runs), so neither the tests nor a book built
    after them launch every row again."""
    from lab import digest, envs, results, runs

    def measure():
        measured = dict(measured=results.now(), machine=envs.gpu_name() or results.cpu_name(),
                        table={f: equivalence(f) for f in frameworks})
        return measured, all("error" not in row for row in measured["table"].values())
    return runs.checked_table("scale-out", digest.check_key(frameworks, "scale-out"), measure, fresh, root=root)


def train(framework, profile, dataset, world, timeout):
    """The profile's training as `world` processes: (rank 0's result, [each rank's]) or (None, why)."""
    import tempfile
    from lab import results
    with tempfile.TemporaryDirectory(prefix="rosetta-scale-") as out_dir:
        failed = launch.launch(framework, out_dir, timeout, world, [profile, dataset])
        if failed:
            return None, failed
        ranks = [results.read_object(os.path.join(out_dir, "rank{}.json".format(r)))[0] for r in range(world)]
    return ranks[0], ranks


def run(frameworks, profile, dataset, kind="runs", resume=False):
    """make scale-out: per framework, the equivalence check, then the profile's training as one
    process with every core and as WORLD processes with a share each, into one run (purpose
    "scale-out") that is never the book's latest; a framework's result is written when it is done,
    so a failure or an interruption keeps the others'. Returns the run's folder."""
    from lab import digest, envs, results, runs
    profile = profile or runs.default_profile(envs.gpu_name())
    dataset = datasets.resolve(dataset)
    datasets.prepare(dataset)  # and equivalence, the synthetic one
    path, meta = runs.start_run(frameworks, profile, dataset, envs.gpu_name() or results.cpu_name(), resume,
                                purpose="scale-out", kind=kind)
    runs.open_run(path, meta)
    limit = common.profile(profile)["timeout"]
    for name in frameworks:
        out = os.path.join(path, name + ".json")
        if os.path.exists(out) and results.read_object(out)[0].get("status") == "ok":
            continue  # resumed: done already
        result = results.new_result(name, profile, dataset, run=meta["run"], world_size=WORLD,
                                    module=common.PARALLEL[name]["module"], launcher=common.PARALLEL[name]["launcher"],
                                    code=digest.scale_out_code(name))
        result["equivalence"] = equivalence(name)
        errors = [result["equivalence"].get("error")]
        for world in (1, WORLD):
            first, ranks = train(name, profile, dataset, world, limit)
            if first is None:
                errors.append("{} process{}: {}".format(world, "es" if world > 1 else "", ranks))
                continue
            keep = ("epoch_seconds", "losses", "accuracy", "cpu_busy", "device", "rank")
            result["processes_{}".format(world)] = dict({k: first.get(k) for k in keep},
                                                       ranks=[{k: r.get(k) for k in keep} for r in ranks])
            if world == WORLD:
                result.update({k: first.get(k) for k in ("framework_version", "engine", "device", "gpu", "epoch_seconds",
                                                         "losses", "accuracy", "params")},
                              devices=[r.get("device") for r in ranks])
        if not any(errors) and not passes(result["equivalence"]):
            errors.append("two processes do not compute what one does: see the equivalence figures")
        result.update(status="failed" if any(errors) else "ok", error="; ".join(e for e in errors if e) or None,
                      finished=results.now())
        results.write_json(out, result)
        sys.stderr.write("{:<12}{:<8} {}\n".format(name, result["status"], result["error"] or ""))
    runs.finish_run(path, meta)
    return path


def passes(row):
    from lab import parity
    return ("error" not in row and row["ranks_identical"] and row["update"] < parity.UPDATE_TOLERANCE
            and max(row["losses"], row["weights"]) < parity.TOLERANCE)


if __name__ == "__main__":
    try:
        if len(sys.argv) > 3:  # FRAMEWORK OUT_DIR PROFILE DATASET: a training run (make scale-out)
            rank_train(*sys.argv[1:5])
        else:
            rank_run(sys.argv[1], sys.argv[2])
    except BaseException as e:  # out at once: an engine's exit handlers may wait for the other ranks
        import time
        import traceback
        traceback.print_exc()
        sys.stderr.flush()
        with open(os.path.join(sys.argv[2], "rank{}.error".format(rank_seen())), "w") as f:
            json.dump(dict(time=time.time(), error="{}: {}".format(type(e).__name__, e)), f)
        os._exit(1)
