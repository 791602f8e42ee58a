"""MXNet 1.9 with Gluon: a HybridSequential, hybridized into a static graph after the first call."""
import os

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon, nd
from mxnet.gluon import nn

from common import LR, MOMENTUM, N_CLASSES, SEED, nvidia_tf32
from datasets import cifar_for_library
from weights import check


def probe(ctx):
    """A convolution (cuDNN) and a matrix product (cuBLAS) on `ctx`, waited for: on a GPU, the
    kernels whose PTX the driver must compile for a card newer than the build."""
    ones = lambda *shape: nd.ones(shape, ctx=ctx)  # noqa: E731
    nd.Convolution(ones(1, 1, 4, 4), ones(1, 1, 3, 3), kernel=(3, 3), num_filter=1, no_bias=True).asnumpy()
    nd.dot(ones(4, 4), ones(4, 4)).asnumpy()


def gpu_or_why_not():
    """(mx.gpu(), None) where this build runs a kernel on the first GPU, else (mx.cpu(), why):
    an older CUDA may have no code for a newer card, and only running something tells (a hang
    there ends at the row's time limit)."""
    if not mx.runtime.Features().is_enabled("CUDA"):
        return mx.cpu(), "the mxnet wheel is MXNet's CPU build (mxnet-cu* are the CUDA ones)"
    if mx.context.num_gpus() == 0:
        return mx.cpu(), "MXNet's CUDA build finds no GPU"
    try:
        probe(mx.gpu())
        return mx.gpu(), None
    except mx.MXNetError as e:
        return mx.cpu(), "MXNet's CUDA build cannot run on this GPU: " + str(e).strip().splitlines()[0]


CTX, WHY_CPU = gpu_or_why_not()


def load_data(dataset, profile):
    return cifar_for_library(dataset, profile, channel_first=True, one_hot=False)


def create_model():
    mx.random.seed(SEED)
    model = nn.HybridSequential()
    model.add(
        nn.Conv2D(50, 3, padding=1, activation="relu"),  # padding=1 keeps 3x3 outputs the same size
        nn.Conv2D(50, 3, padding=1, activation="relu"),
        nn.MaxPool2D(2), nn.Dropout(0.25),
        nn.Conv2D(100, 3, padding=1, activation="relu"),
        nn.Conv2D(100, 3, padding=1, activation="relu"),
        nn.MaxPool2D(2), nn.Dropout(0.25),
        nn.Flatten(),
        nn.Dense(512, activation="relu"), nn.Dropout(0.5),
        nn.Dense(N_CLASSES),  # logits
    )
    # Glorot-uniform is Xavier(uniform, avg, magnitude 3); the default is Uniform(0.07).
    model.initialize(mx.init.Xavier(rnd_type="uniform", factor_type="avg", magnitude=3), ctx=CTX)
    model.hybridize(static_alloc=True, static_shape=True)
    model(nd.zeros((1, 3, 32, 32), ctx=CTX))  # shapes are inferred on the first call
    return model


def init_model(model):
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()  # takes logits and class indices
    trainer = gluon.Trainer(model.collect_params(), "sgd", {"learning_rate": LR, "momentum": MOMENTUM})
    return model, loss_fn, trainer


def train_epoch(trainer, batches):
    model, loss_fn, sgd = trainer
    total, steps = nd.zeros(1, ctx=CTX), 0
    for x, y in batches:
        x, y = nd.array(x, ctx=CTX), nd.array(y, ctx=CTX)
        with autograd.record():  # records the graph and turns dropout on
            loss = loss_fn(model(x), y)  # one loss per image
        loss.backward()
        sgd.step(x.shape[0])  # gradients are summed over the batch: step divides by its size
        total, steps = total + loss.mean(), steps + 1
    return total.asscalar() / steps  # asscalar() waits for MXNet's asynchronous engine


def predict(trainer, batches):
    model = trainer[0]  # outside autograd.record(), dropout is off
    return np.concatenate([model(nd.array(x, ctx=CTX)).argmax(axis=1).asnumpy().astype(np.int64)
                           for x in batches])


def count_params(model):
    return sum(p.data().size for p in model.collect_params().values())


def get_weights(model):
    """(kernel, bias) per layer in the neutral layout of weights.py, as NumPy arrays."""
    layers = [b for b in model if isinstance(b, (nn.Conv2D, nn.Dense))]
    return [(layer.weight.data().asnumpy().T if isinstance(layer, nn.Dense) else layer.weight.data().asnumpy(),
             layer.bias.data().asnumpy()) for layer in layers]  # Dense stores out x in; Conv2D is OIHW


def set_weights(model, weights):
    layers = [b for b in model if isinstance(b, (nn.Conv2D, nn.Dense))]
    for layer, (kernel, bias) in zip(layers, check(weights)):
        layer.weight.set_data(nd.array(kernel.T if isinstance(layer, nn.Dense) else kernel, ctx=CTX))
        layer.bias.set_data(nd.array(bias, ctx=CTX))


def export_onnx(model, path):
    import tempfile
    import onnx
    with tempfile.TemporaryDirectory() as folder:
        prefix = os.path.join(folder, "cnn")
        model.export(prefix)  # the hybridized graph and its weights: cnn-symbol.json, cnn-0000.params
        mx.onnx.export_model(prefix + "-symbol.json", prefix + "-0000.params", in_shapes=[(1, 3, 32, 32)],
                             in_types=[np.float32], onnx_file_path=path,
                             dynamic=True, dynamic_input_shapes=[(None, 3, 32, 32)])
    # The file names the installed onnx's newest opset, but MXNet's converters stop at opset 13's operators.
    proto = onnx.load(path)
    proto.opset_import[0].version = 13
    onnx.save(proto, path)


def runtime_info():
    gpu = CTX.device_type == "gpu"
    return dict(version=mx.__version__, device="gpu" if gpu else "cpu", gpu="GPU 0" if gpu else None,
                device_note=WHY_CPU,
                layout="NCHW", threads="OMP_NUM_THREADS={}".format(
                    os.environ.get("OMP_NUM_THREADS", "unset (MXNet's default)")),
                tf32_conv=gpu and nvidia_tf32(), tf32_matmul=gpu and nvidia_tf32())
