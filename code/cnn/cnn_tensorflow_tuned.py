"""TensorFlow, tuned: the training step compiled by XLA on a GPU, and bf16 compute where the device
has bf16 units. The rest is cnn_tensorflow's."""
import numpy as np
import tensorflow as tf
from tensorflow.python.util import _pywrap_util_port

import cnn_tensorflow as faithful
import tuning
from cnn_tensorflow import count_params, get_weights, init_model, load_data, set_weights  # noqa: F401

GPUS = tf.config.list_physical_devices("GPU")
# TensorFlow turns oneDNN on by default only on CPUs with AVX512-VNNI, AVX512-BF16, AVX-VNNI or AMX
# (TF_ENABLE_ONEDNN_OPTS overrides it); elsewhere its convolutions run in Eigen.
ONEDNN = _pywrap_util_port.IsMklEnabled()
XLA = tuning.change("jit_compile", bool(GPUS), "XLA fuses the step's operations into few GPU kernels" if GPUS
                    else "on this CPU, TensorFlow runs convolutions with {} and XLA with its own; `make "
                    "bench-tuning` measures the two".format("oneDNN" if ONEDNN else "Eigen (oneDNN is off here)"))
BF16 = tuning.change("bf16", *(tuning.gpu_bf16(tf.config.experimental.get_device_details(GPUS[0])["compute_capability"])
                               if GPUS else tuning.cpu_bf16()))
COMPUTE = tf.bfloat16 if BF16 else tf.float32


class CNN(faithful.CNN):
    def __call__(self, x, training=False):
        def half(v):  # bf16 copies of the float32 variables (and input), where BF16 is on
            return tf.cast(v, COMPUTE)
        x = half(x)
        for i, (w, b) in enumerate(self.convs):
            x = tf.nn.relu(tf.nn.conv2d(x, half(w), strides=1, padding="SAME") + half(b))
            if i % 2:  # after each pair of convolutions
                x = tf.nn.max_pool2d(x, ksize=2, strides=2, padding="VALID")
                x = tf.nn.dropout(x, rate=0.25) if training else x
        x = tf.reshape(x, [-1, 8 * 8 * 100])
        (w1, b1), (w2, b2) = self.dense
        x = tf.nn.relu(x @ half(w1) + half(b1))
        x = tf.nn.dropout(x, rate=0.5) if training else x
        return tf.cast(x @ half(w2) + half(b2), tf.float32)  # logits, and the loss, in float32


def create_model():
    tf.random.set_seed(faithful.SEED)
    return CNN()


# The faithful step and forward pass, compiled by XLA where XLA is on (traced once either way).
train_step = tf.function(faithful.train_step.python_function, jit_compile=XLA)
logits_of = tf.function(faithful.logits_of.python_function, jit_compile=XLA)


def train_epoch(trainer, batches):
    model, velocities = trainer
    total, steps = tf.constant(0.0), 0
    for x, y in batches:
        total, steps = total + train_step(model, velocities, x, y), steps + 1
    return float(total) / steps  # float() waits for the device


def predict(trainer, batches):
    model = trainer[0]
    return np.concatenate([tf.argmax(logits_of(model, x), axis=1).numpy() for x in batches])


def runtime_info():
    return dict(faithful.runtime_info(), precision="bf16 compute, float32 variables" if BF16 else "float32")
