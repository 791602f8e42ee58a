"""Datasets, written once for every framework: CIFAR-10, Fashion-MNIST and a synthetic set.

Every dataset is decoded to uint8 arrays in NCHW order (N, 3, 32, 32) and cached under
data/cache/<name>/ as .npy files, which every environment (numpy 1.x or 2.x) can read.
Python 3.6 compatible: the legacy frameworks' environments import this file too.
"""
import gzip
import hashlib
import os
import socket
import struct
import tarfile
import tempfile
import urllib.request

import numpy as np

from common import BATCH_SIZE, DATA_DIR, N_CLASSES, SEED, check_choice, DATASETS

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR_SIZE = 170052171
CIFAR_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
CIFAR_SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
CIFAR_TRAIN = ["cifar-10-batches-bin/data_batch_%d.bin" % i for i in range(1, 6)]
CIFAR_TEST = ["cifar-10-batches-bin/test_batch.bin"]
CIFAR_RECORD = 1 + 3 * 32 * 32  # label byte, then the R, G and B planes

FASHION_DIRS = [os.environ.get("FASHION_MNIST_DIR", ""), "/usr/share/datasets/fashion-mnist"]
FASHION_FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]

CACHE_DIR = os.path.join(DATA_DIR, "cache")
ARRAYS = ("x_train", "y_train", "x_test", "y_test")


class DatasetError(RuntimeError):
    """A dataset file is missing, truncated or corrupt: the message names it and the fix."""


# --- CIFAR-10 -------------------------------------------------------------------------------

def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_archive(path, size=CIFAR_SIZE, sha256=CIFAR_SHA256):
    """Check the archive's size and SHA-256 before a byte of it is trusted."""
    if not os.path.isfile(path):
        raise DatasetError("{} does not exist".format(path))
    actual = os.path.getsize(path)
    if actual != size:
        raise DatasetError(
            "{} has {:,} bytes, expected {:,}: the download is truncated or not the CIFAR-10 "
            "binary archive. Delete it and download it again from {}".format(
                path, actual, size, CIFAR_URL))
    actual = file_sha256(path)
    if actual != sha256:
        raise DatasetError(
            "{} has SHA-256 {}, expected {}: the file is corrupt. Delete it and download it "
            "again from {}".format(path, actual, sha256, CIFAR_URL))


def _read_member(archive, path, name):
    """One member's records, looked up by its exact name: nothing is ever extracted to disk."""
    try:
        info = archive.getmember(name)
    except KeyError:
        raise DatasetError("{} has no member {}: it is not the CIFAR-10 binary archive; "
                           "delete it and download it again from {}".format(path, name, CIFAR_URL))
    if not info.isfile() or info.size % CIFAR_RECORD:
        raise DatasetError("{}: member {} is not a file of {}-byte records; delete the archive "
                           "and download it again".format(path, name, CIFAR_RECORD))
    raw = np.frombuffer(archive.extractfile(info).read(), dtype=np.uint8)
    records = raw.reshape(-1, CIFAR_RECORD)
    return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0].astype(np.int64)


def read_cifar_archive(path, size=CIFAR_SIZE, sha256=CIFAR_SHA256):
    """Verified archive -> (x_train, y_train, x_test, y_test), uint8 NCHW and int64 labels."""
    verify_archive(path, size, sha256)
    try:
        with tarfile.open(path, "r:gz") as archive:
            train = [_read_member(archive, path, n) for n in CIFAR_TRAIN]
            test = [_read_member(archive, path, n) for n in CIFAR_TEST]
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DatasetError("{} cannot be read as a gzip'd tar archive ({}); delete it and "
                           "download it again from {}".format(path, e, CIFAR_URL))
    return (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]),
            test[0][0], test[0][1])


INSTEAD = '"fashion-mnist" (Debian\'s package dataset-fashion-mnist) or "synthetic" (made here)'


