"""MXNet 1.9 with Gluon: the model zoo's resnet50_v1, its `features` (the network up to the global
average pooling), hybridized into a static graph."""
import os
import re
from collections import OrderedDict

import mxnet as mx
import numpy as np
from mxnet import nd
from mxnet.gluon import nn
from mxnet.gluon.model_zoo import vision

from common import SEED, nvidia_tf32
from images import images_for_library
from resnet_weights import BN, check, fold_bias

BLOCK = OrderedDict([("conv1", 0), ("bn1", 1), ("conv2", 3), ("bn2", 4), ("conv3", 6), ("bn3", 7)])  # in body


def probe(ctx):
    """A convolution (cuDNN) and a matrix product (cuBLAS) on `ctx`, waited for: on a GPU, the
    kernels whose PTX the driver must compile for a card newer than the build."""
    ones = lambda *shape: nd.ones(shape, ctx=ctx)  # noqa: E731
    nd.Convolution(ones(1, 1, 4, 4), ones(1, 1, 3, 3), kernel=(3, 3), num_filter=1, no_bias=True).asnumpy()
    nd.dot(ones(4, 4), ones(4, 4)).asnumpy()


def gpu_or_why_not():
    """(mx.gpu(), None) where this build runs a kernel on the first GPU, else (mx.cpu(), why)."""
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
    return images_for_library(dataset, profile, channel_first=True)


def zoo_model():
    mx.random.seed(SEED)
    model = vision.resnet50_v1(pretrained=False).features  # without the classifier `output`
    model.add(nn.Flatten())  # the features end at GlobalAvgPool2D, (N, 2048, 1, 1)
    model.initialize(ctx=CTX)
    model(nd.zeros((1, 3, 224, 224), ctx=CTX))  # the 1x1 convolutions infer their inputs on the first call
    return model


def create_model():
    # No change: Gluon's v1 is the book's function (batch norm's epsilon 1e-5, stem pooling with
    # padding 1 rounding down); only hybridized, as the other MXNet rows.
    model = zoo_model()
    model.hybridize(static_alloc=True, static_shape=True)
    return model


def other_variant(model):
    """v1 <-> v1.5: each downsampling block's stride moves between its 1x1 and 3x3 convolution."""
    for stage in list(model)[5:8]:  # stage2_ to stage4_; the first block downsamples
        # A convolution's stride is an argument of its operator, kept in _kwargs.
        first, second = stage[0].body[0], stage[0].body[3]
        first._kwargs["stride"], second._kwargs["stride"] = second._kwargs["stride"], first._kwargs["stride"]
    model.hybridize(static_alloc=True, static_shape=True)  # the cached graph has the old strides
    return model


def features(model, batches):
    # Outside autograd.record(), batch norm uses its running statistics.
    return np.concatenate([model(nd.array(x, ctx=CTX)).asnumpy() for x in batches])


def count_params(model):
    params = model.collect_params().values()
    return sum(p.data().size for p in params if p.grad_req != "null")  # batch norm's statistics are not trained


def layers(model):
    """{neutral name: Gluon block} of every convolution and batch norm."""
    out = OrderedDict([("conv1", model[0]), ("bn1", model[1])])
    for s, stage in enumerate(list(model)[4:8]):
        for b, block in enumerate(stage):
            name = "layer{}.{}.".format(s + 1, b)
            out.update((name + key, block.body[i]) for key, i in BLOCK.items())
            if block.downsample is not None:
                out.update((name + "downsample." + i, block.downsample[int(i)]) for i in "01")
    return out


def bn_params(bn):
    return [bn.gamma, bn.beta, bn.running_mean, bn.running_var]  # the layout's weight, bias, mean, var


def get_weights(model):
    weights = OrderedDict()
    for name, layer in layers(model).items():
        if isinstance(layer, nn.Conv2D):
            weights[name + ".weight"] = layer.weight.data().asnumpy()  # OIHW
        else:
            weights.update(("{}.{}".format(name, f), p.data().asnumpy()) for f, p in zip(BN, bn_params(layer)))
    for name, layer in layers(model).items():
        if isinstance(layer, nn.Conv2D) and layer.bias is not None:  # the bottlenecks' 1x1 convolutions
            fold_bias(weights, name, layer.bias.data().asnumpy())
    return weights


