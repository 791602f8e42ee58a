"""TensorFlow 2 without Keras: a tf.Module whose attention is written out (the heads a reshape, scores
by tf.matmul, the padding's keys set to -inf before tf.nn.softmax), layer norm by tf.nn.moments,
tf.nn.gelu(approximate=False) (exact: TensorFlow's default), the mean over each review's own words;
Adam written out."""
import numpy as np
import tensorflow as tf

from attention_weights import ADAM, BLOCK, BLOCK_SHAPES, BLOCKS, CLASSES, DROPOUT, EMBED, EPS, HEAD, HEADS, \
    MAXLEN, VOCAB, check
from common import SEED, TF32
from reviews import reviews_for_library

tf.config.experimental.enable_tensor_float_32_execution(TF32)


def load_data(dataset, profile):
    return reviews_for_library(dataset, profile)


def initial(name, shape):
    """The model's init: Glorot-uniform matrices, zero biases, norms' scales one."""
    if len(shape) == 2:
        limit = np.sqrt(6.0 / sum(shape))
        return tf.Variable(tf.random.uniform(shape, -limit, limit), name=name)
    return tf.Variable(tf.ones(shape) if name.endswith("scale") else tf.zeros(shape), name=name)


def layer_norm(x, scale, bias):
    mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
    return (x - mean) * tf.math.rsqrt(variance + EPS) * scale + bias


def heads(x):
    """(N, T, EMBED) -> (N, HEADS, T, HEAD)."""
    return tf.transpose(tf.reshape(x, [tf.shape(x)[0], MAXLEN, HEADS, HEAD]), [0, 2, 1, 3])


class Encoder(tf.Module):
    def __init__(self):
        super().__init__()
        self.token = tf.Variable(tf.random.uniform([VOCAB, EMBED], -0.05, 0.05), name="token")
        self.position = tf.Variable(tf.random.uniform([MAXLEN, EMBED], -0.05, 0.05), name="position")
        # each block's arrays in the neutral layout's order, matrices output-major as it holds them
        self.blocks = [[initial(name, shape) for name, shape in zip(BLOCK, BLOCK_SHAPES)] for _ in range(BLOCKS)]
        self.norm = [initial("final_scale", [EMBED]), initial("final_bias", [EMBED])]
        self.dense = [initial("dense", [CLASSES, EMBED]), initial("dense_bias", [CLASSES])]

    def block(self, x, keys, p, training):
        def linear(h, i):
            return tf.matmul(h, p[i], transpose_b=True) + p[i + 1]
        h = layer_norm(x, p[0], p[1])
        q, k, v = heads(linear(h, 2)), heads(linear(h, 4)), heads(linear(h, 6))
        scores = tf.where(keys, tf.matmul(q, k, transpose_b=True) / np.sqrt(HEAD), -np.inf)
        weights = tf.nn.softmax(scores, axis=-1)
        if training:
            weights = tf.nn.dropout(weights, DROPOUT)
        context = tf.reshape(tf.transpose(tf.matmul(weights, v), [0, 2, 1, 3]), [tf.shape(x)[0], MAXLEN, EMBED])
        out = linear(context, 8)
        x = x + (tf.nn.dropout(out, DROPOUT) if training else out)
        h = tf.nn.gelu(linear(layer_norm(x, p[10], p[11]), 12), approximate=False)
        out = linear(h, 14)
        return x + (tf.nn.dropout(out, DROPOUT) if training else out)

    def __call__(self, ids, training=False):
        words = tf.not_equal(ids, 0)
        keys = words[:, None, None, :]  # (N, heads, queries, keys): True where a key is a word
        x = tf.gather(self.token, ids) + self.position
        for p in self.blocks:
            x = self.block(x, keys, p, training)
        weights = tf.cast(words, x.dtype)[:, :, None]
        pooled = tf.reduce_sum(layer_norm(x, *self.norm) * weights, axis=1) / tf.reduce_sum(weights, axis=1)
        return tf.matmul(pooled, self.dense[0], transpose_b=True) + self.dense[1]


def create_model():
    tf.random.set_seed(SEED)
    return Encoder()


def init_model(model):
    # Adam as PyTorch and Optax step it: epsilon added to the bias-corrected root.
    moments = [(tf.Variable(tf.zeros_like(v)), tf.Variable(tf.zeros_like(v))) for v in model.trainable_variables]
    return model, moments, tf.Variable(0.0)


@tf.function
def train_step(model, moments, step, x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, model(x, training=True)))
    grads = tape.gradient(loss, model.trainable_variables)
    step.assign_add(1.0)
    b1, b2 = ADAM["beta1"], ADAM["beta2"]
    for (m, v), w, g in zip(moments, model.trainable_variables, grads):
        g = tf.convert_to_tensor(g)  # the token embedding's gradient comes as rows (IndexedSlices)
        m.assign(b1 * m + (1 - b1) * g)
        v.assign(b2 * v + (1 - b2) * g * g)
        m_hat, v_hat = m / (1 - b1 ** step), v / (1 - b2 ** step)
        w.assign_sub(ADAM["lr"] * m_hat / (tf.sqrt(v_hat) + ADAM["eps"]))
    return loss


def train_epoch(trainer, batches):
    model, moments, step = trainer
    total, n = tf.constant(0.0), 0
    for x, y in batches:
        total, n = total + train_step(model, moments, step, x, y), n + 1
    return float(total) / n


@tf.function
def logits_of(model, x):
    return model(x)


def predict(trainer, batches):
    return np.concatenate([tf.argmax(logits_of(trainer[0], x), axis=1).numpy() for x in batches])


def count_params(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_variables)


def variables(model):
    return [[model.token, model.position]] + model.blocks + [model.norm, model.dense]


def get_weights(model):
    return [[v.numpy() for v in group] for group in variables(model)]


def set_weights(model, weights):
    for group, values in zip(variables(model), check(weights)):
        for variable, value in zip(group, values):
            variable.assign(value)


def export_onnx(model, path):
    import tf2onnx  # the ONNX project's converter of TensorFlow graphs
    # None: any batch size. The ids are the only input: the graph finds the padding itself.
    from unittest import mock
    spec = [tf.TensorSpec([None, MAXLEN], tf.int32, name="ids")]
    # tf.nn.gelu writes the exact GELU with Erfc, which tf2onnx 1.17 leaves unconverted (ONNX has no
    # Erfc): the trace for the file takes the same function with Erf, which ONNX has.
    erf = lambda x, approximate=False: 0.5 * x * (1.0 + tf.math.erf(x / np.sqrt(2.0).astype(np.float32)))  # noqa: E731
    with mock.patch.object(tf.nn, "gelu", erf):
        tf2onnx.convert.from_function(tf.function(lambda ids: model(ids)), input_signature=spec, output_path=path)


def runtime_info():
    gpus = tf.config.list_physical_devices("GPU")
    return dict(version=tf.__version__, device="gpu" if gpus else "cpu")
