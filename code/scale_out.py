"""Scale out: a framework's data-parallel module run as two processes on its own distributed
engine, and checked against one process.

    python code/scale_out.py FRAMEWORK OUT_DIR      (each rank, in the framework's environment)

Each rank builds the model, puts in the shared weights (parity.py's), and trains parity.STEPS steps
on the shared batches of 64 with dropout off, each rank on its share of every batch; it writes its
losses to OUT_DIR/rank<r>.json and its weights to OUT_DIR/rank<r>.npz. `equivalence` (in the main
environment) starts the ranks with the framework's launcher, ends the whole process group at a time
limit, and compares: the losses and weights with the NumPy reference's for the whole batch (2 x 32
must be 1 x 64), and the ranks' weights with each other, bit for bit.
"""
import importlib
import json
import os
import re
import signal
import subprocess
import sys
from itertools import islice

import numpy as np

import common
import datasets
import weights as neutral

HERE = os.path.abspath(__file__)
WORLD = 2  # processes: two on this 2-core machine, one thread each
# framework -> its data-parallel module and how its ranks are started (see `processes`)
ROWS = {"pytorch": dict(module="cnn_pytorch_parallel", launcher="torchrun"),
        "keras-jax": dict(module="cnn_keras_parallel", launcher="jax"),
        "keras-torch": dict(module="cnn_keras_torch_parallel", launcher="torchrun"),
        "jax": dict(module="cnn_jax_parallel", launcher="jax"),
        "tensorflow": dict(module="cnn_tensorflow_parallel", launcher="tf"),
        "mxnet": dict(module="cnn_mxnet_parallel", launcher="dmlc"),
        "chainer": dict(module="cnn_chainer_parallel", launcher="mpiexec"),
        "caffe2": dict(module="cnn_caffe2_parallel", launcher="gloo"),
        "cntk": dict(module="cnn_cntk_parallel", launcher="mpiexec"),
        "keras-cntk": dict(module="cnn_keras2_parallel", launcher="mpiexec")}

# The same module on two machines with eight GPUs each: only the launch changes (the chapter shows
# these; none was run here). HOST0 is the first machine, OUT a folder every process sees; a process
# that must not see every GPU is shown its own by its local rank.
TORCHRUN = ("torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST0:29400 \\\n"
            "  code/scale_out.py {} OUT    # on each machine: one process per GPU, NCCL")
COORDINATOR = ("JAX_COORDINATOR_ADDRESS=HOST0:1234 WORLD_SIZE=2 RANK=0 python code/scale_out.py {} OUT\n"
               "# RANK=1 on the second machine; each process takes every GPU of its machine")
ONE_GPU = "CUDA_VISIBLE_DEVICES=$OMPI_COMM_WORLD_LOCAL_RANK exec python code/scale_out.py {} OUT"
CLUSTER = {
    "pytorch": TORCHRUN.format("pytorch"),
    "keras-jax": COORDINATOR.format("keras-jax"),
    "keras-torch": TORCHRUN.format("keras-torch"),
    "jax": COORDINATOR.format("jax"),
    "tensorflow": "TF_CONFIG='{\"cluster\": {\"worker\": [\"HOST0:2222\", \"HOST1:2222\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}' \\\n"
                  "  CUDA_VISIBLE_DEVICES=0 python code/scale_out.py tensorflow OUT\n"
                  "# one worker per GPU, each listed in the cluster with its own port and index",
    "mxnet": "export DMLC_PS_ROOT_URI=HOST0 DMLC_PS_ROOT_PORT=9091 DMLC_NUM_SERVER=2 DMLC_NUM_WORKER=16\n"
             "DMLC_ROLE=scheduler python -c 'import mxnet' &    # on HOST0 only\n"
             "DMLC_ROLE=server python -c 'import mxnet' &       # one server per machine\n"
             "DMLC_ROLE=worker CUDA_VISIBLE_DEVICES=0 python code/scale_out.py mxnet OUT    # one per GPU",
    "chainer": "mpiexec -n 16 -H HOST0:8,HOST1:8 bash -c '" + ONE_GPU.format("chainer") + "'",
    "caffe2": "RANK=0 WORLD_SIZE=16 GLOO_FILE_STORE=/shared/rendezvous CUDA_VISIBLE_DEVICES=0 \\\n"
              "  python code/scale_out.py caffe2 OUT    # one per GPU; the folder on a file system all machines share",
    "cntk": "mpiexec -n 16 -H HOST0:8,HOST1:8 bash -c '" + ONE_GPU.format("cntk") + "'",
    "keras-cntk": "mpiexec -n 16 -H HOST0:8,HOST1:8 -x KERAS_BACKEND=cntk bash -c '" + ONE_GPU.format("keras-cntk") + "'",
}


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
    import parity
    parity.no_dropout(common.tab(framework))
    module = importlib.import_module(ROWS[framework]["module"])
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
    import harness
    import results
    common.ROWS[framework] = dict(common.ROWS[framework], module=ROWS[framework]["module"])
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

