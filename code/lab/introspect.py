"""Read a framework's defaults from the installed framework, for the book's defaults chapter.

    python -m lab.introspect TAB        (pytorch, tensorflow, keras, jax, ...; prints JSON rows)

Run in the framework's own environment at book build time, so the table stays true when versions
change. Each row says how its value was found: `measured` (a default layer built and its weights
examined), `read` (from the framework's API or signature) or `stated` (documented behaviour that
cannot be read, with its source). Python 3.6 compatible.
"""
import inspect
import json
import os
import sys

import numpy as np

# A default 3x3 convolution from 50 to 100 channels: the fans that each init rule would use.
C_IN, C_OUT, K = 50, 100, 3
FAN_IN, FAN_OUT = C_IN * K * K, C_OUT * K * K
CANDIDATES = {  # name -> (distribution, standard deviation)
    "Glorot-uniform": ("uniform", np.sqrt(2.0 / (FAN_IN + FAN_OUT))),
    "Kaiming-uniform with a=sqrt(5), i.e. U(±1/sqrt(fan_in))": ("uniform", np.sqrt(1.0 / (3 * FAN_IN))),
    "He-uniform": ("uniform", np.sqrt(2.0 / FAN_IN)),
    "LeCun-uniform": ("uniform", np.sqrt(1.0 / FAN_IN)),
    "LeCun-normal": ("normal", np.sqrt(1.0 / FAN_IN)),
    "Glorot-normal": ("normal", np.sqrt(2.0 / (FAN_IN + FAN_OUT))),
    "He-normal": ("normal", np.sqrt(2.0 / FAN_IN)),
    "Uniform(±0.07), whatever the layer's size": ("uniform", 0.07 / np.sqrt(3)),
}


def classify_weights(w):
    """Name the init rule whose distribution and scale match these weights."""
    w = np.asarray(w, dtype=np.float64).ravel()
    # Kurtosis: 1.8 for a uniform, 2.37 for a normal truncated at 2 sigma, 3 for a normal.
    kurtosis = np.mean((w - w.mean()) ** 4) / w.var() ** 2
    shape = "uniform" if kurtosis < 2.1 else "normal"
    best = min((abs(np.log(w.std() / std)), name) for name, (dist, std) in CANDIDATES.items() if dist == shape)
    if best[0] > 0.03:  # 45,000 weights give their std to about 0.3%
        return "{} with std {:.4f} (no common rule)".format(shape, w.std())
    truncated = shape == "normal" and np.abs(w).max() < 2.2 * w.std() / 0.88  # cut at 2 std of the untruncated
    return best[1] + (" (truncated)" if truncated else "")


def classify_bias(b):
    b = np.asarray(b, dtype=np.float64).ravel()
    if not b.any():
        return "zeros"
    return "uniform within ±{:.4f} (1/sqrt(fan_in) = {:.4f})".format(np.abs(b).max(), 1 / np.sqrt(FAN_IN))


def row(topic, value, how):
    return dict(topic=topic, value=str(value), how=how)


def default(fn, name):
    return inspect.signature(fn).parameters[name].default


def pooled(call, shape):
    """A row for a 2x2 max pooling with its stride left out, run on a 7x7 input: a stride of 1, or
    a last window that covers the border, changes every shape after it."""
    h, w = [int(d) for d in shape]
    return row("max pooling, stride left out", "{}: a 7x7 input gives {}x{}".format(call, h, w), "measured")


def pytorch():
    import torch
    import torch.nn as nn
    conv = nn.Conv2d(C_IN, C_OUT, K)
    sgd = torch.optim.SGD
    return [
        row("weight init", classify_weights(conv.weight.detach().numpy()), "measured"),
        row("bias init", classify_bias(conv.bias.detach().numpy()), "measured"),
        row("conv padding", "padding={!r} (valid)".format(default(nn.Conv2d.__init__, "padding")), "read"),
        row("data layout", "NCHW (weight shape {})".format(tuple(conv.weight.shape)), "read"),
        pooled("MaxPool2d(2)", nn.MaxPool2d(2)(torch.zeros(1, 1, 7, 7)).shape[2:]),
        row("SGD momentum", "momentum={}, dampening={}, nesterov={}; v = m v + g, w -= lr v".format(
            default(sgd.__init__, "momentum"), default(sgd.__init__, "dampening"),
            default(sgd.__init__, "nesterov")), "read"),
        row("dropout at inference", "on until model.eval() (training={})".format(nn.Dropout().training), "read"),
        row("float type", str(torch.get_default_dtype()).replace("torch.", ""), "read"),
        row("TF32", "convolutions {}, matrix products {}".format(
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32), "read"),
        row("cuDNN autotuning", "benchmark={}".format(torch.backends.cudnn.benchmark), "read"),
        row("random seed", "a new one per process (initial_seed() = {})".format(torch.initial_seed()), "read"),
        row("CPU threads", torch.get_num_threads(), "read"),
    ]


