"""The switches of the tuned rows: each change is on or off on this device, and says why.

A tuned module declares its changes with `change(name, on, why)` when it is imported, and uses
the returned bool. A change the device allows stays off where `make bench-tuning` measured it a
loss on a machine of this kind (ROSETTA_MEASURED, which the harness sets). ROSETTA_TUNING="bf16=0,compile=1" forces changes on
or off (the tests, and `make bench-tuning`, which measures each change alone). The harness reads `report()` and
`compile_seconds()` into the result. Only the modern frameworks' environment imports this.
"""
import json
import os
import time

from common import UsageError

_changes = []  # as the module declared them
_compiles = []  # seconds of each ahead-of-time compilation
_cache = {}  # compiled executables, by function, static arguments and argument shapes
LOSS = 0.95  # a change measured this much slower (steady epoch) or more is a loss, not noise


def forced():
    """{change: on} from ROSETTA_TUNING."""
    out = {}
    for item in os.environ.get("ROSETTA_TUNING", "").split(","):
        name, _, value = item.strip().partition("=")
        if name and value not in ("0", "1"):
            raise UsageError("ROSETTA_TUNING={!r}: give name=0 or name=1, comma-separated".format(
                os.environ["ROSETTA_TUNING"]))
        if name:
            out[name] = value == "1"
    return out


def measured():
    """{change: [speed-up, run]} from ROSETTA_MEASURED: what the newest ablation on a machine of this
    kind measured for each change of this row, as the harness found it (lab.runs.ablation)."""
    return json.loads(os.environ.get("ROSETTA_MEASURED") or "{}")


def change(name, on, why):
    """Declare a change; returns whether it is on here."""
    found = measured().get(name) if on else None
    if found and found[0] < LOSS:
        on, why = False, "{}, but on a machine of this kind it measured {:.2f}x (ablation {}): off".format(
            why, *found)
    force = forced().get(name)
    if force is not None and force != bool(on):
        on, why = force, "ROSETTA_TUNING switched it {} (by default: {})".format("on" if force else "off", why)
    _changes.append(dict(change=name, on=bool(on), why=why))
    return bool(on)


def report():
    """The changes as declared, checked against ROSETTA_TUNING: a name it forces must exist."""
    unknown = set(forced()) - {c["change"] for c in _changes}
    if unknown:
        raise UsageError("ROSETTA_TUNING names {}, which this module does not have: its changes are {}".format(
            ", ".join(sorted(unknown)), ", ".join(c["change"] for c in _changes)))
    return [dict(c) for c in _changes]


def cpu_bf16():
    """(on, why): bf16 arithmetic in this CPU's hardware, as /proc/cpuinfo (or the file ROSETTA_CPUINFO
    names, as lab.results reads it) lists it: AMX (a matrix unit) or AVX512-BF16 (SIMD dot-product
    instructions). Without either, bf16 is emulated."""
    flags = set()
    try:
        with open(os.environ.get("ROSETTA_CPUINFO") or "/proc/cpuinfo") as f:
            flags = set(next((line for line in f if line.startswith("flags")), ":").split(":", 1)[1].split())
    except OSError:
        pass
    found = sorted(flags & {"amx_bf16", "avx512_bf16"})
    if found:
        return True, "this CPU computes bf16 in hardware ({})".format(", ".join(
            {"amx_bf16": "AMX, a matrix unit", "avx512_bf16": "AVX512-BF16 dot-product instructions"}[f] for f in found))
    return False, ("this CPU has neither AMX nor AVX512-BF16 (no amx_bf16 or avx512_bf16 flag): bf16 would be "
                   "emulated, and slowly")


def gpu_bf16(capability):
    """(on, why) for an NVIDIA GPU of this compute capability (major, minor): bf16 from Ampere (8.0) on."""
    if tuple(capability) >= (8, 0):
        return True, "compute capability {}.{} has bf16 tensor cores".format(*capability)
    return False, "compute capability {}.{} has no bf16 tensor cores (Ampere, 8.0, is the first)".format(*capability)


def compiled(jitted, static, *args):
    """A jax.jit function compiled ahead of time for its static arguments and these arguments'
    shapes, the compilation timed apart from the steps; called with `args` only. Cached."""
    import jax
    key = (id(jitted), static) + tuple((a.shape, str(a.dtype)) for a in jax.tree.leaves(args))
    if key not in _cache:
        start = time.perf_counter()
        _cache[key] = jitted.lower(*(static + args)).compile()
        _compiles.append(time.perf_counter() - start)
    return _cache[key]


def compile_seconds():
    """Seconds spent compiling ahead of time in this process, or None where nothing reported it."""
    return sum(_compiles) if _compiles else None