def set_weights(model, weights):
    weights = check(weights)
    for name, layer in layers(model).items():
        if isinstance(layer, nn.Conv2D):
            layer.weight.set_data(nd.array(weights[name + ".weight"], ctx=CTX))
            if layer.bias is not None:
                layer.bias.set_data(nd.zeros(layer.bias.shape, ctx=CTX))
        else:
            for f, p in zip(BN, bn_params(layer)):
                p.set_data(nd.array(weights["{}.{}".format(name, f)], ctx=CTX))


def load_pretrained(model):
    """ImageNet weights: resnet50_v1(pretrained=True) downloads resnet50_v1-0aee57f9.zip from Apache's
    model store (MXNET_GLUON_REPO) into $MXNET_HOME/models and loads it; its features' go into `model`."""
    zoo = vision.resnet50_v1(pretrained=True, ctx=CTX)
    for mine, theirs in zip(model.collect_params().values(), zoo.features.collect_params().values()):
        mine.set_data(theirs.data())
    return model


def export_onnx(model, path):
    import tempfile
    import onnx
    from onnx_graph import BATCH
    with tempfile.TemporaryDirectory() as folder:
        prefix = os.path.join(folder, "resnet")
        model.export(prefix)  # the hybridized graph and its weights
        mx.onnx.export_model(prefix + "-symbol.json", prefix + "-0000.params", in_shapes=[(1, 3, 224, 224)],
                             in_types=[np.float32], onnx_file_path=path,
                             dynamic=True, dynamic_input_shapes=[(None, 3, 224, 224)])
    proto = onnx.load(path)
    # The file names the installed onnx's newest opset, but MXNet's converters stop at opset 13's operators.
    proto.opset_import[0].version = 13
    graph = proto.graph
    weights = {t.name for t in graph.initializer}
    for value in [v for v in graph.input if v.name in weights]:  # the weights, listed as inputs too
        graph.input.remove(value)
    names = {graph.input[0].name: "images", graph.output[0].name: "features"}  # MXNet's: data, ..._flatten0
    for node in graph.node:
        node.input[:] = [names.get(n, n) for n in node.input]
        node.output[:] = [names.get(n, n) for n in node.output]
    for value in (graph.input[0], graph.output[0]):
        value.name = names[value.name]
        value.type.tensor_type.shape.dim[0].dim_param = BATCH
    onnx.save(proto, path)


def describe(model):
    """The zoo's ResNet-50 as its blocks say."""
    stem, pool, block = model[0], model[3], model[5][0].body
    pad, kernel, stride = pool._kwargs["pad"], pool._kwargs["kernel"], pool._kwargs["stride"]
    sentences = re.split(r"(?<=\.)\s+(?=[A-Z])", " ".join(vision.__doc__.split()))  # the model zoo's docstring
    return dict(
        variant="v1" if tuple(block[0]._kwargs["stride"]) == (2, 2) else "v1.5",
        bn_eps=model[1]._kwargs["eps"],
        stem="the convolution's own padding of {}".format(stem._kwargs["pad"][0]),
        pool="{}x{} of stride {}, padding {} (-inf), {} mode".format(
            kernel[0], kernel[1], stride[0], pad[0],
            "ceil" if pool._kwargs["pooling_convention"] == "full" else "floor"),
        layout=stem._kwargs["layout"],
        preprocessing="none shipped; the model zoo's docstring: " + next(t for t in sentences if "mean =" in t),
        conv_bias=", ".join(sorted({n.split(".", 2)[-1] for n, layer in layers(model).items()
                                    if isinstance(layer, nn.Conv2D) and layer.bias is not None}))
        + " of every bottleneck (its 1x1 convolutions but the shortcut's)")


def runtime_info():
    gpu = CTX.device_type == "gpu"
    return dict(version=mx.__version__, device="gpu" if gpu else "cpu", gpu="GPU 0" if gpu else None,
                device_note=WHY_CPU,
                layout="NCHW", threads="OMP_NUM_THREADS={}".format(
                    os.environ.get("OMP_NUM_THREADS", "unset (MXNet's default)")),
                tf32_conv=gpu and nvidia_tf32(), tf32_matmul=gpu and nvidia_tf32())
