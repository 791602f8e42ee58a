"""make test-gpu-sets: each environment's GPU set installed into a scratch folder, as make-env.sh
installs it with GPU=1, and every library that its frameworks' own native libraries link found
there, but the driver's own libcuda.so.1 and libnvidia-ml.so.1 (which only a machine with an NVIDIA
driver has), and those of plugins the rows never open (UNUSED, said apart).

    .envs/main/bin/python tools/gpu_sets.py [ENV ...]    (default: every environment)

No GPU is needed: `ldd` resolves the links as the loader would when the framework is imported,
with the library path the environment's python sets (make-env.sh). Downloads each set (several GB)
and removes it after its check. Prints a Markdown table; a run of every environment writes
data/gpu-sets.json, which a partial one leaves as it is.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "data", "gpu-sets.json")
ENVS = ["main", "mxnet", "chainer", "cntk", "caffe2"]
# The packages whose native libraries are the frameworks' (a GPU set's other wheels are theirs to link).
PACKAGES = {"main": ["torch", "tensorflow", "jaxlib", "jax_plugins"], "mxnet": ["mxnet"],
            "chainer": ["cupy", "cupy_backends"], "cntk": ["cntk", "_cntk_py"], "caffe2": ["torch", "caffe2"]}
DRIVER = {"libcuda.so.1", "libnvidia-ml.so.1"}  # the NVIDIA driver's own (CUDA's and NVML's)
# Plugins a framework opens only for features the rows do not use, and the system libraries they need.
UNUSED = {"cntk": {"Cntk.BinaryConvolution-2.7.so": "the binary convolution extension (Halide)",
                   "Cntk.DelayLoadedExtensions-2.7.so": "image decoding (Ubuntu 16.04's libjpeg8, libpng12, libtiff5, libjasper1)",
                   "Cntk.Deserializers.Image-2.7.so": "the image reader (the same libraries)"}}


def install(env, scratch):
    """The environment's GPU set in scratch/<env>, by make-env.sh; its python, or None and why."""
    out = subprocess.run(["tools/make-env.sh", env], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, GPU="1", ENVS_DIR=scratch,  # pip's cache in the scratch folder too
                                                  PIP_CACHE_DIR=os.path.join(scratch, "pip-cache")))
    python = os.path.join(scratch, env, "bin", "python")
    if out.returncode != 0 or not os.path.exists(python):
        return None, (out.stderr.strip().splitlines() or ["make-env.sh failed"])[-1]
    return python, None


def library_path(python):
    """The LD_LIBRARY_PATH the environment's python sets (a script, where make-env.sh wrote one)."""
    with open(python, "rb") as f:
        head = f.read(4096)
    found = re.search(rb'LD_LIBRARY_PATH="([^"$]*)', head) if head.startswith(b"#!") else None
    return found.group(1).decode() if found else ""


def native_libraries(python, packages):
    """Every shared library inside the packages' folders."""
    code = ("import importlib.util, json, sys\n"  # a package's folder, or a module's own file
            "print(json.dumps([p for n in sys.argv[1:] for s in [importlib.util.find_spec(n)] if s "
            "for p in (s.submodule_search_locations or [s.origin])]))")
    found = json.loads(subprocess.run([python, "-c", code] + packages, capture_output=True, text=True,
                                      check=True).stdout)
    files = [p for p in found if os.path.isfile(p)] + [os.path.join(d, f) for folder in found if os.path.isdir(folder)
                                                       for d, _, names in os.walk(folder) for f in names]
    return sorted(p for p in files if re.search(r"\.so(\.\d+)*$", p))


def roots(libraries):
    """The libraries no other one of them links: what Python imports or a framework opens. ldd
    resolves each with everything it loads, as the loader does (a library's own search path holds
    for its links only, so a library on its own can miss what its loader finds)."""
    names = {os.path.basename(p) for p in libraries}
    needed = set()
    for library in libraries:
        out = subprocess.run(["readelf", "-d", library], capture_output=True, text=True).stdout
        needed.update(n for n in re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out) if n in names)
    return [p for p in libraries if os.path.basename(p) not in needed]


def unresolved(library, path):
    """The sonames `ldd` cannot find for one library, with `path` on the loader's path."""
    out = subprocess.run(["ldd", library], capture_output=True, text=True,
                         env=dict(os.environ, LD_LIBRARY_PATH=path))
    return re.findall(r"^\s*(\S+) => not found", out.stdout, re.M)


def disk(folder):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(folder) for f in files
               if not os.path.islink(os.path.join(d, f)))


def check(env, scratch):
    """{env, bytes, libraries, missing: {library: [sonames]}, error}: one environment's GPU set."""
    python, why = install(env, scratch)
    if python is None:
        return dict(env=env, error=why)
    # and the interpreter's own library folder: a module that links libpython finds the one Python loaded
    libdir = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))"],
                            capture_output=True, text=True).stdout.strip()
    wheels = library_path(python)
    path = ":".join(p for p in (wheels, libdir) if p)
    missing, unused = {}, {}
    libraries = native_libraries(python, PACKAGES[env])
    for library in roots(libraries):
        lost = sorted(set(n for n in unresolved(library, path) if n not in DRIVER))
        why = UNUSED.get(env, {}).get(os.path.basename(library))
        if lost:
            (unused if why else missing)[os.path.relpath(library, os.path.join(scratch, env))] = dict(
                missing=lost, why=why) if why else lost
    return dict(env=env, bytes=disk(os.path.join(scratch, env)), libraries=len(libraries), missing=missing, unused=unused,
                library_path=[os.path.relpath(p, os.path.join(scratch, env)) for p in wheels.split(":") if p],
                error=None)


def table(rows):
    lines = ["| environment | GPU set on disk | native libraries | unresolved links (but the driver's) | "
             "in plugins the rows do not open |", "|---|---|---|---|---|"]
    for r in rows:
        if r["error"]:
            lines.append("| {} | - | - | not installed: {} | - |".format(r["env"], r["error"]))
            continue
        lost = sorted({n for names in r["missing"].values() for n in names})
        plugins = "; ".join("{}: {}".format(os.path.basename(k), ", ".join(v["missing"])) for k, v in r["unused"].items())
        lines.append("| {} | {:.1f} GiB | {} | {} | {} |".format(r["env"], r["bytes"] / 2 ** 30, r["libraries"],
                                                               ", ".join(lost) or "none", plugins or "none"))
    return "\n".join(lines)


def main(argv):
    envs = argv or ENVS
    rows = []
    with tempfile.TemporaryDirectory(prefix="rosetta-gpu-sets-") as scratch:
        for env in envs:
            sys.stderr.write("installing {}'s GPU set into {}\n".format(env, scratch))
            row = check(env, scratch)
            subprocess.run(["rm", "-rf", os.path.join(scratch, env), os.path.join(scratch, "pip-cache")])
            rows.append(row)
            sys.stderr.write("{}: {}\n".format(env, row["error"] or "{} libraries, {} with unresolved links".format(
                row["libraries"], len(row["missing"]))))
    print(table(rows))
    if envs == ENVS:
        with open(OUT, "w") as f:
            json.dump(rows, f, indent=1)
            f.write("\n")
    return 0 if all(not r["error"] and not r["missing"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
