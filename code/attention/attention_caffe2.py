"""Caffe2 (inside PyTorch 1.8.1), which has no attention operator: Gather from the word embedding plus a
position table, two pre-norm blocks of LayerNorm (epsilon 1e-5, asked for: its schema documents a default
of 0.001 added to the standard deviation; measured, the kernel's default is 1e-5, added to the variance), the attention in
operators (FC projections, the heads a Reshape and Transpose, BatchMatMul, -1e9 added to the padding's
keys, Softmax on the last axis), FC with Gelu (exact: fast_gelu=0), a final norm, the mean over each
review's own words, FC; Adam."""
import numpy as np
from caffe2.proto import caffe2_pb2
from caffe2.python import brew, core, model_helper, optimizer, workspace
from caffe2.python.modeling.initializers import Initializer

from attention_weights import ADAM, BLOCKS, CLASSES, DROPOUT, EMBED, EPS, FF, HEAD, HEADS, MAXLEN, VOCAB, check
from common import BATCH_SIZE, SEED
from reviews import reviews_for_library

GPU = workspace.has_gpu_support and workspace.NumGpuDevices() > 0
DEVICE = core.DeviceOption(caffe2_pb2.CUDA if GPU else caffe2_pb2.CPU, 0, random_seed=SEED)
# Each block's blobs, in the neutral layout's order: FC's weights are output-major, as it holds them.
BLOBS = ["norm1_scale", "norm1_bias", "query_w", "query_b", "key_w", "key_b", "value_w", "value_b", "out_w", "out_b",
         "norm2_scale", "norm2_bias", "ff1_w", "ff1_b", "ff2_w", "ff2_b"]


def load_data(dataset, profile):
    return reviews_for_library(dataset, profile)


def glorot(fan_in, fan_out):
    limit = float(np.sqrt(6.0 / (fan_in + fan_out)))
    return dict(weight_init=("UniformFill", {"min": -limit, "max": limit}), bias_init=("ConstantFill", {}))


def layer_norm(model, x, name):
    scale = model.create_param(name + "_scale", [EMBED], Initializer("ConstantFill", value=1.0))
    bias = model.create_param(name + "_bias", [EMBED], Initializer("ConstantFill", value=0.0))
    return model.net.LayerNorm([x, scale, bias], [name, name + "_mean", name + "_std"], axis=2, epsilon=EPS,
                               elementwise_affine=True)[0]


def fc(model, x, name, dim_in, dim_out):
    return brew.fc(model, x, name, dim_in, dim_out, axis=2, **glorot(dim_in, dim_out))  # on the last axis of (N, T, .)


def dropout(model, x, name, forward_only):
    return brew.dropout(model, x, name, ratio=DROPOUT, is_test=forward_only)


def block(model, x, padding, b, forward_only):
    s = "block{}_".format(b)

    def heads(y, name):  # (N, T, EMBED) -> (N, HEADS, T, HEAD)
        split, _ = model.net.Reshape([y], [name + "_split", name + "_shape"], shape=[0, MAXLEN, HEADS, HEAD])
        return model.net.Transpose([split], [name + "_heads"], axes=[0, 2, 1, 3])
    h = layer_norm(model, x, s + "norm1")
    q, k, v = (heads(fc(model, h, s + n, EMBED, EMBED), s + n) for n in ("query", "key", "value"))
    scores = model.net.Scale([model.net.BatchMatMul([q, k], s + "qk", trans_b=1)], s + "scaled", scale=1 / np.sqrt(HEAD))
    weights = model.net.Softmax([model.net.Add([scores, padding], s + "masked")], s + "softmax", axis=3)
    context = model.net.BatchMatMul([dropout(model, weights, s + "drop_weights", forward_only), v], s + "context")
    context, _ = model.net.Reshape([model.net.Transpose([context], s + "context_t", axes=[0, 2, 1, 3])],
                                   [s + "merged", s + "merged_shape"], shape=[0, MAXLEN, EMBED])
    attended = dropout(model, fc(model, context, s + "out", EMBED, EMBED), s + "drop_out", forward_only)
    x = model.net.Add([x, attended], s + "x1")
    h = model.net.Gelu([fc(model, layer_norm(model, x, s + "norm2"), s + "ff1", EMBED, FF)], s + "gelu", fast_gelu=0)
    return model.net.Add([x, dropout(model, fc(model, h, s + "ff2", FF, EMBED), s + "drop_ff", forward_only)], s + "x2")


