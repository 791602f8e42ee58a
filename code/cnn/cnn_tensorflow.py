"""TensorFlow 2 without Keras: a tf.Module of tf.nn ops, GradientTape inside a tf.function."""
import numpy as np
import tensorflow as tf
from tensorflow.python.util import _pywrap_util_port  # IsMklEnabled: whether oneDNN is on

from common import LR, MOMENTUM, N_CLASSES, SEED, TF32
from datasets import cifar_for_library
from weights import check, chw_rows_to_hwc, hwc_rows_to_chw, hwio_to_oihw, oihw_to_hwio

tf.config.experimental.enable_tensor_float_32_execution(TF32)  # on by default on Ampere and newer


def load_data(dataset, profile):
    # Channels last (NHWC) is TensorFlow's native layout: on the CPU, NCHW needs oneDNN.
    return cifar_for_library(dataset, profile, channel_first=False, one_hot=False)


def glorot(shape, fan_in, fan_out):
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return tf.Variable(tf.random.uniform(shape, -limit, limit))


class CNN(tf.Module):
    def __init__(self):
        super().__init__()
        self.convs = [(glorot([3, 3, cin, cout], 9 * cin, 9 * cout), tf.Variable(tf.zeros([cout])))
                      for cin, cout in [(3, 50), (50, 50), (50, 100), (100, 100)]]
        self.dense = [(glorot([n_in, n_out], n_in, n_out), tf.Variable(tf.zeros([n_out])))
                      for n_in, n_out in [(8 * 8 * 100, 512), (512, N_CLASSES)]]

    def __call__(self, x, training=False):
        for i, (w, b) in enumerate(self.convs):
            x = tf.nn.relu(tf.nn.conv2d(x, w, strides=1, padding="SAME") + b)
            if i % 2:  # after each pair of convolutions
                x = tf.nn.max_pool2d(x, ksize=2, strides=2, padding="VALID")
                x = tf.nn.dropout(x, rate=0.25) if training else x
        x = tf.reshape(x, [-1, 8 * 8 * 100])
        (w1, b1), (w2, b2) = self.dense
        x = tf.nn.relu(x @ w1 + b1)
        x = tf.nn.dropout(x, rate=0.5) if training else x
        return x @ w2 + b2  # logits


def create_model():
    tf.random.set_seed(SEED)
    return CNN()


def init_model(model):
    # Plain TensorFlow has no optimizer classes (tf.keras.optimizers are Keras): momentum SGD is
    # one velocity per variable, updated in train_step.
    velocities = [tf.Variable(tf.zeros_like(v)) for v in model.trainable_variables]
    return model, velocities


@tf.function  # traced once into a graph: the Python below runs only while tracing
def train_step(model, velocities, x, y):
    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
    grads = tape.gradient(loss, model.trainable_variables)
    for v, w, g in zip(velocities, model.trainable_variables, grads):
        v.assign(MOMENTUM * v + g)  # classic momentum, as torch.optim.SGD
        w.assign_sub(LR * v)
    return loss


def train_epoch(trainer, batches):
    model, velocities = trainer
    total, steps = tf.constant(0.0), 0
    for x, y in batches:
        total, steps = total + train_step(model, velocities, x, y), steps + 1
    return float(total) / steps  # float() waits for the device


@tf.function
def logits_of(model, x):
    return model(x, training=False)


def predict(trainer, batches):
    model = trainer[0]
    return np.concatenate([tf.argmax(logits_of(model, x), axis=1).numpy() for x in batches])


def count_params(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_variables)


def get_weights(model):
    """(kernel, bias) per layer in the neutral layout of weights.py, as NumPy arrays."""
    convs = [(hwio_to_oihw(w.numpy()), b.numpy()) for w, b in model.convs]
    (w1, b1), (w2, b2) = model.dense
    # dense1's rows follow the NHWC flatten (height, width, channel): reorder them to (c, h, w).
    return convs + [(hwc_rows_to_chw(w1.numpy()), b1.numpy()), (w2.numpy(), b2.numpy())]


def set_weights(model, weights):
    weights = check(weights)
    for (w, b), (kernel, bias) in zip(model.convs, weights[:4]):
        w.assign(oihw_to_hwio(kernel))
        b.assign(bias)
    (w1, b1), (w2, b2) = model.dense
    w1.assign(chw_rows_to_hwc(weights[4][0]))
    b1.assign(weights[4][1])
    w2.assign(weights[5][0])
    b2.assign(weights[5][1])


def export_onnx(model, path):
    import tf2onnx  # the ONNX project's converter of TensorFlow graphs
    spec = [tf.TensorSpec([None, 32, 32, 3], tf.float32, name="x")]  # None: any batch size
    tf2onnx.convert.from_function(tf.function(model.__call__), input_signature=spec, output_path=path)


def runtime_info():
    gpus = tf.config.list_physical_devices("GPU")
    name = tf.config.experimental.get_device_details(gpus[0]).get("device_name") if gpus else None
    build = tf.sysconfig.get_build_info()
    note = None if gpus else ("this TensorFlow is a CPU build" if not build.get("is_cuda_build")
                              else "TensorFlow's CUDA {} finds no GPU it can use".format(build.get("cuda_version")))
    return dict(version=tf.__version__, device="gpu" if gpus else "cpu", gpu=name, layout="NHWC", device_note=note,
                onednn=_pywrap_util_port.IsMklEnabled(),  # on by default only on some CPUs: it moves their timings
                threads=tf.config.threading.get_intra_op_parallelism_threads() or "0 (all cores)",
                tf32_conv=bool(gpus) and tf.config.experimental.tensor_float_32_execution_enabled(),
                tf32_matmul=bool(gpus) and tf.config.experimental.tensor_float_32_execution_enabled())