CHOSEN = []  # the ports free_port gave the launch under way


def free_port():
    """A port no one listens on now, for a coordinator (the launchers that choose their own need none).
    Another process may take it before the rank binds it: `launch` then starts again."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        CHOSEN.append(s.getsockname()[1])
        return CHOSEN[-1]


def taken(port):
    """Whether another process holds `port` (ours have ended)."""
    import socket
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return False
        except OSError:
            return True


def processes(framework, python, out_dir, world=WORLD, args=()):
    """[(rank, command, environment)] for `world` ranks on this machine, each running this file with
    `args` after the framework and the folder: torchrun and mpiexec start the ranks themselves
    (rank None); the others' ranks are started here, one process each."""
    args = [HERE, framework, out_dir] + list(args)
    launcher = ROWS[framework]["launcher"]
    if launcher == "torchrun":  # --standalone: a rendezvous on a free local port
        return [(None, [python, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(world)] + args, {})]
    if launcher == "jax":
        address = "127.0.0.1:{}".format(free_port())
        return [(r, [python] + args, dict(JAX_COORDINATOR_ADDRESS=address, RANK=str(r), WORLD_SIZE=str(world)))
                for r in range(world)]
    if launcher == "tf":  # TF_CONFIG: the whole cluster, and this worker's index in it
        workers = ["127.0.0.1:{}".format(free_port()) for _ in range(world)]
        return [(r, [python] + args, dict(TF_CONFIG=json.dumps(dict(cluster=dict(worker=workers),
                                                                    task=dict(type="worker", index=r))), RANK=str(r)))
                for r in range(world)]
    if launcher == "dmlc":  # MXNet's parameter server: the scheduler and the server are mxnet imported
        ps = dict(DMLC_PS_ROOT_URI="127.0.0.1", DMLC_PS_ROOT_PORT=str(free_port()), DMLC_NUM_SERVER="1",
                  DMLC_NUM_WORKER=str(world), PS_VERBOSE="0")
        serve = [python, "-c", "import mxnet"]  # with DMLC_ROLE scheduler or server, the import serves
        return ([(None, serve, dict(ps, DMLC_ROLE="scheduler")), (None, serve, dict(ps, DMLC_ROLE="server"))]
                + [(r, [python] + args, dict(ps, DMLC_ROLE="worker", RANK=str(r))) for r in range(world)])
    if launcher == "mpiexec":  # Open MPI starts the ranks and tells each its place (OMPI_COMM_WORLD_RANK)
        return [(None, ["mpiexec", "-n", str(world), "--oversubscribe", "--bind-to", "none", python] + args,
                     dict(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1"))]
    if launcher == "gloo":  # Caffe2's Gloo rendezvous: the ranks meet through files in a shared folder
        store = os.path.join(out_dir, "rendezvous")
        os.makedirs(store, exist_ok=True)
        return [(r, [python] + args, dict(GLOO_FILE_STORE=store, RANK=str(r), WORLD_SIZE=str(world)))
                for r in range(world)]
    raise ValueError("no launcher for " + framework)


def threads(world):
    """Each rank's share of the cores, asked of every thread pool that reads a variable for it."""
    n = str(max(1, (os.cpu_count() or 1) // world))
    return dict(OMP_NUM_THREADS=n, MKL_NUM_THREADS=n, TF_NUM_INTRAOP_THREADS=n, MXNET_CPU_WORKER_NTHREADS=n)


def launch_lines(framework):
    """The shell lines that start `framework`'s ranks here as `launch` does, with the row's own
    variables; the ports it chooses at run time are shown as $PORT1, $PORT2."""
    import shlex
    started = processes(framework, "python", "OUT")
    lines = []
    for i, (_, cmd, extra) in enumerate(started):
        extra = dict(common.ROWS[framework].get("vars", {}), **extra)
        words = ["{}={}".format(k, shlex.quote(v)) for k, v in extra.items()]
        words += [os.path.relpath(c, common.ROOT) if c == HERE else shlex.quote(c) for c in cmd]
        lines.append(" ".join(words) + (" &" if i < len(started) - 1 else ""))
    ports = {}
    return re.sub(r"(127\.0\.0\.1:|_PORT=)(\d+)", lambda m: "{}$PORT{}".format(
        m.group(1), ports.setdefault(m.group(2), len(ports) + 1)), "\n".join(lines))


def launch(framework, out_dir, timeout=300, world=WORLD, args=()):
    """Start the ranks; None where every rank wrote its result, else a sentence that says which rank
    failed and why, or that the time limit ended them. A failed or late rank ends every process. A
    launch that failed while another process held one of its ports starts again on new ones."""
    import bench
    python, why_not = bench.python_for(framework)
    if python is None:
        return why_not
    for attempt in range(3):
        del CHOSEN[:]
        for name in os.listdir(out_dir):  # what a failed attempt's ranks wrote
            if name.startswith("rank"):
                os.remove(os.path.join(out_dir, name))
        failed = launch_once(framework, python, out_dir, timeout, world, args)
        held = [p for p in CHOSEN if taken(p)]
        if not failed or not held:
            return failed
        sys.stderr.write("port {} was taken by another process: {} starts again\n".format(held[0], framework))
    return "{} (port {} was taken by another process, three times)".format(failed, held[0])


def launch_once(framework, python, out_dir, timeout, world, args):
    import time
    env = dict(os.environ, PYTHONUNBUFFERED="1", **threads(world), **common.ROWS[framework].get("vars", {}))
    started = []
    for i, (rank, cmd, extra) in enumerate(processes(framework, python, out_dir, world, args)):
        with open(os.path.join(out_dir, "launch{}.log".format(i)), "w") as log:
            started.append((rank, log.name, subprocess.Popen(cmd, cwd=common.ROOT, env=dict(env, **extra), stdout=log,
                                                             stderr=subprocess.STDOUT, start_new_session=True)))
    deadline = time.monotonic() + timeout
    ranks = [proc for rank, _, proc in started if rank is not None] or [proc for _, _, proc in started]
    while True:  # until every rank is done (a server, say, is ended with the rest), one fails, or time is up
        codes = [proc.poll() for _, _, proc in started]
        failed = [(rank, path, code) for (rank, path, _), code in zip(started, codes) if code not in (None, 0)]
        if failed or all(proc.poll() is not None for proc in ranks) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for _, _, proc in started:
        end_all(proc)
    missing = [r for r in range(world) if not os.path.exists(os.path.join(out_dir, "rank{}.json".format(r)))]
    if failed:
        logs = ""
        for _, path, _ in started:
            with open(path) as f:
                logs += f.read()
        return failure(out_dir, [(rank, code) for rank, _, code in failed], logs)
    if missing:
        return "timed out after {:.0f} s: rank {} had not finished, and every process was ended".format(
            timeout, ", ".join(map(str, missing)))
    return None


def end_all(proc):
    """Kill a launched process, its process group and every process it started, wherever they are:
    a launcher may put its workers in sessions of their own."""
    import psutil
    try:
        family = psutil.Process(proc.pid).children(recursive=True)  # before the launcher dies and they move
    except psutil.NoSuchProcess:
        family = []
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for child in family:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    proc.wait()


def failure(out_dir, deaths, logs):
    """Which rank failed first and why. A rank killed by a signal other than the launcher's SIGTERM
    (in torchrun's or mpiexec's failure report, or among the ranks started here) comes first: the others fail after it,
    on its closed connections. Else the rank whose own error came first (each writes rank<r>.error),
    else the exit codes seen: `deaths`, (rank, exit code) of the ranks started here."""
    reported = re.findall(r"rank\s*:\s*(\d+) \(local_rank: \d+\)\s*\n\s*exitcode\s*:\s*(-?\d+)", logs)  # torchrun's
    reported += [(r, "-" + n) for r, n in re.findall(r"process rank (\d+) with PID \d+ on node \S+ exited on signal (\d+)", logs)]  # mpiexec's
    deaths = [(r, c) for r, c in deaths if r is not None] + [(int(r), int(c)) for r, c in reported]
    killed = [(r, c) for r, c in deaths if c < 0 and c != -signal.SIGTERM]
    if killed:
        return "rank {} failed: killed by signal {}; every other process was ended".format(killed[0][0], -killed[0][1])
    errors = []
    for name in os.listdir(out_dir):
        if name.endswith(".error"):
            with open(os.path.join(out_dir, name)) as f:
                found = json.load(f)
            errors.append((found["time"], name[len("rank"):-len(".error")], found["error"]))
    if errors:
        _, rank, error = min(errors)
        return "rank {} failed: {}; every other process was ended".format(rank, error.splitlines()[0] if error else "")
    if deaths:
        return "rank {} failed: exit code {}; every other process was ended".format(*deaths[0])
    return "the launch failed: {}".format(logs.strip()[-300:])


def compare(out_dir):
    """The ranks' losses and weights against the NumPy reference (batch 64), and each other."""
    import parity
    import reference
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
        failed = launch(framework, out_dir, timeout)
        if failed:
            return dict(error=failed)
        row = compare(out_dir)
    row["launcher"] = ROWS[framework]["launcher"]
    return row


def table(frameworks, fresh=False):
    """{"measured": when, "machine": where, "table": {framework: equivalence's row}}: measured now if
    `fresh` (the tests), else taken from the cache where the same code, environments and machine
    measured it, so a book built after `make test` does not launch every row again."""
    import bench
    import results
    modules = tuple(ROWS[f]["module"] for f in frameworks)
    key = bench.fingerprint(frameworks, "scale-out", "synthetic", ("bench", "parity", "reference", "scale_out") + modules,
                            also=[bench.python_for(f)[0] for f in frameworks])
    path = os.path.join(datasets.CACHE_DIR, "scale-out", key + ".json")
    if os.path.exists(path) and not fresh:
        return results.read_object(path)[0]
    measured = dict(measured=results.now(), machine=bench.gpu_name() or results.cpu_name(),
                    table={f: equivalence(f) for f in frameworks})
    if all("error" not in row for row in measured["table"].values()):  # a failure is measured again
        results.write_json(path, measured)
    return measured


def train(framework, profile, dataset, world, timeout):
    """The profile's training as `world` processes: (rank 0's result, [each rank's]) or (None, why)."""
    import tempfile
    import results
    with tempfile.TemporaryDirectory(prefix="rosetta-scale-") as out_dir:
        failed = launch(framework, out_dir, timeout, world, [profile, dataset])
        if failed:
            return None, failed
        ranks = [results.read_object(os.path.join(out_dir, "rank{}.json".format(r)))[0] for r in range(world)]
    return ranks[0], ranks


def run(frameworks, profile, dataset, kind="runs", resume=False):
    """make scale-out: per framework, the equivalence check, then the profile's training as one
    process with every core and as WORLD processes with a share each, into one run (purpose
    "scale-out") that is never the book's latest; a framework's result is written when it is done,
    so a failure or an interruption keeps the others'. Returns the run's folder."""
    import bench
    import results
    profile = profile or bench.default_profile(bench.gpu_name())
    dataset = datasets.resolve(dataset)
    datasets.prepare(dataset)  # and equivalence, the synthetic one
    path, meta = bench.start_run(frameworks, profile, dataset, bench.gpu_name() or results.cpu_name(), resume,
                                 purpose="scale-out", kind=kind)
    bench.open_run(path, meta)
    limit = common.profile(profile)["timeout"]
    for name in frameworks:
        out = os.path.join(path, name + ".json")
        if os.path.exists(out) and results.read_object(out)[0].get("status") == "ok":
            continue  # resumed: done already
        result = results.new_result(name, profile, dataset, run=meta["run"], world_size=WORLD,
                                    module=ROWS[name]["module"], launcher=ROWS[name]["launcher"], code=bench.row_code(name))
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
    bench.finish_run(path, meta)
    return path


def passes(row):
    import parity
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
