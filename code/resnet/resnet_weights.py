"""ResNet-50's weights in one framework-neutral layout, cut after the final average pooling.

An OrderedDict of float32 arrays under torchvision's names and in its order, without `fc`:

    conv1.weight (64, 3, 7, 7)           convolutions output-major, OIHW, without biases
    bn1.weight, bn1.bias                 batch norm's scale and shift, (C,)
    bn1.running_mean, bn1.running_var    its statistics, (C,): inference mode uses these
    layer1.0.conv1.weight ...            then four stages of 3, 4, 6 and 3 bottleneck blocks;
    layer1.0.downsample.0.weight ...     each stage's first block has a 1x1 convolution on its shortcut

Where a zoo's convolution carries a bias (Keras' applications, Chainer's first convolution), the
batch norm after it absorbs it: BN(conv(x) + b) with mean m is BN(conv(x)) with mean m - b. The
conversions between layouts (the kernels' axes, the biases) are written once, here. Python 3.6
compatible.
"""
from collections import OrderedDict

import numpy as np

STAGES = [(3, 64), (4, 128), (6, 256), (3, 512)]  # (blocks, bottleneck width); the output is 4x wider
EXPANSION = 4
N_FEATURES = 2048
BN = ("weight", "bias", "running_mean", "running_var")
# Where a downsampling block (each stage's first but the first stage's) puts its stride of 2:
# on the first 1x1 convolution (the 2015 paper, Caffe's model) or on the 3x3 one (fb.resnet.torch,
# torchvision). Both shortcuts stride their 1x1 convolution.
VARIANTS = OrderedDict([("v1", "on the first 1x1 convolution"), ("v1.5", "on the 3x3 convolution")])
BOOK_EPS = 1e-5  # the batch-norm epsilon of the book's function, on the variance


def convs(variant="v1.5"):
    """Each convolution in the layout's order: (name, batch norm's name, OIHW shape, stride, padding)."""
    check_variant(variant)
    out = [("conv1", "bn1", (64, 3, 7, 7), 2, 3)]
    cin = 64
    for stage, (blocks, width) in enumerate(STAGES):
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            name = "layer{}.{}.".format(stage + 1, block)
            out += [(name + "conv1", name + "bn1", (width, cin, 1, 1), stride if variant == "v1" else 1, 0),
                    (name + "conv2", name + "bn2", (width, width, 3, 3), stride if variant == "v1.5" else 1, 1),
                    (name + "conv3", name + "bn3", (width * EXPANSION, width, 1, 1), 1, 0)]
            if block == 0:
                out.append((name + "downsample.0", name + "downsample.1", (width * EXPANSION, cin, 1, 1), stride, 0))
            cin = width * EXPANSION
    return out


def check_variant(variant):
    if variant not in VARIANTS:
        raise ValueError("unknown ResNet-50 variant {!r}: choose one of {}".format(variant, ", ".join(VARIANTS)))
    return variant


def shapes():
    """{name: shape} of every array of the layout, in its order."""
    out = OrderedDict()
    for conv, bn, shape, _, _ in convs():
        out[conv + ".weight"] = shape
        for field in BN:
            out["{}.{}".format(bn, field)] = (shape[0],)
    return out


N_PARAMS = sum(int(np.prod(s)) for n, s in shapes().items() if not n.endswith(("running_mean", "running_var")))


class WeightsError(ValueError):
    """Weights that are not ResNet-50's in the neutral layout: the message says which array and what to do."""


def check(weights):
    """The weights as float32 arrays in the layout's order, or a WeightsError naming the first array
    that is missing, extra or of another shape."""
    want = shapes()
    missing, extra = [n for n in want if n not in weights], [n for n in weights if n not in want]
    if missing or extra:
        raise WeightsError("not ResNet-50's weights in the neutral layout: {}{}. Make them with "
                           "random_weights() or a module's get_weights(), or convert "
                           "yours to torchvision's names (without fc)".format(
                               "missing " + ", ".join(missing[:3]) if missing else "",
                               ("; " if missing else "") + "extra " + ", ".join(extra[:3]) if extra else ""))
    out = OrderedDict()
    for name, shape in want.items():
        array = np.asarray(weights[name])
        if array.shape != shape:
            raise WeightsError("{} has shape {}, the layout's is {} (OIHW kernels, output channels first): "
                               "convert it with resnet_weights' hwio_to_oihw or oihw_to_hwio".format(
                                   name, array.shape, shape))
        out[name] = array.astype(np.float32)
    return out


def random_weights(seed=0):
    """Seeded weights every framework can take, in place of ImageNet's (no weight host is reachable
    here): He-normal kernels, and batch norms whose statistics are not the identity, so that a row
    that ignores them or the epsilon, or mixes scale and shift, computes something else. Each block's
    last batch norm is scaled down (0.2) so that sixteen residual sums keep the features near 1."""
    rng = np.random.RandomState(seed)
    out = OrderedDict()
    for conv, bn, shape, _, _ in convs():
        fan_in = shape[1] * shape[2] * shape[3]
        out[conv + ".weight"] = rng.normal(0, np.sqrt(2.0 / fan_in), shape).astype(np.float32)
        scale = 0.2 if conv.endswith("conv3") else 1.0
        c = shape[0]
        out[bn + ".weight"] = (scale * rng.uniform(0.5, 1.5, c)).astype(np.float32)
        out[bn + ".bias"] = rng.normal(0, 0.1, c).astype(np.float32)
        out[bn + ".running_mean"] = rng.normal(0, 0.1, c).astype(np.float32)
        out[bn + ".running_var"] = rng.uniform(0.5, 2.0, c).astype(np.float32)
    return out


def oihw_to_hwio(kernel):
    """A kernel as channels-last frameworks hold it (TensorFlow, Keras, Flax: height, width, in, out)."""
    return np.ascontiguousarray(np.asarray(kernel).transpose(2, 3, 1, 0))


def hwio_to_oihw(kernel):
    return np.ascontiguousarray(np.asarray(kernel).transpose(3, 2, 0, 1))


def fold_bias(weights, conv, bias):
    """A zoo's convolution bias moved into the batch norm after it (the layout has no conv biases):
    the same function, with the norm's running mean less the bias."""
    bn = bn_of(conv)
    weights[bn + ".running_mean"] = (np.asarray(weights[bn + ".running_mean"]) - np.asarray(bias)).astype(np.float32)
    return weights


def bn_of(conv):
    return {c: b for c, b, _, _, _ in convs()}[conv]


def save(path, weights):
    """Write the weights to an .npz file, atomically (a half-written file never has the final name)."""
    import os
    import tempfile
    check(weights)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".npz.tmp")
    with os.fdopen(fd, "wb") as f:
        np.savez(f, **weights)
    os.replace(tmp, path)


def load(path):
    """The weights of an .npz file in the layout's order; a corrupt or foreign file is a WeightsError
    that says what to do."""
    try:
        with np.load(path, allow_pickle=False) as f:
            found = OrderedDict((name, f[name]) for name in f.files)
    except Exception as e:  # numpy raises what its parser meets: BadZipFile, ValueError, TokenError, ...
        raise WeightsError("{} is not a readable weights file ({}): delete it and write it again with "
                           "resnet_weights.save()".format(path, e))
    return check(found)
