"""Part III: the NumPy ResNet-50 in both variants, the neutral layout and its errors, the images and
theirs, and every framework's zoo ResNet-50 against the reference of the variant it computes."""
import json
import os
import sys

import numpy as np
import pytest

from conftest import COMMITTED, CODE, run

sys.path.insert(0, os.path.join(CODE, "resnet"))
import common  # noqa: E402
import images  # noqa: E402
import resnet_reference as ref  # noqa: E402
import resnet_weights  # noqa: E402
from lab import envs, features  # noqa: E402

ROWS = common.implemented_frameworks(model="resnet")


def naive_conv(x, kernel, stride, pad):
    """The convolution's definition, one output pixel at a time: what conv2d's strided view must equal."""
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    o, _, k, _ = kernel.shape
    h = (x.shape[2] - k) // stride + 1
    out = np.zeros((x.shape[0], o, h, h))
    for i in range(h):
        for j in range(h):
            patch = x[:, :, i * stride:i * stride + k, j * stride:j * stride + k]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, kernel)
    return out


@pytest.mark.parametrize("k,stride,pad", [(3, 1, 1), (3, 2, 1), (7, 2, 3), (1, 2, 0), (1, 1, 0)])
def test_the_reference_convolution_is_the_definition(k, stride, pad):
    rng = np.random.RandomState(0)
    x, kernel = rng.normal(size=(2, 3, 9, 9)), rng.normal(size=(4, 3, k, k))
    np.testing.assert_allclose(ref.conv2d(x, kernel, stride, pad), naive_conv(x, kernel, stride, pad), atol=1e-12)


def test_the_stem_pooling_pads_with_what_never_wins():
    x = -np.arange(1.0, 17.0).reshape(1, 1, 4, 4)  # all negative: a zero in the padding would win
    pooled = ref.max_pool(x)
    assert pooled.shape == (1, 1, 2, 2) and pooled.max() < 0
    assert pooled[0, 0, 0, 0] == x[0, 0, :2, :2].max()  # the window at -1 sees pixels 0 and 1 only


def test_the_two_variants_put_the_stride_in_their_places_and_count_flops_from_the_shapes():
    by = {v: {name: stride for name, _, _, stride, _ in resnet_weights.convs(v)} for v in resnet_weights.VARIANTS}
    assert by["v1"]["layer2.0.conv1"] == 2 and by["v1"]["layer2.0.conv2"] == 1
    assert by["v1.5"]["layer2.0.conv1"] == 1 and by["v1.5"]["layer2.0.conv2"] == 2
    assert by["v1"]["layer2.0.downsample.0"] == by["v1.5"]["layer2.0.downsample.0"] == 2
    assert resnet_weights.N_PARAMS == 23508032  # torchvision's 25,557,032 less fc's 2,049,000
    # 4.09 and 3.86 billion multiply-adds, as the two variants are usually quoted
    assert round(ref.flops("v1.5") / 2e9, 2) == 4.09 and round(ref.flops("v1") / 2e9, 2) == 3.86


def test_a_bias_folded_into_the_batch_norm_is_the_same_function():
    rng = np.random.RandomState(1)
    weights = resnet_weights.random_weights(0)
    conv = rng.normal(size=(2, 64, 3, 3))
    bias = rng.normal(size=64)
    before = ref.batch_norm(conv + bias.reshape(1, -1, 1, 1), weights, "bn1", 1e-5)
    after = ref.batch_norm(conv, resnet_weights.fold_bias(dict(weights), "conv1", bias), "bn1", 1e-5)
    np.testing.assert_allclose(after, before, atol=1e-5)


def test_weights_of_another_layout_or_a_corrupt_file_get_an_error_that_says_what_to_do(tmp_path):
    weights = resnet_weights.random_weights(0)
    wrong = dict(weights, **{"conv1.weight": resnet_weights.oihw_to_hwio(weights["conv1.weight"])})
    with pytest.raises(resnet_weights.WeightsError, match=r"conv1.weight has shape \(7, 7, 3, 64\).*hwio_to_oihw"):
        resnet_weights.check(wrong)
    with pytest.raises(resnet_weights.WeightsError, match="missing bn1.bias.*torchvision's names"):
        resnet_weights.check({k: v for k, v in weights.items() if k != "bn1.bias"})
    with pytest.raises(resnet_weights.WeightsError, match="extra fc.weight"):
        resnet_weights.check(dict(weights, **{"fc.weight": np.zeros((1000, 2048))}))
    path = str(tmp_path / "w.npz")
    resnet_weights.save(path, weights)
    assert all(np.array_equal(a, weights[n]) for n, a in resnet_weights.load(path).items())
    with open(path, "r+b") as f:
        f.seek(100)
        f.write(b"\0" * 64)
    with pytest.raises(resnet_weights.WeightsError, match="delete it and write it again"):
        resnet_weights.load(path)


