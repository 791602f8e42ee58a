"""Chainer 7, which has no attention link and no GELU: EmbedID and a position table, two pre-norm blocks of
L.LayerNormalization (epsilon 1e-5: the link's default is 1e-6, F.layer_normalization's 1e-5), the
attention written out (L.Linear projections over the batch and time axes, the heads a reshape, scores by
F.matmul, -inf on the padding's keys, F.softmax on the last axis: its default axis is 1) and GELU by
F.erf, a final norm, the mean over each review's own words, Linear; Adam."""
import chainer
import chainer.functions as F
import chainer.links as L
import numpy as np

from attention_weights import ADAM, BLOCKS, CLASSES, DROPOUT, EMBED, EPS, FF, HEAD, HEADS, MAXLEN, VOCAB, check
from common import SEED
from reviews import reviews_for_library

GPU = chainer.backends.cuda.available
DEVICE = chainer.get_device("@cupy:0" if GPU else "@numpy")
GLOROT = chainer.initializers.GlorotUniform()  # L.Linear's default is LeCun-normal


def load_data(dataset, profile):
    return reviews_for_library(dataset, profile)


def gelu(x):
    return 0.5 * x * (1.0 + F.erf(x / np.float32(np.sqrt(2.0))))  # exact: x times the normal's CDF


class Block(chainer.Chain):
    def __init__(self):
        super().__init__()
        with self.init_scope():
            self.norm1, self.norm2 = L.LayerNormalization(EMBED, eps=EPS), L.LayerNormalization(EMBED, eps=EPS)
            self.query, self.key, self.value, self.out = (L.Linear(EMBED, EMBED, initialW=GLOROT) for _ in range(4))
            self.ff1, self.ff2 = L.Linear(EMBED, FF, initialW=GLOROT), L.Linear(FF, EMBED, initialW=GLOROT)

    def forward(self, x, keys):
        n = x.shape[0]

        def norm(layer, y):  # the link normalizes rows of a matrix: (N * T, EMBED)
            return F.reshape(layer(F.reshape(y, (-1, EMBED))), (n, MAXLEN, EMBED))

        def heads(y):  # (N, T, EMBED) -> (N, HEADS, T, HEAD)
            return F.transpose(F.reshape(y, (n, MAXLEN, HEADS, HEAD)), (0, 2, 1, 3))
        h = norm(self.norm1, x)
        q, k, v = (heads(layer(h, n_batch_axes=2)) for layer in (self.query, self.key, self.value))
        scores = F.where(keys, F.matmul(q, k, transb=True) / np.float32(np.sqrt(HEAD)),
                         self.xp.full((n, HEADS, MAXLEN, MAXLEN), -np.inf, np.float32))
        weights = F.dropout(F.softmax(scores, axis=3), DROPOUT)
        context = F.reshape(F.transpose(F.matmul(weights, v), (0, 2, 1, 3)), (n, MAXLEN, EMBED))
        x = x + F.dropout(self.out(context, n_batch_axes=2), DROPOUT)
        h = gelu(self.ff1(norm(self.norm2, x), n_batch_axes=2))
        return x + F.dropout(self.ff2(h, n_batch_axes=2), DROPOUT)


class Encoder(chainer.Chain):
    def __init__(self):
        super().__init__()
        with self.init_scope():
            self.embed = L.EmbedID(VOCAB, EMBED)
            self.position = chainer.Parameter(chainer.initializers.Uniform(0.05), (MAXLEN, EMBED))
            self.blocks = chainer.ChainList(*[Block() for _ in range(BLOCKS)])
            self.norm = L.LayerNormalization(EMBED, eps=EPS)
            self.dense = L.Linear(EMBED, CLASSES, initialW=GLOROT)

    def forward(self, ids):
        words = ids != 0
        keys = self.xp.broadcast_to(words[:, None, None, :], (ids.shape[0], HEADS, MAXLEN, MAXLEN))
        x = self.embed(ids) + F.broadcast_to(self.position, (ids.shape[0], MAXLEN, EMBED))
        for block in self.blocks:
            x = block(x, keys)
        x = F.reshape(self.norm(F.reshape(x, (-1, EMBED))), x.shape)
        weights = words[:, :, None].astype(np.float32)
        return self.dense(F.sum(x * weights, axis=1) / weights.sum(axis=1))


def create_model():
    np.random.seed(SEED)
    model = Encoder()
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
    """The parameters in the neutral layout's groups and order (Linear's W is output-major, as it is)."""
    out = [[model.embed.W, model.position]]
    for b in model.blocks:
        out.append([b.norm1.gamma, b.norm1.beta] + [p for layer in (b.query, b.key, b.value, b.out)
                                                    for p in (layer.W, layer.b)]
                   + [b.norm2.gamma, b.norm2.beta, b.ff1.W, b.ff1.b, b.ff2.W, b.ff2.b])
    return out + [[model.norm.gamma, model.norm.beta], [model.dense.W, model.dense.b]]


def get_weights(model):
    return [[chainer.backends.cuda.to_cpu(p.array).copy() for p in group] for group in params(model)]


def set_weights(model, weights):
    for group, values in zip(params(model), check(weights)):
        for p, value in zip(group, values):
            p.array[...] = DEVICE.send(value)


def export_onnx(model, path):
    import onnx_chainer  # ships with Chainer 7; it needs the onnx package
    from onnx_graph import any_batch
    import onnx
    proto = onnx_chainer.export(model, np.ones((1, MAXLEN), np.int32), input_names=["ids"], output_names=["logits"],
                                train=False)
    onnx.save(any_batch(proto), path)


def runtime_info():
    return dict(version=chainer.__version__, device="gpu" if GPU else "cpu")
