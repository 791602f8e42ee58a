"""Caffe2 (inside PyTorch 1.8.1): Gather from the embedding, gru_cell.GRU (linear_before_reset=True:
form A) over time-major reviews with their lengths, so its last state is each review's own, FC; Adam.
gru_cell builds each step from Caffe2's own operators (GRUUnit), on a GPU too: Caffe2's cuDNN Recurrent
operator has a gru mode, but gru_cell does not use it (and its test in Caffe2 samples LSTMs only)."""
import numpy as np
from caffe2.proto import caffe2_pb2
from caffe2.python import brew, core, gru_cell, model_helper, optimizer, workspace
from caffe2.python.modeling.initializers import Initializer

from common import BATCH_SIZE, SEED
from reviews import MAXLEN, reviews_for_library
from rnn_weights import ADAM, CLASSES, EMBED, HIDDEN, VOCAB, check

GPU = workspace.has_gpu_support and workspace.NumGpuDevices() > 0
DEVICE = core.DeviceOption(caffe2_pb2.CUDA if GPU else caffe2_pb2.CPU, 0, random_seed=SEED)
GATES = ("reset_gate_t", "update_gate_t", "output_gate_t")  # the recurrent FCs: r, z, n


def load_data(dataset, profile):
    return reviews_for_library(dataset, profile)


def glorot(fan_in, fan_out):
    limit = float(np.sqrt(6.0 / (fan_in + fan_out)))
    return dict(weight_init=("UniformFill", {"min": -limit, "max": limit}), bias_init=("ConstantFill", {}))


def add_layers(model, forward_only):
    """Input blobs "ids" (T, N) and "lengths" (N,); the test net calls it again and finds the same
    parameter blobs by name."""
    embedding = model.create_param("embedding", [VOCAB, EMBED], Initializer("UniformFill", min=-0.05, max=0.05))
    words = model.net.Gather([embedding, "ids"], "words")  # (T, N, EMBED)
    _, last = gru_cell.GRU(model, words, "lengths", ["h0"], EMBED, HIDDEN, scope="gru", outputs_with_grads=(1,),
                              forward_only=forward_only, linear_before_reset=True)  # past its length, a state stays
    return brew.fc(model, model.net.Squeeze(last, "last", dims=[0]), "logits", HIDDEN, CLASSES, **glorot(HIDDEN, CLASSES))


def create_model():
    workspace.ResetWorkspace()
    model = model_helper.ModelHelper(name="train")
    with core.DeviceScope(DEVICE):
        add_layers(model, forward_only=False)
    return model


def init_model(model):
    with core.DeviceScope(DEVICE):
        model.net.SoftmaxWithLoss(["logits", "label"], ["softmax", "loss"])
        model.AddGradientOperators(["loss"])
        # Gather's gradient is the rows the batch used, and with it Caffe2 steps SparseAdam, which
        # leaves the other rows alone: Adam moves every row that has a moment, so the rows are summed
        # into a dense gradient first.
        info = model.get_param_info(next(p for p in model.params if str(p) == "embedding"))
        ids, _ = model.net.Reshape([info.grad.indices], ["grad_ids", "grad_ids_shape"], shape=[-1])
        rows, _ = model.net.Reshape([info.grad.values], ["grad_rows", "grad_rows_shape"], shape=[-1, EMBED])
        info.grad = model.net.SparseToDense([ids, rows, "embedding"], "embedding_dense_grad")
        # Caffe2's net counts its iteration before Adam reads it, and Adam takes the count + 1 as its
        # step: its first step is corrected as Adam's second (the parity run measures it).
        optimizer.build_adam(model, base_learning_rate=ADAM["lr"], beta1=ADAM["beta1"], beta2=ADAM["beta2"],
                             epsilon=ADAM["eps"])
        test = model_helper.ModelHelper(name="test", init_params=False)
        add_layers(test, forward_only=True)
    workspace.RunNetOnce(model.param_init_net)
    feed(np.ones((BATCH_SIZE, MAXLEN), np.int32))
    workspace.FeedBlob("label", np.zeros(BATCH_SIZE, np.int32), DEVICE)
    workspace.CreateNet(model.net)
    workspace.CreateNet(test.net)
    return model, test


