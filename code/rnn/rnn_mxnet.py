"""MXNet 1.9 with Gluon: Embedding, rnn.GRU (form A, as cuDNN) over every step, SequenceLast at each
review's own last step, Dense; Adam. The state at a review's last word does not depend on the padding
after it, so every step runs: GRU(use_sequence_length=True) would stop each review at its length with
cuDNN, but the CPU build takes the lengths and ignores them (measured: it returns the last step's state)."""
import mxnet as mx
import numpy as np
from mxnet import autograd, gluon, nd
from mxnet.gluon import nn, rnn

from common import SEED
from reviews import reviews_for_library
from rnn_weights import ADAM, CLASSES, EMBED, HIDDEN, VOCAB, check

CTX = mx.gpu() if mx.context.num_gpus() else mx.cpu()


def load_data(dataset, profile):
    return reviews_for_library(dataset, profile)


class RNN(gluon.HybridBlock):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, EMBED)
        self.gru = rnn.GRU(HIDDEN, layout="NTC", input_size=EMBED)  # gates r, z, n, as PyTorch's
        self.dense = nn.Dense(CLASSES, in_units=HIDDEN)

    def hybrid_forward(self, F, ids):
        steps = self.gru(self.embedding(ids))  # (N, T, H)
        lengths = F.sum(ids != 0, axis=1)  # the padding (0) comes after each review
        return self.dense(F.SequenceLast(steps, sequence_length=lengths, use_sequence_length=True, axis=1))


def create_model():
    mx.random.seed(SEED)
    model = RNN()
    model.initialize(mx.init.Xavier(rnd_type="uniform", factor_type="avg", magnitude=3), ctx=CTX)
    model.hybridize(static_alloc=True, static_shape=True)
    return model


def init_model(model):
    adam = gluon.Trainer(model.collect_params(), "adam", {"learning_rate": ADAM["lr"], "beta1": ADAM["beta1"],
                                                          "beta2": ADAM["beta2"], "epsilon": ADAM["eps"]})
    return model, gluon.loss.SoftmaxCrossEntropyLoss(), adam


def train_epoch(trainer, batches):
    model, loss_fn, adam = trainer
    total, steps = nd.zeros(1, ctx=CTX), 0
    for x, y in batches:
        x, y = nd.array(x, ctx=CTX), nd.array(y, ctx=CTX)
        with autograd.record():
            loss = loss_fn(model(x), y)
        loss.backward()
        adam.step(x.shape[0])  # the gradients are summed over the batch: step divides by its size
        total, steps = total + loss.mean(), steps + 1
    return total.asscalar() / steps


def predict(trainer, batches):
    return np.concatenate([trainer[0](nd.array(x, ctx=CTX)).argmax(axis=1).asnumpy().astype(np.int64)
                           for x in batches])


def count_params(model):
    return sum(p.data().size for p in model.collect_params().values())


def params(model):
    """The parameters in the neutral layout's groups and order, which are Gluon's own."""
    gru = model.gru.collect_params()
    names = ["l0_i2h_weight", "l0_h2h_weight", "l0_i2h_bias", "l0_h2h_bias"]
    return [[model.embedding.weight], [gru[next(k for k in gru if k.endswith(n))] for n in names],
            [model.dense.weight, model.dense.bias]]


def get_weights(model):
    return [[p.data().asnumpy() for p in group] for group in params(model)]


def set_weights(model, weights):
    for group, values in zip(params(model), check(weights)):
        for p, v in zip(group, values):
            p.set_data(nd.array(v, ctx=CTX))


def export_onnx(model, path):
    import os
    import tempfile
    import onnx
    from onnx import TensorProto
    from onnx.helper import make_node
    from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph  # its registry of converters, not public
    from mxnet.onnx.mx2onnx._op_translations._op_translations_opset12 import create_tensor, get_inputs
    from onnx_graph import BATCH
    from reviews import MAXLEN

    # MXNet 1.9.1 converts none of `ids != 0` and SequenceLast: the two, in its converters' own form.
    @MXNetGraph.register("_not_equal_scalar", 13)
    def not_equal_scalar(node, **kwargs):
        name, (ids,), attrs = get_inputs(node, kwargs)
        create_tensor([int(float(attrs["scalar"]))], name + "_scalar", kwargs["initializer"], "int32")
        return [make_node("Equal", [ids, name + "_scalar"], [name + "_eq"]),
                make_node("Not", [name + "_eq"], [name + "_ne"]),
                make_node("Cast", [name + "_ne"], [name], to=TensorProto.INT32)]

    @MXNetGraph.register("SequenceLast", 13)
    def sequence_last(node, **kwargs):  # steps (N, T, H): each review's at its length - 1
        name, (steps, lengths), _ = get_inputs(node, kwargs)
        create_tensor([1], name + "_one", kwargs["initializer"])
        create_tensor([-1, 1], name + "_column", kwargs["initializer"])
        return [make_node("Cast", [lengths], [name + "_n"], to=TensorProto.INT64),
                make_node("Sub", [name + "_n", name + "_one"], [name + "_last"]),
                make_node("Reshape", [name + "_last", name + "_column"], [name + "_at"]),
                make_node("GatherND", [steps, name + "_at"], [name], batch_dims=1)]

    with tempfile.TemporaryDirectory() as folder:
        prefix = os.path.join(folder, "rnn")
        model.export(prefix)  # the hybridized graph and its weights
        mx.onnx.export_model(prefix + "-symbol.json", prefix + "-0000.params", in_shapes=[(1, MAXLEN)],
                             in_types=[np.int32], onnx_file_path=path, dynamic=True,
                             dynamic_input_shapes=[(None, MAXLEN)])
    proto = onnx.load(path)
    # The file names the installed onnx's opset, but the converters write 13's (a Split without
    # num_outputs, which 18 requires); the batch is left unnamed and the weights listed as inputs.
    proto.opset_import[0].version = 13
    for value in (proto.graph.input[0], proto.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = BATCH
    weights = {t.name for t in proto.graph.initializer}
    for value in [v for v in proto.graph.input if v.name in weights]:
        proto.graph.input.remove(value)
    onnx.save(proto, path)


def runtime_info():
    gpu = CTX.device_type == "gpu"
    return dict(version=mx.__version__, device="gpu" if gpu else "cpu", cudnn=gpu, gru_form="A (rnn.GRU)")
