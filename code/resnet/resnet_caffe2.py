"""Caffe2 (inside PyTorch 1.8.1): caffe2.python.models.resnet.create_resnet50, a net of brew helpers, cut
at its average pooling by Caffe2's predictor extraction. Its ResNet-50 is v1.5 (the stride on the 3x3),
batch norms of epsilon 1e-5, and a bias on every convolution (no_bias=0 by default)."""
import itertools
from collections import OrderedDict

import numpy as np
from caffe2.proto import caffe2_pb2
from caffe2.python import core, model_helper, utils, workspace
from caffe2.python.models import resnet

from common import SEED, nvidia_tf32
from images import images_for_library
from resnet_weights import STAGES, check, convs, fold_bias

NEXT_MODEL = itertools.count()  # each model's blobs live in a Caffe2 workspace of its own, named after it


def probe(device):
    """A convolution (cuDNN) and a matrix product (cuBLAS) on `device` (a DeviceOption): on a GPU,
    the kernels whose PTX the driver must compile for a card newer than the build."""
    for name, shape in (("probe_x", [1, 1, 4, 4]), ("probe_w", [1, 1, 3, 3]), ("probe_m", [4, 4])):
        workspace.RunOperatorOnce(core.CreateOperator("ConstantFill", [], [name], shape=shape, value=1.0,
                                                      device_option=device))
    workspace.RunOperatorOnce(core.CreateOperator("Conv", ["probe_x", "probe_w"], ["probe_y"], kernel=3,
                                                  engine="CUDNN", device_option=device))
    workspace.RunOperatorOnce(core.CreateOperator("MatMul", ["probe_m", "probe_m"], ["probe_p"], device_option=device))
    workspace.FetchBlob("probe_p")  # waits for the device


def gpu_or_why_not():
    """(True, None) where Caffe2 runs an operator on the first GPU, else (False, why): torch
    1.8.1's CUDA 10.2 may have no code for a newer card, and only running something tells."""
    if not workspace.has_gpu_support or workspace.NumGpuDevices() == 0:
        return False, "no GPU that this torch 1.8.1 build's Caffe2 can use"
    try:
        probe(core.DeviceOption(caffe2_pb2.CUDA, 0))
        return True, None
    except RuntimeError as e:
        return False, "Caffe2's CUDA build cannot run on this GPU: " + str(e).strip().splitlines()[0]


GPU, WHY_CPU = gpu_or_why_not()
DEVICE = core.DeviceOption(caffe2_pb2.CUDA if GPU else caffe2_pb2.CPU, 0, random_seed=SEED)
ARGS = {"order": "NCHW", "use_cudnn": GPU, "cudnn_exhaustive_search": GPU}


def load_data(dataset, profile):
    return images_for_library(dataset, profile, channel_first=True)


def zoo_model():
    """create_resnet50 as it ships, in inference mode (is_test=True: running statistics), its weights from
    its own init net (MSRA fill)."""
    model = model_helper.ModelHelper(name="resnet50_{}".format(next(NEXT_MODEL)), arg_scope=ARGS)
    with core.DeviceScope(DEVICE):
        # It always ends with a classifier (last_out_L1000, no_loss: without softmax).
        resnet.create_resnet50(model, "images", num_input_channels=3, num_labels=1000, is_test=True, no_loss=True)
    workspace.SwitchWorkspace(model.name, True)
    workspace.RunNetOnce(model.param_init_net)
    return cut(model, model.net.Proto(), "final_avg")


def cut(model, net, pooled, renames=None):
    """The model's net becomes `net`'s operators from "images" to its average pooling `pooled` (Caffe2's
    predictor extraction leaves out the classifier), then (N, 2048, 1, 1) squeezed to "features"."""
    model.net, _ = model_helper.ExtractPredictorNet(net, ["images"], [pooled], DEVICE, renames)
    model.net.Squeeze(pooled, "features", dims=[2, 3])
    model.net.Proto().external_output[:] = ["features"]
    workspace.FeedBlob("images", np.zeros((1, 3, 224, 224), np.float32), DEVICE)
    workspace.CreateNet(model.net, overwrite=True)
    return model


def create_model():
    # Caffe2's ResNet-50 is the book's function already (v1.5, epsilon 1e-5, a padded max pooling that
    # never takes the padding); its convolutions' biases are set to zero by set_weights.
    return zoo_model()


def ops(model):
    """{output blob: the first operator that writes it} of the model's net, a protobuf that can be read and
    edited (a ReLU writes over the batch norm's output)."""
    return {op.output[0]: op for op in reversed(model.net.Proto().op)}


def other_variant(model):
    """Each downsampling block's stride moved between its first 1x1 and its 3x3 convolution: create_resnet50
    has no argument for it, but its net is a protobuf whose operators' arguments can be edited."""
    by_output = ops(model)
    for stage in ("layer2", "layer3", "layer4"):
        for conv in ("conv1", "conv2"):
            op = by_output[blobs(stage + ".0." + conv)[0]]
            stride = next(a for a in op.arg if a.name == "stride")
            stride.i = 3 - stride.i  # 1 <-> 2
    workspace.SwitchWorkspace(model.name)
    workspace.CreateNet(model.net, overwrite=True)
    return model


def features(model, batches):
    workspace.SwitchWorkspace(model.name)
    out = []
    for x in batches:
        workspace.FeedBlob("images", x, DEVICE)
        workspace.RunNet(model.net)
        out.append(workspace.FetchBlob("features"))
    return np.concatenate(out)


