"""Part II's GRU through each framework's ONNX exporter: the same checks as test_onnx.py's, on the
padded reviews (make test-onnx-rnn; the committed reference's table is checked in make test, by
test_reference.py). The frameworks that cannot are named in onnx_check.CANNOT with the reason; a
release that fixes one fails its test here."""
import pytest

import common
import test_onnx
from lab import onnx_check

pytestmark = pytest.mark.onnx_rnn
FRAMEWORKS = common.implemented_frameworks(model="rnn")
EXPORTING = [f for f in FRAMEWORKS if f not in onnx_check.CANNOT]


@pytest.fixture(scope="module")
def table():
    return onnx_check.table(FRAMEWORKS)["table"]


@pytest.mark.parametrize("framework", sorted(set(onnx_check.CANNOT) & set(FRAMEWORKS)))
def test_a_framework_that_cannot_says_why_measured(table, framework):
    test_onnx.test_a_framework_that_cannot_says_why_measured(table, framework)


@pytest.mark.parametrize("framework", EXPORTING)
def test_the_exported_file_computes_the_frameworks_logits_at_any_batch(table, framework):
    test_onnx.test_the_exported_file_computes_the_frameworks_logits_at_any_batch(table, framework)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_model_trained_in_one_framework_predicts_alike_in_onnx_runtime_and_in_this_one(table, framework):
    test_onnx.test_a_model_trained_in_one_framework_predicts_alike_in_onnx_runtime_and_in_this_one(table, framework)
