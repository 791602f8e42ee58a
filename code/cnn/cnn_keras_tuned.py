"""Keras 3, tuned: many batches per call of Keras' train function (TensorFlow and JAX backends),
torch.compile on a GPU (PyTorch backend), and the mixed_bfloat16 policy where the device has bf16
units. The rest is cnn_keras's: Keras already compiles with XLA on TensorFlow's GPUs and on JAX."""
import keras

import cnn_keras as faithful
import tuning
from cnn_keras import (GPU, count_params, create_model, get_weights, load_data, predict,  # noqa: F401
                       set_weights, train_epoch)

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
BF16 = tuning.change("bf16", *(tuning.gpu_bf16(gpu_capability()) if GPU else tuning.cpu_bf16()))
if BF16:  # before create_model: each layer computes in bf16 and keeps float32 weights
    keras.mixed_precision.set_global_policy("mixed_bfloat16")


def init_model(model):
    model.compile(
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        optimizer=keras.optimizers.SGD(learning_rate=faithful.LR, momentum=faithful.MOMENTUM),
        steps_per_execution=STEPS_PER_EXECUTION if MANY_STEPS else 1,
        jit_compile=True if JIT else "auto")
    return model


def runtime_info():
    return dict(faithful.runtime_info(), precision="mixed_bfloat16" if BF16 else "float32")
