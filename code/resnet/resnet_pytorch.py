"""PyTorch 2: torchvision's ResNet-50 as it ships (v1.5: the stride on each downsampling block's 3x3
convolution), its classifier replaced by nn.Identity so that forward ends at the average pooling."""
import sys
import types
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn

from common import SEED, TF32, torch_gpu_or_why_not
from images import images_for_library
from resnet_weights import check


def import_torchvision():
    """torchvision, also where its C++ ops cannot load (a CUDA build beside a CPU torch).

    Those ops (nms, roi_align) serve detection only; the import stops anyway when two modules register
    helpers for them ("operator torchvision::nms does not exist"). Empty stand-ins for those two let
    the models, which never use the ops, import as usual."""
    try:
        import torchvision
    except RuntimeError as e:
        if "torchvision::" not in str(e):
            raise
        for name in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
            sys.modules[name] = types.ModuleType(name)
        import torchvision
    return torchvision


torchvision = import_torchvision()
GPU, WHY_CPU = torch_gpu_or_why_not()
DEVICE = torch.device("cuda" if GPU else "cpu")
torch.backends.cudnn.benchmark = True  # autotune convolution algorithms: every batch has one shape
torch.backends.cudnn.allow_tf32 = TF32
torch.backends.cuda.matmul.allow_tf32 = TF32


def load_data(dataset, profile):
    return images_for_library(dataset, profile, channel_first=True)


def zoo_model():
    model = torchvision.models.resnet50(weights=None)  # weights=None: torchvision's own init, no download
    # fc, not the layers before it: forward ends avgpool -> flatten -> fc, so with fc an identity it
    # gives (N, 2048), and fc's 2,049,000 parameters leave the count and the state dict.
    model.fc = nn.Identity()
    return model.eval().to(DEVICE)


def create_model():
    torch.manual_seed(SEED)
    return zoo_model()  # already the book's function: v1.5, eps 1e-5, max pooling with padding 1


def other_variant(model):
    """v1.5 <-> v1: each downsampling block's stride of 2 moves between its 3x3 and its first 1x1."""
    for stage in (model.layer2, model.layer3, model.layer4):
        block = stage[0]
        block.conv1.stride, block.conv2.stride = block.conv2.stride, block.conv1.stride
    return model


def features(model, batches):
    model.eval()  # batch norm reads its running statistics
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(x).to(DEVICE)).cpu().numpy() for x in batches])


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def get_weights(model):
    """The state dict, which is the neutral layout, less batch norm's step counters."""
    return OrderedDict((name, t.detach().cpu().numpy().copy()) for name, t in model.state_dict().items()
                       if not name.endswith("num_batches_tracked"))


def set_weights(model, weights):
    state = model.state_dict()  # the model's own tensors: a copy into them changes the model
    with torch.no_grad():
        for name, array in check(weights).items():
            state[name].copy_(torch.from_numpy(array))


def load_pretrained(model):
    """torchvision's ImageNet weights for ResNet-50 v1.5 (downloaded once into torch's hub cache)."""
    weights = torchvision.models.ResNet50_Weights.IMAGENET1K_V1
    state = weights.get_state_dict(progress=False, check_hash=True)
    del state["fc.weight"], state["fc.bias"]  # the classifier this model no longer has
    model.load_state_dict(state)
    return model


def export_onnx(model, path):
    model.eval()
    example = torch.zeros(2, 3, 224, 224, device=DEVICE)
    torch.onnx.export(model, (example,), path, input_names=["images"], output_names=["features"],
                      dynamic_shapes=[{0: torch.export.Dim("batch")}], external_data=False)


def describe(model):
    """The function as the installed model computes it, read from its layers and torchvision's preset."""
    block, pool, conv = model.layer2[0], model.maxpool, model.conv1
    preset = torchvision.models.ResNet50_Weights.IMAGENET1K_V1.transforms()
    probe = preset(torch.full((3, 300, 400), 255, dtype=torch.uint8))  # a white image, not square
    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d) and m.bias is not None]
    return dict(
        variant="v1.5" if block.conv2.stride == (2, 2) else "v1" if block.conv1.stride == (2, 2) else "?",
        bn_eps=model.bn1.eps,
        stem="the convolution's own padding of {}".format(conv.padding[0]),
        pool="{}x{} max pooling, stride {}, padding {} (implicit, -inf: never wins), {} mode".format(
            pool.kernel_size, pool.kernel_size, pool.stride, pool.padding, "ceil" if pool.ceil_mode else "floor"),
        layout="NCHW",
        preprocessing="{} A white uint8 image of 300x400 becomes {} with values {}.".format(
            preset.describe().replace("``", ""), tuple(probe.shape), [round(v, 4) for v in probe[:, 0, 0].tolist()]),
        conv_bias=", ".join(convs) or "none")


def runtime_info():
    return dict(version=torch.__version__, torchvision=torchvision.__version__, device="cuda" if GPU else "cpu",
                gpu=torch.cuda.get_device_name(0) if GPU else None, device_note=WHY_CPU,
                threads=torch.get_num_threads(), layout="NCHW",
                tf32_conv=GPU and torch.backends.cudnn.allow_tf32,
                tf32_matmul=GPU and torch.backends.cuda.matmul.allow_tf32)