def test_images_of_the_wrong_size_channels_or_type_get_an_error_that_says_what_to_do():
    with pytest.raises(images.ImageError, match=r"\(2, 32, 32, 3\).*resize yours to 224x224"):
        images.check_images(np.zeros((2, 32, 32, 3), np.uint8))
    with pytest.raises(images.ImageError, match="grey image its channel three times"):
        images.check_images(np.zeros((2, 224, 224, 1), np.uint8))
    with pytest.raises(images.ImageError, match="dtype float32: give uint8"):
        images.check_images(np.zeros((2, 224, 224, 3), np.float32))


def test_the_images_are_the_cnn_datasets_resized_once_and_the_same_bytes_for_every_layout():
    images.prepare("synthetic")
    made = images.make("synthetic", 64)
    assert made.shape == (64, 224, 224, 3) and made.dtype == np.uint8
    assert np.array_equal(images.make("synthetic", 64), made)  # read back from the cache
    flat = np.full((1, 3, 32, 32), 200, np.uint8)
    assert (images.resize(flat) == 200).all()  # bilinear keeps a flat image flat, edges included
    nchw, nhwc = images.preprocess(made[:2]), images.preprocess(made[:2], channel_first=False)
    assert np.array_equal(nchw.transpose(0, 2, 3, 1), nhwc)
    assert len(images.in_batches(nchw.repeat(40, axis=0))) == 2  # whole batches of 32 only


def test_a_cached_image_file_that_is_corrupt_is_refused_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "CACHE_DIR", str(tmp_path))
    path = images.images_path("synthetic", 64)
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as f:
        f.write(b"not an array")
    with pytest.raises(images.ImageError, match="delete the file and run again"):
        images.make("synthetic", 64)


def test_every_framework_has_a_resnet_row():
    assert [common.tab(n) for n in ROWS] == [common.tab(n) for n in common.FRAMEWORKS]


@pytest.fixture(scope="module")
def table():
    """Every row's check, measured unless today's code made it on a machine of this kind (as
    test_parity's); the book's build shows this one."""
    return features.table(ROWS, root=COMMITTED)["table"]


@pytest.mark.parametrize("framework", ROWS)
def test_each_zoo_resnet_computes_the_reference_of_its_variant_and_moves_weights(table, framework):
    if envs.python_for(framework)[0] is None:
        pytest.skip(envs.python_for(framework)[1])
    row = table[framework]
    assert "error" not in row, row.get("error")
    assert row["features"] <= features.TOLERANCE, "features {:.1e} from the {} reference".format(row["features"], row["variant"])
    assert row["own"] <= features.TOLERANCE, "its own weights, read out, give other features in the reference"
    assert row["roundtrip"] == 0.0
    assert row["variants_apart"] > 100 * features.TOLERANCE  # the check can tell the variants apart
    assert all(d <= features.TOLERANCE for d in row["moved"].values()), row["moved"]
    assert row.get("other", 0.0) <= features.TOLERANCE
    assert row["params"] >= resnet_weights.N_PARAMS
    described = row["described"]
    assert described["variant"] in resnet_weights.VARIANTS and described["layout"] in ("NCHW", "NHWC")
    assert row["book"]["bn_eps"] == resnet_weights.BOOK_EPS, "create_model is not the book's function"


def test_every_pair_of_rows_of_a_variant_has_moved_weights_between_them(table):
    done = {n: r for n, r in table.items() if "error" not in r}
    for variant in resnet_weights.VARIANTS:
        names = sorted(n for n, r in done.items() if r["variant"] == variant)
        pairs = {frozenset((a, b)) for a in names for b in done[a]["moved"]}
        assert pairs == {frozenset((a, b)) for a in names for b in names if a < b}, variant


def test_the_timed_run_keeps_the_first_batch_apart_and_times_onnx_runtime_beside(results_dir):
    out = run([sys.executable, "code/bench.py", "--model", "resnet", "--frameworks", "pytorch",
               "--profile", "smoke", "--dataset", "synthetic"], timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    folder = os.path.join(results_dir, "runs", sorted(os.listdir(os.path.join(results_dir, "runs")))[-1])
    with open(os.path.join(folder, "resnet-pytorch.json")) as f:
        result = json.load(f)
    assert result["status"] == "ok" and result["n_images"] == 64 and len(result["batch_seconds"]) == 1
    assert result["seconds_per_1000"] == pytest.approx(result["batch_seconds"][0] * 1000 / 32)
    assert result["first_batch_seconds"] > 0 and result["variant"] == "v1.5"
    with open(os.path.join(folder, "baseline.json")) as f:
        peer = json.load(f)
    assert peer["framework"] == "onnxruntime" and peer["difference"] <= features.TOLERANCE
    assert peer["seconds_per_1000"] > 0


def test_the_page_states_the_tolerance_the_check_applies():
    with open(os.path.join(CODE, "..", "book", "resnet.md")) as f:
        text = f.read()
    assert "{:.0e} of the largest feature".format(features.TOLERANCE).replace("e-0", "e-") in text
