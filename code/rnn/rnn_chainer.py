"""Chainer 7: EmbedID, NStepGRU (form A, as cuDNN) over each review's own words, given as a list of
arrays of their lengths, Linear; Adam."""
import chainer
import chainer.functions as F
import chainer.links as L
import numpy as np

from common import SEED
from reviews import reviews_for_library
from rnn_weights import ADAM, CLASSES, EMBED, HIDDEN, VOCAB, check

GPU = chainer.backends.cuda.available
DEVICE = chainer.get_device("@cupy:0" if GPU else "@numpy")


def load_data(dataset, profile):
    return reviews_for_library(dataset, profile)


class RNN(chainer.Chain):
    def __init__(self):
        super().__init__()
        with self.init_scope():
            self.embed = L.EmbedID(VOCAB, EMBED)
            self.gru = L.NStepGRU(1, EMBED, HIDDEN, 0.0)  # one layer, no dropout between layers
            self.dense = L.Linear(HIDDEN, CLASSES)

    def forward(self, ids):
        lengths = (ids != 0).sum(axis=1).tolist()  # the padding (0) comes after each review
        words = self.embed(ids)
        last, _ = self.gru(None, [words[i, :n] for i, n in enumerate(lengths)])  # (1, N, H): each one's last state
        return self.dense(last[0])


def create_model():
    np.random.seed(SEED)
    model = RNN()
    model.to_device(DEVICE)
    return model


def init_model(model):
    optimizer = chainer.optimizers.Adam(alpha=ADAM["lr"], beta1=ADAM["beta1"], beta2=ADAM["beta2"], eps=ADAM["eps"])
    optimizer.setup(model)
    return model, optimizer


def train_epoch(trainer, batches):
    model, optimizer = trainer
    total, steps = 0, 0
    for x, y in batches:
        loss = F.softmax_cross_entropy(model(DEVICE.send(x)), DEVICE.send(y))
        model.cleargrads()
        loss.backward()
        optimizer.update()
        total, steps = total + loss.array, steps + 1
    return float(total) / steps


def predict(trainer, batches):
    model = trainer[0]
    with chainer.using_config("train", False), chainer.no_backprop_mode():
        return np.concatenate([chainer.backends.cuda.to_cpu(model(DEVICE.send(x)).array.argmax(axis=1))
                               for x in batches])


def count_params(model):
    return sum(p.size for p in model.params())


def params(model):
    """The parameters in the neutral layout's groups: NStepGRU holds each gate's block apart (w0-w2
    the input's r, z, n; w3-w5 the state's), so each neutral array is three of them."""
    cell = model.gru[0]
    blocks = [[getattr(cell, "{}{}".format(kind, i)) for i in range(first, first + 3)]
              for kind, first in (("w", 0), ("w", 3), ("b", 0), ("b", 3))]
    return [[[model.embed.W]], blocks, [[model.dense.W], [model.dense.b]]]


def get_weights(model):
    return [[np.concatenate([chainer.backends.cuda.to_cpu(p.array) for p in parts]) for parts in group]
            for group in params(model)]


def set_weights(model, weights):
    for group, values in zip(params(model), check(weights)):
        for parts, value in zip(group, values):
            for p, block in zip(parts, np.split(value, len(parts))):
                p.array[...] = DEVICE.send(block)


def export_onnx(model, path):
    import onnx
    import onnx_chainer  # ships with Chainer 7; it needs the onnx package
    from onnx import TensorProto, helper
    from onnx_graph import any_batch
    from reviews import MAXLEN

    # The model's forward cannot be traced (`ids != 0` raises on a Variable; its lengths are Python
    # numbers): trace its links over every step of the padded ids, then give ONNX's GRU each review's
    # length, so that its last state is the one at the review's last word.
    class Padded(chainer.Chain):
        def forward(self, ids):
            steps = F.separate(model.embed(ids), axis=1)
            # a Variable, or the converter, which counts it as the GRU's first input, shifts every weight
            hx = chainer.Variable(np.zeros((1, ids.shape[0], HIDDEN), np.float32))
            hy, _ = F.n_step_gru(1, 0.0, hx, model.gru.ws, model.gru.bs, steps)
            return model.dense(hy[0])

    proto = onnx_chainer.export(Padded(), np.ones((1, MAXLEN), np.int32), input_names=["ids"],
                                output_names=["logits"], train=False)
    graph = proto.graph
    gru = next(node for node in graph.node if node.op_type == "GRU")
    split = next(node for node in graph.node if gru.input[5] in node.output)  # of the traced zeros
    gru.input[4], gru.input[5] = "lengths", ""  # the lengths in; the initial state (batch 1) out
    graph.initializer.append(helper.make_tensor("zero", TensorProto.INT32, [], [0]))
    lengths = [helper.make_node("Equal", ["ids", "zero"], ["pad"]),
               helper.make_node("Not", ["pad"], ["word"]),
               helper.make_node("Cast", ["word"], ["word_i32"], to=TensorProto.INT32),
               helper.make_node("ReduceSum", ["word_i32"], ["lengths"], axes=[1], keepdims=0)]
    nodes = lengths + [node for node in graph.node if node is not split]
    del graph.node[:]
    graph.node.extend(nodes)
    for values in (graph.initializer, graph.input):
        values.remove(next(v for v in values if v.name == split.input[0]))
    onnx.save(any_batch(proto), path)


def runtime_info():
    return dict(version=chainer.__version__, device="gpu" if GPU else "cpu",
                cudnn=GPU and chainer.backends.cuda.cudnn_enabled, gru_form="A (NStepGRU)")
