"""TensorFlow 2 without Keras: ResNet-50 written out in tf.nn ops (TensorFlow's only ResNet-50 is
Keras'), channels last, v1.5 unless told v1; the features run in a tf.function."""
from collections import OrderedDict

import numpy as np
import tensorflow as tf
from tensorflow.python.util import _pywrap_util_port  # IsMklEnabled: whether oneDNN is on

from common import SEED, TF32
from images import images_for_library
from resnet_weights import BN, BOOK_EPS, STAGES, bn_of, check, hwio_to_oihw, oihw_to_hwio

tf.config.experimental.enable_tensor_float_32_execution(TF32)


def load_data(dataset, profile):
    return images_for_library(dataset, profile, channel_first=False)  # NHWC: TensorFlow's native layout


class ConvBN(tf.Module):
    """A convolution without bias, then batch norm from its running statistics."""

    def __init__(self, cin, cout, k, stride=1, pad=0):
        super().__init__()
        fan_out = k * k * cout  # He-normal on the fan-out, as torchvision initializes
        self.kernel = tf.Variable(tf.random.normal([k, k, cin, cout], stddev=np.sqrt(2.0 / fan_out)))  # HWIO
        self.scale, self.shift = tf.Variable(tf.ones([cout])), tf.Variable(tf.zeros([cout]))
        self.mean = tf.Variable(tf.zeros([cout]), trainable=False)
        self.variance = tf.Variable(tf.ones([cout]), trainable=False)
        self.stride, self.pad, self.eps = stride, pad, BOOK_EPS

    def __call__(self, x, relu=True):
        # Explicit, symmetric padding: "SAME" would pad a stride-2 convolution more after than before.
        p = self.pad
        x = tf.nn.conv2d(x, self.kernel, self.stride, padding=[[0, 0], [p, p], [p, p], [0, 0]] if p else "VALID")
        x = tf.nn.batch_normalization(x, self.mean, self.variance, self.shift, self.scale, self.eps)
        return tf.nn.relu(x) if relu else x


class Bottleneck(tf.Module):
    def __init__(self, cin, width, stride, variant):
        super().__init__()
        self.conv1 = ConvBN(cin, width, 1, stride if variant == "v1" else 1)  # v1: the stride here
        self.conv2 = ConvBN(width, width, 3, stride if variant == "v1.5" else 1, pad=1)  # v1.5: here
        self.conv3 = ConvBN(width, 4 * width, 1)
        self.downsample = ConvBN(cin, 4 * width, 1, stride) if stride > 1 or cin != 4 * width else None

    def __call__(self, x):
        shortcut = self.downsample(x, relu=False) if self.downsample else x
        return tf.nn.relu(self.conv3(self.conv2(self.conv1(x)), relu=False) + shortcut)


class ResNet50(tf.Module):
    def __init__(self, variant="v1.5"):
        super().__init__()
        self.variant = variant
        self.conv1 = ConvBN(3, 64, 7, stride=2, pad=3)
        self.pool = dict(size=3, stride=2, pad=1)
        self.stages, cin = [], 64
        for i, (blocks, width) in enumerate(STAGES):  # [3, 4, 6, 3] blocks of width 64 ... 512
            stride = 1 if i == 0 else 2
            self.stages.append([Bottleneck(cin if b == 0 else 4 * width, width, stride if b == 0 else 1, variant)
                                for b in range(blocks)])
            cin = 4 * width

    def __call__(self, images):  # (N, 224, 224, 3)
        x = self.conv1(images)  # (N, 112, 112, 64)
        # Padding of -inf never wins; "SAME" would pad 0 before and 1 after, shifting every window.
        p = self.pool["pad"]
        x = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], constant_values=-np.inf)
        x = tf.nn.max_pool2d(x, self.pool["size"], self.pool["stride"], padding="VALID")  # (N, 56, 56, 64)
        for stage in self.stages:
            for block in stage:
                x = block(x)
        return tf.reduce_mean(x, axis=[1, 2])  # global average pooling: (N, 2048)


# zoo_model: TensorFlow without Keras ships no ResNet-50 (tf.keras.applications is Keras' row).


