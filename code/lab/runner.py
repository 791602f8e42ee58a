"""One row's training run: the harness in the row's environment, with a time limit, its progress
shown on one terminal line, and always a result document back (skipped, failed or ok).
"""
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

from lab import envs, results


def _pump(stream, lines):
    for line in iter(stream.readline, ""):
        lines.put(line)
    lines.put(None)


def run_framework(framework, profile, dataset, run_path, run_id, timeout, show, init="glorot", cpu_profile=None,
                  gpu=None, name=None, env_extra=None):
    """Run one framework's harness; always returns a result document. `name`: the files' name in
    the run folder (default: the framework's); `env_extra`: more environment variables."""
    python, why_not = envs.python_for(framework)
    if python is None:
        return results.new_result(framework, profile, dataset, run=run_id, status="skipped", error=why_not)
    name = name or framework
    out = os.path.join(run_path, ".{}.partial".format(name))
    log_path = os.path.join(run_path, name + ".log")
    env = envs.row_env(framework, dict(env_extra or {}, PYTHONUNBUFFERED="1"))
    cmd = envs.command(python, "harness", [framework, "--profile", profile, "--dataset", dataset, "--out", out,
                                           "--run", run_id, "--init", init])
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
    result = _collect(framework, profile, dataset, run_id, out, log_path, proc.returncode, timed_out, timeout)
    result["wall_seconds"] = time.monotonic() - start  # what the row cost: its interpreter's start to its result
    return result


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
    the time left where the plan has estimates (seconds by row), corrected by what the rows done so
    far really took against their estimates (a reference scaled by a NumPy workload can be off by a
    fifth on another machine)."""

    def __init__(self, frameworks, stream=sys.stderr, estimates=None):
        self.names, self.stream, self.last = frameworks, stream, {}
        self.tty, self.estimates, self.finished = stream.isatty(), estimates or {}, set()
        self.took = {}  # row: (estimated, taken) seconds, for the rows done that had an estimate

    def pace(self):
        """The rows done: their seconds taken over their seconds estimated (1 before any is done)."""
        estimated = sum(e for e, _ in self.took.values())
        return sum(t for _, t in self.took.values()) / estimated if estimated else 1.0

    def left(self, framework, elapsed):
        """Seconds left by the estimates at the pace so far, or None where a row still to run has none."""
        todo = [n for n in self.names if n not in self.finished and n != framework]
        if any(self.estimates.get(n) is None for n in todo + [framework]):
            return None
        pace = self.pace()
        return pace * sum(self.estimates[n] for n in todo) + max(0.0, pace * self.estimates[framework] - elapsed)

    def __call__(self, framework, fields, elapsed):
        if fields:
            self.last[framework] = fields
        elif not self.tty:
            return
        f = self.last.get(framework, {})
        epoch = ("batch {}/{} {:.2f} s".format(f["batch"], f["batches"], f["seconds"]) if "batch" in f else
                 "epoch {}/{} loss {:.3f}".format(f["epoch"], f["epochs"], f["loss"]) if f else "starting")
        left = self.left(framework, elapsed)
        line = "[{} done, {} left{}] {:<17} {:<28} elapsed {:5.0f} s".format(
            len(self.finished), len(self.names) - len(self.finished),
            ", about {:.0f} min".format(left / 60) if left is not None else "", framework, epoch, elapsed)
        self.stream.write(("\r" + line + "\033[K") if self.tty else line + "\n")
        self.stream.flush()

    def done(self, result):
        self.finished.add(result["framework"])
        taken = results.row_seconds(result)
        if self.estimates.get(result["framework"]) and taken and result["status"] == "ok":
            self.took[result["framework"]] = (self.estimates[result["framework"]], taken)
        acc = "{:.1%}".format(result["accuracy"]) if result.get("accuracy") is not None else "-"
        train = "{:.1f} s".format(result["train_seconds"]) if result.get("train_seconds") else "-"
        figures = ("train {:>9}  accuracy {:>6}".format(train, acc) if "seconds_per_1000" not in result else
                   "{:.1f} s per 1,000 images".format(result["seconds_per_1000"] or 0))
        self.stream.write("{}{:<17} {:<8} {}{}\n".format(
            "\r\033[K" if self.tty else "", result["framework"], result["status"], figures,
            "  " + result["error"].splitlines()[0] if result.get("error") else ""))
        self.stream.flush()
