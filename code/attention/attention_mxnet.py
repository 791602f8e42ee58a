"""MXNet 1.9 with Gluon, which has no attention layer: Embedding and a position table, two pre-norm
blocks of nn.LayerNorm (epsilon 1e-5, its default), the attention written out (nn.Dense projections,
the heads a reshape, scores by batch_dot, -1e9 added to the padding's keys before the softmax) and
nn.GELU (exact, by erf), a final norm, the mean over each review's own words, Dense; Adam."""
import mxnet as mx
import numpy as np
from mxnet import autograd, gluon, nd
from mxnet.gluon import nn

from attention_weights import ADAM, BLOCKS, CLASSES, DROPOUT, EMBED, EPS, FF, HEAD, HEADS, MAXLEN, VOCAB, check
from common import SEED
from reviews import reviews_for_library

CTX = mx.gpu() if mx.context.num_gpus() else mx.cpu()


def load_data(dataset, profile):
    return reviews_for_library(dataset, profile)


def dense(units, in_units):
    return nn.Dense(units, in_units=in_units, flatten=False)  # on the last axis of (N, T, ...)


class Block(gluon.HybridBlock):
    def __init__(self):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(epsilon=EPS, in_channels=EMBED), nn.LayerNorm(epsilon=EPS, in_channels=EMBED)
        self.query, self.key, self.value, self.out = (dense(EMBED, EMBED) for _ in range(4))
        self.ff1, self.gelu, self.ff2 = dense(FF, EMBED), nn.GELU(), dense(EMBED, FF)
        self.drop_weights, self.drop_out, self.drop_ff = nn.Dropout(DROPOUT), nn.Dropout(DROPOUT), nn.Dropout(DROPOUT)

    def hybrid_forward(self, F, x, padding):
        def heads(y):  # (N, T, EMBED) -> (N * HEADS, T, HEAD)
            return F.reshape(F.transpose(F.reshape(y, shape=(0, 0, HEADS, HEAD)), axes=(0, 2, 1, 3)), shape=(-3, 0, 0))
        h = self.norm1(x)
        q, k, v = heads(self.query(h)), heads(self.key(h)), heads(self.value(h))
        scores = F.broadcast_add(F.batch_dot(q, k, transpose_b=True) / np.sqrt(HEAD), padding)
        context = F.batch_dot(self.drop_weights(F.softmax(scores, axis=-1)), v)  # (N * HEADS, T, HEAD)
        context = F.reshape(F.transpose(F.reshape(context, shape=(-4, -1, HEADS, 0, 0)), axes=(0, 2, 1, 3)),
                            shape=(0, 0, -3))
        x = x + self.drop_out(self.out(context))
        return x + self.drop_ff(self.ff2(self.gelu(self.ff1(self.norm2(x)))))


class Encoder(gluon.HybridBlock):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, EMBED)
        self.position = self.params.get("position", shape=(MAXLEN, EMBED), init=mx.init.Uniform(0.05))
        self.blocks = nn.HybridSequential()
        for _ in range(BLOCKS):
            self.blocks.add(Block())
        self.norm = nn.LayerNorm(epsilon=EPS, in_channels=EMBED)
        self.dense = nn.Dense(CLASSES, in_units=EMBED)

    def hybrid_forward(self, F, ids, position):
        words = ids != 0
        # -1e9 on each padding key's score, for every head and query: (N * HEADS, 1, T)
        padding = F.repeat(F.expand_dims((words - 1) * 1e9, axis=1), repeats=HEADS, axis=1)  # (N, HEADS, T)
        padding = F.expand_dims(F.reshape(padding, shape=(-3, 0)), axis=1)
        x = F.broadcast_add(self.embedding(ids), F.expand_dims(position, axis=0))
        for block in self.blocks:
            x = block(x, padding)
        weights = F.expand_dims(words, axis=2)
        return self.dense(F.broadcast_div(F.sum(F.broadcast_mul(self.norm(x), weights), axis=1), F.sum(weights, axis=1)))


def create_model():
    mx.random.seed(SEED)
    model = Encoder()
    # Glorot-uniform for every matrix (and the word embedding); Dense's biases and the norms keep their own
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
    """The parameters in the neutral layout's groups and order (Dense's weights are output-major, as it is)."""
    out = [[model.embedding.weight, model.position]]
    for b in model.blocks:
        out.append([b.norm1.gamma, b.norm1.beta] + [p for layer in (b.query, b.key, b.value, b.out)
                                                    for p in (layer.weight, layer.bias)]
                   + [b.norm2.gamma, b.norm2.beta, b.ff1.weight, b.ff1.bias, b.ff2.weight, b.ff2.bias])
    return out + [[model.norm.gamma, model.norm.beta], [model.dense.weight, model.dense.bias]]


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
    from onnx_graph import BATCH
    with tempfile.TemporaryDirectory() as folder:
        prefix = os.path.join(folder, "attention")
        model.export(prefix)  # the hybridized graph and its weights
        mx.onnx.export_model(prefix + "-symbol.json", prefix + "-0000.params", in_shapes=[(1, MAXLEN)],
                             in_types=[np.float32], onnx_file_path=path, dynamic=True,
                             dynamic_input_shapes=[(None, MAXLEN)])
    proto = onnx.load(path)
    for value in (proto.graph.input[0], proto.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = BATCH
    onnx.save(proto, path)


def runtime_info():
    return dict(version=mx.__version__, device="gpu" if CTX.device_type == "gpu" else "cpu")
