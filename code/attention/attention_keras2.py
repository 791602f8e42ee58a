"""Keras 2.2.4 on the CNTK backend, which has no attention, no layer normalization and no GELU: layers of
its own written in the backend's operations (a position table, a layer norm, multi-head self-attention
head by head with K.batch_dot, -1e9 added to the padding's keys before the softmax), Dense with the
CNTK row's GELU (its erf to float32's precision: no backend of Keras 2 has erf), the mean over each
review's own words, Dense; Adam."""
import os

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "cntk")
import keras  # noqa: E402
from keras import backend as K  # noqa: E402
from keras.layers import Add, Dense, Dropout, Embedding, Input, Lambda, Layer  # noqa: E402

import attention_cntk  # noqa: E402  the same CNTK: its device choice holds for both
from attention_weights import ADAM, BLOCKS, CLASSES, DROPOUT, EMBED, EPS, FF, HEAD, HEADS, MAXLEN, VOCAB, check  # noqa: E402
from common import SEED  # noqa: E402
from reviews import reviews_for_library  # noqa: E402

GLOROT = keras.initializers.glorot_uniform()


def load_data(dataset, profile):
    return reviews_for_library(dataset, profile)


class Positions(Layer):
    def build(self, input_shape):
        self.table = self.add_weight("table", (MAXLEN, EMBED), initializer=keras.initializers.uniform(-0.05, 0.05))
        super().build(input_shape)

    def call(self, x):
        return x + self.table


class LayerNorm(Layer):
    """Epsilon on the variance, a scale and a bias per feature."""
    def build(self, input_shape):
        self.scale = self.add_weight("scale", (EMBED,), initializer="ones")
        self.bias = self.add_weight("bias", (EMBED,), initializer="zeros")
        super().build(input_shape)

    def call(self, x):
        centred = x - K.mean(x, axis=-1, keepdims=True)
        return centred / K.sqrt(K.mean(centred * centred, axis=-1, keepdims=True) + EPS) * self.scale + self.bias


class SelfAttention(Layer):
    """HEADS heads of HEAD over [inputs, ids]; the projections output-major as the neutral layout holds them."""
    def build(self, input_shape):
        self.projections = [(self.add_weight(name, (EMBED, EMBED), initializer=GLOROT),
                             self.add_weight(name + "_bias", (EMBED,), initializer="zeros"))
                            for name in ("query", "key", "value", "out")]
        self.dropout = Dropout(DROPOUT)
        super().build(input_shape)

    def call(self, inputs, training=None):
        x, ids = inputs
        padding = K.expand_dims((K.cast(K.not_equal(ids, 0), "float32") - 1) * 1e9, 1)  # (N, 1, keys)
        q, k, v = (K.dot(x, K.transpose(w)) + b for w, b in self.projections[:3])
        contexts = []
        for i in range(HEADS):
            part = slice(i * HEAD, (i + 1) * HEAD)
            scores = K.batch_dot(q[:, :, part], k[:, :, part], axes=(2, 2)) / np.sqrt(HEAD) + padding
            weights = self.dropout(K.softmax(scores), training=training)
            contexts.append(K.batch_dot(weights, v[:, :, part], axes=(2, 1)))
        w, b = self.projections[3]
        return K.dot(K.concatenate(contexts, axis=-1), K.transpose(w)) + b

    def compute_output_shape(self, input_shape):
        return input_shape[0]


def masked_mean(inputs):
    x, ids = inputs
    words = K.expand_dims(K.cast(K.not_equal(ids, 0), "float32"), -1)
    return K.sum(x * words, axis=1) / K.sum(words, axis=1)


def create_model():
    np.random.seed(SEED)
    ids = Input((MAXLEN,))
    x = Positions(name="position")(Embedding(VOCAB, EMBED, name="token")(ids))
    for b in range(BLOCKS):
        h = SelfAttention(name="block{}_attention".format(b))([LayerNorm(name="block{}_norm1".format(b))(x), ids])
        x = Add()([x, Dropout(DROPOUT)(h)])
        h = Dense(FF, activation=attention_cntk.gelu, kernel_initializer=GLOROT, name="block{}_ff1".format(b))(
            LayerNorm(name="block{}_norm2".format(b))(x))
        x = Add()([x, Dropout(DROPOUT)(Dense(EMBED, kernel_initializer=GLOROT, name="block{}_ff2".format(b))(h))])
    pooled = Lambda(masked_mean, output_shape=(EMBED,))([LayerNorm(name="final_norm")(x), ids])
    return keras.models.Model(ids, Dense(CLASSES, kernel_initializer=GLOROT, name="dense")(pooled))  # logits


def cross_entropy_on_logits(y_true, y_pred):
    return K.categorical_crossentropy(y_true, y_pred, from_logits=True)


def init_model(model):
    model.compile(loss=cross_entropy_on_logits, optimizer=keras.optimizers.Adam(
        lr=ADAM["lr"], beta_1=ADAM["beta1"], beta_2=ADAM["beta2"], epsilon=ADAM["eps"]))
    return model


def train_epoch(trainer, batches):
    return float(np.mean([trainer.train_on_batch(x, np.eye(CLASSES, dtype=np.float32)[y]) for x, y in batches]))


def predict(trainer, batches):
    return np.concatenate([trainer.predict_on_batch(x).argmax(axis=1) for x in batches])


def count_params(model):
    return model.count_params()


def layer_names():
    """The layers in the neutral layout's order: each one's weights are its arrays, but Dense's kernels,
    which are input-major."""
    blocks = [["block{}_{}".format(b, n) for n in ("norm1", "attention", "norm2", "ff1", "ff2")] for b in range(BLOCKS)]
    return [["token", "position"]] + blocks + [["final_norm"], ["dense"]]


def arrays(layer):
    found = layer.get_weights()
    return [found[0].T, found[1]] if isinstance(layer, Dense) else found


def get_weights(model):
    return [[a for name in group for a in arrays(model.get_layer(name))] for group in layer_names()]


def set_weights(model, weights):
    for names, values in zip(layer_names(), check(weights)):
        for name in names:
            layer = model.get_layer(name)
            n = len(layer.get_weights())
            taken, values = values[:n], values[n:]
            layer.set_weights([taken[0].T, taken[1]] if isinstance(layer, Dense) else taken)


def export_onnx(model, path):
    import cntk as C
    C.combine(model.outputs).save(path, format=C.ModelFormat.ONNX)  # the CNTK graph Keras built


def runtime_info():
    return dict(version="keras {} on cntk {}".format(keras.__version__, attention_cntk.C.__version__),
                device="gpu" if attention_cntk.GPU else "cpu")
