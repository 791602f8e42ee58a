"""Keras 2.2.4 on the CNTK backend: Embedding with mask_zero, so the GRU stops at each review's own last
word, GRU(reset_after=True, recurrent_activation="sigmoid"), Dense; Adam. Keras 2.2.4's GRU defaults
are reset_after=False (form B) and hard_sigmoid gates: both are set here, or it is another function."""
import os

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "cntk")
import keras  # noqa: E402
from keras import backend as K  # noqa: E402
from keras.layers import GRU, Dense, Embedding  # noqa: E402

import rnn_cntk  # noqa: E402  the same CNTK: its device choice holds for both
from common import SEED  # noqa: E402
from reviews import MAXLEN, reviews_for_library  # noqa: E402
from rnn_weights import ADAM, CLASSES, EMBED, HIDDEN, VOCAB, check, from_keras, to_keras  # noqa: E402


def load_data(dataset, profile):
    return reviews_for_library(dataset, profile)


def create_model():
    np.random.seed(SEED)
    return keras.models.Sequential([
        Embedding(VOCAB, EMBED, mask_zero=True, input_length=MAXLEN),  # a fixed length, as the seed's
        GRU(HIDDEN, reset_after=True, recurrent_activation="sigmoid"),  # gates z, r, h in its weights
        Dense(CLASSES),  # logits
    ])


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


def get_weights(model):
    embedding, kernel, recurrent, bias, dense, dense_bias = model.get_weights()
    return [[embedding], from_keras(kernel, recurrent, bias), [dense.T, dense_bias]]


def set_weights(model, weights):
    (embedding,), gru, (dense, dense_bias) = check(weights)
    model.set_weights([embedding] + to_keras(gru) + [dense.T, dense_bias])


def export_onnx(model, path):
    import cntk as C
    C.combine(model.outputs).save(path, format=C.ModelFormat.ONNX)  # the CNTK graph Keras built


def runtime_info():
    return dict(version="keras {} on cntk {}".format(keras.__version__, rnn_cntk.C.__version__),
                device="gpu" if rnn_cntk.GPU else "cpu", cudnn=False,
                gru_form="A (reset_after=True, recurrent_activation='sigmoid')")