def feed(ids):
    """Padded ids (N, T) as the nets take them: time-major, with each review's length and a zero state."""
    workspace.FeedBlob("ids", np.ascontiguousarray(ids.T), DEVICE)
    workspace.FeedBlob("lengths", (ids != 0).sum(axis=1).astype(np.int32), DEVICE)
    workspace.FeedBlob("h0", np.zeros((1, len(ids), HIDDEN), np.float32), DEVICE)


def train_epoch(trainer, batches):
    model = trainer[0]
    total, steps = 0.0, 0
    for x, y in batches:
        feed(x)
        workspace.FeedBlob("label", y, DEVICE)
        workspace.RunNet(model.net)
        total, steps = total + float(workspace.FetchBlob("loss")), steps + 1
    return total / steps


def logits_of_batch(trainer, x):
    feed(x)
    workspace.RunNet(trainer[1].net)
    return workspace.FetchBlob("logits")


def predict(trainer, batches):
    return np.concatenate([logits_of_batch(trainer, x).argmax(axis=1) for x in batches])


def count_params(model):
    """Parameters are declared by the fill operators of the init net, with their shapes."""
    params = {str(p) for p in model.params}
    shapes = {op.output[0]: [a.ints for a in op.arg if a.name == "shape"][0]
              for op in model.param_init_net.Proto().op if op.output[0] in params}
    return sum(int(np.prod(shape)) for shape in shapes.values())


def get_weights(model):
    fetch = lambda name: workspace.FetchBlob("gru/" + name)  # noqa: E731
    return [[workspace.FetchBlob("embedding")],
            [fetch("i2h_w"), np.concatenate([fetch(g + "_w") for g in GATES]), fetch("i2h_b"),
             np.concatenate([fetch(g + "_b") for g in GATES])],
            [workspace.FetchBlob("logits_w"), workspace.FetchBlob("logits_b")]]


def set_weights(model, weights):
    (embedding,), (w_ih, w_hh, b_ih, b_hh), (kernel, bias) = check(weights)
    blobs = dict(embedding=embedding, logits_w=kernel, logits_b=bias, **{"gru/i2h_w": w_ih, "gru/i2h_b": b_ih})
    for gate, w, b in zip(GATES, np.split(w_hh, 3), np.split(b_hh, 3)):
        blobs["gru/{}_w".format(gate)], blobs["gru/{}_b".format(gate)] = w, b
    for name, value in blobs.items():
        workspace.FeedBlob(name, np.ascontiguousarray(value), DEVICE)


def export_onnx(model, path):
    import onnx
    from caffe2.python.onnx import frontend
    net = model_helper.ModelHelper(name="export", init_params=False)
    net.net.AddExternalOutput(add_layers(net, forward_only=True))  # the inference net, its output the logits
    init = caffe2_pb2.NetDef()  # the weights: one fill operator per blob, as the frontend takes them
    for name in map(str, model.params):
        value = workspace.FetchBlob(name)
        init.op.extend([core.CreateOperator("GivenTensorFill", [], [name], values=value, shape=value.shape)])
    inputs = {"ids": (onnx.TensorProto.INT32, (MAXLEN, 1)), "lengths": (onnx.TensorProto.INT32, (1,)),
              "h0": (onnx.TensorProto.FLOAT, (1, 1, HIDDEN))}
    onnx.save(frontend.caffe2_net_to_onnx_model(net.net.Proto(), init, inputs), path)


def runtime_info():
    import torch
    return dict(version="caffe2 in torch {}".format(torch.__version__), device="gpu" if GPU else "cpu",
                cudnn=False, gru_form="A (linear_before_reset=True)")
