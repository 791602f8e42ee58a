"""tools/gpu_sets.py (make test-gpu-sets): what it checks, on the CPU environments here, and its
committed result: every GPU set installs and links everything but the driver's libraries."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
sys.path.insert(0, os.path.join(ROOT, "tools"))
import gpu_sets  # noqa: E402


def env_python(env):
    python = os.path.join(ROOT, ".envs", env, "bin", "python")
    if not os.path.exists(python):
        pytest.skip("no .envs/{}: make envs".format(env))
    return python


def test_ldd_starts_from_what_python_imports_not_from_what_it_links():
    """A library on its own can miss what its loader's search path finds (CNTK's MKL on Intel's
    OpenMP), so the check starts from the libraries nothing else in the package links."""
    libraries = gpu_sets.native_libraries(env_python("cntk"), gpu_sets.PACKAGES["cntk"])
    roots = {os.path.basename(p) for p in gpu_sets.roots(libraries)}
    assert "_cntk_py.cpython-36m-x86_64-linux-gnu.so" in roots and "libmklml_intel.so" not in roots
    assert {"libCntk.Core-2.7.so", "libCntk.Math-2.7.so"}.isdisjoint(roots)


def test_a_link_that_nothing_provides_is_named(tmp_path):
    source = tmp_path / "needs.c"
    source.write_text("int f(void);\nint g(void) { return f(); }\n")
    stub = tmp_path / "libgone.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-x", "c", "-", "-o", str(stub)], input="int f(void){return 1;}",
                   text=True, check=True)
    library = tmp_path / "libneeds.so"
    subprocess.run(["gcc", "-shared", "-fPIC", str(source), "-L", str(tmp_path), "-lgone", "-o", str(library)], check=True)
    assert gpu_sets.unresolved(str(library), str(tmp_path)) == []
    assert gpu_sets.unresolved(str(library), "") == ["libgone.so"]


def test_the_environment_python_that_make_env_writes_gives_its_library_path(tmp_path):
    """make-env.sh's script for a set with requirements-cuda.txt, as gpu_sets reads it back."""
    script = open(os.path.join(ROOT, "tools", "make-env.sh")).read()
    printf = next(line for line in script.splitlines() if line.strip().startswith("printf '#!/bin/sh"))
    python = tmp_path / "python"
    subprocess.run(["bash", "-c", printf.strip().rstrip("\\") + ' "/a/lib:/b/lib" "3.8" > ' + str(python)], check=True)
    assert gpu_sets.library_path(str(python)) == "/a/lib:/b/lib"
    assert python.read_text().splitlines()[1].endswith('exec "$(dirname "$0")/python3.8" "$@"')


def test_every_gpu_set_installed_and_links_all_but_the_drivers_libraries():
    """The committed result of make test-gpu-sets (it downloads every set, so CI does not run it)."""
    with open(gpu_sets.OUT) as f:
        rows = {r["env"]: r for r in json.load(f)}
    assert sorted(rows) == sorted(gpu_sets.ENVS)
    for env, r in rows.items():
        assert r["error"] is None and r["libraries"] > 0 and r["missing"] == {}, (env, r["error"], r["missing"])
    assert rows["mxnet"]["library_path"] and rows["chainer"]["library_path"]  # the CUDA wheels, on the path