def tensorflow():
    import tensorflow as tf
    return [
        row("weight init", "none: tf.nn ops take the variables you create", "stated: tf.nn API"),
        row("conv padding", "required argument of tf.nn.conv2d (no default)",
            "read" if default(tf.nn.conv2d, "padding") is inspect.Parameter.empty else "read: has a default"),
        row("data layout", "data_format={!r}".format(default(tf.nn.conv2d, "data_format")), "read"),
        row("max pooling, stride left out", "strides is a required argument of tf.nn.max_pool2d"
            if default(tf.nn.max_pool2d, "strides") is inspect.Parameter.empty else "strides has a default", "read"),
        row("SGD momentum", "no optimizer outside Keras (tf.keras.optimizers)", "stated: TensorFlow 2 API"),
        row("dropout at inference", "tf.nn.dropout always drops: the caller skips it", "stated: tf.nn.dropout docs"),
        row("float type", "float32 (tf.constant(1.0).dtype = {})".format(tf.constant(1.0).dtype.name), "read"),
        row("TF32", "enabled={}".format(tf.config.experimental.tensor_float_32_execution_enabled()), "read"),
        row("cuDNN autotuning", "on (TF_CUDNN_USE_AUTOTUNE={})".format(os.environ.get("TF_CUDNN_USE_AUTOTUNE", "unset: on")),
            "stated: TensorFlow's GPU docs"),
        row("random seed", "none set: tf.random.set_seed fixes the graph-level seed", "stated: tf.random docs"),
        row("CPU threads", "intra-op {} (0 = all cores)".format(tf.config.threading.get_intra_op_parallelism_threads()), "read"),
        onednn(),
    ]


