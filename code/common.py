"""The one place for hyperparameters, profiles, models and framework names.

Imported by every framework module and by the harness, in every environment:
keep it importable on Python 3.6 (no dataclasses, no walrus, standard library only).
"""
import importlib
import os
import sys
from collections import OrderedDict

# The seed's hyperparameters, shared by every framework.
BATCH_SIZE = 64
LR = 0.01
MOMENTUM = 0.9
N_CLASSES = 10
SEED = 42
N_PARAMS = 3441592  # the seed's model, as Keras 2 counted it

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.environ.get("ROSETTA_DATA_DIR", os.path.join(ROOT, "data"))
RESULTS_DIR = os.environ.get("ROSETTA_RESULTS_DIR", os.path.join(DATA_DIR, "results"))

# n_train / n_test of None mean the whole split (50,000 / 10,000 images for CIFAR-10;
# Fashion-MNIST's 60,000 training images are cut to 50,000 so epochs are comparable).
PROFILES = OrderedDict([
    ("full", dict(epochs=10, n_train=50000, n_test=10000, timeout=3600,
                  about="the seed's configuration: 10 epochs over 50,000 images, batch 64")),
    ("quick", dict(epochs=3, n_train=3200, n_test=1280, timeout=900,
                   about="a CPU-sized run: 3 epochs over 3,200 images")),
    ("fidelity", dict(epochs=4, n_train=6400, n_test=2560, timeout=1800,
                      about="long enough for accuracies to settle: 4 epochs over 6,400 images")),
    ("smoke", dict(epochs=2, n_train=128, n_test=128, timeout=300,
                   about="a few steps, for tests: 2 epochs over 128 images")),
])

