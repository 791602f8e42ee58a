"""Keras 3 (TensorFlow, JAX or PyTorch backend): Embedding for the words and a position table,
two pre-norm blocks of LayerNormalization (epsilon 1e-5: Keras' default is 1e-3), MultiHeadAttention
(its attention_mask True where a key may be attended) and Dense with the exact GELU
("gelu" is keras.activations.gelu, exact by default; keras.ops.gelu is the tanh one), a final norm,
the mean over each review's own words, Dense; Adam."""
import keras
import numpy as np
from keras import layers, ops

from attention_weights import ADAM, BLOCKS, CLASSES, DROPOUT, EMBED, EPS, FF, HEAD, HEADS, MAXLEN, VOCAB, check, \
    from_heads, out_from_heads, out_to_heads, to_heads
from common import SEED, TF32
from reviews import reviews_for_library

# Glorot-uniform for each (EMBED, EMBED) projection, named: Keras 3.15's EinsumDense takes the fans of its
# (EMBED, HEADS, HEAD) kernels from the einsum's axes, so its default is this range too (measured), but a
# glorot_uniform given a 3-axis shape alone reads it as a convolution's, 4.2 times narrower.
PROJECTION = keras.initializers.RandomUniform(-np.sqrt(6.0 / (2 * EMBED)), np.sqrt(6.0 / (2 * EMBED)))


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


class Positions(layers.Layer):
    """A learned embedding of each of the MAXLEN positions, added to the words'."""
    def build(self, input_shape):
        self.table = self.add_weight(shape=(MAXLEN, EMBED), initializer="uniform", name="table")

    def call(self, x):
        return x + self.table


def create_model():
    keras.utils.set_random_seed(SEED)
    ids = keras.Input(shape=(MAXLEN,), dtype="int32")  # every review padded to MAXLEN
    words = ops.cast(ops.not_equal(ids, 0), "float32")  # (N, T): 1 for a word, 0 for the padding
    x = Positions(name="position")(layers.Embedding(VOCAB, EMBED, name="token")(ids))
    for b in range(BLOCKS):
        h = layers.LayerNormalization(epsilon=EPS, name="block{}_norm1".format(b))(x)
        h = layers.MultiHeadAttention(HEADS, HEAD, dropout=DROPOUT, kernel_initializer=PROJECTION,
                                      name="block{}_attention".format(b))(h, h, attention_mask=words[:, None, :])
        x = x + layers.Dropout(DROPOUT)(h)
        h = layers.LayerNormalization(epsilon=EPS, name="block{}_norm2".format(b))(x)
        h = layers.Dense(FF, activation="gelu", name="block{}_ff1".format(b))(h)
        x = x + layers.Dropout(DROPOUT)(layers.Dense(EMBED, name="block{}_ff2".format(b))(h))
    x = layers.LayerNormalization(epsilon=EPS, name="final_norm")(x)
    pooled = ops.sum(x * words[:, :, None], axis=1) / ops.sum(words, axis=1, keepdims=True)
    return keras.Model(ids, layers.Dense(CLASSES, name="dense")(pooled))  # logits: the loss applies the softmax


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
    def arrays(name):
        return model.get_layer(name).get_weights()
    out = [arrays("token") + arrays("position")]
    for b in range(BLOCKS):
        qk, qb, kk, kb, vk, vb, ok, ob = arrays("block{}_attention".format(b))
        ff1, ff1_bias = arrays("block{}_ff1".format(b))
        ff2, ff2_bias = arrays("block{}_ff2".format(b))
        out.append(arrays("block{}_norm1".format(b)) + list(from_heads(qk, qb)) + list(from_heads(kk, kb))
                   + list(from_heads(vk, vb)) + [out_from_heads(ok), ob] + arrays("block{}_norm2".format(b))
                   + [ff1.T, ff1_bias, ff2.T, ff2_bias])
    dense, dense_bias = arrays("dense")
    return out + [arrays("final_norm"), [dense.T, dense_bias]]


def set_weights(model, weights):
    weights = check(weights)
    model.get_layer("token").set_weights(weights[0][:1])
    model.get_layer("position").set_weights(weights[0][1:])
    for b, block in enumerate(weights[1:1 + BLOCKS]):
        model.get_layer("block{}_norm1".format(b)).set_weights(block[0:2])
        model.get_layer("block{}_attention".format(b)).set_weights(
            list(to_heads(*block[2:4])) + list(to_heads(*block[4:6])) + list(to_heads(*block[6:8]))
            + [out_to_heads(block[8]), block[9]])
        model.get_layer("block{}_norm2".format(b)).set_weights(block[10:12])
        model.get_layer("block{}_ff1".format(b)).set_weights([block[12].T, block[13]])
        model.get_layer("block{}_ff2".format(b)).set_weights([block[14].T, block[15]])
    model.get_layer("final_norm").set_weights(weights[1 + BLOCKS])
    model.get_layer("dense").set_weights([weights[2 + BLOCKS][0].T, weights[2 + BLOCKS][1]])


def export_onnx(model, path):
    # The backend's exporter: tf2onnx (TensorFlow), jax2onnx (JAX), torch.onnx (torch).
    from unittest import mock
    spec = keras.InputSpec(shape=(None, MAXLEN), dtype="int32", name="ids")  # None: any batch
    if keras.backend.backend() == "tensorflow":  # tf.nn.gelu's Erfc, which tf2onnx leaves: the same GELU by Erf
        import tensorflow as tf
        erf = lambda x, approximate=False: 0.5 * x * (1.0 + tf.math.erf(x * np.float32(np.sqrt(0.5))))  # noqa: E731
        with mock.patch.object(tf.nn, "gelu", erf):
            model.export(path, format="onnx", verbose=False, input_signature=[spec])
    else:
        model.export(path, format="onnx", verbose=False, input_signature=[spec])
    if keras.backend.backend() == "jax":  # jax2onnx wrote each tensor over 1 MB (the embedding) beside it
        import os
        import onnx
        onnx.save(onnx.load(path), path)  # into the one file
        os.remove(path + ".data")


def runtime_info():
    return dict(version="keras {} on {}".format(keras.__version__, keras.backend.backend()), device=DEVICE)
