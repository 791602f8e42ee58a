"""Chainer 7: chainer.links.ResNet50Layers, the original MSRA (Caffe) ResNet-50, read at its layer
"pool5", define-by-run."""
import inspect
import re
from collections import OrderedDict

import chainer
import chainer.functions as F
import chainer.links as L
import numpy as np
from chainer.links.model.vision import resnet

from common import SEED, nvidia_tf32
from images import images_for_library
from resnet_weights import BN, BOOK_EPS, check, fold_bias

GPU = chainer.backends.cuda.available
DEVICE = chainer.get_device("@cupy:0" if GPU else "@numpy")
chainer.global_config.autotune = True  # cuDNN autotuning where cuDNN is there, as the seed did


def load_data(dataset, profile):
    return images_for_library(dataset, profile, channel_first=True)


def zoo_model():
    np.random.seed(SEED)  # Chainer's initializers draw from NumPy's generator
    model = L.ResNet50Layers(pretrained_model=None)  # HeNormal weights, nothing loaded
    model.to_device(DEVICE)
    return model


class ResNet50(L.ResNet50Layers):
    """ResNet50Layers with the book's stem pooling: `functions` lists what forward() runs, layer by layer."""

    @property
    def functions(self):
        functions = super().functions
        # Caffe's pooling, which Chainer's copies: no padding, rounding up (cover_all=True); on
        # 112x112 both give 56x56, but its windows start a pixel later.
        functions["pool1"] = [lambda x: F.max_pooling_2d(x, ksize=3, stride=2, pad=1, cover_all=False)]
        return functions


def create_model():
    np.random.seed(SEED)
    model = ResNet50(pretrained_model=None)  # zoo_model() with the book's pooling, above
    for link in model.links():
        if isinstance(link, L.BatchNormalization):
            link.eps = BOOK_EPS  # Chainer's default is 2e-5
    model.to_device(DEVICE)
    return model


def other_variant(model):
    """v1 <-> v1.5: each downsampling block's stride moves between its 1x1 and 3x3 convolution
    (ResNet50Layers(downsample_fb=True) builds v1.5)."""
    for stage in (model.res3, model.res4, model.res5):
        stage.a.conv1.stride, stage.a.conv2.stride = stage.a.conv2.stride, stage.a.conv1.stride
    return model


def features(model, batches):
    with chainer.using_config("train", False), chainer.no_backprop_mode():  # BN's running statistics
        out = [model(DEVICE.send(x), layers=["pool5"])["pool5"].array for x in batches]  # fc6 is not run
    return np.concatenate([chainer.backends.cuda.to_cpu(f) for f in out])


def count_params(model):
    # The chain holds the classifier fc6 too, which features() never runs.
    return sum(p.size for name, p in model.namedparams() if not name.startswith("/fc6/"))


def layers(model):
    """{neutral name: Chainer link} of every convolution and batch norm."""
    out = OrderedDict([("conv1", model.conv1), ("bn1", model.bn1)])
    for s, stage in enumerate((model.res2, model.res3, model.res4, model.res5)):
        for b, key in enumerate(stage._forward):  # "a", "b1", "b2", ...
            block, name = getattr(stage, key), "layer{}.{}.".format(s + 1, b)
            out.update((name + n, getattr(block, n)) for n in ("conv1", "bn1", "conv2", "bn2", "conv3", "bn3"))
            if key == "a":  # the shortcut's convolution
                out.update([(name + "downsample.0", block.conv4), (name + "downsample.1", block.bn4)])
    return out


def bn_arrays(bn):
    return [bn.gamma.array, bn.beta.array, bn.avg_mean, bn.avg_var]  # the layout's weight, bias, mean, var


def get_weights(model):
    to_cpu = chainer.backends.cuda.to_cpu
    weights = OrderedDict()
    for name, link in layers(model).items():
        if isinstance(link, L.Convolution2D):
            weights[name + ".weight"] = to_cpu(link.W.array)  # OIHW
        else:
            weights.update(("{}.{}".format(name, f), to_cpu(a).copy()) for f, a in zip(BN, bn_arrays(link)))
    return fold_bias(weights, "conv1", to_cpu(model.conv1.b.array))  # Caffe's first convolution has a bias