def onednn():
    """TensorFlow's oneDNN switch, which moves its CPU timings: on by default only on some CPUs."""
    from tensorflow.python.util import _pywrap_util_port
    from lab import results
    features = [f for f in results.cpu_features() if f in ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_bf16")]
    return row("oneDNN on the CPU", "{} here (TF_ENABLE_ONEDNN_OPTS={}): by default TensorFlow turns it on only "
               "where the CPU has AVX512-VNNI, AVX512-BF16, AVX-VNNI or AMX; this one has {}".format(
                   "on" if _pywrap_util_port.IsMklEnabled() else "off", os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset"),
                   ", ".join(features) or "none of them"), "read: IsMklEnabled()")


def keras():
    import keras
    conv = keras.layers.Conv2D(C_OUT, K)
    conv.build((None, 32, 32, C_IN))
    w, b = [np.asarray(v) for v in conv.get_weights()]
    sgd = keras.optimizers.SGD
    return [
        row("weight init", "{} ({})".format(classify_weights(w), type(conv.kernel_initializer).__name__), "measured"),
        row("bias init", "{} ({})".format(classify_bias(b), type(conv.bias_initializer).__name__), "measured"),
        row("conv padding", "padding={!r}".format(conv.padding), "read"),
        row("data layout", "image_data_format={!r}".format(keras.config.image_data_format()), "read"),
        pooled("MaxPooling2D(2)", keras.layers.MaxPooling2D(2).compute_output_shape((1, 7, 7, 1))[1:3]),
        row("SGD momentum", "momentum={}, nesterov={}; v = m v - lr g, w += v".format(
            default(sgd.__init__, "momentum"), default(sgd.__init__, "nesterov")), "read"),
        row("dropout at inference", "off in predict() and evaluate(), on in fit()", "stated: keras.layers.Dropout docs"),
        row("float type", "floatx={!r}".format(keras.config.floatx()), "read"),
        row("backend", "{} (KERAS_BACKEND)".format(keras.backend.backend()), "read"),
        row("random seed", "none: keras.utils.set_random_seed seeds Python, NumPy and the backend", "stated: Keras docs"),
    ]


def jax():
    import jax
    import optax
    from flax import nnx
    conv = nnx.Conv(C_IN, C_OUT, kernel_size=(K, K), rngs=nnx.Rngs(0))
    dropout = nnx.Dropout(0.5, rngs=nnx.Rngs(0))
    return [
        row("weight init", classify_weights(conv.kernel[...]), "measured"),
        row("bias init", classify_bias(conv.bias[...]), "measured"),
        row("conv padding", "padding={!r}".format(default(nnx.Conv.__init__, "padding")), "read"),
        row("data layout", "NHWC (kernel shape {})".format(tuple(conv.kernel[...].shape)), "read"),
        pooled("nnx.max_pool(x, window_shape=(2, 2))",
               nnx.max_pool(jax.numpy.zeros((1, 7, 7, 1)), window_shape=(2, 2)).shape[1:3]),
        row("SGD momentum", "optax.sgd momentum={}, nesterov={}; trace = g + m trace, w -= lr trace".format(
            default(optax.sgd, "momentum"), default(optax.sgd, "nesterov")), "read"),
        row("dropout at inference", "on until model.eval() (deterministic={})".format(dropout.deterministic), "read"),
        row("float type", "param_dtype={}".format(np.dtype(default(nnx.Conv.__init__, "param_dtype")).name), "read"),
        row("TF32", "jax_default_matmul_precision={} (None: TF32 on recent NVIDIA GPUs)".format(
            jax.config.jax_default_matmul_precision), "read"),
        row("cuDNN autotuning", "XLA autotunes GPU kernels while compiling", "stated: XLA flags docs"),
        row("random seed", "none: every random call takes an explicit key (nnx.Rngs)", "stated: JAX docs"),
    ]


def mxnet():
    import mxnet as mx
    from mxnet.gluon import nn
    conv = nn.Conv2D(C_OUT, K, in_channels=C_IN)
    conv.initialize()
    sgd = mx.optimizer.SGD
    return [
        row("weight init", classify_weights(conv.weight.data().asnumpy()), "measured"),
        row("bias init", classify_bias(conv.bias.data().asnumpy()), "measured"),
        row("conv padding", "padding={!r} (valid)".format(default(nn.Conv2D.__init__, "padding")), "read"),
        row("data layout", "layout={!r}".format(default(nn.Conv2D.__init__, "layout")), "read"),
        pooled("MaxPool2D(2)", nn.MaxPool2D(2)(mx.nd.zeros((1, 1, 7, 7))).shape[2:]),
        row("SGD momentum", "momentum={}; v = m v - lr g, w += v".format(default(sgd.__init__, "momentum")), "read"),
        row("dropout at inference", "off outside autograd.record()", "stated: Gluon docs"),
        row("float type", np.dtype(conv.weight.dtype).name, "read"),
        row("cuDNN autotuning", "MXNET_CUDNN_AUTOTUNE_DEFAULT={}".format(
            os.environ.get("MXNET_CUDNN_AUTOTUNE_DEFAULT", "unset: 1, on")), "stated: MXNet env var docs"),
        row("random seed", "none set: mx.random.seed fixes it", "stated: MXNet docs"),
        row("CPU threads", "OMP_NUM_THREADS={} (with it and MXNET_OMP_MAX_THREADS unset, MXNet sets OpenMP "
            "to half the logical CPUs on x86)".format(
            os.environ.get("OMP_NUM_THREADS", "unset")), "stated: MXNet's source, src/engine/openmp.cc"),
    ]


def chainer():
    import chainer
    import chainer.functions as F
    import chainer.links as L
    conv = L.Convolution2D(C_IN, C_OUT, K)
    sgd = chainer.optimizers.MomentumSGD
    return [
        row("weight init", classify_weights(conv.W.array), "measured"),
        row("bias init", classify_bias(conv.b.array), "measured"),
        row("conv padding", "pad={} (valid)".format(default(L.Convolution2D.__init__, "pad")), "read"),
        row("data layout", "NCHW (W shape {})".format(conv.W.shape), "read"),
        pooled("max_pooling_2d(x, 2), cover_all={}".format(default(F.max_pooling_2d, "cover_all")),
               F.max_pooling_2d(np.zeros((1, 1, 7, 7), np.float32), 2).shape[2:]),
        row("SGD momentum", "MomentumSGD lr={}, momentum={}; v = m v - lr g, w += v".format(
            default(sgd.__init__, "lr"), default(sgd.__init__, "momentum")), "read"),
        row("dropout at inference", "on while chainer.config.train is true (now {})".format(chainer.config.train), "read"),
        row("float type", "chainer.config.dtype={}".format(np.dtype(chainer.config.dtype).name), "read"),
        row("cuDNN autotuning", "chainer.config.autotune={}".format(chainer.config.autotune), "read"),
        row("random seed", "NumPy's global generator (or CuPy's), unseeded", "stated: Chainer docs"),
    ]


def cntk():
    import cntk as C
    conv = C.layers.Convolution2D((K, K), C_OUT)(C.input_variable((C_IN, 8, 8)))
    w, b = [p.value for p in sorted(conv.parameters, key=lambda p: len(p.shape), reverse=True)]
    return [
        row("weight init", classify_weights(w), "measured"),
        row("bias init", classify_bias(b), "measured"),
        row("conv padding", "pad={} (valid)".format(getattr(default(C.layers.Convolution2D, "pad"), "value", "?")),
            "read"),
        row("data layout", "channels first (W shape {})".format(tuple(w.shape)), "read"),
        pooled("MaxPooling((2, 2)), strides={}".format(default(C.layers.MaxPooling, "strides")),
               C.layers.MaxPooling((2, 2))(C.input_variable((1, 7, 7))).shape[1:]),
        row("SGD momentum", "momentum_sgd unit_gain={}: v = m v + (1 - m) g when true".format(
            C.default_unit_gain_value()), "read"),
        row("dropout at inference", "on in train_minibatch, off in eval", "stated: CNTK docs"),
        row("float type", "input_variable dtype={}".format(np.dtype(C.input_variable(1).dtype).name), "read"),
        row("random seed", "none set: cntk_py.set_fixed_random_seed fixes it", "stated: CNTK docs"),
    ]


def keras2():
    import keras
    from keras import backend as K2
    conv = keras.layers.Conv2D(C_OUT, (K, K))
    conv.build((None, 32, 32, C_IN) if K2.image_data_format() == "channels_last" else (None, C_IN, 32, 32))
    w, b = conv.get_weights()
    sgd = keras.optimizers.SGD
    return [
        row("weight init", "{} ({})".format(classify_weights(w), type(conv.kernel_initializer).__name__), "measured"),
        row("bias init", "{} ({})".format(classify_bias(b), type(conv.bias_initializer).__name__), "measured"),
        row("conv padding", "padding={!r}".format(conv.padding), "read"),
        row("data layout", "image_data_format={!r}".format(K2.image_data_format()), "read"),
        pooled("MaxPooling2D((2, 2))", keras.layers.MaxPooling2D((2, 2), data_format="channels_last")
               .compute_output_shape((None, 7, 7, 1))[1:3]),
        row("SGD momentum", "lr={}, momentum={}, nesterov={}; v = m v - lr g, w += v".format(
            default(sgd.__init__, "lr"), default(sgd.__init__, "momentum"), default(sgd.__init__, "nesterov")), "read"),
        row("dropout at inference", "off in predict(), on in fit() and train_on_batch()", "stated: Keras 2 docs"),
        row("float type", "floatx={!r}".format(K2.floatx()), "read"),
        row("backend", K2.backend(), "read"),
        row("random seed", "none: initializers draw their seeds from NumPy", "stated: Keras 2 source"),
    ]


def caffe2():
    import ctypes
    import glob
    import torch
    from caffe2.python import brew, core, model_helper, optimizer, workspace
    model = model_helper.ModelHelper(name="probe")
    brew.conv(model, "x", "y", C_IN, C_OUT, K)
    workspace.RunNetOnce(model.param_init_net)
    workspace.FeedBlob("p_in", np.zeros((1, 1, 7, 7), np.float32))
    workspace.RunOperatorOnce(core.CreateOperator("MaxPool", ["p_in"], ["p_out"], kernel=2))
    # Caffe2's operators run on the OpenMP that torch bundles: ask that library for its threads.
    gomp = glob.glob(os.path.join(os.path.dirname(torch.__file__), "lib", "libgomp*"))
    threads = ctypes.CDLL(gomp[0]).omp_get_max_threads() if gomp else "unknown"
    return [
        row("weight init", classify_weights(workspace.FetchBlob("y_w")), "measured"),
        row("bias init", classify_bias(workspace.FetchBlob("y_b")), "measured"),
        row("conv padding", "pad=0 (valid)", "stated: Conv operator docs"),
        row("data layout", "order={!r}".format(model.arg_scope.get("order", "NCHW")), "read"),
        pooled("MaxPool with kernel=2", workspace.FetchBlob("p_out").shape[2:]),
        row("SGD momentum", "build_sgd momentum={}, nesterov={} (classic only with nesterov=False: "
            "v = m v + lr g, w -= v)".format(
            default(optimizer.SgdOptimizer.__init__, "momentum"),
            default(optimizer.SgdOptimizer.__init__, "nesterov")), "read"),
        row("dropout at inference", "only in a net built with is_test=True", "stated: Dropout operator docs"),
        row("float type", workspace.FetchBlob("y_w").dtype.name, "read"),
        row("CPU threads", "OpenMP's {} (1 only after workspace.GlobalInit)".format(threads), "read"),
        row("random seed", "none: DeviceOption(random_seed=...) fixes it", "stated: Caffe2 docs"),
    ]


READERS = {"pytorch": pytorch, "tensorflow": tensorflow, "keras": keras, "jax": jax, "mxnet": mxnet,
           "chainer": chainer, "cntk": cntk, "keras2": keras2, "caffe2": caffe2}

if __name__ == "__main__":
    print(json.dumps(READERS[sys.argv[1]]()))
