"""Launching a data-parallel row's processes on its framework's own launcher (torchrun, mpiexec, a
coordinator, a parameter server, a Gloo file store), and ending them all: at a time limit, or when
one fails, with a sentence that says which rank failed first and why. Also the launch lines the
Scale out chapter shows, here and on two machines.
"""
import json
import os
import re
import signal
import subprocess
import sys

import common
from lab import envs

WORLD = 2  # processes: two on this 2-core machine, one thread each


# What the processes import from, on every machine (the data-parallel rows are all the CNN's).
PATH = "PYTHONPATH=" + ":".join(envs.python_path(next(iter(common.PARALLEL))))

# The same module on two machines with eight GPUs each: only the launch changes (the chapter shows
# these; none was run here). HOST0 is the first machine, OUT a folder every process sees; a process
# that must not see every GPU is shown its own by its local rank.
TORCHRUN = (PATH + " torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST0:29400 \\\n"
            "  -m lab.scale_out {} OUT    # on each machine: one process per GPU, NCCL")


COORDINATOR = (PATH + " JAX_COORDINATOR_ADDRESS=HOST0:1234 WORLD_SIZE=2 RANK=0 python -m lab.scale_out {} OUT\n"
               "# RANK=1 on the second machine; each process takes every GPU of its machine")


ONE_GPU = "CUDA_VISIBLE_DEVICES=$OMPI_COMM_WORLD_LOCAL_RANK exec python -m lab.scale_out {} OUT"


CLUSTER = {
    "pytorch": TORCHRUN.format("pytorch"),
    "keras-jax": COORDINATOR.format("keras-jax"),
    "keras-torch": TORCHRUN.format("keras-torch"),
    "jax": COORDINATOR.format("jax"),
    "tensorflow": PATH + " TF_CONFIG='{\"cluster\": {\"worker\": [\"HOST0:2222\", \"HOST1:2222\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}' \\\n"
                  "  CUDA_VISIBLE_DEVICES=$GPU python -m lab.scale_out tensorflow OUT\n"
                  "# one worker per GPU ($GPU its own), each listed in the cluster with its own port and index",
    "mxnet": "export " + PATH + " DMLC_PS_ROOT_URI=HOST0 DMLC_PS_ROOT_PORT=9091 DMLC_NUM_SERVER=2 DMLC_NUM_WORKER=16\n"
             "DMLC_ROLE=scheduler python -c 'import mxnet' &    # on HOST0 only\n"
             "DMLC_ROLE=server python -c 'import mxnet' &       # one server per machine\n"
             "DMLC_ROLE=worker CUDA_VISIBLE_DEVICES=$GPU python -m lab.scale_out mxnet OUT    # one per GPU, $GPU its own",
    "chainer": "mpiexec -n 16 -H HOST0:8,HOST1:8 -x " + PATH + " bash -c '" + ONE_GPU.format("chainer") + "'",
    "caffe2": PATH + " RANK=0 WORLD_SIZE=16 GLOO_FILE_STORE=/shared/rendezvous CUDA_VISIBLE_DEVICES=$GPU \\\n"
              "  python -m lab.scale_out caffe2 OUT    # one per GPU; the folder on a file system all machines share",
    "cntk": "mpiexec -n 16 -H HOST0:8,HOST1:8 -x " + PATH + " bash -c '" + ONE_GPU.format("cntk") + "'",
    "keras-cntk": "mpiexec -n 16 -H HOST0:8,HOST1:8 -x " + PATH + " -x KERAS_BACKEND=cntk bash -c '" + ONE_GPU.format("keras-cntk") + "'",
}


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
    """[(rank, command, environment)] for `world` ranks on this machine, each running lab.scale_out with
    `args` after the framework and the folder: torchrun and mpiexec start the ranks themselves
    (rank None); the others' ranks are started here, one process each."""
    args = ["-m", "lab.scale_out", framework, out_dir] + list(args)
    launcher = common.PARALLEL[framework]["launcher"]
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
        store = os.path.join(out_dir, "rendezvous")  # launch_once makes it: the launch lines touch no folder
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
        extra = dict(PYTHONPATH=os.pathsep.join(envs.python_path(framework)), **common.ROWS[framework].get("vars", {}), **extra)
        words = ["{}={}".format(k, shlex.quote(v)) for k, v in extra.items()]
        words += [shlex.quote(c) for c in cmd]
        lines.append(" ".join(words) + (" &" if i < len(started) - 1 else ""))
    ports = {}
    return re.sub(r"(127\.0\.0\.1:|_PORT=)(\d+)", lambda m: "{}$PORT{}".format(
        m.group(1), ports.setdefault(m.group(2), len(ports) + 1)), "\n".join(lines))


def launch(framework, out_dir, timeout=300, world=WORLD, args=()):
    """Start the ranks; None where every rank wrote its result, else a sentence that says which rank
    failed and why, or that the time limit ended them. A failed or late rank ends every process. A
    launch that failed while another process held one of its ports starts again on new ones."""
    python, why_not = envs.python_for(framework)
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
    env = envs.row_env(framework, dict(threads(world), PYTHONUNBUFFERED="1"))
    started = []
    if common.PARALLEL[framework]["launcher"] == "gloo":
        os.makedirs(os.path.join(out_dir, "rendezvous"), exist_ok=True)
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
