"""The data loader against archives the tests build, the caches, and the shared batch generator."""
import gzip
import hashlib
import io
import os
import struct
import sys
import tarfile

import numpy as np
import pytest

from conftest import CODE, run
import common
import datasets
from datasets import DatasetError

N_PER_MEMBER = 20


def records(n, label_offset=0):
    """n CIFAR records whose pixels encode their label, so decoding can be checked exactly."""
    out = bytearray()
    for i in range(n):
        label = (i + label_offset) % 10
        planes = np.stack([np.full((32, 32), label * 20 + c, np.uint8) for c in range(3)])
        out += bytes([label]) + planes.tobytes()
    return bytes(out)


def build_archive(path, members):
    """A gzip'd tar of (name, bytes) members; returns (size, sha256) for the loader."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with open(path, "rb") as f:
        blob = f.read()
    return len(blob), hashlib.sha256(blob).hexdigest()


def good_members():
    return [(n, records(N_PER_MEMBER, i)) for i, n in enumerate(datasets.CIFAR_TRAIN + datasets.CIFAR_TEST)]


def test_reads_a_good_archive(tmp_path):
    path = str(tmp_path / "cifar.tar.gz")
    size, sha = build_archive(path, good_members())
    x_train, y_train, x_test, y_test = datasets.read_cifar_archive(path, size, sha)
    assert x_train.shape == (5 * N_PER_MEMBER, 3, 32, 32) and x_train.dtype == np.uint8
    assert x_test.shape == (N_PER_MEMBER, 3, 32, 32)
    assert y_train[:3].tolist() == [0, 1, 2] and y_test[:3].tolist() == [5, 6, 7]
    # R, G and B planes in that order: channel c of a label-L image holds 20 L + c.
    assert x_train[7, :, 5, 5].tolist() == [y_train[7] * 20 + c for c in range(3)]


def test_wrong_checksum_names_the_file_and_the_fix(tmp_path):
    path = str(tmp_path / "cifar.tar.gz")
    size, _ = build_archive(path, good_members())
    with pytest.raises(DatasetError, match=r"cifar\.tar\.gz has SHA-256 .* download it again"):
        datasets.read_cifar_archive(path, size, "0" * 64)


def test_truncated_archive_is_refused_before_decoding(tmp_path):
    path = str(tmp_path / "cifar.tar.gz")
    size, sha = build_archive(path, good_members())
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(DatasetError, match="truncated"):
        datasets.read_cifar_archive(path, size, sha)


def test_missing_member_is_named(tmp_path):
    path = str(tmp_path / "cifar.tar.gz")
    size, sha = build_archive(path, good_members()[:-1])
    with pytest.raises(DatasetError, match="no member cifar-10-batches-bin/test_batch.bin"):
        datasets.read_cifar_archive(path, size, sha)


def test_member_with_dotdot_path_is_never_extracted(tmp_path):
    """A hostile member is neither read nor written: only the six names are looked up."""
    target = tmp_path / "evil.bin"
    path = str(tmp_path / "sub" / "cifar.tar.gz")
    os.makedirs(os.path.dirname(path))
    size, sha = build_archive(path, [("../evil.bin", b"x" * 10)] + good_members())
    x_train, _, _, _ = datasets.read_cifar_archive(path, size, sha)
    assert len(x_train) == 5 * N_PER_MEMBER and not target.exists()
    # A required member reachable only through '..' does not count as that member.
    members = good_members()
    members[0] = ("cifar-10-batches-bin/../cifar-10-batches-bin/data_batch_1.bin", members[0][1])
    size, sha = build_archive(path, members)
    with pytest.raises(DatasetError, match="no member cifar-10-batches-bin/data_batch_1.bin"):
        datasets.read_cifar_archive(path, size, sha)


def test_member_of_wrong_size_is_refused(tmp_path):
    path = str(tmp_path / "cifar.tar.gz")
    members = good_members()
    members[2] = (members[2][0], members[2][1][:-5])
    size, sha = build_archive(path, members)
    with pytest.raises(DatasetError, match="data_batch_3.bin is not a file of 3073-byte records"):
        datasets.read_cifar_archive(path, size, sha)


def test_half_written_download_never_passes(tmp_path, monkeypatch):
    """A download that breaks off leaves only a .part file, which is never taken for the archive."""
    dest = str(tmp_path / "cifar-10-binary.tar.gz")

    class Broken(io.BytesIO):
        def read(self, n=-1):
            if self.tell() > 0:
                raise OSError("connection reset")
            return super().read(n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(datasets.urllib.request, "urlopen", lambda url, timeout: Broken(b"x" * 4096))
    with pytest.raises(datasets.DatasetError, match=r"cifar could not be downloaded \(connection reset\): set DATASET to"):
        datasets.download("https://example.invalid/cifar", dest)
    assert not os.path.exists(dest) and not os.path.exists(dest + ".part")


def write_idx(path, magic, array):
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">" + "I" * (1 + array.ndim), magic, *array.shape) + array.tobytes())


def test_fashion_mnist_is_padded_to_32_and_three_channels(tmp_path, monkeypatch):
    rng = np.random.RandomState(0)
    images = rng.randint(0, 255, size=(6, 28, 28)).astype(np.uint8)
    labels = np.arange(6, dtype=np.uint8)
    for prefix in ("train", "t10k"):
        write_idx(str(tmp_path / (prefix + "-images-idx3-ubyte.gz")), 2051, images)
        write_idx(str(tmp_path / (prefix + "-labels-idx1-ubyte.gz")), 2049, labels)
    monkeypatch.setattr(datasets, "FASHION_DIRS", [str(tmp_path)])
    x_train, y_train, x_test, y_test = datasets.decode_fashion_mnist()
    assert x_train.shape == (6, 3, 32, 32) and y_train.tolist() == list(range(6))
    assert (x_train[:, 1, 2:30, 2:30] == images).all() and x_train[:, :, :2].max() == 0
    assert (x_train[:, 0] == x_train[:, 2]).all()


def test_truncated_idx_file_is_refused(tmp_path, monkeypatch):
    write_idx(str(tmp_path / "x.gz"), 2051, np.zeros((4, 28, 28), np.uint8))
    with gzip.open(str(tmp_path / "x.gz"), "rb") as f:
        data = f.read()
    with gzip.open(str(tmp_path / "x.gz"), "wb") as f:
        f.write(data[:-100])
    with pytest.raises(DatasetError, match="not a complete idx file"):
        datasets.read_idx(str(tmp_path / "x.gz"), 2051, 3)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "CACHE_DIR", str(tmp_path / "cache"))
    datasets.prepare("synthetic")
    return tmp_path / "cache"


def test_cifar_for_library_layouts_and_labels(cache):
    prof = dict(n_train=100, n_test=50)
    x_tr, x_te, y_tr, y_te = datasets.cifar_for_library("synthetic", prof, channel_first=True)
    assert x_tr.shape == (100, 3, 32, 32) and x_tr.dtype == np.float32 and y_tr.dtype == np.int32
    assert 0.0 <= x_tr.min() and x_tr.max() <= 1.0 and x_te.shape == (50, 3, 32, 32)
    h_tr, _, h_y, _ = datasets.cifar_for_library("synthetic", prof, channel_first=False, one_hot=True)
    # A true NHWC transpose: pixel (row 3, column 7) stays where it was, unlike the seed's swapaxes.
    assert h_tr.shape == (100, 32, 32, 3) and (h_tr[:, 3, 7, :] == x_tr[:, :, 3, 7]).all()
    assert h_y.shape == (100, 10) and (h_y.argmax(1) == y_tr).all() and h_y.sum() == 100


def test_corrupt_cached_array_says_what_to_do(cache):
    with open(str(cache / "synthetic" / "x_train.npy"), "r+b") as f:
        f.write(b"garbage!" * 20)
    with pytest.raises(DatasetError, match="x_train.npy is corrupt.*delete"):
        datasets.load_cached("synthetic")


def test_unknown_dataset_is_a_usage_error():
    with pytest.raises(common.UsageError, match="unknown dataset 'imagenet': choose one of auto"):
        datasets.resolve("imagenet")


def test_synthetic_data_is_seeded():
    a, b = datasets.make_synthetic(64, 16), datasets.make_synthetic(64, 16)
    assert all((u == v).all() for u, v in zip(a, b))


def test_minibatches_full_batches_in_a_fixed_order():
    x, y = np.arange(200).reshape(200, 1), np.arange(200)
    epoch0 = list(datasets.minibatches(x, y, batch_size=64, epoch=0))
    assert len(epoch0) == 3 and all(len(bx) == 64 and (bx[:, 0] == by).all() for bx, by in epoch0)
    again = list(datasets.minibatches(x, y, batch_size=64, epoch=0))
    assert all((a[1] == b[1]).all() for a, b in zip(epoch0, again))
    epoch1 = list(datasets.minibatches(x, y, batch_size=64, epoch=1))
    assert not (epoch0[0][1] == epoch1[0][1]).all()
    assert len(set(np.concatenate([b for _, b in epoch0]))) == 192  # no image twice in an epoch
    test = list(datasets.minibatches(x, None, batch_size=64, shuffle=False))
    assert (np.concatenate(test)[:, 0] == np.arange(192)).all()


def test_minibatches_identical_in_another_process():
    """Every framework runs in its own process (and Python): the order must not depend on it."""
    code = ("import sys; sys.path.insert(0, %r); import numpy as np, datasets; "
            "x = np.arange(640).reshape(640, 1); "
            "print([int(b[0, 0]) for b, _ in datasets.minibatches(x, x[:, 0], epoch=3)])" % CODE)
    out = run([sys.executable, "-c", code])
    here = [int(b[0, 0]) for b, _ in datasets.minibatches(np.arange(640).reshape(640, 1),
                                                          np.arange(640), epoch=3)]
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(here)
