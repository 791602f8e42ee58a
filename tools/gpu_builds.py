"""What each environment's GPU set takes on disk, and which GPUs its CUDA builds carry code for.

    .envs/main/bin/python tools/gpu_builds.py           resolve every GPU set, read each wheel's size
    .envs/main/bin/python tools/gpu_builds.py --archs   and the CUDA architectures in the frameworks'
                                                        own libraries (downloads about 3 GB)

Nothing is installed. Each envs/<env>/requirements-gpu.txt is resolved by pip's dry run, as
tools/make-env.sh installs it (tests/test_envs.py checks the pins the same way). A wheel's installed
size is the sum of its files' sizes in the zip's central directory, read from the registry with a
few HTTP range requests, not by downloading it. With --archs, the shared libraries of each framework's
CUDA build are downloaded one at a time into a temporary folder and the fat binaries in them are
read: the SASS (machine code, `sm_XY`) and PTX (`compute_XY`) each carries. A GPU runs a build's
kernel where it has machine code of the GPU's major version and an equal or lower minor one, or PTX of
an equal or lower version, which its driver compiles when the program starts (CUDA's compatibility
rules), each library on its own. Prints Markdown tables; a complete run (every environment, with
--archs) writes data/gpu-builds.json, which a partial one leaves as it is.
"""
import argparse
import io
import json
import mmap
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "data", "gpu-builds.json")
# Each environment's CUDA builds: the wheels whose own libraries carry GPU code.
CUDA_BUILDS = {"main": ["torch", "tensorflow", "jax-cuda12-plugin"], "mxnet": ["mxnet-cu117"],
               "chainer": ["cupy-cuda12x"], "cntk": ["cntk-gpu"], "caffe2": ["torch"]}
FATBIN = b"\x50\xed\x55\xba"  # 0xBA55ED50, little-endian: a fat binary's magic


def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def resolve(env, path, report):
    """pip's dry run of `path` for the environment's Python into `report`: its own pip where that
    has --dry-run (22.2 and newer), else the main environment's pip asked for wheels of that Python
    (CNTK's 3.6). No pip configuration files or local wheel folders, as make-env.sh's GPU set."""
    with open(os.path.join(ROOT, "envs", env, "python-version")) as f:
        version = f.read().strip()
    own = os.path.join(ROOT, ".envs", env, "bin", "python")
    cmd = [own, "-m", "pip"]
    if version == "3.6" or not os.path.exists(own):
        if env == "chainer":
            return None  # a source distribution: resolving it builds it, in its own environment
        abi = "cp{}{}".format(version.replace(".", ""), "m" if version in ("3.6", "3.7") else "")
        cmd = [os.path.join(ROOT, ".envs", "main", "bin", "python"), "-m", "pip", "--python-version", version,
               "--implementation", "cp", "--abi", abi, "--platform", "manylinux1_x86_64",
               "--platform", "manylinux2014_x86_64", "--platform", "linux_x86_64", "--only-binary=:all:"]
    cmd[3:3] = ["install", "--dry-run", "--ignore-installed", "--quiet", "--report", report, "-r", path]
    cuda = os.path.join(ROOT, "envs", env, "requirements-cuda.txt")  # what make-env.sh adds with GPU=1
    if os.path.exists(cuda):
        cmd += ["-r", cuda]
    env_vars = dict(os.environ, PIP_CONFIG_FILE=os.devnull, PIP_FIND_LINKS="")
    constraints = os.path.join(ROOT, "envs", env, "constraints.txt")
    if os.path.exists(constraints):
        env_vars["PIP_CONSTRAINT"] = constraints
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT, env=env_vars)


