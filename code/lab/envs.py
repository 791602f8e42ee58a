"""Which environment runs a row, and running a lab module there: the lab's lowest floor.

Each framework runs in its own environment (.envs/<env>/bin/python, or ROSETTA_PYTHON_<ENV> /
ROSETTA_PYTHON where an image already has the frameworks), as `python -m lab.<module>` with code/
and the row's model folder on PYTHONPATH. With runs.py, digest.py and results.py, this is what the
command line (bench.py), the checks and the pages share; it imports none of them.
"""
import json
import os
import shutil
import subprocess

import common


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


def python_path(framework):
    """The folders a row's process imports from, relative to the repository: code/ (the lab and what
    every program shares) and its model's folder (its modules, weight layout and reference)."""
    return ["code", os.path.relpath(common.model_dir(common.ROWS[framework]["model"]), common.ROOT)]


def row_env(framework, extra=None):
    """The environment a row's process runs in: this one, the row's own variables, `extra`, and
    PYTHONPATH with python_path's folders first."""
    paths = [os.path.join(common.ROOT, p) for p in python_path(framework)] + [os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, **dict(common.ROWS[framework].get("vars", {}), **(extra or {})))
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


def command(python, module, args=()):
    """A lab module run as a script by `python`: `python -m lab.<module> ARGS`."""
    return [python, "-m", "lab." + module] + [str(a) for a in args]


def run_script(framework, module, args, timeout=300, extra=None):
    """Run lab.<module> (or, with module None, python with `args`) in the framework's environment
    (with the variables `extra`): its last stdout line parsed as JSON, or a sentence that says why not
    (no environment, a failure with its last line, a time-out)."""
    python, why_not = python_for(framework)
    if python is None:
        return why_not
    cmd = command(python, module, args) if module else [python] + list(args)
    try:
        out = subprocess.run(cmd, env=row_env(framework, extra), cwd=common.ROOT,
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timed out after {:.0f} s".format(timeout)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no message"])[-1]
        return "failed (exit code {}): {}".format(out.returncode, last)
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return "printed no JSON result"


def run_scripts(jobs, timeout=300):
    """run_script for each (framework, module, args) of `jobs`, for a check's table: the results in the
    jobs' order. Two run at once where there is no GPU: a check's process spends much of its time
    importing and compiling on one core (measured: part IV's eleven parity processes 110 s one at a
    time, 86 s two at a time). One at a time on a GPU, where each framework takes the memory it finds.
    They share a JAX compilation cache, as nothing of a check is timed."""
    from concurrent.futures import ThreadPoolExecutor
    cache = dict(JAX_COMPILATION_CACHE_DIR=os.path.join(common.DATA_DIR, "cache", "jax-checks"),
                 JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    with ThreadPoolExecutor(1 if gpu_name() else 2) as pool:
        return list(pool.map(lambda job: run_script(*job, timeout=timeout, extra=cache), jobs))
