"""JAX with Flax NNX: ResNet-50 written by hand in nnx layers (Flax ships none), v1.5 as torchvision's,
under torchvision's names, cut after the average pooling; the features compiled by nnx.jit."""
import importlib.util
from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np
import flax
from flax import nnx

from common import SEED, TF32
from images import images_for_library
from resnet_weights import BOOK_EPS, EXPANSION, check, check_variant, hwio_to_oihw, oihw_to_hwio

# JAX's default matmul and conv precision on NVIDIA GPUs is TF32; "highest" keeps full float32.
jax.config.update("jax_default_matmul_precision", None if TF32 else "highest")
# The stem's max pooling, 3x3 of stride 2, after one pixel of -inf on each side: padding that never wins
# (jnp.pad, not max_pool's padding=((1, 1), (1, 1)), which jax2onnx 0.13 cannot export: "SAME" or "VALID" only).
POOL = dict(window_shape=(3, 3), strides=(2, 2))
POOL_PAD = ((0, 0), (1, 1), (1, 1), (0, 0))  # N, H, W, C


def load_data(dataset, profile):
    return images_for_library(dataset, profile, channel_first=False)  # Flax: NHWC


# No zoo_model: Flax ships no ResNet-50 (its ImageNet example is Linen code to copy, not a module).


def conv(cin, cout, kernel, stride, rngs):
    pad = kernel // 2  # explicit, as torchvision pads: 3 for the 7x7, 1 for the 3x3 ("SAME" differs at stride 2)
    return nnx.Conv(cin, cout, (kernel, kernel), strides=stride, padding=((pad, pad), (pad, pad)),
                    use_bias=False, rngs=rngs)


def norm(channels, rngs):
    return nnx.BatchNorm(channels, use_running_average=True, epsilon=BOOK_EPS, rngs=rngs)  # inference mode


class Bottleneck(nnx.Module):
    """1x1, 3x3, 1x1 convolutions, each with batch norm, and the shortcut; the stride on the 3x3 (v1.5)
    or on the first 1x1 (v1)."""
    def __init__(self, cin, width, stride, variant, rngs):
        self.conv1 = conv(cin, width, 1, stride if variant == "v1" else 1, rngs)
        self.bn1 = norm(width, rngs)
        self.conv2 = conv(width, width, 3, stride if variant == "v1.5" else 1, rngs)
        self.bn2 = norm(width, rngs)
        self.conv3 = conv(width, width * EXPANSION, 1, 1, rngs)
        self.bn3 = norm(width * EXPANSION, rngs)
        reshaped = stride != 1 or cin != width * EXPANSION  # else the shortcut is the block's input
        self.downsample = nnx.List([conv(cin, width * EXPANSION, 1, stride, rngs),
                                    norm(width * EXPANSION, rngs)]) if reshaped else None

    def __call__(self, x):
        y = nnx.relu(self.bn1(self.conv1(x)))
        y = nnx.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        shortcut = x if self.downsample is None else self.downsample[1](self.downsample[0](x))
        return nnx.relu(y + shortcut)


def stage(cin, width, blocks, stride, variant, rngs):
    return nnx.List([Bottleneck(cin if i == 0 else width * EXPANSION, width, stride if i == 0 else 1, variant, rngs)
                     for i in range(blocks)])


class ResNet50(nnx.Module):
    """torchvision's ResNet-50 without fc, its modules under the same names (conv1, bn1, layer1.0.conv1, ...)."""
    def __init__(self, variant, rngs):
        self.variant = check_variant(variant)
        self.conv1, self.bn1 = conv(3, 64, 7, 2, rngs), norm(64, rngs)
        self.layer1 = stage(64, 64, 3, 1, variant, rngs)
        self.layer2 = stage(256, 128, 4, 2, variant, rngs)
        self.layer3 = stage(512, 256, 6, 2, variant, rngs)
        self.layer4 = stage(1024, 512, 3, 2, variant, rngs)

    def __call__(self, x):
        x = nnx.relu(self.bn1(self.conv1(x)))  # (N, 112, 112, 64)
        x = nnx.max_pool(jnp.pad(x, POOL_PAD, constant_values=-jnp.inf), **POOL)  # (N, 56, 56, 64)
        for block in [*self.layer1, *self.layer2, *self.layer3, *self.layer4]:
            x = block(x)  # ... (N, 7, 7, 2048)
        return x.mean(axis=(1, 2))  # (N, 2048)


def create_model():
    return ResNet50("v1.5", nnx.Rngs(SEED))  # Flax's own init: LeCun-normal kernels, BN's identity