def count_params(model):
    """The parameters the features' net reads, declared by the fill operators of the init net, with
    their shapes (the running statistics are not parameters, nor is the classifier, which is cut)."""
    params = {str(p) for p in model.params} & set(model.net.Proto().external_input)
    shapes = {op.output[0]: [a.ints for a in op.arg if a.name == "shape"][0]
              for op in model.param_init_net.Proto().op if op.output[0] in params}
    return sum(int(np.prod(shape)) for shape in shapes.values())


def blobs(conv):
    """The (convolution, batch norm) blob prefixes of a layout convolution: layer2.0.conv1 is comp_3_conv_1,
    create_resnet50 numbering its 16 blocks from 0."""
    if conv == "conv1":
        return "conv1", "conv1_spatbn_relu"
    layer, block, part = conv.split(".", 2)
    k = sum(blocks for blocks, _ in STAGES[:int(layer[5:]) - 1]) + int(block)
    if part == "downsample.0":
        return "shortcut_projection_%d" % k, "shortcut_projection_%d_spatbn" % k
    return "comp_%d_conv_%s" % (k, part[-1]), "comp_%d_spatbn_%s" % (k, part[-1])


BN_BLOBS = ("_s", "_b", "_rm", "_riv")  # scale, shift, running mean, running variance (named "riv", not inverted)


def get_weights(model):
    workspace.SwitchWorkspace(model.name)
    out = OrderedDict()
    for conv, bn, _, _, _ in convs():
        conv_blob, bn_blob = blobs(conv)
        out[conv + ".weight"] = workspace.FetchBlob(conv_blob + "_w")  # OIHW
        for field, suffix in zip(("weight", "bias", "running_mean", "running_var"), BN_BLOBS):
            out["{}.{}".format(bn, field)] = workspace.FetchBlob(bn_blob + suffix)
        fold_bias(out, conv, workspace.FetchBlob(conv_blob + "_b"))
    return out


def set_weights(model, weights):
    weights = check(weights)
    workspace.SwitchWorkspace(model.name)
    for conv, bn, shape, _, _ in convs():
        conv_blob, bn_blob = blobs(conv)
        workspace.FeedBlob(conv_blob + "_w", weights[conv + ".weight"], DEVICE)
        workspace.FeedBlob(conv_blob + "_b", np.zeros(shape[0], np.float32), DEVICE)
        for field, suffix in zip(("weight", "bias", "running_mean", "running_var"), BN_BLOBS):
            workspace.FeedBlob(bn_blob + suffix, weights["{}.{}".format(bn, field)], DEVICE)


def load_pretrained(model):
    """Caffe2's model zoo ResNet-50 (v1.5, no convolution biases; BGR pixels): its ModelDownloader fetches
    init_net.pb and predict_net.pb into ~/.caffe2/models/resnet50. The init net fills the model's workspace
    with its blobs (gpu_0/...), and its predict net, cut at its average pooling, becomes the model's net."""
    from caffe2.python.models.download import ModelDownloader
    init_net, predict_net, _ = ModelDownloader().get_c2_model("resnet50")
    init_net.device_option.CopyFrom(DEVICE)
    workspace.SwitchWorkspace(model.name)
    workspace.RunNetOnce(init_net)
    return cut(model, predict_net, "final_avg", renames={"gpu_0/data": "images", "gpu_0/pool5": "final_avg"})


def export_onnx(model, path):
    import onnx
    from caffe2.python.onnx import frontend
    from onnx_graph import any_batch
    workspace.SwitchWorkspace(model.name)
    net = model.net.Proto()
    init = caffe2_pb2.NetDef()  # the weights: one fill operator per blob, as the frontend takes them
    for name in net.external_input:
        if name != "images":
            value = workspace.FetchBlob(name)
            init.op.extend([core.CreateOperator("GivenTensorFill", [], [name], values=value, shape=value.shape)])
    proto = frontend.caffe2_net_to_onnx_model(net, init, {"images": (onnx.TensorProto.FLOAT, (1, 3, 224, 224))})
    onnx.save(any_batch(proto), path)  # traced with a batch of one


def describe(model):
    """What the net does, read from its operators' arguments."""
    by_output = ops(model)
    args = lambda op: utils.ArgsToDict(op.arg)  # noqa: E731
    conv1, layer2 = args(by_output["conv1"]), args(by_output[blobs("layer2.0.conv1")[0]])
    pool = args(next(op for op in model.net.Proto().op if op.type == "MaxPool"))
    return dict(variant="v1" if layer2["stride"] == 2 else "v1.5",
                bn_eps=float("%.6g" % args(by_output["conv1_spatbn_relu"])["epsilon"]),  # a float32 in the proto
                stem="the convolution's own padding of {}".format(conv1["pad"]),
                pool="MaxPool {k}x{k}, stride {s}, pad {p} (Caffe2 pools the real cells only), {m}".format(
                    k=pool["kernel"], s=pool["stride"], p=pool.get("pad", 0),
                    m="legacy_pad {}".format(pool["legacy_pad"]) if "legacy_pad" in pool else "floor"),
                layout=conv1["order"].decode(), preprocessing="none shipped",
                conv_bias=biased([c for c, _, _, _, _ in convs() if len(by_output[blobs(c)[0]].input) == 3]))


def biased(names):
    return "every convolution" if len(names) == len(convs()) else ", ".join(names) or "none"


def runtime_info():
    import torch
    return dict(version="caffe2 in torch {}".format(torch.__version__), device="gpu" if GPU else "cpu",
                device_note=WHY_CPU, gpu="GPU 0" if GPU else None, layout="NCHW",
                tf32_conv=GPU and nvidia_tf32(), tf32_matmul=GPU and nvidia_tf32())
