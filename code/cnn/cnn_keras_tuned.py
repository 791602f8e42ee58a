"""Keras 3, tuned: many batches per call of Keras' train function (TensorFlow and JAX backends),
torch.compile on a GPU (PyTorch backend), on JAX's CPU backend the convolutions' kernel gradients as
matrix products, and the mixed_bfloat16 policy where the device has bf16 units. The rest is
cnn_keras's: Keras already compiles with XLA on TensorFlow's GPUs and on JAX."""
import keras

import cnn_keras as faithful
import tuning
from cnn_keras import (GPU, count_params, get_weights, load_data, predict, set_weights,  # noqa: F401
                       train_epoch)

BACKEND = keras.backend.backend()
STEPS_PER_EXECUTION = 64


def gpu_capability():
    if BACKEND == "tensorflow":
        import tensorflow as tf
        return tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])["compute_capability"]
    if BACKEND == "jax":
        import jax
        return tuple(map(int, jax.devices()[0].compute_capability.split(".")))
    import torch
    return torch.cuda.get_device_capability()


MANY_STEPS = tuning.change("steps_per_execution", BACKEND != "torch", "{} batches per call of Keras' train "
                           "function".format(STEPS_PER_EXECUTION) if BACKEND != "torch"
                           else "Keras' torch backend accepts only steps_per_execution=1")
JIT = tuning.change("jit_compile", BACKEND == "torch" and bool(GPU), {
    "torch": "torch.compile for the torch backend" if GPU else "switched on for GPUs only; "
             "`make bench-tuning` measures torch.compile on this CPU",
    "tensorflow": "Keras' default, \"auto\", compiles with XLA where TensorFlow has a GPU, and not on a CPU-only machine",
    "jax": "Keras' default, \"auto\", always compiles with XLA on JAX"}[BACKEND])
JAX_CPU = BACKEND == "jax" and not GPU
WEIGHT_GRAD = tuning.change("weight_grad", JAX_CPU, "each convolution's kernel gradient is one matrix product of the "
                            "shifted inputs and the output's gradient, where XLA's CPU backend computes it as a "
                            "convolution over the batch, far slower" if JAX_CPU
                            else "for JAX's CPU backend only: the slow kernel gradient is XLA's on a CPU")
BF16 = tuning.change("bf16", *(tuning.gpu_bf16(gpu_capability()) if GPU else tuning.cpu_bf16()))
if BF16:  # before create_model: each layer computes in bf16 and keeps float32 weights
    keras.mixed_precision.set_global_policy("mixed_bfloat16")


@keras.ops.custom_gradient
def conv3x3(x, kernel):  # NHWC by HWIO, stride 1, "same": every convolution of this model
    def grad(*args, upstream=None):  # the gradient comes as upstream on torch, as the argument elsewhere
        dy = args[0] if upstream is None else upstream
        dx = keras.ops.conv(dy, keras.ops.swapaxes(keras.ops.flip(kernel, (0, 1)), 2, 3), padding="same")
        h, w, c = x.shape[1:]
        padded = keras.ops.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        shifted = keras.ops.concatenate([padded[:, i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=-1)
        dkernel = keras.ops.reshape(shifted, (-1, 9 * c)).T @ keras.ops.reshape(dy, (-1, dy.shape[-1]))
        return dx, keras.ops.reshape(dkernel, kernel.shape)
    return keras.ops.conv(x, kernel, padding="same"), grad


def create_model():
    model = faithful.create_model()
    if WEIGHT_GRAD:
        for layer in model.layers:
            if isinstance(layer, keras.layers.Conv2D):  # Keras' hook for a layer's own convolution
                layer.convolution_op = conv3x3
    return model


def init_model(model):
    model.compile(
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        optimizer=keras.optimizers.SGD(learning_rate=faithful.LR, momentum=faithful.MOMENTUM),
        steps_per_execution=STEPS_PER_EXECUTION if MANY_STEPS else 1,
        jit_compile=True if JIT else "auto")
    return model


def runtime_info():
    return dict(faithful.runtime_info(), precision="mixed_bfloat16" if BF16 else "float32")