def other_variant(model):
    """v1.5 <-> v1: the model built for the other variant, the same weights moved into it."""
    other = ResNet50("v1" if model.variant == "v1.5" else "v1.5", nnx.Rngs(SEED))
    nnx.update(other, nnx.state(model))
    return other


@nnx.jit  # traced and compiled by XLA on the first call: the first batch pays for it
def features_step(model, x):
    return model(x)


def features(model, batches):
    return np.concatenate([jax.device_get(features_step(model, x)) for x in batches])


def count_params(model):
    return sum(p.size for p in jax.tree_util.tree_leaves(nnx.state(model, nnx.Param)))


FIELDS = dict(kernel="weight", scale="weight", bias="bias", mean="running_mean", var="running_var")  # Flax's: layout's


def layout_name(path):
    """A variable's path in the model, ('layer1', 0, 'downsample', 1, 'mean'), as the layout names it."""
    return ".".join(str(p) for p in path[:-1]) + "." + FIELDS[path[-1]]


def get_weights(model):
    out = OrderedDict()
    for path, variable in nnx.to_flat_state(nnx.state(model)):
        array = np.asarray(variable[...])
        out[layout_name(path)] = hwio_to_oihw(array) if path[-1] == "kernel" else array  # Flax kernels are HWIO
    return check(out)  # in the layout's order


def set_weights(model, weights):
    weights = check(weights)
    for path, variable in nnx.to_flat_state(nnx.state(model)):  # the model's own variables
        array = weights[layout_name(path)]
        variable[...] = jnp.asarray(oihw_to_hwio(array) if path[-1] == "kernel" else array)


# No load_pretrained: Flax ships no ImageNet weights for a ResNet-50. torchvision's IMAGENET1K_V1 (the same
# v1.5 function, under the same names) would go in with set_weights, from its state dict less fc.


def export_onnx(model, path):
    from unittest import mock
    import onnx
    from flax.nnx.nn import linear
    from jax2onnx import to_onnx  # traces the module's JAX operations into ONNX
    # jax2onnx binds nnx.Conv's explicit padding as its primitive's parameter, which JAX wants hashable:
    # Flax canonicalizes it into a list, so a tuple of the same pairs is given instead.
    canonical = linear.canonicalize_padding
    with mock.patch.object(linear, "canonicalize_padding", lambda padding, rank: tuple(canonical(padding, rank))):
        proto = to_onnx(model, [("batch", 224, 224, 3)], input_names=["images"], output_names=["features"])
    # Its layout pass keeps activations NCHW between convolutions but leaves their shapes, recorded NHWC, in
    # value_info: ONNX Runtime refuses the file ("Incompatible dimensions" at an Add) unless they go.
    del proto.graph.value_info[:]
    onnx.save(proto, path)  # one file, the weights inside


def describe(model):
    """What the model computes, read from its layers and the pooling's arguments."""
    block, stem = model.layer2[0], model.conv1
    biased = [".".join(map(str, path)) for path, m in nnx.iter_modules(model) if isinstance(m, nnx.Conv) and m.use_bias]
    return dict(
        variant="v1" if block.conv1.strides == 2 else "v1.5" if block.conv2.strides == 2 else "?",
        bn_eps=model.bn1.epsilon,
        stem="the convolution's own padding of {}".format(stem.padding[0][0]),
        pool="{}x{}, stride {}, after a padding of {} (-inf: never wins), floor mode".format(
            *POOL["window_shape"], POOL["strides"][0], POOL_PAD[1][0]),
        layout="NHWC",  # Flax's convolutions are channels-last
        preprocessing="none shipped",
        conv_bias=", ".join(biased) or "none")


def no_gpu_reason():
    try:
        jax.devices("gpu")
        return None
    except RuntimeError:  # JAX's own words name backends and platforms; the reason, plainly:
        plugin = any(importlib.util.find_spec(n) for n in ("jax_cuda12_plugin", "jax_cuda13_plugin"))
        return ("JAX's CUDA plugin finds no GPU it can use" if plugin
                else "this jax has no CUDA plugin, so it runs on the CPU (jax[cuda12] installs one)")


def runtime_info():
    dev = jax.devices()[0]
    gpu = dev.platform == "gpu"
    return dict(version="jax {}, flax {}".format(jax.__version__, flax.__version__),
                device="gpu" if gpu else "cpu", gpu=dev.device_kind if gpu else None,
                device_note=None if gpu else no_gpu_reason(),
                layout="NHWC", tf32_conv=gpu and TF32, tf32_matmul=gpu and TF32)
