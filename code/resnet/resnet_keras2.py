"""Keras 2.2.4 on the CNTK backend: keras.applications.ResNet50 (keras_applications 1.0.8), cut after its
average pooling. Its ResNet-50 is the 2015 Caffe model's: v1 (the stride on the first 1x1 convolution),
a bias on every convolution, and Keras' default batch-norm epsilon, 1e-3."""
import os
from collections import OrderedDict

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "cntk")  # read once, when keras is imported
import keras  # noqa: E402
from keras import backend as K  # noqa: E402

import resnet_cntk  # noqa: E402  the same CNTK: its check of the GPU picks the device for both
from common import nvidia_tf32  # noqa: E402
from images import images_for_library  # noqa: E402
from resnet_weights import BN, BOOK_EPS, check, convs, fold_bias, hwio_to_oihw, oihw_to_hwio  # noqa: E402

K.set_image_data_format("channels_first")  # CNTK's own layout; Keras' default is channels_last
# Inference only: without this, Keras on CNTK builds both batch norms (batch and running statistics) and
# picks one by a learning-phase constant of 1, which the ONNX file would keep.
K.set_learning_phase(0)


def load_data(dataset, profile):
    return images_for_library(dataset, profile, channel_first=True)


def zoo_model():
    return keras.applications.ResNet50(weights=None, include_top=False, pooling="avg", input_shape=(3, 224, 224))


def rebuilt(model, change):
    """The model built anew from its configuration after `change(layer name, layer config)`, same weights."""
    config = model.get_config()
    for layer in config["layers"]:
        change(layer["name"], layer["config"])
    new = keras.models.Model.from_config(config)
    new.set_weights(model.get_weights())
    return new


def with_book_eps(name, config):
    if "epsilon" in config:
        config["epsilon"] = BOOK_EPS  # keras_applications 1.0.8 keeps Keras' default, 1e-3


def create_model():
    """The book's function of the zoo's variant (v1): the zoo's model with batch norms of epsilon 1e-5."""
    return rebuilt(zoo_model(), with_book_eps)


def stride_moved(name, config):
    """Each downsampling block's stride moved between its first 1x1 (2a) and its 3x3 (2b) convolution."""
    if name[:4] in ("res3", "res4", "res5") and name[4] == "a" and name.endswith(("2a", "2b")):
        config["strides"] = (1, 1) if config["strides"] == (2, 2) else (2, 2)


def other_variant(model):
    # The 3x3's padding="same" is CNTK's centred auto padding here: for a stride of 2 on an even size, one
    # zero on each side, as the book's. (TensorFlow's "same" puts it after the image, a shifted grid.)
    return rebuilt(model, stride_moved)


def features(model, batches):
    return np.concatenate([model.predict_on_batch(x) for x in batches]).astype(np.float32)


def count_params(model):
    return keras.utils.layer_utils.count_params(model.trainable_weights)  # as model.summary() counts them


def zoo_names(conv):
    """The zoo's (convolution, batch norm) layer names of a layout convolution: layer2.0.conv1 is res3a_branch2a."""
    if conv == "conv1":
        return "conv1", "bn_conv1"
    layer, block, part = conv.split(".", 2)
    base = "{}{}_branch{}".format(int(layer[5:]) + 1, "abcdef"[int(block)],
                                  {"conv1": "2a", "conv2": "2b", "conv3": "2c", "downsample.0": "1"}[part])
    return "res" + base, "bn" + base


def get_weights(model):
    out = OrderedDict()
    for conv, bn, _, _, _ in convs():
        conv_layer, norm = (model.get_layer(name) for name in zoo_names(conv))
        kernel, bias = conv_layer.get_weights()  # HWIO whatever the data format
        out[conv + ".weight"] = hwio_to_oihw(kernel)
        out.update(("{}.{}".format(bn, field), value) for field, value in zip(BN, norm.get_weights()))
        fold_bias(out, conv, bias)  # gamma, beta, moving mean, moving variance, less the bias
    return out


