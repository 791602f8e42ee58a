"""Caffe2 (inside PyTorch 1.8.1): brew helpers build a train net and a test net sharing blobs."""
import numpy as np
from caffe2.proto import caffe2_pb2
from caffe2.python import brew, core, model_helper, optimizer, workspace

from common import BATCH_SIZE, LR, MOMENTUM, N_CLASSES, SEED, nvidia_tf32
from datasets import cifar_for_library
from weights import check


def probe(device):
    """A convolution (cuDNN) and a matrix product (cuBLAS) on `device` (a DeviceOption): on a GPU,
    the kernels whose PTX the driver must compile for a card newer than the build."""
    for name, shape in (("probe_x", [1, 1, 4, 4]), ("probe_w", [1, 1, 3, 3]), ("probe_m", [4, 4])):
        workspace.RunOperatorOnce(core.CreateOperator("ConstantFill", [], [name], shape=shape, value=1.0,
                                                      device_option=device))
    workspace.RunOperatorOnce(core.CreateOperator("Conv", ["probe_x", "probe_w"], ["probe_y"], kernel=3,
                                                  engine="CUDNN", device_option=device))
    workspace.RunOperatorOnce(core.CreateOperator("MatMul", ["probe_m", "probe_m"], ["probe_p"], device_option=device))
    workspace.FetchBlob("probe_p")  # waits for the device


def gpu_or_why_not():
    """(True, None) where Caffe2 runs an operator on the first GPU, else (False, why): torch
    1.8.1's CUDA 10.2 may have no code for a newer card, and only running something tells (a hang
    there ends at the row's time limit)."""
    if not workspace.has_gpu_support or workspace.NumGpuDevices() == 0:
        return False, "no GPU that this torch 1.8.1 build's Caffe2 can use"
    try:
        probe(core.DeviceOption(caffe2_pb2.CUDA, 0))
        return True, None
    except RuntimeError as e:
        return False, "Caffe2's CUDA build cannot run on this GPU: " + str(e).strip().splitlines()[0]


GPU, WHY_CPU = gpu_or_why_not()
DEVICE = core.DeviceOption(caffe2_pb2.CUDA if GPU else caffe2_pb2.CPU, 0, random_seed=SEED)


def load_data(dataset, profile):
    return cifar_for_library(dataset, profile, channel_first=True, one_hot=False)


def glorot(fan_in, fan_out):
    # Caffe2's XavierFill scales by fan-in only (LeCun-uniform): Glorot needs an explicit UniformFill.
    limit = float(np.sqrt(6.0 / (fan_in + fan_out)))
    return dict(weight_init=("UniformFill", {"min": -limit, "max": limit}), bias_init=("ConstantFill", {}))


def add_layers(model, is_test):
    """The forward pass; the test net calls it again and finds the same parameter blobs by name."""
    h = "data"
    for i, (c_in, c_out) in enumerate([(3, 50), (50, 50), (50, 100), (100, 100)], 1):
        h = brew.relu(model, brew.conv(model, h, "conv%d" % i, c_in, c_out, 3, pad=1,
                                       **glorot(9 * c_in, 9 * c_out)), "relu%d" % i)
        if i % 2 == 0:  # after each pair of convolutions
            h = brew.max_pool(model, h, "pool%d" % i, kernel=2, stride=2)
            h = brew.dropout(model, h, "drop%d" % i, ratio=0.25, is_test=is_test)
    h = brew.relu(model, brew.fc(model, h, "fc1", 100 * 8 * 8, 512, **glorot(6400, 512)), "relu5")
    h = brew.dropout(model, h, "drop5", ratio=0.5, is_test=is_test)
    return brew.fc(model, h, "logits", 512, N_CLASSES, **glorot(512, N_CLASSES))


def create_model():
    workspace.ResetWorkspace()
    model = model_helper.ModelHelper(name="train", arg_scope={"order": "NCHW", "use_cudnn": GPU,
                                                              "cudnn_exhaustive_search": GPU})
    with core.DeviceScope(DEVICE):
        add_layers(model, is_test=False)
    return model


