"""Keras 3 (TensorFlow, JAX or PyTorch backend): Embedding with mask_zero, so the GRU stops at each
review's own last word, GRU(reset_after=True, form A, Keras' default), Dense; Adam."""
import keras
import numpy as np
from keras import layers

from common import SEED, TF32
from reviews import reviews_for_library
from rnn_weights import ADAM, CLASSES, EMBED, HIDDEN, VOCAB, check, from_keras, to_keras


def backend_device():
    """Where the backend computes ("gpu" or "cpu"), with TF32 set as the precision policy says:
    off, where each backend's default on a recent GPU is on."""
    name = keras.backend.backend()
    if name == "tensorflow":
        import tensorflow as tf
        tf.config.experimental.enable_tensor_float_32_execution(TF32)
        return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    if name == "jax":
        import jax
        jax.config.update("jax_default_matmul_precision", None if TF32 else "highest")
        return "gpu" if jax.devices()[0].platform == "gpu" else "cpu"
    import torch
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = TF32
    return "gpu" if keras.ops.zeros(()).device.type == "cuda" else "cpu"  # where Keras puts tensors


DEVICE = backend_device()


def load_data(dataset, profile):
    return reviews_for_library(dataset, profile)


def create_model():
    keras.utils.set_random_seed(SEED)
    return keras.Sequential([
        keras.Input(shape=(None,), dtype="int32"),
        layers.Embedding(VOCAB, EMBED, mask_zero=True),  # id 0 is padding: masked steps keep the state
        layers.GRU(HIDDEN, reset_after=True),  # the last unmasked step's output; gates z, r, h in its weights
        layers.Dense(CLASSES),  # logits: the loss applies the softmax
    ])


def init_model(model):
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=ADAM["lr"], beta_1=ADAM["beta1"],
                                                  beta_2=ADAM["beta2"], epsilon=ADAM["eps"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def train_epoch(trainer, batches):
    losses = [float(trainer.train_on_batch(x, y)) for x, y in batches]
    return sum(losses) / len(losses)


def predict(trainer, batches):
    return np.concatenate([np.asarray(trainer.predict_on_batch(x)).argmax(axis=1) for x in batches])


def count_params(model):
    return model.count_params()


def get_weights(model):
    embedding, kernel, recurrent, bias, dense, dense_bias = model.get_weights()
    return [[embedding], from_keras(kernel, recurrent, bias), [dense.T, dense_bias]]


def set_weights(model, weights):
    (embedding,), gru, (dense, dense_bias) = check(weights)
    model.set_weights([embedding] + to_keras(gru) + [dense.T, dense_bias])


def export_onnx(model, path):
    from reviews import MAXLEN
    # The backend's exporter: tf2onnx (TensorFlow), jax2onnx (JAX), torch.onnx (torch).
    spec = keras.InputSpec(shape=(None, MAXLEN), dtype="int32", name="ids")  # None: any batch
    model.export(path, format="onnx", verbose=False, input_signature=[spec])
    if keras.backend.backend() == "jax":  # jax2onnx wrote each tensor over 1 MB (the embedding) beside it
        import os
        import onnx
        onnx.save(onnx.load(path), path)  # into the one file
        os.remove(path + ".data")


def runtime_info():
    return dict(version="keras {} on {}".format(keras.__version__, keras.backend.backend()), device=DEVICE,
                gru_form="A (reset_after=True)")
