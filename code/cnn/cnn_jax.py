"""JAX with Flax NNX (the model) and Optax (the optimizer); the train step compiled by nnx.jit."""
import importlib.util
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import flax
from flax import nnx

from common import LR, MOMENTUM, N_CLASSES, SEED, TF32
from datasets import cifar_for_library
from weights import check, chw_rows_to_hwc, hwc_rows_to_chw, hwio_to_oihw, oihw_to_hwio

# JAX's default matmul and conv precision on NVIDIA GPUs is TF32; "highest" keeps full float32.
jax.config.update("jax_default_matmul_precision", None if TF32 else "highest")


def load_data(dataset, profile):
    return cifar_for_library(dataset, profile, channel_first=False, one_hot=False)  # Flax: NHWC


class CNN(nnx.Module):
    def __init__(self, rngs):
        glorot = nnx.initializers.glorot_uniform()  # Flax's default is LeCun-normal
        conv = partial(nnx.Conv, kernel_size=(3, 3), padding="SAME", kernel_init=glorot, rngs=rngs)
        self.conv1, self.conv2 = conv(3, 50), conv(50, 50)
        self.conv3, self.conv4 = conv(50, 100), conv(100, 100)
        self.dense1 = nnx.Linear(8 * 8 * 100, 512, kernel_init=glorot, rngs=rngs)
        self.dense2 = nnx.Linear(512, N_CLASSES, kernel_init=glorot, rngs=rngs)
        self.drop1, self.drop2 = nnx.Dropout(0.25, rngs=rngs), nnx.Dropout(0.25, rngs=rngs)
        self.drop3 = nnx.Dropout(0.5, rngs=rngs)

    def __call__(self, x):
        x = nnx.relu(self.conv2(nnx.relu(self.conv1(x))))
        x = self.drop1(nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2)))
        x = nnx.relu(self.conv4(nnx.relu(self.conv3(x))))
        x = self.drop2(nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2)))
        x = x.reshape(x.shape[0], -1)  # (N, 8, 8, 100) -> (N, 6400)
        x = self.drop3(nnx.relu(self.dense1(x)))
        return self.dense2(x)  # logits


def create_model():
    return CNN(nnx.Rngs(SEED))  # explicit keys: one default stream, for params and dropout alike


def init_model(model):
    # optax.sgd's momentum is classic (trace = g + 0.9 trace; update = -lr * trace).
    return model, nnx.Optimizer(model, optax.sgd(LR, momentum=MOMENTUM), wrt=nnx.Param)


def loss_fn(model, x, y):
    logits = model(x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


@nnx.jit  # traced and compiled by XLA on the first call: the first epoch pays for it
def train_step(model, optimizer, x, y):
    loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
    optimizer.update(model, grads)  # updates model's parameters in place
    return loss


def train_epoch(trainer, batches):
    model, optimizer = trainer
    model.train()  # dropout on
    losses = [train_step(model, optimizer, x, y) for x, y in batches]
    return float(np.mean(jax.device_get(losses)))  # device_get waits for the device


@nnx.jit
def predict_step(model, x):
    return model(x).argmax(axis=1)


def predict(trainer, batches):
    model = trainer[0]
    model.eval()  # dropout off
    return np.concatenate([jax.device_get(predict_step(model, x)) for x in batches])


def count_params(model):
    params = nnx.state(model, nnx.Param)
    return sum(p.size for p in jax.tree_util.tree_leaves(params))


def layers(model):
    return [model.conv1, model.conv2, model.conv3, model.conv4, model.dense1, model.dense2]


def get_weights(model):
    """(kernel, bias) per layer in the neutral layout of weights.py, as NumPy arrays."""
    out = [(np.asarray(layer.kernel[...]), np.asarray(layer.bias[...])) for layer in layers(model)]
    convs = [(hwio_to_oihw(kernel), bias) for kernel, bias in out[:4]]  # Flax kernels are HWIO
    # dense1's rows follow the NHWC flatten (height, width, channel): reorder them to (c, h, w).
    return convs + [(hwc_rows_to_chw(out[4][0]), out[4][1]), out[5]]


def set_weights(model, weights):
    weights = check(weights)
    kernels = [oihw_to_hwio(k) for k, _ in weights[:4]] + [chw_rows_to_hwc(weights[4][0]), weights[5][0]]
    for layer, kernel, (_, bias) in zip(layers(model), kernels, weights):
        layer.kernel[...] = jnp.asarray(kernel)  # in place: the optimizer holds the same variables
        layer.bias[...] = jnp.asarray(bias)


def export_onnx(model, path):
    import onnx
    from jax2onnx import to_onnx  # traces the module's JAX operations into ONNX
    from onnx_graph import without_dropout
    model.eval()  # dropout off; jax2onnx still writes Dropout nodes, told not to drop
    proto = to_onnx(model, [("batch", 32, 32, 3)], input_names=["x"], output_names=["logits"])
    onnx.save(without_dropout(proto), path)  # one file, the weights inside


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
