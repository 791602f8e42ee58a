"""Keras 3, the highest-level API: Sequential, compile, fit, predict; one code for three backends.

The backend (tensorflow, jax or torch) comes from KERAS_BACKEND, read once when keras is first
imported; the benchmark runs this module once per backend, each in a fresh process.
"""
import keras
from keras import layers

from common import LR, MOMENTUM, N_CLASSES, SEED, TF32
from datasets import cifar_for_library
from weights import check, chw_rows_to_hwc, hwc_rows_to_chw, hwio_to_oihw, oihw_to_hwio


def load_data(dataset, profile):
    # Keras defaults to channels last; one-hot labels go with CategoricalCrossentropy.
    return cifar_for_library(dataset, profile, channel_first=False, one_hot=True)


def create_model():
    keras.utils.set_random_seed(SEED)  # Python, NumPy and the backend's generator at once
    return keras.Sequential([
        keras.Input(shape=(32, 32, 3)),
        layers.Conv2D(50, 3, padding="same", activation="relu"),
        layers.Conv2D(50, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Dropout(0.25),
        layers.Conv2D(100, 3, padding="same", activation="relu"),
        layers.Conv2D(100, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Dropout(0.25),
        layers.Flatten(),
        layers.Dense(512, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(N_CLASSES),  # logits; Glorot-uniform and zero biases are Keras' defaults
    ])


def init_model(model):
    model.compile(
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        optimizer=keras.optimizers.SGD(learning_rate=LR, momentum=MOMENTUM))
    return model


def train_epoch(trainer, batches):
    # fit() takes the shared generator as it is: one pass over it is one epoch, already shuffled.
    history = trainer.fit(batches, epochs=1, shuffle=False, verbose=0)
    return history.history["loss"][-1]  # the epoch's mean loss


def predict(trainer, batches):
    inputs = ((x,) for x in batches)  # Keras wants each generator item as a tuple
    return trainer.predict(inputs, verbose=0).argmax(axis=1)  # dropout is off in predict()


def count_params(model):
    return model.count_params()


def get_weights(model):
    """(kernel, bias) per layer in the neutral layout of weights.py, as NumPy arrays."""
    k = model.get_weights()  # [kernel, bias] per layer; kernels HWIO and in x out
    convs = [(hwio_to_oihw(k[i]), k[i + 1]) for i in range(0, 8, 2)]
    # Flatten() of NHWC activations gives dense1's rows in (h, w, c) order: reorder to (c, h, w).
    return convs + [(hwc_rows_to_chw(k[8]), k[9]), (k[10], k[11])]


def set_weights(model, weights):
    weights = check(weights)
    convs = [a for kernel, bias in weights[:4] for a in (oihw_to_hwio(kernel), bias)]
    model.set_weights(convs + [chw_rows_to_hwc(weights[4][0]), weights[4][1], weights[5][0], weights[5][1]])


def export_onnx(model, path):
    # The backend's exporter: tf2onnx (TensorFlow), jax2onnx (JAX), torch.onnx (torch). A model
    # that only predict() has run counts as never called on JAX: the signature says what it takes.
    spec = keras.InputSpec(shape=(None, 32, 32, 3), dtype="float32", name="x")  # None: any batch
    model.export(path, format="onnx", verbose=False, input_signature=[spec])


def _backend():
    """The backend's version, GPU name (or why none), and TF32 switched as the policy says."""
    name = keras.backend.backend()
    if name == "tensorflow":
        import tensorflow as tf
        tf.config.experimental.enable_tensor_float_32_execution(TF32)
        gpus = tf.config.list_physical_devices("GPU")
        gpu = tf.config.experimental.get_device_details(gpus[0]).get("device_name") if gpus else None
        cuda = tf.sysconfig.get_build_info().get("cuda_version")
        return tf.__version__, gpu, "TensorFlow {} with CUDA {}".format(tf.__version__, cuda) if cuda else "a CPU build"
    if name == "jax":
        import jax
        jax.config.update("jax_default_matmul_precision", None if TF32 else "highest")
        dev = jax.devices()[0]
        return jax.__version__, dev.device_kind if dev.platform == "gpu" else None, "jaxlib on " + dev.platform
    import torch
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = TF32
    on_gpu = keras.ops.zeros(()).device.type == "cuda"  # where Keras puts tensors, not what torch lists
    gpu = torch.cuda.get_device_name() if on_gpu else None
    return torch.__version__, gpu, "torch with CUDA {}".format(torch.version.cuda) if torch.version.cuda else "a CPU build"


BACKEND_VERSION, GPU, BUILD = _backend()


def runtime_info():
    return dict(version=keras.__version__, backend=keras.backend.backend(),
                backend_version=BACKEND_VERSION, device="gpu" if GPU else "cpu", gpu=GPU,
                device_note=None if GPU else "the {} backend finds no GPU ({})".format(keras.backend.backend(), BUILD),
                layout="NHWC", tf32_conv=bool(GPU) and TF32, tf32_matmul=bool(GPU) and TF32)
