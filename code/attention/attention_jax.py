"""JAX with Flax NNX and Optax: nnx.Embed for the words and their positions, two pre-norm blocks of
nnx.LayerNorm (epsilon 1e-5: Flax's default is 1e-6), nnx.MultiHeadAttention (its mask True where a key
may be attended; broadcast_dropout=False, since Flax's default draws one dropout mask for every review
and head) and nnx.Linear with the exact GELU (jax.nn.gelu's default is the tanh one), a final norm, the
mean over each review's own words, nnx.Linear; Adam."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import flax
from flax import nnx

from attention_weights import ADAM, BLOCKS, CLASSES, DROPOUT, EMBED, EPS, FF, HEADS, MAXLEN, VOCAB, check, \
    from_heads, out_from_heads, out_to_heads, to_heads
from common import SEED, TF32
from reviews import reviews_for_library

jax.config.update("jax_default_matmul_precision", None if TF32 else "highest")
LIMIT = float(np.sqrt(6.0 / (2 * EMBED)))


def projection(key, shape, dtype=jnp.float32):
    """Glorot-uniform for each (EMBED, EMBED) projection, whatever shape Flax gives its kernel: (EMBED,
    HEADS, HEAD) for the query, key and value, (HEADS, HEAD, EMBED) for the output (Flax's attention
    default is LeCun-normal)."""
    return jax.random.uniform(key, shape, dtype, -LIMIT, LIMIT)


def load_data(dataset, profile):
    return reviews_for_library(dataset, profile)


class Block(nnx.Module):
    def __init__(self, rngs):
        glorot = nnx.initializers.glorot_uniform()  # nnx.Linear's default is LeCun-normal
        self.norm1 = nnx.LayerNorm(EMBED, epsilon=EPS, rngs=rngs)
        self.attention = nnx.MultiHeadAttention(HEADS, EMBED, dropout_rate=DROPOUT, broadcast_dropout=False,
                                                kernel_init=projection, decode=False, rngs=rngs)
        self.dropout = nnx.Dropout(DROPOUT, rngs=rngs)
        self.norm2 = nnx.LayerNorm(EMBED, epsilon=EPS, rngs=rngs)
        self.ff1 = nnx.Linear(EMBED, FF, kernel_init=glorot, rngs=rngs)
        self.ff2 = nnx.Linear(FF, EMBED, kernel_init=glorot, rngs=rngs)

    def __call__(self, x, mask):
        x = x + self.dropout(self.attention(self.norm1(x), mask=mask))
        h = jax.nn.gelu(self.ff1(self.norm2(x)), approximate=False)
        return x + self.dropout(self.ff2(h))


class Encoder(nnx.Module):
    def __init__(self, rngs):
        self.embed = nnx.Embed(VOCAB, EMBED, rngs=rngs)
        self.position = nnx.Embed(MAXLEN, EMBED, rngs=rngs)
        self.blocks = nnx.List([Block(rngs) for _ in range(BLOCKS)])
        self.norm = nnx.LayerNorm(EMBED, epsilon=EPS, rngs=rngs)
        self.dense = nnx.Linear(EMBED, CLASSES, kernel_init=nnx.initializers.glorot_uniform(), rngs=rngs)

    def __call__(self, ids):
        words = ids != 0
        x = self.embed(ids) + self.position(jnp.arange(ids.shape[1]))
        for block in self.blocks:
            x = block(x, words[:, None, None, :])  # (N, heads, queries, keys): True where a key is a word
        weights = words[:, :, None].astype(x.dtype)
        return self.dense((self.norm(x) * weights).sum(axis=1) / weights.sum(axis=1))


def create_model():
    return Encoder(nnx.Rngs(SEED))


def init_model(model):
    # optax.adam adds epsilon to the bias-corrected root, as PyTorch does.
    adam = optax.adam(ADAM["lr"], b1=ADAM["beta1"], b2=ADAM["beta2"], eps=ADAM["eps"])
    return model, nnx.Optimizer(model, adam, wrt=nnx.Param)


def loss_fn(model, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()


@nnx.jit
def train_step(model, optimizer, x, y):
    loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
    optimizer.update(model, grads)
    return loss


def train_epoch(trainer, batches):
    model, optimizer = trainer
    model.train()
    losses = [train_step(model, optimizer, x, y) for x, y in batches]
    return float(np.mean(jax.device_get(losses)))


@nnx.jit
def predict_step(model, x):
    return model(x).argmax(axis=1)


def predict(trainer, batches):
    trainer[0].eval()
    return np.concatenate([jax.device_get(predict_step(trainer[0], x)) for x in batches])


def count_params(model):
    return sum(p.size for p in jax.tree_util.tree_leaves(nnx.state(model, nnx.Param)))


def get_weights(model):
    def value(p):
        return np.asarray(p[...])
    out = [[value(model.embed.embedding), value(model.position.embedding)]]
    for block in model.blocks:
        a = block.attention
        arrays = [value(block.norm1.scale), value(block.norm1.bias)]
        for p in (a.query, a.key, a.value):
            arrays += list(from_heads(value(p.kernel), value(p.bias)))
        out.append(arrays + [out_from_heads(value(a.out.kernel)), value(a.out.bias), value(block.norm2.scale),
                             value(block.norm2.bias), value(block.ff1.kernel).T, value(block.ff1.bias),
                             value(block.ff2.kernel).T, value(block.ff2.bias)])
    return out + [[value(model.norm.scale), value(model.norm.bias)],
                  [value(model.dense.kernel).T, value(model.dense.bias)]]


def set_weights(model, weights):
    weights = check(weights)
    pairs = [(model.embed.embedding, weights[0][0]), (model.position.embedding, weights[0][1])]
    for block, w in zip(model.blocks, weights[1:1 + BLOCKS]):
        a = block.attention
        pairs += [(block.norm1.scale, w[0]), (block.norm1.bias, w[1])]
        for p, i in ((a.query, 2), (a.key, 4), (a.value, 6)):
            kernel, bias = to_heads(w[i], w[i + 1])
            pairs += [(p.kernel, kernel), (p.bias, bias)]
        pairs += [(a.out.kernel, out_to_heads(w[8])), (a.out.bias, w[9]), (block.norm2.scale, w[10]),
                  (block.norm2.bias, w[11]), (block.ff1.kernel, w[12].T), (block.ff1.bias, w[13]),
                  (block.ff2.kernel, w[14].T), (block.ff2.bias, w[15])]
    pairs += [(model.norm.scale, weights[1 + BLOCKS][0]), (model.norm.bias, weights[1 + BLOCKS][1]),
              (model.dense.kernel, weights[2 + BLOCKS][0].T), (model.dense.bias, weights[2 + BLOCKS][1])]
    for param, value in pairs:
        param[...] = jnp.asarray(value)  # in place: the optimizer holds the same variables


def export_onnx(model, path):
    from unittest import mock
    import onnx
    from jax2onnx import to_onnx  # traces the JAX operations into ONNX
    from jax2onnx.plugins.flax.nnx.linear_general import LinearGeneralPlugin
    from onnx_graph import BATCH, without_dropout
    model.eval()  # dropout off; jax2onnx still writes Dropout nodes, told not to drop
    # jax2onnx 0.13 puts its own LinearGeneral call in Flax's place during the trace, without the
    # out_sharding argument that Flax 0.12's MultiHeadAttention passes to it (None, here): it is taken away.
    make = LinearGeneralPlugin._make_patch
    no_sharding = staticmethod(lambda call: lambda self, x, out_sharding=None: make(call)(self, x))
    ids = jax.ShapeDtypeStruct((BATCH, MAXLEN), jnp.int32)  # a symbolic batch size
    with mock.patch.object(LinearGeneralPlugin, "_make_patch", no_sharding):
        onnx.save(without_dropout(to_onnx(model, [ids], input_names=["ids"], output_names=["logits"])), path)


def runtime_info():
    dev = jax.devices()[0]
    return dict(version="jax {}, flax {}".format(jax.__version__, flax.__version__),
                device="gpu" if dev.platform == "gpu" else "cpu")