# The models the book trains: each a folder of code/ with its framework modules (faithful, tuned,
# data-parallel), its framework-neutral weight layout and its NumPy reference, each named as the
# model's modules import it.
# What each model has that the lab and the pages read, so no machinery branches on a model's name:
# folder, its modules by role (data, weights, reference, baseline), what its inputs are called,
# prefix: how its rows are named after the CNN's (FRAMEWORKS=pytorch names rnn-pytorch);
# reference_data: its data module's loader and arguments for the NumPy reference's layout;
# init: "glorot" where every row overrides its framework's init (the own-init pair measures the
# default), "own" where each keeps its framework's; purpose: "" where its run can be the book's
# latest, else the purpose its runs record; book_tables: the page module that writes its committed
# tables; book_checks: the check tables its pages measure when the book is built (where none made by
# this code on a machine of this kind is cached or committed); other_form: the other function its
# reference computes, whose distance parity records; dropout: the rate of each dropout, in the
# order the model applies them (parity reads each framework's); update: "norm" where parity measures
# each array's update by its whole change, not its largest entry's (part IV: Adam's step is about lr
# wherever a gradient is near zero, so float32's rounding of a near-zero gradient moves one entry by it);
# has: what it has beyond its rows and their checks: bench.py's other runs (tuning, init-cost, own-init,
# inference, scale-out, breakdown) and a training step's FLOPs counted (flops, in its reference module);
# task: "features" where its rows train nothing (the harness runs lab/features.py's steps instead);
# baseline: a module beside its rows, run once per run (part II's bag of words, part III's ONNX Runtime);
# env_files: requirement files of its own (envs/<env>/...) that its checks' keys read beside the others.
MODELS = OrderedDict([
    ("cnn", dict(folder="cnn", label="the VGG-style CNN on CIFAR-10", data="datasets", weights="weights",
                reference="reference", inputs="images", prefix="",
                reference_data=("cifar_for_library", dict(channel_first=True)), init="glorot", purpose="",
                book_tables="weights", book_checks=("parity", "onnx", "scale-out"), dropout=(0.25, 0.25, 0.5),
                has=("tuning", "init-cost", "own-init", "inference", "scale-out", "breakdown", "flops"))),
    # Part II (book/rnn.md): its own datasets, profiles (in reviews) and baseline beside its rows.
    ("rnn", dict(folder="rnn", label="the GRU on IMDB reviews", data="reviews", weights="rnn_weights",
                reference="rnn_reference", baseline="rnn_baseline", inputs="reviews", prefix="rnn-",
                reference_data=("reviews_for_library", {}), init="own", purpose="rnn", book_tables="recurrent",
                book_checks=("parity",), other_form="B", dropout=(), has=(), dataset_names=("auto", "imdb", "synthetic"), profiles=dict(
                    # The seed's RNN: 3 epochs over the 25,000 training reviews, all 25,000 test ones.
                    full=dict(epochs=3, n_train=25000, n_test=25000, timeout=3600),
                    quick=dict(epochs=3, n_train=1920, n_test=1280, timeout=900,
                               about="a CPU-sized run: 3 epochs over 1,920 reviews"),
                    fidelity=dict(epochs=3, n_train=25000, n_test=5000, timeout=3600,
                                  about="the seed's training set: 3 epochs over the 25,000 training reviews"),
                    smoke=dict(epochs=2, n_train=128, n_test=128, timeout=300)))),
    # Part III (book/resnet.md): inference only (task "features"): each zoo's ResNet-50 cut after its
    # average pooling, run on n_test images (images.py), timed per 1,000 as the seed measured it.
    ("resnet", dict(folder="resnet", label="ResNet-50 features", data="images", weights="resnet_weights",
                   reference="resnet_reference", inputs="images", prefix="resnet-", task="features",
                   env_files=("requirements-zoo.txt",), baseline="resnet_onnxruntime",
                   reference_data=("images_for_library", dict(channel_first=True)), init="own", purpose="resnet",
                   book_tables="resnet", book_checks=("features",), dropout=(), has=(), profiles=dict(
                       full=dict(epochs=0, n_train=0, n_test=1024, timeout=1800,
                                 about="1,024 images, batches of 32"),
                       quick=dict(epochs=0, n_train=0, n_test=128, timeout=600,
                                  about="a CPU-sized run: 128 images, batches of 32, scaled to 1,000"),
                       fidelity=dict(epochs=0, n_train=0, n_test=512, timeout=1200,
                                     about="512 images, batches of 32"),
                       smoke=dict(epochs=0, n_train=0, n_test=64, timeout=300,
                                  about="two batches of 32, for tests")))),
    # Part IV (book/attention.md): part II's reviews through a Transformer encoder, Adam as part II's.
    ("attention", dict(folder="attention", label="the Transformer encoder on IMDB reviews", data="reviews",
                      weights="attention_weights", reference="attention_reference", inputs="reviews",
                      prefix="attention-", reference_data=("reviews_for_library", {}), init="glorot",
                      purpose="attention", book_tables="attention", book_checks=("parity", "defaults"),
                      dropout=(0.1,) * 6, update="norm", has=("flops",), dataset_names=("auto", "imdb", "synthetic"), profiles=dict(
                          full=dict(epochs=3, n_train=25000, n_test=25000, timeout=3600),
                          quick=dict(epochs=3, n_train=512, n_test=512, timeout=900,
                                     about="a CPU-sized run: 3 epochs over 512 reviews"),
                          fidelity=dict(epochs=3, n_train=25000, n_test=5000, timeout=3600,
                                        about="the seed's training set: 3 epochs over the 25,000 training reviews"),
                          smoke=dict(epochs=2, n_train=128, n_test=128, timeout=300)))),
])

