"""Keras 2.2.4 on the CNTK backend: the seed's Keras, Sequential, compile, train_on_batch."""
import os

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "cntk")  # read once, when keras is imported
import keras  # noqa: E402
from keras import backend as K  # noqa: E402
from keras.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D  # noqa: E402

import cnn_cntk  # noqa: E402  the same CNTK: its check of the GPU picks the device for both
from common import LR, MOMENTUM, N_CLASSES, SEED, nvidia_tf32  # noqa: E402
from datasets import cifar_for_library  # noqa: E402
from weights import check, chw_rows_to_hwc, hwc_rows_to_chw, hwio_to_oihw, oihw_to_hwio  # noqa: E402

K.set_image_data_format("channels_first")  # CNTK's own layout; Keras' default is channels_last


def load_data(dataset, profile):
    return cifar_for_library(dataset, profile, channel_first=True, one_hot=True)


def create_model():
    np.random.seed(SEED)  # Keras 2 draws its initializers' seeds from NumPy
    return keras.models.Sequential([
        Conv2D(50, (3, 3), padding="same", activation="relu", input_shape=(3, 32, 32)),
        Conv2D(50, (3, 3), padding="same", activation="relu"),
        MaxPooling2D((2, 2)),
        Dropout(0.25),
        Conv2D(100, (3, 3), padding="same", activation="relu"),
        Conv2D(100, (3, 3), padding="same", activation="relu"),
        MaxPooling2D((2, 2)),
        Dropout(0.25),
        Flatten(),
        Dense(512, activation="relu"),
        Dropout(0.5),
        Dense(N_CLASSES),  # logits; Glorot-uniform and zero biases are Keras' defaults
    ])


def cross_entropy_on_logits(y_true, y_pred):
    # Keras 2.2's "categorical_crossentropy" expects probabilities; the backend takes logits.
    return K.categorical_crossentropy(y_true, y_pred, from_logits=True)


def init_model(model):
    model.compile(loss=cross_entropy_on_logits, optimizer=keras.optimizers.SGD(lr=LR, momentum=MOMENTUM))
    return model


def train_epoch(trainer, batches):
    # train_on_batch takes the shared batches as they come (fit_generator needs their count).
    return float(np.mean([trainer.train_on_batch(x, y) for x, y in batches]))


def predict(trainer, batches):
    return np.concatenate([trainer.predict_on_batch(x).argmax(axis=1) for x in batches])


def count_params(model):
    return model.count_params()


def get_weights(model):
    """(kernel, bias) per layer in the neutral layout of weights.py, as NumPy arrays."""
    k = model.get_weights()  # [kernel, bias] per layer; kernels HWIO whatever the data format
    convs = [(hwio_to_oihw(k[i]), k[i + 1]) for i in range(0, 8, 2)]
    # Keras 2.2's Flatten moves channels last before flattening, even under channels_first,
    # so dense1's rows are in (h, w, c) order: reorder them to (c, h, w).
    return convs + [(hwc_rows_to_chw(k[8]), k[9]), (k[10], k[11])]


def set_weights(model, weights):
    weights = check(weights)
    convs = [a for kernel, bias in weights[:4] for a in (oihw_to_hwio(kernel), bias)]
    model.set_weights(convs + [chw_rows_to_hwc(weights[4][0]), weights[4][1], weights[5][0], weights[5][1]])


def export_onnx(model, path):
    import cntk as C
    import onnx
    from onnx_graph import any_batch, without_dropout
    # The CNTK graph Keras built, by CNTK's exporter: a batch of one, Dropout kept.
    C.combine(model.outputs).save(path, format=C.ModelFormat.ONNX)
    onnx.save(any_batch(without_dropout(onnx.load(path))), path)


def runtime_info():
    gpu = cnn_cntk.GPU
    return dict(version="keras {} on cntk {}".format(keras.__version__, cnn_cntk.C.__version__),
                device="gpu" if gpu else "cpu", gpu="GPU 0" if gpu else None, layout="NCHW",
                device_note=cnn_cntk.WHY_CPU, tf32_conv=gpu and nvidia_tf32(), tf32_matmul=gpu and nvidia_tf32())