class Remote(io.RawIOBase):
    """A file on the registry, read by HTTP range requests: zipfile reads a wheel's directory
    from its end without the rest of it."""

    def __init__(self, url):
        self.url, self.pos = url, 0
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=60) as r:
            self.size = int(r.headers["Content-Length"])

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.pos

    def seek(self, offset, whence=0):
        self.pos = {0: offset, 1: self.pos + offset, 2: self.size + offset}[whence]
        return self.pos

    def readinto(self, buffer):
        end = min(self.size, self.pos + len(buffer))
        if end <= self.pos:
            return 0
        request = urllib.request.Request(self.url, headers={"Range": "bytes={}-{}".format(self.pos, end - 1)})
        with urllib.request.urlopen(request, timeout=120) as r:
            data = r.read()
        buffer[:len(data)] = data
        self.pos += len(data)
        return len(data)


def wheel(url):
    """(the wheel at `url` as a ZipFile read in 16 MiB range requests, its size in bytes)."""
    remote = Remote(url)
    return zipfile.ZipFile(io.BufferedReader(remote, 16 << 20)), remote.size


def sizes(item):
    """(name, version, download bytes, installed bytes) of one item of pip's report."""
    url = item["download_info"]["url"]
    meta = item["metadata"]
    if not url.endswith(".whl"):  # a source distribution: its size until it is built
        size = Remote(url).size
        return norm(meta["name"]), meta["version"], size, size
    z, size = wheel(url)
    with z:
        return norm(meta["name"]), meta["version"], size, sum(i.file_size for i in z.infolist())


def fatbin_archs(path):
    """{"sass": [...], "ptx": [...]}: the architectures of the fat binaries in one library."""
    found = {"sass": set(), "ptx": set()}
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        at = data.find(FATBIN)
        while at >= 0 and at + 16 <= len(data):
            version, header, size = struct.unpack_from("<HHQ", data, at + 4)
            if version != 1 or header != 16 or at + 16 + size > len(data):
                at = data.find(FATBIN, at + 4)
                continue
            entry, end = at + 16, at + 16 + size
            while entry + 32 <= end:
                kind, _, entry_header, payload = struct.unpack_from("<HHIQ", data, entry)
                arch = struct.unpack_from("<I", data, entry + 28)[0]
                if kind in (1, 2) and 10 <= arch < 200:
                    found["ptx" if kind == 1 else "sass"].add(arch)
                if entry_header == 0:
                    break
                entry += entry_header + payload
            at = data.find(FATBIN, end)
    return {k: sorted(v) for k, v in found.items()}


def wheel_archs(url):
    """{library: its architectures} for every shared library with GPU code in the wheel at `url`,
    each downloaded, read and deleted in turn."""
    found = {}
    z = wheel(url)[0]
    with z, tempfile.TemporaryDirectory(prefix="rosetta-archs-") as tmp:
        for info in z.infolist():
            if re.search(r"\.so(\.|$)", info.filename) and info.file_size > (1 << 20):
                path = os.path.join(tmp, "lib.so")
                with z.open(info) as src, open(path, "wb") as dst:
                    shutil.copyfileobj(src, dst, 16 << 20)
                archs = fatbin_archs(path)
                if archs["sass"] or archs["ptx"]:
                    found[info.filename] = archs
                os.remove(path)
    return found


