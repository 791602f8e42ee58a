"""JAX, tuned: the data on the device; on a CPU the convolutions' kernel gradients as matrix
products; each epoch one compiled lax.scan over its batches with the state's buffers donated; bf16
compute where the device has bf16 units and it paid. The rest is cnn_jax's."""
import os
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import cnn_jax as faithful
import tuning
from cnn_jax import count_params, get_weights, init_model, set_weights  # noqa: F401

ONEDNN = tuning.change("onednn", False, "XLA's CPU flag --xla_cpu_use_onednn, oneDNN's kernels for its products "
                       "and convolutions: off, as XLA ships it; `make bench-tuning` measures what it would change")
if ONEDNN:  # read when the backend starts: at jax.devices(), next
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_cpu_use_onednn=true"
DEVICE = jax.devices()[0]
GPU = DEVICE.platform == "gpu"
BF16 = tuning.change("bf16", *(tuning.gpu_bf16(tuple(map(int, DEVICE.compute_capability.split("."))))
                               if GPU else tuning.cpu_bf16()))
WEIGHT_GRAD = tuning.change("weight_grad", not GPU, "each convolution's kernel gradient is one matrix product "
                            "of the shifted inputs and the output's gradient, where XLA's CPU backend computes it as "
                            "a convolution over the batch, far slower" if not GPU else "cuDNN's kernel gradients are fast")
SCAN = tuning.change("scan", GPU or WEIGHT_GRAD, "the epoch is one XLA program: one dispatch, not one per step"
                     if GPU or WEIGHT_GRAD else "off with weight_grad: with XLA's own kernel gradients, the CPU "
                     "backend runs a scan's convolutions many times slower than a step jitted alone")
DONATE = tuning.change("donate", SCAN, "the new parameters and momenta are written over the old ones' buffers"
                       if SCAN else "it donates the scan's state: off with the scan")
COMPUTE = jnp.bfloat16 if BF16 else jnp.float32


def load_data(dataset, profile):
    x_train, x_test, y_train, y_test = faithful.load_data(dataset, profile)
    return jax.device_put(x_train), jax.device_put(x_test), jax.device_put(y_train), y_test  # copied once


@jax.custom_vjp
def conv3x3(x, kernel):  # NHWC by HWIO, stride 1, "SAME": every convolution of this model
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def conv3x3_forward(x, kernel):
    return conv3x3(x, kernel), (x, kernel)


def conv3x3_backward(saved, dy):
    x, kernel = saved
    dx = conv3x3(dy, jnp.flip(kernel, (0, 1)).swapaxes(2, 3))  # as XLA does it: already fast
    h, w, c = x.shape[1:]
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    shifted = jnp.concatenate([padded[:, i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=-1)
    dkernel = shifted.reshape(-1, 9 * c).T @ dy.reshape(-1, dy.shape[-1])  # summed over images and pixels
    return dx, dkernel.reshape(kernel.shape)


conv3x3.defvjp(conv3x3_forward, conv3x3_backward)


def conv(x, kernel, *settings, **more):  # called by nnx.Conv as lax.conv_general_dilated; the settings are conv3x3's
    return conv3x3(x, kernel)


def create_model():
    model = faithful.create_model()
    if WEIGHT_GRAD:
        for layer in faithful.layers(model)[:4]:  # nnx.Conv calls this in place of lax.conv_general_dilated
            layer.conv_general_dilated = conv
    return model


def in_compute(model):
    """The model with bf16 copies of its float32 weights where BF16 is on; else the model itself."""
    if not BF16:
        return model
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    return nnx.merge(graphdef, jax.tree.map(lambda p: p.astype(COMPUTE), params), rest)


def loss_fn(model, x, y):
    if BF16:  # the forward pass on bf16 copies of the float32 weights; the loss in float32
        half = in_compute(model)
        logits = half(x.astype(COMPUTE)).astype(jnp.float32)
        nnx.update(model, nnx.state(half, nnx.RngState))  # dropout's key moves on in the model
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return faithful.loss_fn(model, x, y)


def train_step(model, optimizer, x, y):  # not jitted on its own: train_scan traces it once
    loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
    optimizer.update(model, grads)
    return loss


@partial(jax.jit, static_argnums=0, donate_argnums=(1,) if DONATE else ())
def train_scan(graphdef, state, xs, ys):
    """Every step of the epoch in one XLA program: one dispatch, not one per step."""
    def step(state, batch):
        model, optimizer = nnx.merge(graphdef, state)
        loss = train_step(model, optimizer, *batch)
        return nnx.state((model, optimizer)), loss
    return jax.lax.scan(step, state, xs=(xs, ys))


step_by_step = nnx.jit(train_step)  # where the scan is off: one compiled call per step, as in cnn_jax


def train_epoch(trainer, batches):
    model, optimizer = trainer
    model.train()  # dropout on
    if not SCAN:
        return float(np.mean(jax.device_get([step_by_step(model, optimizer, x, y) for x, y in batches])))
    xs, ys = (jnp.stack(a) for a in zip(*batches))  # the epoch's batches, in order, on the device
    graphdef, state = nnx.split((model, optimizer))
    scan = tuning.compiled(train_scan, (graphdef,), state, xs, ys)  # compiled once per shape, timed
    state, losses = scan(state, xs, ys)
    nnx.update((model, optimizer), state)
    return float(losses.mean())  # float() waits for the device


@nnx.jit
def predict_step(model, x):  # in bf16 where training is, as the other tuned rows predict
    return in_compute(model)(x.astype(COMPUTE)).argmax(axis=1)


def predict(trainer, batches):
    model = trainer[0]
    model.eval()  # dropout off
    return np.concatenate([jax.device_get(predict_step(model, x)) for x in batches])


def runtime_info():
    return dict(faithful.runtime_info(), precision="bf16 compute, float32 weights" if BF16 else "float32")
