"""JAX with Flax NNX and Optax: nnx.Embed, nnx.RNN over a GRU cell (form A) that stops at each review's
own last step, nnx.Linear; Adam. Flax 0.12's nnx.GRUCell has one bias, on its input layer, and none on
its recurrent layer, so no candidate bias b_hn (its docstring has one): the cell here gives its recurrent
layer a bias, and so computes form A exactly. nnx.RNN runs all 150 steps and picks each review's carry."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import flax
from flax import nnx

from common import SEED, TF32
from reviews import reviews_for_library
from rnn_weights import ADAM, CLASSES, EMBED, HIDDEN, VOCAB, check

jax.config.update("jax_default_matmul_precision", None if TF32 else "highest")


def load_data(dataset, profile):
    return reviews_for_library(dataset, profile)


class GRUCell(nnx.GRUCell):
    """nnx.GRUCell (gates r, z, n; input-major kernels) with a bias on its recurrent layer too."""
    def __init__(self, in_features, hidden_features, rngs):
        super().__init__(in_features, hidden_features, rngs=rngs)
        self.dense_h = nnx.Linear(hidden_features, 3 * hidden_features, kernel_init=nnx.initializers.orthogonal(),
                                  rngs=rngs)  # the built-in's has use_bias=False, so b_hn is missing

    def __call__(self, h, x):
        r_x, z_x, n_x = jnp.split(self.dense_i(x), 3, axis=-1)
        r_h, z_h, n_h = jnp.split(self.dense_h(h), 3, axis=-1)
        r, z = nnx.sigmoid(r_x + r_h), nnx.sigmoid(z_x + z_h)
        n = jnp.tanh(n_x + r * n_h)  # form A: r scales the recurrent product and its bias b_hn
        h = (1.0 - z) * n + z * h
        return h, h


class RNN(nnx.Module):
    def __init__(self, rngs):
        self.embed = nnx.Embed(VOCAB, EMBED, rngs=rngs)
        self.gru = nnx.RNN(GRUCell(EMBED, HIDDEN, rngs), return_carry=True)
        self.dense = nnx.Linear(HIDDEN, CLASSES, rngs=rngs)

    def __call__(self, ids):
        lengths = (ids != 0).sum(axis=1)  # the padding (0) comes after each review
        last, _ = self.gru(self.embed(ids), seq_lengths=lengths)  # the carry at each review's last step
        return self.dense(last)


def create_model():
    return RNN(nnx.Rngs(SEED))


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
    losses = [train_step(model, optimizer, x, y) for x, y in batches]
    return float(np.mean(jax.device_get(losses)))


@nnx.jit
def predict_step(model, x):
    return model(x).argmax(axis=1)


def predict(trainer, batches):
    return np.concatenate([jax.device_get(predict_step(trainer[0], x)) for x in batches])


def count_params(model):
    return sum(p.size for p in jax.tree_util.tree_leaves(nnx.state(model, nnx.Param)))


def layers(model):
    cell = model.gru.cell
    return [[model.embed], [cell.dense_i, cell.dense_h], [model.dense]]


def get_weights(model):
    (embed,), (dense_i, dense_h), (dense,) = layers(model)
    return [[np.asarray(embed.embedding[...])],
            [np.asarray(dense_i.kernel[...]).T, np.asarray(dense_h.kernel[...]).T, np.asarray(dense_i.bias[...]),
             np.asarray(dense_h.bias[...])], [np.asarray(dense.kernel[...]).T, np.asarray(dense.bias[...])]]


def set_weights(model, weights):
    (embedding,), (w_ih, w_hh, b_ih, b_hh), (kernel, bias) = check(weights)
    (embed,), (dense_i, dense_h), (dense,) = layers(model)
    for param, value in [(embed.embedding, embedding), (dense_i.kernel, w_ih.T), (dense_h.kernel, w_hh.T),
                         (dense_i.bias, b_ih), (dense_h.bias, b_hh), (dense.kernel, kernel.T), (dense.bias, bias)]:
        param[...] = jnp.asarray(value)  # in place: the optimizer holds the same variables


def export_onnx(model, path):
    from unittest import mock
    import onnx
    from jax2onnx import to_onnx  # traces the JAX operations into ONNX: lax.scan becomes a Loop
    from onnx_graph import BATCH
    from reviews import MAXLEN
    model.eval()
    # nnx.RNN draws a key for its zero initial state, which a trace may not count on the model
    # itself: a copy is made in the trace, its key given as raw data (jax2onnx cannot hold a key).
    graphdef, keys, rest = nnx.split(model, nnx.RngKey, ...)
    key_data = jax.tree.map(jax.random.key_data, keys)
    arange = jnp.arange  # JAX's own: jax2onnx's loses the symbolic batch that nnx.RNN's last step needs

    def logits(ids):
        with mock.patch.object(jnp, "arange", arange):
            keys = jax.tree.map(jax.random.wrap_key_data, key_data)
            return nnx.merge(graphdef, keys, rest, copy=True)(ids)
    ids = jax.ShapeDtypeStruct((BATCH, MAXLEN), jnp.int32)  # a symbolic batch size
    onnx.save(to_onnx(logits, [ids], input_names=["ids"], output_names=["logits"]), path)


def runtime_info():
    dev = jax.devices()[0]
    return dict(version="jax {}, flax {}".format(jax.__version__, flax.__version__),
                device="gpu" if dev.platform == "gpu" else "cpu", cudnn=False,
                gru_form="A (nnx.GRUCell with the recurrent bias it lacks)")
