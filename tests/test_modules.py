"""Each framework module, in its own environment: the seed's model and its outputs through the whole
contract, over a few steps; and learning, once (the parity tests show every row taking the reference's
steps through its own load_data and train_epoch, so one row that learns stands for all)."""
import json
import os

import numpy as np
import pytest

from conftest import ROOT, env_python, run
import common


LEARNER = common.implemented_frameworks()[0]  # PyTorch: the fastest to train here


def check(framework, *flags):
    out = run([env_python(framework), os.path.join(ROOT, "tests", "module_check.py"), framework] + list(flags),
              timeout=900, env=dict(os.environ, **common.ROWS[framework].get("vars", {})))
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module", params=common.implemented_frameworks(tuned=True))
def checked(request):
    return request.param, check(request.param)


def test_parameter_count_is_the_seeds(checked):
    framework, c = checked
    assert c["params"] == common.N_PARAMS == 3441592, framework


def test_data_layout_matches_the_module(checked):
    framework, c = checked
    assert c["x_shape"][0] == 128 and sorted(c["x_shape"][1:]) == [3, 32, 32]
    assert c["x_shape"][1:] in ([3, 32, 32], [32, 32, 3])
    assert c["info"]["layout"] == ("NCHW" if c["x_shape"][1] == 3 else "NHWC")


def test_predictions_are_class_indices_for_every_full_test_batch(checked):
    framework, c = checked
    assert c["pred_shape"] == [128] and c["pred_kind"] in "iu"
    assert 0 <= c["pred_min"] <= c["pred_max"] < common.N_CLASSES


def test_each_epoch_gives_a_loss_near_ln_10_at_the_start(checked):
    framework, c = checked
    assert len(c["losses"]) == 2 and all(np.isfinite(c["losses"])), c["losses"]
    assert 2.0 < c["losses"][0] < 2.6, c["losses"]  # about ln(10) = 2.30 from Glorot weights


def test_loss_falls_on_learnable_data():
    c = check(LEARNER, "--learn")
    losses = c["losses"]
    assert 2.0 < losses[0] < 2.6, losses  # about ln(10) = 2.30 at the start
    assert losses[-1] < 0.7 * losses[0], losses
    assert c["accuracy"] > 0.5, c["accuracy"]


def test_runtime_info_states_device_and_precision(checked):
    framework, c = checked
    info = c["info"]
    assert info["version"] and info["device"] in ("cpu", "gpu")
    assert info["tf32_conv"] in (True, False) and info["tf32_matmul"] in (True, False)
    if not common.TF32:
        assert not info["tf32_conv"] and not info["tf32_matmul"]


CAFFE2_MOMENTUM = """
import json
import cnn_caffe2
model, _ = cnn_caffe2.init_model(cnn_caffe2.create_model())
ops = [op for op in model.net.Proto().op if op.type == "MomentumSGDUpdate"]
print(json.dumps([{a.name: a.i for a in op.arg if a.name == "nesterov"}.get("nesterov") for op in ops]))
"""


def test_caffe2_trains_with_classic_momentum_not_its_nesterov_default():
    from lab import envs
    env_python("caffe2")
    nesterov = envs.run_script("caffe2", None, ["-c", CAFFE2_MOMENTUM])
    assert isinstance(nesterov, list), nesterov
    assert len(nesterov) == 12 and set(nesterov) == {0}, nesterov  # one update per weight and bias


@pytest.mark.parametrize("framework, device", [("mxnet", "mx.cpu()"), ("cntk", "C.device.cpu()"),
                                               ("caffe2", "core.DeviceOption(caffe2_pb2.CPU, 0)")])
def test_the_legacy_gpu_check_runs_a_convolution_and_a_matrix_product(framework, device):
    """What the start-up check runs on the first GPU (there cuDNN's and cuBLAS's kernels, which the
    driver may have to compile for a card newer than the build), tried here on the CPU."""
    module = common.ROWS[framework]["module"]
    imports = {"mxnet": "import mxnet as mx", "cntk": "import cntk as C",
               "caffe2": "from caffe2.proto import caffe2_pb2; from caffe2.python import core"}[framework]
    script = "import sys; sys.path[:0] = ['code', 'code/cnn']; {}; import {} as m; import inspect; m.probe({}); " \
             "src = inspect.getsource(m.probe); print(('onvolution' in src or 'Conv' in src) and " \
             "('dot' in src or 'times' in src or 'MatMul' in src))".format(imports, module, device)
    out = run([env_python(framework), "-c", script])
    assert out.returncode == 0 and out.stdout.split()[-1] == "True", out.stderr[-2000:]
