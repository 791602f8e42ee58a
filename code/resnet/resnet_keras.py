"""Keras 3 (TensorFlow, JAX or PyTorch backend): keras.applications.ResNet50 cut after its average
pooling, the 2015 paper's v1 as Keras ships it, with the book's batch-norm epsilon.

The backend comes from KERAS_BACKEND, read once when keras is first imported; the benchmark runs
this module once per backend, each in a fresh process.
"""
from collections import OrderedDict

import keras
import numpy as np
from keras import layers

from common import TF32
from images import images_for_library
from resnet_weights import BN, BOOK_EPS, check, convs, fold_bias, hwio_to_oihw, oihw_to_hwio


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


def load_data(dataset, profile):
    return images_for_library(dataset, profile, channel_first=False)  # Keras: NHWC


def zoo_model():
    # v1 (stride 2 on each downsampling block's first 1x1 conv), batch-norm eps 1.001e-5, biases on
    # every conv; weights=None builds it without downloading ImageNet's weights.
    return keras.applications.ResNet50(weights=None, include_top=False, pooling="avg",
                                       input_shape=(224, 224, 3))


def create_model():
    model = zoo_model()
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.epsilon = BOOK_EPS  # the book's 1e-5 (Caffe's); Keras' applications use 1.001e-5
    return model


def other_variant(model):
    """v1 -> v1.5: each downsampling block's stride of 2 moves from its first 1x1 conv to its 3x3 conv,
    in a copy of the model with the same weights. Setting `strides` on the built layers is not enough:
    a 'same' 3x3 conv of stride 2 pads 0 above and 1 below (TensorFlow's rule, on every backend), the
    book's v1.5 pads 1 on each side; Keras has no explicit padding, so a ZeroPadding2D goes before it."""
    first, second = (["conv{}_block1_{}_conv".format(stage, i) for stage in (3, 4, 5)] for i in (1, 2))

    def clone(layer):  # a new layer from the old one's config, with the stride moved
        config = layer.get_config()
        if layer.name in first:
            config.update(strides=(1, 1))
        if layer.name in second:
            config.update(strides=(2, 2), padding="valid")
        return layer.__class__.from_config(config)

    def call(layer, x, **kwargs):
        if layer.name in second:  # padded as the book pads it: 1 on each side
            x = layers.ZeroPadding2D(1, name=layer.name.replace("_conv", "_pad"))(x)
        return layer(x, **kwargs)
    other = keras.models.clone_model(model, clone_function=clone, call_function=call)
    other.set_weights(model.get_weights())  # the padding layers hold none: the same order
    return other


def features(model, batches):
    # predict_on_batch runs the model in inference mode: batch norm uses its running statistics.
    return np.concatenate([np.asarray(model.predict_on_batch(x)) for x in batches]).astype(np.float32)


def count_params(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)  # model.count_params() adds BN's statistics


def keras_name(conv):
    """The Keras layers of a convolution in the neutral layout: layer1.0.conv2 is conv2_block1_2_conv and
    conv2_block1_2_bn; a block's shortcut (downsample) is its _0; the stem is conv1_conv and conv1_bn."""
    if conv == "conv1":
        return "conv1"
    layer, block, part = conv.split(".")[:3]
    return "conv{}_block{}_{}".format(int(layer[-1]) + 1, int(block) + 1, "0" if part == "downsample" else part[-1])


def get_weights(model):
    out = OrderedDict()
    for conv, bn, _, _, _ in convs():
        kernel, bias = model.get_layer(keras_name(conv) + "_conv").get_weights()
        out[conv + ".weight"] = hwio_to_oihw(kernel)  # Keras kernels are HWIO
        statistics = model.get_layer(keras_name(conv) + "_bn").get_weights()  # gamma, beta, mean, variance
        out.update(("{}.{}".format(bn, field), array) for field, array in zip(BN, statistics))
        fold_bias(out, conv, bias)  # the layout has no conv biases: the batch norm's mean absorbs it
    return out


