"""tools/gpu_builds.py reads the architectures of a library's fat binaries (the README's table)."""
import json
import os
import struct
import sys

from conftest import ROOT
sys.path.insert(0, os.path.join(ROOT, "tools"))
import gpu_builds  # noqa: E402


def container(*entries):
    """A fat binary: its 16-byte header, then one 64-byte entry header and payload per (kind, arch)."""
    body = b""
    for kind, arch, payload in entries:
        header = struct.pack("<HHIQII4xI", kind, 0x101, 64, len(payload), 0, 0, arch).ljust(64, b"\0")
        body += header + payload
    return gpu_builds.FATBIN + struct.pack("<HHQ", 1, 16, len(body)) + body


def test_fat_binaries_give_their_machine_code_and_ptx_architectures(tmp_path):
    library = tmp_path / "lib.so"
    noise = gpu_builds.FATBIN + b"\x07\x00" + b"\0" * 30  # the magic's bytes where no fat binary is
    library.write_bytes(b"\x7fELF" + noise + container((2, 80, b"sass" * 5), (2, 86, b"x" * 8), (1, 86, b"ptx!"))
                        + b"\0" * 13 + container((2, 70, container((2, 90, b"inner"))[:12])))
    assert gpu_builds.fatbin_archs(str(library)) == {"sass": [70, 80, 86], "ptx": [86]}


def test_a_gpu_gets_machine_code_of_its_major_version_or_older_ptx_in_every_library():
    libraries = {"a.so": {"sass": [70, 80, 86], "ptx": []}, "b.so": {"sass": [80, 86, 90], "ptx": [90]}}
    assert [gpu_builds.runs_on(libraries["b.so"], c) for c in (75, 89, 90, 120)] == [
        "none", "machine code", "machine code", "PTX"]
    assert [gpu_builds.verdict(libraries, c) for c in (60, 75, 80, 89, 90, 120)] == [
        "none", "partly", "machine code", "machine code", "partly", "partly"]
    assert gpu_builds.verdict({"a.so": {"sass": [70], "ptx": [70]}, "b.so": {"sass": [90], "ptx": []}}, 90) == "PTX"


def test_a_partial_run_leaves_the_readmes_data_as_it_is(monkeypatch, tmp_path, capsys):
    out = tmp_path / "gpu-builds.json"
    out.write_text("[]")
    monkeypatch.setattr(gpu_builds, "OUT", str(out))
    monkeypatch.setattr(gpu_builds, "measure", lambda env, archs: dict(
        dict(env=env, packages={}, installed=2 ** 30, download=2 ** 29, cuda=0), **({"archs": {}} if archs else {})))
    gpu_builds.main(["--envs", "mxnet", "--archs"])
    gpu_builds.main([])
    assert out.read_text() == "[]" and "| `mxnet` | 1.0 GiB |" in capsys.readouterr().out
    gpu_builds.main(["--archs"])
    assert [d["env"] for d in json.loads(out.read_text())] == list(gpu_builds.CUDA_BUILDS)