def set_weights(model, weights):
    weights = check(weights)
    for conv, bn, shape, _, _ in convs():
        conv_layer, norm = (model.get_layer(name) for name in zoo_names(conv))
        conv_layer.set_weights([oihw_to_hwio(weights[conv + ".weight"]), np.zeros(shape[0], np.float32)])
        norm.set_weights([weights["{}.{}".format(bn, field)] for field in BN])


def load_pretrained(model):
    """Keras' ImageNet weights (converted from the 2015 Caffe model; BGR pixels less ImageNet's mean),
    downloaded once into ~/.keras/models, copied into `model`: the same layers in the same order."""
    pretrained = keras.applications.ResNet50(weights="imagenet", include_top=False, pooling="avg",
                                             input_shape=model.input_shape[1:])
    model.set_weights(pretrained.get_weights())
    return model


def export_onnx(model, path):
    import cntk as C
    import onnx
    from onnx_graph import any_batch
    C.combine(model.outputs).save(path, format=C.ModelFormat.ONNX)  # the CNTK graph Keras built, a batch of one
    proto = any_batch(onnx.load(path))
    weights = {t.name for t in proto.graph.initializer}
    images = next(i for i in proto.graph.input if i.name not in weights)
    for node in proto.graph.node:  # Keras' names: input_1 and the pooling's output
        node.input[:] = ["images" if name == images.name else name for name in node.input]
    images.name = "images"
    proto.graph.node[-1].output[0] = proto.graph.output[0].name = "features"
    onnx.save(proto, path)


def preprocessing():
    """What keras.applications.resnet50.preprocess_input does to pixels, read from a probe."""
    probe = np.array([[[[0.0]], [[0.0]], [[0.0]]], [[[255.0]], [[0.0]], [[0.0]]]], np.float32)  # black, red
    out = keras.applications.resnet50.preprocess_input(probe.copy())[:, :, 0, 0]
    red = int(np.argmax(np.abs(out[1] - out[0])))
    order = "B, G, R" if red == 2 else "R, G, B"
    return "{}, less the mean {} of {}, times {:g} (pixels in [0, 255])".format(
        "RGB to BGR" if red == 2 else "RGB kept", [round(-float(v), 3) for v in out[0]], order,
        float(out[1, red] - out[0, red]) / 255)


def describe(model):
    pad, conv1, pool_pad = model.get_layer("conv1_pad"), model.get_layer("conv1"), model.get_layer("pool1_pad")
    pool = model.layers[model.layers.index(pool_pad) + 1]
    return dict(variant="v1" if model.get_layer("res3a_branch2a").strides == (2, 2) else "v1.5",
                bn_eps=model.get_layer("bn_conv1").epsilon,
                stem="zero padding layer of {}, then an unpadded convolution ({})".format(
                    pad.padding[0][0], conv1.padding),
                pool="{} {}x{}, stride {}, {}, after a ZeroPadding2D of {} (zeros: after a ReLU they never win)".format(
                    type(pool).__name__, *(pool.pool_size + pool.strides[:1] + (pool.padding, pool_pad.padding[0][0]))),
                layout="NCHW" if K.image_data_format() == "channels_first" else "NHWC",
                preprocessing=preprocessing(),
                conv_bias=biased([c for c, _, _, _, _ in convs() if model.get_layer(zoo_names(c)[0]).use_bias]))


def biased(names):
    return "every convolution" if len(names) == len(convs()) else ", ".join(names) or "none"


def runtime_info():
    gpu = resnet_cntk.GPU
    return dict(version="keras {} on cntk {}".format(keras.__version__, resnet_cntk.C.__version__),
                device="gpu" if gpu else "cpu", gpu="GPU 0" if gpu else None, layout="NCHW",
                device_note=resnet_cntk.WHY_CPU, tf32_conv=gpu and nvidia_tf32(), tf32_matmul=gpu and nvidia_tf32())
