"""Keras 3 (TensorFlow, JAX or PyTorch backend): Embedding with mask_zero, so the GRU stops at each
review's own last word, GRU(reset_after=True, form A, Keras' default), Dense; Adam."""
import os

import keras
import numpy as np
from keras import layers

from common import SEED
from reviews import reviews_for_library
from rnn_weights import ADAM, CLASSES, EMBED, HIDDEN, VOCAB, check, from_keras, to_keras


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


def runtime_info():
    return dict(version="keras {} on {}".format(keras.__version__, keras.backend.backend()),
                device="cpu" if os.environ.get("KERAS_TORCH_DEVICE") == "cpu" else None,
                gru_form="A (reset_after=True)")