def set_weights(model, weights):
    weights = check(weights)
    for conv, bn, shape, _, _ in convs():
        bias = np.zeros(shape[0], np.float32)  # the layout has no conv biases
        model.get_layer(keras_name(conv) + "_conv").set_weights([oihw_to_hwio(weights[conv + ".weight"]), bias])
        model.get_layer(keras_name(conv) + "_bn").set_weights([weights["{}.{}".format(bn, f)] for f in BN])


def load_pretrained(model):
    # Keras' own ImageNet weights (converted from the 2015 paper's Caffe model): a download of 94 MB.
    pretrained = keras.applications.ResNet50(weights="imagenet", include_top=False, pooling="avg",
                                             input_shape=(224, 224, 3))
    model.set_weights(pretrained.get_weights())
    return model


def export_onnx(model, path):
    import os
    import onnx
    # The backend's exporter: tf2onnx (TensorFlow), jax2onnx (JAX), torch.onnx (torch).
    spec = keras.InputSpec(shape=(None, 224, 224, 3), dtype="float32", name="images")  # None: any batch
    model.export(path, format="onnx", verbose=False, input_signature=[spec])
    proto = onnx.load(path)  # with the weights jax2onnx writes beside it (path + ".data")
    named = proto.graph.output[0].name  # each exporter names it its own way: Identity:0, v_0, a number
    for node in proto.graph.node:
        node.output[:] = ["features" if name == named else name for name in node.output]
    proto.graph.output[0].name = "features"
    onnx.save(proto, path)  # one file, the weights inside
    if os.path.exists(path + ".data"):
        os.remove(path + ".data")


def describe(model):
    """What the installed model does, read from its layers and from Keras' preprocess_input run on a probe."""
    stem_pad, stem = model.get_layer("conv1_pad").padding, model.get_layer("conv1_conv")
    pool_pad, pool = model.get_layer("pool1_pad").padding, model.get_layer("pool1_pool")
    biased = [conv for conv, _, _, _, _ in convs() if model.get_layer(keras_name(conv) + "_conv").use_bias]
    return dict(
        variant="v1" if model.get_layer("conv3_block1_1_conv").strides == (2, 2) else "v1.5",
        bn_eps=model.get_layer("conv1_bn").epsilon,
        stem="zero padding layer of {}, then {} {}x{} convolution".format(
            stem_pad[0][0], "an unpadded" if stem.padding == "valid" else "a '{}'".format(stem.padding),
            *stem.kernel_size),
        pool="{}x{}, stride {}, padding '{}' (floor), after a ZeroPadding2D of {}: zeros, which never win after "
             "the ReLU".format(*pool.pool_size, pool.strides[0], pool.padding, pool_pad[0][0]),
        layout="NHWC" if model.input_shape[-1] == 3 else "NCHW",
        preprocessing=preprocessing(),
        conv_bias="every convolution" if len(biased) == len(convs()) else ", ".join(biased) or "none")


def preprocessing():
    """What keras.applications.resnet.preprocess_input does, measured on a black pixel and an (R, G, B) =
    (1, 2, 3) one."""
    black, step = np.asarray(keras.applications.resnet.preprocess_input(np.array([[0, 0, 0], [1, 2, 3]], "float32")))
    step = step - black
    order = {(3, 2, 1): "RGB -> BGR", (1, 2, 3): "channels kept"}.get(tuple(np.abs(step).round(6)), str(step))
    scale = np.abs(step).sum() / 6
    return "{}, minus {} per channel (ImageNet's mean, in that order), {}".format(
        order, tuple(round(float(-v), 3) for v in black), "no scaling" if scale == 1 else "times {}".format(scale))


def runtime_info():
    return dict(version=keras.__version__, backend=keras.backend.backend(),
                backend_version=BACKEND_VERSION, device="gpu" if GPU else "cpu", gpu=GPU,
                device_note=None if GPU else "the {} backend finds no GPU ({})".format(keras.backend.backend(), BUILD),
                layout="NHWC", tf32_conv=bool(GPU) and TF32, tf32_matmul=bool(GPU) and TF32)