def runs_on(archs, capability):
    """How a GPU of `capability` (86 for 8.6) gets one library's code: machine code of its major
    version and an equal or lower minor one, else PTX of an equal or lower version, else none."""
    if any(a // 10 == capability // 10 and a <= capability for a in archs["sass"]):
        return "machine code"
    if any(a <= capability for a in archs["ptx"]):
        return "PTX"
    return "none"


def verdict(libraries, capability):
    """How a GPU gets a build's code: machine code in every library with GPU code, or PTX in some of
    them (compiled by the driver at start), or "partly" where some library has none, or none."""
    each = {runs_on(archs, capability) for archs in libraries.values()}
    if each == {"machine code"} or each == {"none"}:
        return each.pop()
    return "partly" if "none" in each else "PTX"


def cuda_bytes(env, packages):
    """What NVIDIA's CUDA libraries and the frameworks' CUDA builds take of a set, installed."""
    names = {n for n in packages if n.startswith(("nvidia-", "cuda-", "cupy-", "jax-cuda"))}
    return sum(packages[n]["installed"] for n in names | (set(CUDA_BUILDS[env]) & set(packages)))


def measure(env, archs=False):
    """One environment's GPU set: its packages' sizes, and with `archs` its CUDA builds' libraries."""
    path = os.path.join(ROOT, "envs", env, "requirements-gpu.txt")
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        out = resolve(env, path, report)
        if out is None or out.returncode != 0:
            return dict(env=env, error="not resolved here" if out is None else out.stderr[-500:])
        with open(report) as f:
            items = json.load(f)["install"]
    with ThreadPoolExecutor(8) as pool:
        packages = {name: dict(version=v, download=d, installed=i) for name, v, d, i in pool.map(sizes, items)}
    doc = dict(env=env, packages=packages, installed=sum(p["installed"] for p in packages.values()),
               download=sum(p["download"] for p in packages.values()),
               cuda=cuda_bytes(env, packages))
    if archs:
        urls = {norm(i["metadata"]["name"]): i["download_info"]["url"] for i in items}
        doc["archs"] = {n: wheel_archs(urls[n]) for n in CUDA_BUILDS[env] if n in urls}
    return doc


def gib(n):
    return "{:.1f} GiB".format(n / 2 ** 30)


GPUS = [("Pascal", 60), ("Volta", 70), ("Turing", 75), ("Ampere", 80), ("Ampere", 86), ("Ada", 89),
        ("Hopper", 90), ("Blackwell", 100), ("Blackwell", 120)]


def table(docs):
    lines = ["| environment | GPU set installed | of it CUDA (NVIDIA's libraries and the CUDA builds) "
             "| of it NVIDIA's `nvidia-*` packages | download |", "|---|---|---|---|---|"]
    sums = [0, 0, 0, 0]
    for d in docs:
        if "error" in d:
            lines.append("| `{}` | {} | | | |".format(d["env"], d["error"].splitlines()[-1] if d["error"] else ""))
            continue
        nvidia = sum(p["installed"] for n, p in d["packages"].items() if n.startswith("nvidia-"))
        row = [d["installed"], d["cuda"], nvidia, d["download"]]
        sums = [a + b for a, b in zip(sums, row)]
        lines.append("| `{}` | {} |".format(d["env"], " | ".join(map(gib, row))))
    lines.append("| all | {} |".format(" | ".join(map(gib, sums))))
    lines += ["", "| build | libraries with GPU code | "
              + " | ".join("{} {}.{}".format(name, c // 10, c % 10) for name, c in GPUS) + " |",
              "|---" * (2 + len(GPUS)) + "|"]
    partly = []
    for d in docs:
        for name, libraries in d.get("archs", {}).items():
            build = "`{}` {}".format(name, d["packages"][name]["version"])
            cells = [verdict(libraries, c) for _, c in GPUS]
            lines.append("| {} | {} | {} |".format(build, len(libraries), " | ".join(cells)))
            partly += ["{} on {}.{}: none in {}".format(build, c // 10, c % 10, ", ".join(
                "`{}`".format(lib) for lib, a in sorted(libraries.items()) if runs_on(a, c) == "none"))
                for (_, c), cell in zip(GPUS, cells) if cell == "partly"]
    lines += [""] + ["- " + line for line in partly]
    return "\n".join(lines)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", action="store_true", help="also read the CUDA builds' architectures")
    parser.add_argument("--envs", default=",".join(CUDA_BUILDS), help="environments, comma-separated")
    args = parser.parse_args(argv)
    envs = args.envs.split(",")
    docs = [measure(env, args.archs) for env in envs]
    print(table(docs))
    if envs != list(CUDA_BUILDS) or not args.archs or any("error" in d for d in docs):
        sys.stderr.write("{} kept: only a complete make gpu-builds replaces it\n".format(os.path.relpath(OUT, ROOT)))
        return
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(docs, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
