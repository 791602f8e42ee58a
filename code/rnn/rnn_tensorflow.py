"""TensorFlow 2 without Keras: a tf.Module whose GRU step (form A, the reset gate after the recurrent
product) runs in tf.scan over time; each review read at its own last step; Adam written out."""
import numpy as np
import tensorflow as tf

from common import SEED, TF32
from reviews import reviews_for_library
from rnn_weights import ADAM, CLASSES, EMBED, HIDDEN, VOCAB, check

tf.config.experimental.enable_tensor_float_32_execution(TF32)


def load_data(dataset, profile):
    return reviews_for_library(dataset, profile)


def glorot(shape):
    limit = np.sqrt(6.0 / sum(shape))
    return tf.Variable(tf.random.uniform(shape, -limit, limit))


class RNN(tf.Module):
    def __init__(self):
        super().__init__()
        self.embedding = tf.Variable(tf.random.uniform([VOCAB, EMBED], -0.05, 0.05))
        # Input-major kernels (x @ w), the gates r, z, n side by side, and two biases (form A).
        self.w_ih, self.w_hh = glorot([EMBED, 3 * HIDDEN]), glorot([HIDDEN, 3 * HIDDEN])
        self.b_ih, self.b_hh = tf.Variable(tf.zeros([3 * HIDDEN])), tf.Variable(tf.zeros([3 * HIDDEN]))
        self.dense, self.dense_bias = glorot([HIDDEN, CLASSES]), tf.Variable(tf.zeros([CLASSES]))

    def step(self, h, x_gates):
        r_x, z_x, n_x = tf.split(x_gates, 3, axis=1)
        r_h, z_h, n_h = tf.split(h @ self.w_hh + self.b_hh, 3, axis=1)
        r, z = tf.sigmoid(r_x + r_h), tf.sigmoid(z_x + z_h)
        n = tf.tanh(n_x + r * n_h)  # form A: r scales the recurrent product and its bias
        return (1 - z) * n + z * h

    def __call__(self, ids):
        x_gates = tf.gather(self.embedding, ids) @ self.w_ih + self.b_ih  # every step's input part at once
        h0 = tf.zeros([tf.shape(ids)[0], HIDDEN])
        states = tf.scan(self.step, tf.transpose(x_gates, [1, 0, 2]), initializer=h0)  # (T, N, H)
        last = tf.math.count_nonzero(ids, axis=1, dtype=tf.int32) - 1  # the padding (0) comes after
        return tf.gather_nd(states, tf.stack([last, tf.range(tf.shape(ids)[0])], axis=1)) @ self.dense + self.dense_bias


def create_model():
    tf.random.set_seed(SEED)
    return RNN()


def init_model(model):
    # Adam as PyTorch and Optax step it: epsilon added to the bias-corrected root (TensorFlow's Adam
    # below Keras, tf.compat.v1.train.AdamOptimizer, adds epsilon hat, as Keras does).
    moments = [(tf.Variable(tf.zeros_like(v)), tf.Variable(tf.zeros_like(v))) for v in model.trainable_variables]
    return model, moments, tf.Variable(0.0)


@tf.function
def train_step(model, moments, step, x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, model(x)))
    grads = tape.gradient(loss, model.trainable_variables)
    step.assign_add(1.0)
    b1, b2 = ADAM["beta1"], ADAM["beta2"]
    for (m, v), w, g in zip(moments, model.trainable_variables, grads):
        g = tf.convert_to_tensor(g)  # the embedding's gradient comes as rows (IndexedSlices)
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


def get_weights(model):
    m = model
    return [[m.embedding.numpy()], [m.w_ih.numpy().T, m.w_hh.numpy().T, m.b_ih.numpy(), m.b_hh.numpy()],
            [m.dense.numpy().T, m.dense_bias.numpy()]]


def set_weights(model, weights):
    (embedding,), (w_ih, w_hh, b_ih, b_hh), (dense, dense_bias) = check(weights)
    for variable, value in zip([model.embedding, model.w_ih, model.w_hh, model.b_ih, model.b_hh, model.dense,
                                model.dense_bias], [embedding, w_ih.T, w_hh.T, b_ih, b_hh, dense.T, dense_bias]):
        variable.assign(value)


def export_onnx(model, path):
    import tf2onnx  # the ONNX project's converter of TensorFlow graphs
    from reviews import MAXLEN
    # None: any batch size. The ids are the only input: the graph counts each review's words itself.
    spec = [tf.TensorSpec([None, MAXLEN], tf.int32, name="ids")]
    tf2onnx.convert.from_function(tf.function(model.__call__), input_signature=spec, output_path=path)


def runtime_info():
    gpus = tf.config.list_physical_devices("GPU")
    return dict(version=tf.__version__, device="gpu" if gpus else "cpu", cudnn=False,
                gru_form="A (written out: TensorFlow's own GRUs are Keras')")