def init_model(model):
    with core.DeviceScope(DEVICE):
        model.net.SoftmaxWithLoss(["logits", "label"], ["softmax", "loss"])  # mean over the batch
        model.AddGradientOperators(["loss"])
        # build_sgd's default is Nesterov momentum (nesterov=True): ask for classic momentum,
        # which Caffe2 writes as v = 0.9 v + lr g; w -= v.
        optimizer.build_sgd(model, base_learning_rate=LR, policy="fixed", momentum=MOMENTUM, nesterov=False)
        test = model_helper.ModelHelper(name="test", init_params=False, arg_scope=model.arg_scope)
        add_layers(test, is_test=True)
    workspace.RunNetOnce(model.param_init_net)  # weights, biases and the optimizer's state
    workspace.FeedBlob("data", np.zeros((BATCH_SIZE, 3, 32, 32), np.float32), DEVICE)
    workspace.FeedBlob("label", np.zeros(BATCH_SIZE, np.int32), DEVICE)
    workspace.CreateNet(model.net)
    workspace.CreateNet(test.net)
    return model, test


def train_epoch(trainer, batches):
    model = trainer[0]
    total, steps = 0.0, 0
    for x, y in batches:
        workspace.FeedBlob("data", x, DEVICE)
        workspace.FeedBlob("label", y, DEVICE)
        workspace.RunNet(model.net)  # forward, backward and update: one net
        total, steps = total + float(workspace.FetchBlob("loss")), steps + 1
    return total / steps  # RunNet returns when the net has run


def predict(trainer, batches):
    test = trainer[1]
    out = []
    for x in batches:
        workspace.FeedBlob("data", x, DEVICE)
        workspace.RunNet(test.net)
        out.append(workspace.FetchBlob("logits").argmax(axis=1))
    return np.concatenate(out)


def count_params(model):
    """Parameters are declared by the fill operators of the init net, with their shapes."""
    params = {str(p) for p in model.params}
    shapes = {op.output[0]: [a.ints for a in op.arg if a.name == "shape"][0]
              for op in model.param_init_net.Proto().op if op.output[0] in params}
    return sum(int(np.prod(shape)) for shape in shapes.values())


def get_weights(model):
    """(kernel, bias) per layer in the neutral layout of weights.py, as NumPy arrays."""
    names = ["conv1", "conv2", "conv3", "conv4", "fc1", "logits"]  # as add_layers named them
    out = [(workspace.FetchBlob(n + "_w"), workspace.FetchBlob(n + "_b")) for n in names]
    return [(w.T if w.ndim == 2 else w, b) for w, b in out]  # FC stores out x in; Conv is OIHW


def set_weights(model, weights):
    names = ["conv1", "conv2", "conv3", "conv4", "fc1", "logits"]
    for name, (kernel, bias) in zip(names, check(weights)):
        workspace.FeedBlob(name + "_w", np.ascontiguousarray(kernel.T if kernel.ndim == 2 else kernel), DEVICE)
        workspace.FeedBlob(name + "_b", bias, DEVICE)


def export_onnx(model, path):
    import onnx
    from caffe2.python.onnx import frontend
    from onnx_graph import any_batch, without_dropout
    net = model_helper.ModelHelper(name="export", init_params=False, arg_scope=model.arg_scope)
    net.net.AddExternalOutput(add_layers(net, is_test=True))  # the inference net, its output the logits
    init = caffe2_pb2.NetDef()  # the weights: one fill operator per blob, as the frontend takes them
    for name in map(str, net.params):
        value = workspace.FetchBlob(name)
        init.op.extend([core.CreateOperator("GivenTensorFill", [], [name], values=value, shape=value.shape)])
    proto = frontend.caffe2_net_to_onnx_model(net.net.Proto(), init, {"data": (onnx.TensorProto.FLOAT, (1, 3, 32, 32))})
    onnx.save(any_batch(without_dropout(proto)), path)  # traced with a batch of one, Dropout kept


def runtime_info():
    import torch
    return dict(version="caffe2 in torch {}".format(torch.__version__), device="gpu" if GPU else "cpu",
                device_note=WHY_CPU,
                gpu="GPU 0" if GPU else None, layout="NCHW",
                tf32_conv=GPU and nvidia_tf32(), tf32_matmul=GPU and nvidia_tf32())