def create_model(variant="v1.5"):
    tf.random.set_seed(SEED)
    return ResNet50(variant)


def other_variant(model):
    """The same variables in a model of the other variant. The strides are Python numbers that a
    traced graph holds fixed, so the model is built anew rather than changed in place."""
    other = ResNet50("v1" if model.variant == "v1.5" else "v1.5")
    set_weights(other, get_weights(model))
    return other


@tf.function  # traced once per model into a graph
def features_of(model, x):
    return model(x)


def features(model, batches):
    return np.concatenate([features_of(model, x).numpy() for x in batches])


def count_params(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_variables)


def named_convs(model):
    """(the layout's name, ConvBN) for every convolution, in the layout's order."""
    yield "conv1", model.conv1
    for i, stage in enumerate(model.stages):
        for b, block in enumerate(stage):
            for part in ("conv1", "conv2", "conv3", "downsample"):
                conv = getattr(block, part)
                if conv is not None:
                    yield "layer{}.{}.{}".format(i + 1, b, "downsample.0" if part == "downsample" else part), conv


def bn_variables(conv):
    """The batch norm's variables under the layout's field names (weight, bias, running_mean, running_var)."""
    return zip(BN, (conv.scale, conv.shift, conv.mean, conv.variance))


def get_weights(model):
    out = OrderedDict()
    for name, conv in named_convs(model):
        out[name + ".weight"] = hwio_to_oihw(conv.kernel.numpy())
        for field, v in bn_variables(conv):
            out["{}.{}".format(bn_of(name), field)] = v.numpy()
    return out


def set_weights(model, weights):
    weights = check(weights)
    for name, conv in named_convs(model):
        conv.kernel.assign(oihw_to_hwio(weights[name + ".weight"]))
        for field, v in bn_variables(conv):
            v.assign(weights["{}.{}".format(bn_of(name), field)])


# load_pretrained: TensorFlow without Keras ships no ImageNet weights for ResNet-50. Another row's
# (resnet_pytorch's load_pretrained, then get_weights) load here with set_weights.


def export_onnx(model, path):
    import tf2onnx  # the ONNX project's converter of TensorFlow graphs
    spec = [tf.TensorSpec([None, 224, 224, 3], tf.float32, name="images")]  # None: any batch size
    # A dict names the output: tf2onnx calls it after the key.
    tf2onnx.convert.from_function(tf.function(lambda images: {"features": model(images)}),
                                  input_signature=spec, output_path=path)


def describe(model):
    """The function as this model computes it, read from its layers."""
    block, conv, pool = model.stages[1][0], model.conv1, model.pool
    return dict(
        variant="v1.5" if block.conv2.stride == 2 else "v1" if block.conv1.stride == 2 else "?",
        bn_eps=conv.eps,
        stem="the convolution's own padding of {}".format(conv.pad),
        pool="{0}x{0} max pooling, stride {1}, padding {2} (tf.pad with -inf: never wins), floor mode".format(
            pool["size"], pool["stride"], pool["pad"]),
        layout="NHWC",
        preprocessing="none shipped (TensorFlow's ImageNet preprocessing is Keras')",
        conv_bias="none")  # ConvBN holds no bias variable


def runtime_info():
    gpus = tf.config.list_physical_devices("GPU")
    name = tf.config.experimental.get_device_details(gpus[0]).get("device_name") if gpus else None
    build = tf.sysconfig.get_build_info()
    note = None if gpus else ("this TensorFlow is a CPU build" if not build.get("is_cuda_build")
                              else "TensorFlow's CUDA {} finds no GPU it can use".format(build.get("cuda_version")))
    return dict(version=tf.__version__, device="gpu" if gpus else "cpu", gpu=name, layout="NHWC", device_note=note,
                onednn=_pywrap_util_port.IsMklEnabled(),
                threads=tf.config.threading.get_intra_op_parallelism_threads() or "0 (all cores)",
                tf32_conv=bool(gpus) and tf.config.experimental.tensor_float_32_execution_enabled(),
                tf32_matmul=bool(gpus) and tf.config.experimental.tensor_float_32_execution_enabled())