# name -> model, its module in the model's folder, environment (envs/<env>/), tab label, extra
# environment variables.
FRAMEWORKS = OrderedDict([
    ("pytorch", dict(model="cnn", module="cnn_pytorch", env="main", label="PyTorch")),
    ("tensorflow", dict(model="cnn", module="cnn_tensorflow", env="main", label="TensorFlow")),
    ("keras-tensorflow", dict(model="cnn", module="cnn_keras", env="main", label="Keras 3",
                              vars={"KERAS_BACKEND": "tensorflow"})),
    ("keras-jax", dict(model="cnn", module="cnn_keras", env="main", label="Keras 3",
                       vars={"KERAS_BACKEND": "jax"})),
    ("keras-torch", dict(model="cnn", module="cnn_keras", env="main", label="Keras 3",
                         vars={"KERAS_BACKEND": "torch"})),
    ("jax", dict(model="cnn", module="cnn_jax", env="main", label="JAX")),
    ("mxnet", dict(model="cnn", module="cnn_mxnet", env="mxnet", label="MXNet", legacy=(
        "MXNet's last release was 1.9.1 (2022), and Apache retired the project in 2023. Gluon's "
        "imperative style with `hybridize` translates most directly to PyTorch with `torch.compile`."))),
    ("chainer", dict(model="cnn", module="cnn_chainer", env="chainer", label="Chainer", legacy=(
        "Chainer's last release was 7.8.1. Its maker, Preferred Networks, moved to PyTorch in 2019, "
        "and Chainer's define-by-run API maps almost line by line to PyTorch's."))),
    ("cntk", dict(model="cnn", module="cnn_cntk", env="cntk", label="CNTK", legacy=(
        "CNTK's last release was 2.7 (2019), after which Microsoft stopped its development. Its "
        "layers API is closest to Keras 3; its models can be carried over through ONNX."))),
    ("keras-cntk", dict(model="cnn", module="cnn_keras2", env="cntk", label="Keras 2 (CNTK)", vars={"KERAS_BACKEND": "cntk"},
                        legacy=("Multi-backend Keras, CNTK included, ended with Keras 2.3 (2019). Keras 3 "
                                "(its own tab) is the modern API, on TensorFlow, JAX or PyTorch."))),
    ("caffe2", dict(model="cnn", module="cnn_caffe2", env="caffe2", label="Caffe2", legacy=(
        "Caffe2 was merged into PyTorch in 2018 and built into it by default until PyTorch 1.11 "
        "(this runs the one in PyTorch 1.8.1). Its replacement is PyTorch itself."))),
])

# The tuned rows ("Make it fast"): each is its faithful twin's module with a few changes for speed
# (code/cnn/cnn_<twin>_tuned.py, only the functions that change), run in its twin's environment.
TUNED = OrderedDict((name + "-tuned", dict(FRAMEWORKS[name], module=FRAMEWORKS[name]["module"] + "_tuned", twin=name))
                    for name in ("pytorch", "tensorflow", "keras-tensorflow", "keras-jax", "keras-torch", "jax"))
# Part II's rows, the GRU: each CNN row's twin in code/rnn/, in the same environment and tab.
RECURRENT = OrderedDict(("rnn-" + name, dict(spec, model="rnn", module="rnn" + spec["module"][len("cnn"):]))
                        for name, spec in FRAMEWORKS.items())
# Part III's rows, ResNet-50's features: one per framework again, in code/resnet/.
FEATURES = OrderedDict(("resnet-" + name, dict(spec, model="resnet", module="resnet" + spec["module"][len("cnn"):]))
                       for name, spec in FRAMEWORKS.items())
# Part IV's rows, the Transformer encoder: one per framework, in code/attention/.
ATTENTION = OrderedDict(("attention-" + name, dict(spec, model="attention", module="attention" + spec["module"][len("cnn"):]))
                        for name, spec in FRAMEWORKS.items())
ROWS = OrderedDict(list(FRAMEWORKS.items()) + list(TUNED.items()) + list(RECURRENT.items())
                   + list(FEATURES.items()) + list(ATTENTION.items()))  # every row

# The data-parallel rows ("Scale out"): each framework's module on its own distributed engine, in its
# model's folder (only the functions that change), and the launcher that starts its processes.
PARALLEL = OrderedDict([
    ("pytorch", dict(module="cnn_pytorch_parallel", launcher="torchrun")),
    ("keras-jax", dict(module="cnn_keras_parallel", launcher="jax")),
    ("keras-torch", dict(module="cnn_keras_torch_parallel", launcher="torchrun")),
    ("jax", dict(module="cnn_jax_parallel", launcher="jax")),
    ("tensorflow", dict(module="cnn_tensorflow_parallel", launcher="tf")),
    ("mxnet", dict(module="cnn_mxnet_parallel", launcher="dmlc")),
    ("chainer", dict(module="cnn_chainer_parallel", launcher="mpiexec")),
    ("caffe2", dict(module="cnn_caffe2_parallel", launcher="gloo")),
    ("cntk", dict(module="cnn_cntk_parallel", launcher="mpiexec")),
    ("keras-cntk", dict(module="cnn_keras2_parallel", launcher="mpiexec")),
])

DATASETS = ("auto", "cifar10", "fashion-mnist", "synthetic")  # the CNN's; a model may name its own


class UsageError(ValueError):
    """Bad input from the command line or the environment: the message says what to do."""


def check_choice(kind, value, choices):
    if value not in choices:
        raise UsageError("unknown {} {!r}: choose one of {}".format(kind, value, ", ".join(choices)))
    return value


