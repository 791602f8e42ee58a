"""ResNet-50's features in NumPy float64: the function every row of part III is checked against.

    features = forward(weights, images, variant="v1.5")   # images NCHW, preprocessed; -> (N, 2048)

The stem: a 7x7 convolution of stride 2 with 3 pixels of zero padding, batch norm, ReLU, a 3x3 max
pooling of stride 2 with one pixel of padding that never wins (-inf). Then 16 bottleneck blocks
(1x1, 3x3, 1x1 convolutions, each with batch norm; ReLU after the first two and after the sum with
the shortcut), and the mean over the last 7x7 positions. Batch norm in inference mode:
(x - running_mean) / sqrt(running_var + eps) * weight + bias. Python 3.6 compatible.
"""
import numpy as np

from resnet_weights import BOOK_EPS, STAGES, check, check_variant, convs


def conv2d(x, kernel, stride, pad):
    """x (N, C, H, W), kernel (O, C, k, k) -> (N, O, H', W'), zero padding, as one matrix product."""
    n, c, h, w = x.shape
    o, _, k, _ = kernel.shape
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    h_out, w_out = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    if k == 1:
        cols = x[:, :, ::stride, ::stride][:, :, :h_out, :w_out].transpose(0, 2, 3, 1).reshape(-1, c)
        return (cols @ kernel.reshape(o, c).T).reshape(n, h_out, w_out, o).transpose(0, 3, 1, 2)
    sn, sc, sh, sw = x.strides
    windows = np.lib.stride_tricks.as_strided(
        x, (n, h_out, w_out, c, k, k), (sn, sh * stride, sw * stride, sc, sh, sw), writeable=False)
    out = windows.reshape(n * h_out * w_out, c * k * k) @ kernel.reshape(o, -1).T
    return out.reshape(n, h_out, w_out, o).transpose(0, 3, 1, 2)


def batch_norm(x, weights, name, eps):
    shape = (1, -1, 1, 1)
    scale = weights[name + ".weight"] / np.sqrt(weights[name + ".running_var"] + eps)
    return (x - weights[name + ".running_mean"].reshape(shape)) * scale.reshape(shape) + weights[name + ".bias"].reshape(shape)


def max_pool(x, k=3, stride=2, pad=1):
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-np.inf)
    h_out, w_out = (x.shape[2] - k) // stride + 1, (x.shape[3] - k) // stride + 1
    out = np.full(x.shape[:2] + (h_out, w_out), -np.inf)
    for i in range(k):
        for j in range(k):
            out = np.maximum(out, x[:, :, i:i + stride * h_out:stride, j:j + stride * w_out:stride])
    return out


def forward(weights, images, variant="v1.5", eps=BOOK_EPS):
    """The features of `images` (N, 3, 224, 224), float64 throughout: (N, 2048)."""
    w = {name: np.asarray(a, np.float64) for name, a in check(weights).items()}
    layers = {conv: (bn, stride, pad) for conv, bn, _, stride, pad in convs(check_variant(variant))}

    def conv_bn(x, conv, relu=True):
        bn, stride, pad = layers[conv]
        y = batch_norm(conv2d(x, w[conv + ".weight"], stride, pad), w, bn, eps)
        return np.maximum(y, 0) if relu else y

    x = max_pool(conv_bn(np.asarray(images, np.float64), "conv1"))
    for stage, (blocks, _) in enumerate(STAGES):
        for block in range(blocks):
            name = "layer{}.{}.".format(stage + 1, block)
            shortcut = conv_bn(x, name + "downsample.0", relu=False) if block == 0 else x
            y = conv_bn(conv_bn(x, name + "conv1"), name + "conv2")
            x = np.maximum(conv_bn(y, name + "conv3", relu=False) + shortcut, 0)
    return x.mean(axis=(2, 3))


def flops(variant="v1.5", size=224):
    """Floating-point operations of one image's features, counted from the shapes: 2 per
    multiply-add of every convolution (batch norm, ReLU, pooling and the sums add under 1%)."""
    total, block_in, h = 0, size, size
    for conv, _, (o, c, k, _), stride, pad in convs(variant):
        if conv.endswith((".conv1", "downsample.0")):
            h = block_in  # both read the block's input; conv2 and conv3 the convolution before
        h = (h + 2 * pad - k) // stride + 1
        total += 2 * o * c * k * k * h * h
        if conv == "conv1":
            h = (h + 2 - 3) // 2 + 1  # the stem's max pooling
        if conv == "conv1" or conv.endswith("downsample.0") or (conv.endswith("conv3") and not conv.split(".")[1] == "0"):
            block_in = h
    return total
