"""CNTK 2.7: no ResNet-50 in its Python API (its examples build ResNets in BrainScript and in scripts
outside the wheel), so it is written here in CNTK's layers, NCHW, each convolution and batch norm named
as the neutral layout names it."""
import cntk as C
import numpy as np

from common import nvidia_tf32
from images import images_for_library
from resnet_weights import BOOK_EPS, EXPANSION, N_FEATURES, STAGES, check, check_variant, convs


def probe(device):
    """A convolution (cuDNN) and a matrix product (cuBLAS) on `device`: on a GPU, the kernels whose
    PTX the driver must compile for a card newer than the build."""
    ones = lambda *shape: np.ones(shape, np.float32)  # noqa: E731
    x = C.input_variable((1, 4, 4))  # a constant as the convolution's operand crashes CNTK 2.7's CPU build
    C.convolution(C.constant(ones(1, 1, 3, 3)), x).eval({x: ones(1, 1, 4, 4)}, device=device)
    C.times(C.constant(ones(4, 4)), C.constant(ones(4, 4))).eval(device=device)


def gpu_or_why_not():
    """(True, None) where CNTK computes on the first GPU, else (False, why): cntk-gpu 2.7 is built
    with CUDA 10, which may have no code for a newer card, and only running something tells."""
    if not any(d.type() == C.device.DeviceKind.GPU for d in C.device.all_devices()):
        return False, "the cntk wheel is CNTK's CPU build (cntk-gpu is the CUDA one), or it finds no GPU"
    try:
        probe(C.device.gpu(0))
        return True, None
    except (RuntimeError, ValueError) as e:
        return False, "CNTK's CUDA build cannot run on this GPU: " + str(e).strip().splitlines()[0]


GPU, WHY_CPU = gpu_or_why_not()
if not GPU:  # CNTK would otherwise pick a GPU it lists by itself
    C.device.try_set_default_device(C.device.cpu())


def load_data(dataset, profile):
    return images_for_library(dataset, profile, channel_first=True)


# zoo_model() is omitted: CNTK 2.7's API has no ResNet-50 (its pre-trained files are graphs to load,
# see load_pretrained).


def conv_bn(x, conv, bn, filters, kernel, stride=1, relu=True):
    # pad=True centres the window: for these odd kernels, (kernel - 1) / 2 zeros on each side.
    x = C.layers.Convolution2D(kernel, filters, strides=stride, pad=kernel > 1, bias=False, name=conv)(x)
    # map_rank=1: one mean and variance per channel (spatial batch norm); epsilon is on the variance.
    norm = C.layers.BatchNormalization(map_rank=1, epsilon=BOOK_EPS, name=bn)
    x = norm(x)
    # CNTK starts the running variance at 0 ("no statistics yet": training replaces it); at 1, as other
    # frameworks start it, a fresh model's features stay finite (0 divides by sqrt(epsilon) 53 times).
    norm.aggregate_variance.value = np.ones(filters, np.float32)
    return C.relu(x) if relu else x


def bottleneck(x, name, width, stride, variant):
    """One block: 1x1, 3x3, 1x1 convolutions; the stride on the first 1x1 (v1) or on the 3x3 (v1.5)."""
    y = conv_bn(x, name + "conv1", name + "bn1", width, 1, stride if variant == "v1" else 1)
    y = conv_bn(y, name + "conv2", name + "bn2", width, 3, stride if variant == "v1.5" else 1)
    y = conv_bn(y, name + "conv3", name + "bn3", width * EXPANSION, 1, relu=False)
    if name.endswith(".0."):  # each stage's first block widens (and strides) its shortcut
        x = conv_bn(x, name + "downsample.0", name + "downsample.1", width * EXPANSION, 1, stride, relu=False)
    return C.relu(y + x)


def create_model(variant="v1.5"):
    """The book's function: the hand-written model, v1.5 unless asked (other_variant builds it anew)."""
    images = C.input_variable((3, 224, 224), np.float32, name="images")
    x = conv_bn(images, "conv1", "bn1", 64, 7, stride=2)
    # pad=True: one cell on each side, which max pooling never takes (it pools the real cells only).
    x = C.layers.MaxPooling((3, 3), strides=2, pad=True, name="maxpool")(x)
    for stage, (blocks, width) in enumerate(STAGES):
        for block in range(blocks):
            x = bottleneck(x, "layer{}.{}.".format(stage + 1, block), width,
                           2 if stage > 0 and block == 0 else 1, check_variant(variant))
    return C.reshape(C.layers.GlobalAveragePooling()(x), N_FEATURES, name="features")  # (2048, 1, 1) -> (2048,)


