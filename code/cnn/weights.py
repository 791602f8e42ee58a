"""The framework-neutral weight layout that every module's get_weights / set_weights speaks.

The model's weights are a list of six (kernel, bias) pairs of float32 NumPy arrays, one pair per
layer that has weights, in the order of the forward pass:

    conv1 (50, 3, 3, 3)    conv2 (50, 50, 3, 3)    conv3 (100, 50, 3, 3)    conv4 (100, 100, 3, 3)
    dense1 (6400, 512)     dense2 (512, 10)

- a convolution kernel is out x in x height x width (OIHW, PyTorch's and Caffe's layout);
- a dense kernel is in x out, so a layer computes `x @ kernel + bias`;
- dense1's 6,400 inputs are the last pooling's output flattened in channel-height-width order,
  as an NCHW framework flattens it (an NHWC framework flattens height-width-channel instead);
- a bias is a vector of the layer's outputs.

Python 3.6 compatible: every framework's environment imports this.
"""
from collections import OrderedDict

import numpy as np

LAYERS = OrderedDict([  # name -> kernel shape in the neutral layout
    ("conv1", (50, 3, 3, 3)), ("conv2", (50, 50, 3, 3)),
    ("conv3", (100, 50, 3, 3)), ("conv4", (100, 100, 3, 3)),
    ("dense1", (100 * 8 * 8, 512)), ("dense2", (512, 10)),
])
FLAT = (100, 8, 8)  # the shape that dense1's inputs are flattened from, channels first


def oihw_to_hwio(kernel):
    """A convolution kernel for TensorFlow, Keras and Flax: height, width, in, out."""
    return np.transpose(kernel, (2, 3, 1, 0))


def hwio_to_oihw(kernel):
    return np.transpose(kernel, (3, 2, 0, 1))


def chw_rows_to_hwc(kernel):
    """dense1's rows reordered for a framework that flattens channels-last (NHWC) activations."""
    c, h, w = FLAT
    return kernel.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(c * h * w, -1)


def hwc_rows_to_chw(kernel):
    c, h, w = FLAT
    return kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(c * h * w, -1)


def n_out(name):
    shape = LAYERS[name]
    return shape[0] if name.startswith("conv") else shape[1]


def check(weights):
    """The pairs as float32 arrays, with a clear error where a shape is not the layout's."""
    if len(weights) != len(LAYERS):
        raise ValueError("expected {} (kernel, bias) pairs, got {}".format(len(LAYERS), len(weights)))
    out = []
    for (name, shape), (kernel, bias) in zip(LAYERS.items(), weights):
        kernel, bias = np.asarray(kernel, np.float32), np.asarray(bias, np.float32)
        if kernel.shape != shape or bias.shape != (n_out(name),):
            raise ValueError("{}: kernel {} and bias {} do not fit the neutral layout ({} and {}); "
                             "see code/weights.py".format(name, kernel.shape, bias.shape, shape, (n_out(name),)))
        out.append((kernel, bias))
    return out


def random_weights(seed=0):
    """Glorot-uniform kernels and small non-zero biases (so a lost bias shows), from one seed."""
    rng = np.random.RandomState(seed)
    weights = []
    for name, shape in LAYERS.items():
        fan_in, fan_out = (shape[1] * 9, shape[0] * 9) if name.startswith("conv") else shape
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        weights.append((rng.uniform(-limit, limit, shape).astype(np.float32),
                        rng.uniform(-0.1, 0.1, n_out(name)).astype(np.float32)))
    return weights


def save(path, weights):
    """One .npz file (conv1.kernel, conv1.bias, ...) that any framework's set_weights can take."""
    arrays = {}
    for name, (kernel, bias) in zip(LAYERS, check(weights)):
        arrays[name + ".kernel"], arrays[name + ".bias"] = kernel, bias
    np.savez(path, **arrays)


def load(path):
    with np.load(path, allow_pickle=False) as f:
        return check([(f[name + ".kernel"], f[name + ".bias"]) for name in LAYERS])