def download(url, dest, timeout=30, verify=verify_archive, instead=INSTEAD):
    """Download to dest.part and move it into place only once it verifies (`verify` raises if not).
    Where the host does not answer, or the connection breaks, a DatasetError says what to set `instead`."""
    part = dest + ".part"
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as f:
            for block in iter(lambda: response.read(1 << 20), b""):
                f.write(block)
    except OSError as e:  # URLError (no such host, refused, a proxy's error), a time-out, a reset
        if os.path.exists(part):
            os.remove(part)
        raise DatasetError("{} could not be downloaded ({}): set DATASET to {} instead, or put the file at {}".format(
            url, getattr(e, "reason", None) or e, instead, dest))
    verify(part)
    os.replace(part, dest)


def reachable(host, timeout=5):
    """True when the host answers on HTTPS: the auto rules only download what they can reach."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def cifar_reachable(timeout=5):
    return reachable("www.cs.toronto.edu", timeout)


def decode_cifar10():
    archive = os.path.join(CACHE_DIR, "cifar-10-binary.tar.gz")
    if not os.path.exists(archive):
        download(CIFAR_URL, archive)
    return read_cifar_archive(archive)


# --- Fashion-MNIST ----------------------------------------------------------------------------

def fashion_dir():
    for d in FASHION_DIRS:
        if d and all(os.path.isfile(os.path.join(d, f)) for f in FASHION_FILES):
            return d
    return None


def read_idx(path, magic, dims):
    """An idx file (gzip'd): big-endian magic, dimension sizes, then uint8 data."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    header = 4 + 4 * dims
    fields = struct.unpack(">" + "I" * (1 + dims), data[:header]) if len(data) >= header else ()
    if not fields or fields[0] != magic or len(data) != header + int(np.prod(fields[1:])):
        raise DatasetError("{} is not a complete idx file; reinstall it "
                           "(apt-get install --reinstall dataset-fashion-mnist)".format(path))
    return np.frombuffer(data[header:], dtype=np.uint8).reshape(fields[1:])


def decode_fashion_mnist():
    """28x28 grey images, padded to 32x32 and repeated on 3 channels: the CNN runs unchanged."""
    d = fashion_dir()
    if d is None:
        raise DatasetError("Fashion-MNIST not found in {}: apt-get install dataset-fashion-mnist, "
                           "or set FASHION_MNIST_DIR".format(" or ".join(filter(None, FASHION_DIRS))))
    arrays = []
    for images, labels in [(FASHION_FILES[0], FASHION_FILES[1]), (FASHION_FILES[2], FASHION_FILES[3])]:
        x = read_idx(os.path.join(d, images), 2051, 3)
        x = np.pad(x, ((0, 0), (2, 2), (2, 2)), mode="constant")[:, None].repeat(3, axis=1)
        arrays += [x, read_idx(os.path.join(d, labels), 2049, 1).astype(np.int64)]
    return tuple(arrays)


# --- Synthetic --------------------------------------------------------------------------------

def make_synthetic(n_train=2048, n_test=512, seed=SEED):
    """Seeded CIFAR-shaped data: each class a smooth colour pattern, each image a noisy copy."""
    rng = np.random.RandomState(seed)
    coarse = rng.uniform(0, 255, size=(N_CLASSES, 3, 4, 4))
    prototypes = coarse.repeat(8, axis=2).repeat(8, axis=3)  # 4x4 blocks of 8x8 pixels

    def split(n):
        y = rng.randint(0, N_CLASSES, size=n).astype(np.int64)
        x = prototypes[y] + rng.normal(0, 60, size=(n, 3, 32, 32))
        return np.clip(x, 0, 255).astype(np.uint8), y
    x_train, y_train = split(n_train)
    x_test, y_test = split(n_test)
    return x_train, y_train, x_test, y_test


# --- Cache, choice and the seed's interface ---------------------------------------------------

DECODERS = {"cifar10": decode_cifar10, "fashion-mnist": decode_fashion_mnist,
            "synthetic": make_synthetic}


def cache_path(name, array):
    return os.path.join(CACHE_DIR, name, array + ".npy")


def is_cached(name):
    return all(os.path.exists(cache_path(name, a)) for a in ARRAYS)


def resolve(name):
    """'auto' -> CIFAR-10 if cached or reachable, else Fashion-MNIST, else synthetic."""
    check_choice("dataset", name, DATASETS)
    if name != "auto":
        return name
    if is_cached("cifar10") or os.path.exists(os.path.join(CACHE_DIR, "cifar-10-binary.tar.gz")):
        return "cifar10"
    if cifar_reachable():
        return "cifar10"
    return "fashion-mnist" if fashion_dir() else "synthetic"


def prepare(name):
    """Decode the dataset once and cache its arrays; each array is written atomically.
    A cache that is there already is read once, so a corrupt one stops the run before it starts."""
    if is_cached(name):
        load_cached(name)
        return
    save_arrays(os.path.join(CACHE_DIR, name), zip(ARRAYS, DECODERS[name]()))


def save_arrays(folder, named):
    """Each (name, array) to folder/name.npy, atomically: a half-written cache never exists."""
    os.makedirs(folder, exist_ok=True)
    for array, value in named:
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".npy.tmp")
        with os.fdopen(fd, "wb") as f:
            np.save(f, value, allow_pickle=False)
        os.replace(tmp, os.path.join(folder, array + ".npy"))