def parse_frameworks(text):
    """'pytorch,jax' -> ['pytorch', 'jax'], in the order given, each name checked."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError("no framework named: give FRAMEWORKS=pytorch,jax,...")
    for name in names:
        check_choice("framework", name, list(ROWS))
    return names


def tab(framework):
    """The framework's tab in the book: its module's name without the model's prefix (`cnn_`; the
    Keras rows share one; a tuned row is in its twin's tab)."""
    spec = ROWS[ROWS[framework].get("twin", framework)]
    return spec["module"][len(spec["model"]) + 1:]


def model_dir(model):
    return os.path.join(ROOT, "code", MODELS[model]["folder"])


def module_path(framework):
    """The file of a row's module."""
    return os.path.join(model_dir(ROWS[framework]["model"]), ROWS[framework]["module"] + ".py")


def model_module(model, role):
    """A model's module by its role ("data", "weights", "reference"; or a module's name), its folder put on
    sys.path first: the model's modules import each other by name."""
    folder = model_dir(model)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(MODELS[model].get(role, role))


def n_params(model):
    """The parameter count of the seed's `model`: part II's its weights module says; the CNN's N_PARAMS."""
    return getattr(model_module(model, "weights"), "N_PARAMS", N_PARAMS)


def datasets_of(model):
    return MODELS[model].get("dataset_names", DATASETS)


def model_of(frameworks):
    """The one model these rows train."""
    models = {ROWS[f]["model"] for f in frameworks} or {next(iter(MODELS))}
    if len(models) > 1:
        raise UsageError("these rows train different models ({}): name one model's rows".format(", ".join(sorted(models))))
    return models.pop()


def implemented_frameworks(tuned=False, model="cnn"):
    """The frameworks whose module exists, the chapters' (faithful) rows; with tuned=True, each tuned
    row right after its twin (the default set to run: the two measured minutes apart). Another
    model's rows with model="rnn"."""
    names = [n for n, spec in ROWS.items() if spec["model"] == model and (tuned or "twin" not in spec)]
    names.sort(key=lambda n: list(ROWS).index(ROWS[n].get("twin", n)))  # stable: the twin first
    return [n for n in names if os.path.exists(module_path(n))]


def profile(name, model="cnn"):
    """A profile's sizes for `model` (part II's are in reviews, and fewer)."""
    return dict(PROFILES[check_choice("profile", name, list(PROFILES))], **MODELS[model].get("profiles", {}).get(name, {}))

# Precision policy of the default tier: strict float32 everywhere, TF32 off for convolutions
# and matrix products alike (the seed's GPUs had no TF32, and frameworks' defaults differ).
# ROSETTA_TF32=1 allows it everywhere instead; each result records what the framework reports.
FLOAT = "float32"
TF32 = os.environ.get("ROSETTA_TF32", "0") == "1"


def environment(framework):
    """The variables a framework's process sets before it imports the framework (harness.py, and the
    whole programs of the book): its registry entry's, and under the float32 policy
    NVIDIA_TF32_OVERRIDE=0, read by cuDNN and cuBLAS when they load: no TF32 in any framework."""
    env = OrderedDict(sorted(ROWS[framework].get("vars", {}).items()))
    if not TF32:
        env["NVIDIA_TF32_OVERRIDE"] = "0"
    return env


def torch_gpu_or_why_not():
    """(True, None) where this torch runs a kernel on its first GPU, else (False, why): a CUDA 13
    build lists a Pascal or Volta GPU but has no code for it, and only running something tells."""
    import torch
    if not torch.cuda.is_available():
        return False, ("this torch is a CPU build" if torch.version.cuda is None
                       else "torch's CUDA {} finds no GPU it can use".format(torch.version.cuda))
    try:
        (torch.ones(1, device="cuda") + 1).item()
        return True, None
    except RuntimeError as e:
        return False, "torch's CUDA {} build cannot run on this GPU: {}".format(
            torch.version.cuda, str(e).strip().splitlines()[0])


def nvidia_tf32():
    """Whether cuDNN and cuBLAS may use TF32 in this process, as frameworks without a switch of
    their own (MXNet, CuPy for Chainer, CNTK, Caffe2) see it: NVIDIA_TF32_OVERRIDE=0, which the
    harness sets where the policy says float32, forbids it in every library at once."""
    return os.environ.get("NVIDIA_TF32_OVERRIDE") != "0"