def add_layers(model, forward_only):
    """Input blob "ids" (N, T); the test net calls it again and finds the same parameter blobs by name."""
    token = model.create_param("token", [VOCAB, EMBED], Initializer("UniformFill", min=-0.05, max=0.05))
    position = model.create_param("position", [MAXLEN, EMBED], Initializer("UniformFill", min=-0.05, max=0.05))
    words = model.net.StopGradient(model.net.Cast([model.net.NE(["ids", "zero"], "is_word")], "words_f",
                                                  to=core.DataType.FLOAT), "words")  # (N, T): 1 a word, 0 padding
    bias = model.net.Scale([model.net.Sub([words, "one"], "words_minus_one")], "padding_flat", scale=1e9)
    padding, _ = model.net.Reshape([bias], ["padding", "padding_shape"], shape=[0, 1, 1, MAXLEN])  # -1e9 a padding key
    x = model.net.Add([model.net.Gather([token, "ids"], "tokens"), position], "x")
    for b in range(BLOCKS):
        x = block(model, x, padding, b, forward_only)
    x = layer_norm(model, x, "final_norm")
    weights, _ = model.net.Reshape([words], ["word_weights", "word_weights_shape"], shape=[0, MAXLEN, 1])
    total = model.net.ReduceSum([model.net.Mul([x, weights], "x_words")], "x_sum", axes=[1], keepdims=0)
    pooled = model.net.Div([total, model.net.ReduceSum([weights], "counts", axes=[1], keepdims=0)], "pooled")
    return brew.fc(model, pooled, "logits", EMBED, CLASSES, **glorot(EMBED, CLASSES))


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
        # As part II's: Gather's gradient is the rows the batch used, summed into a dense one, so that Adam
        # moves every row that has a moment; Caffe2's net counts its iteration before Adam reads it.
        info = model.get_param_info(next(p for p in model.params if str(p) == "token"))
        ids, _ = model.net.Reshape([info.grad.indices], ["grad_ids", "grad_ids_shape"], shape=[-1])
        rows, _ = model.net.Reshape([info.grad.values], ["grad_rows", "grad_rows_shape"], shape=[-1, EMBED])
        info.grad = model.net.SparseToDense([ids, rows, "token"], "token_dense_grad")
        optimizer.build_adam(model, base_learning_rate=ADAM["lr"], beta1=ADAM["beta1"], beta2=ADAM["beta2"],
                             epsilon=ADAM["eps"])
        test = model_helper.ModelHelper(name="test", init_params=False)
        add_layers(test, forward_only=True)
    workspace.RunNetOnce(model.param_init_net)
    for name, value in (("zero", np.zeros(1, np.int32)), ("one", np.ones(1, np.float32))):
        workspace.FeedBlob(name, value, DEVICE)
    workspace.FeedBlob("ids", np.ones((BATCH_SIZE, MAXLEN), np.int32), DEVICE)
    workspace.FeedBlob("label", np.zeros(BATCH_SIZE, np.int32), DEVICE)
    workspace.CreateNet(model.net)
    workspace.CreateNet(test.net)
    return model, test


def train_epoch(trainer, batches):
    model = trainer[0]
    total, steps = 0.0, 0
    for x, y in batches:
        workspace.FeedBlob("ids", x.astype(np.int32), DEVICE)
        workspace.FeedBlob("label", y.astype(np.int32), DEVICE)
        workspace.RunNet(model.net)
        total, steps = total + float(workspace.FetchBlob("loss")), steps + 1
    return total / steps


def logits_of_batch(trainer, x):
    workspace.FeedBlob("ids", x.astype(np.int32), DEVICE)
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


def names():
    blocks = [["block{}_{}".format(b, n) for n in BLOBS] for b in range(BLOCKS)]
    return [["token", "position"]] + blocks + [["final_norm_scale", "final_norm_bias"], ["logits_w", "logits_b"]]


def get_weights(model):
    return [[workspace.FetchBlob(n) for n in group] for group in names()]


def set_weights(model, weights):
    for group, values in zip(names(), check(weights)):
        for name, value in zip(group, values):
            workspace.FeedBlob(name, np.ascontiguousarray(value), DEVICE)


def export_onnx(model, path):
    import onnx
    from caffe2.python.onnx import frontend
    net = model_helper.ModelHelper(name="export", init_params=False)
    net.net.AddExternalOutput(add_layers(net, forward_only=True))  # the inference net, its output the logits
    init = caffe2_pb2.NetDef()  # the weights: one fill operator per blob, as the frontend takes them
    for name in list(map(str, model.params)) + ["zero", "one"]:  # and the two constants the net is fed
        value = workspace.FetchBlob(name)
        fill = "GivenTensorIntFill" if value.dtype == np.int32 else "GivenTensorFill"
        init.op.extend([core.CreateOperator(fill, [], [name], values=value, shape=value.shape)])
    inputs = {"ids": (onnx.TensorProto.INT32, (1, MAXLEN))}
    onnx.save(frontend.caffe2_net_to_onnx_model(net.net.Proto(), init, inputs), path)


def runtime_info():
    import torch
    return dict(version="caffe2 in torch {}".format(torch.__version__), device="gpu" if GPU else "cpu")