def load_cached(name):
    if not is_cached(name):
        raise DatasetError("dataset {} is not cached under {}: run `make bench` (which prepares "
                           "it) or call datasets.prepare({!r})".format(name, CACHE_DIR, name))
    arrays = []
    for array in ARRAYS:
        path = cache_path(name, array)
        try:
            arrays.append(np.load(path, allow_pickle=False))
        except (ValueError, OSError, EOFError) as e:
            raise DatasetError("cached array {} is corrupt ({}): delete {} (or run `make clean`) "
                               "and run again to rebuild it".format(path, e, os.path.dirname(path)))
    x_train, y_train, x_test, y_test = arrays
    if x_train.shape[1:] != (3, 32, 32) or len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise DatasetError("cached arrays under {} have the wrong shape: delete that folder and run "
                           "again to rebuild them".format(os.path.join(CACHE_DIR, name)))
    return arrays


def cifar_for_library(dataset, profile, channel_first=True, one_hot=False):
    """The seed's loader: float32 pixels in [0, 1], NCHW or NHWC, integer or one-hot labels."""
    x_train, y_train, x_test, y_test = load_cached(dataset)
    x_train, y_train = x_train[:profile["n_train"]], y_train[:profile["n_train"]]
    x_test, y_test = x_test[:profile["n_test"]], y_test[:profile["n_test"]]
    x_train, x_test = [(x / np.float32(255)).astype(np.float32) for x in (x_train, x_test)]
    if not channel_first:  # a true NCHW -> NHWC transpose (the seed's swapaxes also swapped H and W)
        x_train, x_test = x_train.transpose(0, 2, 3, 1), x_test.transpose(0, 2, 3, 1)
        x_train, x_test = np.ascontiguousarray(x_train), np.ascontiguousarray(x_test)
    if one_hot:
        y_train, y_test = [np.eye(N_CLASSES, dtype=np.float32)[y] for y in (y_train, y_test)]
    else:
        y_train, y_test = y_train.astype(np.int32), y_test.astype(np.int32)
    return x_train, x_test, y_train, y_test


def minibatches(x, y, batch_size=BATCH_SIZE, epoch=0, shuffle=True, seed=SEED):
    """Full batches only, in an order fixed by (seed, epoch): the same for every framework."""
    n = len(x) - len(x) % batch_size
    order = np.random.RandomState(seed + epoch).permutation(len(x)) if shuffle else np.arange(len(x))
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        yield (x[idx], y[idx]) if y is not None else x[idx]


def evaluate(y_pred, y_test):
    """Accuracy on the predicted images: the same NumPy code for every framework."""
    y_pred = np.asarray(y_pred).reshape(-1)
    y_true = np.asarray(y_test).reshape(len(y_test), -1).argmax(1) if np.ndim(y_test) > 1 else y_test
    return float(np.mean(y_pred == y_true[:len(y_pred)]))


def n_predicted(n_test, batch_size=BATCH_SIZE):
    """Prediction also runs on full batches (as in the seed): the last partial batch is dropped."""
    return n_test - n_test % batch_size