def variant_of(model):
    """"v1" or "v1.5", read from the strides of layer2's first block."""
    return "v1" if model.find_by_name("layer2.0.conv1").block_root.attributes["strides"][-1] == 2 else "v1.5"


def other_variant(model):
    """The same weights in a model built with the stride on the other convolution."""
    other = create_model("v1.5" if variant_of(model) == "v1" else "v1")
    set_weights(other, get_weights(model))
    return other


def features(model, batches):
    # eval() runs the graph in inference mode: batch norm reads its aggregate mean and variance.
    return np.concatenate([model.eval({model.arguments[0]: x}) for x in batches]).astype(np.float32)


def count_params(model):
    return sum(int(np.prod(p.shape)) for p in model.parameters)


def layers(model):
    """(name, CNTK arrays) of each layout array: a kernel is the convolution's W (OIHW already); a batch
    norm holds its scale and bias as parameters, its running mean and variance as constants (and a
    count, which inference does not read)."""
    out = []
    for conv, bn, _, _, _ in convs():
        out.append((conv + ".weight", model.find_by_name(conv).parameters[0]))
        norm = model.find_by_name(bn)
        for field, var in (("weight", norm.scale), ("bias", norm.bias), ("running_mean", norm.aggregate_mean),
                           ("running_var", norm.aggregate_variance)):
            out.append(("{}.{}".format(bn, field), var))
    return out


def get_weights(model):
    from collections import OrderedDict
    return OrderedDict((name, var.value.copy()) for name, var in layers(model))


def set_weights(model, weights):
    weights = check(weights)
    for name, var in layers(model):
        var.value = weights[name]


def load_pretrained(model):
    """CNTK's own pre-trained ResNet-50 is a file of its model zoo, a graph of its own (trained from
    BrainScript, v1: the stride on the first 1x1; BGR pixels in [0, 255] less ImageNet's mean): it is
    loaded and cut as CNTK's transfer-learning example cuts a model, from its input ("features") to the
    node before the classifier ("z.x" in that example, a ResNet-18; not checked against this file, which
    no machine of this book can download). The hand-written model is not used."""
    from urllib.request import urlretrieve
    path, _ = urlretrieve("https://www.cntk.ai/Models/CNTK_Pretrained/ResNet50_ImageNet_CNTK.model",
                          "ResNet50_ImageNet_CNTK.model")
    zoo = C.load_model(path)
    cut = C.combine([zoo.find_by_name("z.x").owner]).clone(
        C.CloneMethod.freeze, {zoo.find_by_name("features"): C.placeholder(name="features")})
    return C.reshape(cut(C.input_variable((3, 224, 224), np.float32, name="images")), N_FEATURES, name="features")


def export_onnx(model, path):
    import onnx
    from onnx_graph import any_batch
    model.save(path, format=C.ModelFormat.ONNX)  # CNTK's own exporter: a batch of one
    proto = any_batch(onnx.load(path))
    proto.graph.node[-1].output[0] = proto.graph.output[0].name = "features"  # CNTK writes "features_Output"
    onnx.save(proto, path)


def describe(model):
    """What the built model does, read from its operators' attributes."""
    conv1, pool = model.find_by_name("conv1").block_root, model.find_by_name("maxpool").block_root
    return dict(variant=variant_of(model),
                bn_eps=model.find_by_name("bn1").block_root.attributes["epsilon"],
                stem="the convolution's own padding of 3" if conv1.attributes["autoPadding"][-1] else "none",
                pool="{}x{}, stride {}, pad=True (auto padding: 1 on each side, never taken), {}".format(
                    *(pool.attributes["poolingWindowShape"] + pool.attributes["strides"][-1:]),
                    "ceil" if pool.attributes["ceilOutDim"] else "floor"),
                layout="NCHW", preprocessing="none shipped",
                conv_bias=", ".join(c for c, _, _, _, _ in convs() if len(model.find_by_name(c).parameters) > 1)
                or "none")


def runtime_info():
    return dict(version=C.__version__, device="gpu" if GPU else "cpu", gpu="GPU 0" if GPU else None,
                device_note=WHY_CPU, layout="NCHW", tf32_conv=GPU and nvidia_tf32(), tf32_matmul=GPU and nvidia_tf32())
