"""Part IV's encoder through each framework's ONNX exporter: the same checks as test_onnx.py's, on the
padded reviews (make test-onnx-attention; the committed reference's table is checked in make test, by
test_reference.py). The frameworks that cannot are named here with the reason (measured; the page's
export tab says each); a release that fixes one fails its test."""
import pytest

import common
import test_onnx
from lab import onnx_check

pytestmark = pytest.mark.onnx_attention
FRAMEWORKS = common.implemented_frameworks(model="attention")
CANNOT = {"attention-keras-jax": "jax2onnx's converter of jax.nn.gelu unpacks one input where Keras' call has two",
          "attention-keras-torch": "Keras' TorchScript export stops in its layer normalization, at a shape list from the input",
          "attention-mxnet": "MXNet's Reshape converter does not take -3, which the heads' reshape uses",
          "attention-chainer": "onnx_chainer hands the model a Variable, on which ids != 0 raises",
          "attention-cntk": "CNTK's exporter has no NotEqual",
          "attention-keras-cntk": "CNTK's exporter has no NotEqual",
          "attention-caffe2": "Caffe2's frontend writes NE, which ONNX does not have"}
EXPORTING = [f for f in FRAMEWORKS if f not in CANNOT]


@pytest.fixture(scope="module")
def table():
    return onnx_check.table(FRAMEWORKS)["table"]


@pytest.mark.parametrize("framework", sorted(CANNOT))
def test_a_framework_that_cannot_says_why_measured(table, framework):
    row = table[framework]
    why = row.get("error") or (row.get("export") or {}).get("error")
    assert why and not onnx_check.passes(row), "{} exports now: take it out of CANNOT".format(framework)


@pytest.mark.parametrize("framework", EXPORTING)
def test_the_exported_file_computes_the_frameworks_logits_at_any_batch(table, framework):
    test_onnx.test_the_exported_file_computes_the_frameworks_logits_at_any_batch(table, framework)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_model_trained_in_one_framework_predicts_alike_in_onnx_runtime_and_in_this_one(table, framework):
    test_onnx.test_a_model_trained_in_one_framework_predicts_alike_in_onnx_runtime_and_in_this_one(table, framework)
