"""ONNX: every framework's own exporter writes a file that ONNX Runtime runs with the framework's
own logits, at any batch size and without dropout; a model trained in one framework gives, in ONNX
Runtime, what every framework computes with its weights; a bad file gets one clear line. Part I's
CNN here; part II's GRU with the same tests in test_onnx_rnn.py (make test-onnx-rnn)."""
import os

import numpy as np
import pytest

from conftest import COMMITTED, row_of

from lab import envs
import common
from lab import onnx_check

FRAMEWORKS = common.implemented_frameworks()


@pytest.fixture(scope="module")
def table():
    """Measured once per code and environments (the book's chapter reads the same cache)."""
    return onnx_check.table(FRAMEWORKS, root=COMMITTED)["table"]



EXPORTING = [f for f in FRAMEWORKS if f not in onnx_check.CANNOT]


@pytest.mark.parametrize("framework", sorted(set(onnx_check.CANNOT) & set(FRAMEWORKS)))
def test_a_framework_that_cannot_says_why_measured(table, framework):
    if envs.python_for(framework)[0] is None:
        pytest.skip(envs.python_for(framework)[1])
    row = table[framework]
    why = row.get("error") or row.get("export", {}).get("error")
    assert why and not onnx_check.passes(row), "{} exports now: take it out of onnx_check.CANNOT".format(framework)


@pytest.mark.parametrize("framework", EXPORTING)
def test_the_exported_file_computes_the_frameworks_logits_at_any_batch(table, framework):
    row = row_of(table, framework)
    assert "seconds" in row["export"], row["export"].get("error")
    assert row["logits"] < onnx_check.TOLERANCE, "batch of 64: {:.2e}".format(row["logits"])
    assert row["batch_1"] < onnx_check.TOLERANCE, "batch of 1: {:.2e}".format(row["batch_1"])
    assert row["same_classes"]
    assert row["dynamic_batch"], "the file fixes the batch size"
    assert "Dropout" not in row["ops"], row["ops"]
    assert row["opset"] and row["bytes"] > 4 * common.n_params(common.ROWS[framework]["model"])  # the float32 weights are in the file
    assert onnx_check.passes(row)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_model_trained_in_one_framework_predicts_alike_in_onnx_runtime_and_in_this_one(table, framework):
    """The source's trained file in ONNX Runtime, against this framework given the trained weights
    through set_weights (whether or not this framework's own exporter works)."""
    if envs.python_for(framework)[0] is None:
        pytest.skip(envs.python_for(framework)[1])
    row = table[framework]
    assert row.get("from_source") is not None, row.get("from_source_error") or row.get("error")
    assert row["from_source"] < onnx_check.TOLERANCE, "{:.2e}".format(row["from_source"])
    assert row["from_source_classes"]


# --- Bad files: tiny real ONNX models, built here, run by the real ONNX Runtime ------------------

def tiny_model(path, image=(3, 32, 32), opset=13):
    """A valid ONNX file taking a batch of `image` to 10 logits (flatten, one matrix product)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    n = int(np.prod(image))
    w = np.random.RandomState(0).uniform(-0.01, 0.01, (n, 10)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["flat"], axis=1), helper.make_node("MatMul", ["flat", "w"], ["logits"])],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch"] + list(image))],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save(model, path)
    return w


def one_line_error(path, image=(3, 32, 32)):
    with pytest.raises(onnx_check.OnnxFileError) as e:
        onnx_check.load(str(path), image)
    message = str(e.value)
    assert "\n" not in message and str(path) in message
    return message


def test_a_truncated_file_says_so_and_what_to_do(tmp_path):
    path = tmp_path / "cut.onnx"
    tiny_model(str(path))
    path.write_bytes(path.read_bytes()[:200])
    assert "not a readable ONNX file" in one_line_error(path) and "export it again" in one_line_error(path)


def test_a_file_of_another_model_says_so(tmp_path):
    path = tmp_path / "other.onnx"
    tiny_model(str(path), image=(28, 28))
    assert "another model" in one_line_error(path)


def test_an_opset_the_runtime_lacks_says_which(tmp_path):
    path = tmp_path / "future.onnx"
    tiny_model(str(path), opset=99)
    message = one_line_error(path)
    assert "opset 99" in message and "supports" in message


def test_a_bad_file_costs_only_its_own_row(tmp_path):
    """compare() with one good and one truncated file: the good row is measured, the bad one says why."""
    x = np.random.RandomState(1).uniform(0, 1, (common.BATCH_SIZE, 3, 32, 32)).astype(np.float32)
    found = {}
    for name in ("good", "cut"):
        w = tiny_model(str(tmp_path / (name + ".onnx")))
        np.savez(str(tmp_path / (name + ".npz")), x=x, logits=x.reshape(len(x), -1) @ w,
                 trained_logits=x.reshape(len(x), -1) @ w)
        found[name] = dict(export=dict(seconds=0.1), info=dict(device="cpu", version="-", layout="NCHW"))
    (tmp_path / "cut.onnx").write_bytes((tmp_path / "cut.onnx").read_bytes()[:100])
    table = onnx_check.compare(["good", "cut"], str(tmp_path), "good", found)
    assert table["good"]["logits"] < onnx_check.TOLERANCE and table["good"]["same_classes"]
    assert "not a readable ONNX file" in table["cut"]["error"] and "cut.onnx" in table["cut"]["error"]
    assert os.path.exists(str(tmp_path / "good.onnx"))