def set_weights(model, weights):
    weights = check(weights)
    for name, link in layers(model).items():
        if isinstance(link, L.Convolution2D):
            link.W.array[...] = DEVICE.send(weights[name + ".weight"])
        else:
            for f, a in zip(BN, bn_arrays(link)):
                a[...] = DEVICE.send(weights["{}.{}".format(name, f)])
    model.conv1.b.array[...] = 0


def load_pretrained(model):
    """ImageNet weights: pretrained_model="auto" converts ResNet-50-model.caffemodel, put by hand (from
    github.com/KaimingHe/deep-residual-networks) into pfnet/chainer/models/ of Chainer's dataset
    directory, with CaffeFunction into ResNet-50-model.npz next to it, once, and loads that."""
    zoo = L.ResNet50Layers(pretrained_model="auto")
    zoo.to_device(DEVICE)
    model.copyparams(zoo)  # the parameters and the batch norms' statistics
    return model


def export_onnx(model, path):
    import onnx
    import onnx_chainer  # ships with Chainer 7; it needs the onnx package
    from onnx_graph import any_batch

    class Features(chainer.Chain):  # forward(x) -> pool5: what the exporter calls
        def __init__(self):
            super().__init__()
            with self.init_scope():
                self.resnet = model

        def forward(self, x):
            return self.resnet(x, layers=["pool5"])["pool5"]

    x = np.zeros((1, 3, 224, 224), np.float32)  # traced with this batch: pool5's reshape keeps its size
    proto = onnx_chainer.export(Features(), x, input_names=["images"], output_names=["features"], train=False)
    graph = proto.graph  # the exporter lists every parameter as an input too, fc6's included
    used = {name for node in graph.node for name in node.input}
    for weight in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(weight)
    weights = {t.name for t in graph.initializer}
    for value in [v for v in graph.input if v.name in weights or v.name not in used]:
        graph.input.remove(value)
    onnx.save(any_batch(proto), path)


def preprocessing():
    """What resnet.prepare does to an image, from two probes (0 and pixels R, G, B = 1, 2, 3)."""
    try:
        zero, rgb = (resnet.prepare(np.full((32, 48, 3), v, np.uint8)) for v in (0, (1, 2, 3)))
    except ImportError:  # prepare opens the image with Pillow, which this environment does not install
        mean = re.search(r"numpy\.array\(\s*\[([^\]]*)\]", inspect.getsource(resnet.prepare)).group(1)
        return ("resnet.prepare needs Pillow (not installed here); its source: resize, RGB -> BGR, "
                "minus the mean pixel BGR ({}) on [0, 255], HWC -> CHW".format(mean))
    order = "".join("RGB"[int(round(v)) - 1] for v in rgb[:, 0, 0] - zero[:, 0, 0])
    return "32x48 -> {}x{}, RGB -> {}, minus the mean pixel {} ({}) on [0, 255], HWC -> CHW".format(
        zero.shape[1], zero.shape[2], order, order, ", ".join("{:g}".format(-v) for v in zero[:, 0, 0]))


def describe(model):
    """The zoo's ResNet-50 as its links say; the stem pooling as it runs on a probe."""
    x = chainer.Variable(model.xp.zeros((1, 64, 112, 112), np.float32))
    pool = model.functions["pool1"][0](x).creator  # the MaxPoolingND function node
    return dict(
        variant="v1" if model.res3.a.conv1.stride == (2, 2) else "v1.5",
        bn_eps=model.bn1.eps,
        stem="the convolution's own padding of {}".format(model.conv1.pad[0]),
        pool="{}x{} of stride {}, padding {} (-inf), {} mode (cover_all={})".format(
            pool.ksize[0], pool.ksize[1], pool.stride[0], pool.pad[0], "ceil" if pool.cover_all else "floor",
            pool.cover_all),
        layout="NCHW",  # Chainer's only one
        preprocessing=preprocessing(),
        conv_bias=", ".join(n for n, link in layers(model).items()
                            if isinstance(link, L.Convolution2D) and link.b is not None))


def runtime_info():
    return dict(version=chainer.__version__, device="gpu" if GPU else "cpu",
                device_note=None if GPU else "no CuPy with a usable GPU: Chainer runs on NumPy",
                gpu=chainer.backends.cuda.cupy.cuda.runtime.getDeviceProperties(0)["name"].decode() if GPU else None,
                layout="NCHW", cudnn=bool(GPU and chainer.backends.cuda.cudnn_enabled),
                tf32_conv=GPU and nvidia_tf32(), tf32_matmul=GPU and nvidia_tf32())
