"""Part IV's defaults, read from the installed framework, and what keeping one costs (the CNN's are
lab/introspect.py's):

    python -m lab.attention_defaults TAB OUT.npz     (in the framework's environment, code/attention/
                                                      on its path)

prints JSON rows (topic, value, how: `measured`, a layer run on a known input, or `read`, from the
framework's signature) and writes OUT.npz: the row's logits on part IV's parity batch for the shared
weights, as the module computes them and with each default the module overrides kept instead (a
translation that left the argument out). The page compares each with the NumPy reference's logits.
Python 3.6 compatible.
"""
import json
import sys

import numpy as np

import common
from lab import parity
from lab.introspect import default, row

MODEL = "attention"
aw = common.model_module(MODEL, "weights")

# A layer norm asked for epsilon 0.5 on [-1, 1] (variance 1) gives 1 / sqrt(1.5) with epsilon on the
# variance, 1 / 1.5 on the standard deviation.
WHERE_EPS = {"the variance": 1 / np.sqrt(1.5), "the standard deviation": 1 / 1.5}
GELU_AT_1 = {"exact (erf)": 0.8413447460685429, "tanh approximation": 0.8411919906082768}


def named(value):
    return getattr(value, "__name__", value)


def nearest(value, forms):
    name, want = min(forms.items(), key=lambda kv: abs(kv[1] - float(value)))
    return name if abs(want - float(value)) < 1e-5 else "neither ({:.6f})".format(float(value))


def norm_rows(call, eps, normalized, scale_shape):
    return [row("layer norm's epsilon", "{}: {}".format(call, eps), "read"),
            row("where epsilon enters", nearest(normalized, WHERE_EPS), "measured"),
            row("layer norm's scale", "shape {} for 128 features".format(tuple(scale_shape)), "measured")]


def gelu_row(*calls):
    """(call, its value at 1, the argument for the exact form) for each GELU the framework has."""
    return row("GELU's default form", "; ".join("{}: {}, exact with {}".format(call, nearest(at_1, GELU_AT_1), exact)
                                                for call, at_1, exact in calls), "measured")


def attends(out, values):
    """What a True mask entry meant, from an attention of one query over two keys whose values are 0 and
    1, True on the second key only: its output 1 if True means attend, 0 if ignore."""
    return "attend" if abs(float(out) - values[1]) < 1e-4 else "ignore" if abs(float(out) - values[0]) < 1e-4 else (
        "neither ({:.4f})".format(float(out)))


def init_row(*calls):
    """(call, weights) of each default kernel the framework has: uniform or normal (by the weights'
    kurtosis: 1.8 uniform, 3 normal), their spread, and that against Glorot-uniform's for a 128 x 128
    projection, the model's (std sqrt(2 / 256))."""
    found = []
    for call, w in calls:
        w = np.asarray(w, np.float64).ravel()
        kurtosis = np.mean((w - w.mean()) ** 4) / w.var() ** 2
        found.append("{}: {}, std {:.3f}, {:.2f}x Glorot's".format(
            call, "uniform" if kurtosis < 2.1 else "normal", w.std(), w.std() / np.sqrt(2.0 / (2 * aw.EMBED))))
    return row("default kernel init", "; ".join(found), "measured")


def scale_row(call, weight_of_first):
    """The scores' scale, from an attention of a query [1, 1, 1, 1] over itself and a zero key: its weight
    on the first is sigmoid(4 * scale), so 1 / sqrt(4) gives 0.881 and no scale 0.982."""
    scale = np.log(weight_of_first / (1 - weight_of_first)) / 4
    return row("the scores' scale", "{}: {:.3f} for a head of 4 ({})".format(
        call, scale, "1/sqrt(head size)" if abs(scale - 0.5) < 1e-4 else "not 1/sqrt(head size)"), "measured")


def pytorch(module, logits):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    layer = nn.TransformerEncoderLayer.__init__
    norm = nn.LayerNorm(2, eps=0.5)(torch.tensor([[-1.0, 1.0]]))[0, 1].item()
    q, v = torch.zeros(1, 1, 2), torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])
    sdpa = F.scaled_dot_product_attention(q, v, v, attn_mask=torch.tensor([[False, True]]))[0, 0, 0].item()
    mha = nn.MultiheadAttention(2, 1, batch_first=True, bias=False)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.eye(2).repeat(3, 1) * torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0, 1.0])[:, None])
        mha.out_proj.weight.copy_(torch.eye(2))
        padding = mha(q, v, v, key_padding_mask=torch.tensor([[False, True]]))[0][0, 0, 0].item()
    rows = norm_rows("nn.LayerNorm", default(nn.LayerNorm.__init__, "eps"), norm, nn.LayerNorm(128).weight.shape) + [
        gelu_row(("nn.GELU()", F.gelu(torch.tensor(1.0)).item(), "approximate=\"none\" (its default)")),
        row("a True mask entry means", "{} in MultiheadAttention's key_padding_mask; {} in scaled_dot_product_attention's "
            "attn_mask".format(attends(padding, [0, 1]), attends(sdpa, [0, 1])), "measured"),
        row("q, k, v stored as", "one packed in_proj_weight {}".format(tuple(nn.MultiheadAttention(128, 4).in_proj_weight.shape)),
            "read"),
        init_row(("nn.Linear", nn.Linear(128, 128).weight.detach().numpy()),
                 ("MultiheadAttention's in_proj_weight", nn.MultiheadAttention(128, 4).in_proj_weight.detach().numpy())),
        scale_row("scaled_dot_product_attention", F.scaled_dot_product_attention(
            torch.ones(1, 1, 4), torch.tensor([[[1.0] * 4, [0.0] * 4]]), torch.tensor([[[1.0], [0.0]]]))[0, 0, 0].item()),
        row("encoder layer's defaults", "norm_first={}, activation={}, batch_first={}".format(
            default(layer, "norm_first"), named(default(layer, "activation")), default(layer, "batch_first")), "read"),
        row("AdamW's weight decay", default(torch.optim.AdamW.__init__, "weight_decay"), "read")]
    model, trainer = logits.build(module)
    for block in model.blocks:
        block.norm_first = default(layer, "norm_first")
    traps = {"norm_first={} (post-norm), its default".format(default(layer, "norm_first")): logits(trainer)}
    for block in model.blocks:
        block.norm_first, block.activation, block.activation_relu_or_gelu = True, F.relu, 1
    traps["activation={}, its default".format(named(default(layer, "activation")))] = logits(trainer)
    for block in model.blocks:
        block.activation, block.activation_relu_or_gelu = F.gelu, 2
    forward = nn.TransformerEncoderLayer.forward
    nn.TransformerEncoderLayer.forward = lambda self, x, src_key_padding_mask=None: forward(
        self, x, src_key_padding_mask=~src_key_padding_mask)
    traps["the mask as scaled_dot_product_attention reads it (True = attend)"] = logits(trainer)
    nn.TransformerEncoderLayer.forward = forward
    for block in model.blocks:  # the reviews batch first, read as the layer's default reads them: time first
        block.self_attn.batch_first = default(layer, "batch_first")
    try:
        traps["batch_first={}, its default".format(default(layer, "batch_first"))] = logits(trainer)
    except Exception as e:  # the padding mask's shape no longer fits: an error, not a silent difference
        rows.append(row("batch_first={} on batch-first reviews".format(default(layer, "batch_first")),
                        "{}: {}".format(type(e).__name__, str(e).strip().splitlines()[0][:160]), "measured"))
    return rows, traps


def keras(module, logits):
    import keras
    from keras import layers
    norm = layers.LayerNormalization(epsilon=0.5)
    at = float(keras.ops.convert_to_numpy(norm(np.array([[-1.0, 1.0]], np.float32)))[0, 1])
    wide = layers.LayerNormalization()
    wide.build((None, 128))
    mha = layers.MultiHeadAttention(4, 32)
    x = np.zeros((1, 2, 128), np.float32)
    mha(x, x)
    eps = default(layers.LayerNormalization.__init__, "epsilon")
    rows = norm_rows("LayerNormalization", eps, at, wide.gamma.shape) + [
        gelu_row(("keras.activations.gelu", float(keras.activations.gelu(np.float32(1.0))), "approximate=False (its default)"),
                 ("keras.ops.gelu", float(keras.ops.gelu(np.float32(1.0))), "approximate=False")),
        row("a True mask entry means", attention_mask(layers), "measured"),
        row("q, k, v stored as", "a kernel each, query {}".format(tuple(mha.query_dense.kernel.shape)), "read"),
        init_row(("Dense", keras.ops.convert_to_numpy(dense_kernel(layers))),
                 ("MultiHeadAttention's query kernel", keras.ops.convert_to_numpy(mha.query_dense.kernel))),
        scale_row("ops.dot_product_attention", float(keras.ops.convert_to_numpy(keras.ops.dot_product_attention(
            np.ones((1, 1, 1, 4), np.float32), np.array([[[[1.0] * 4], [[0.0] * 4]]], np.float32),
            np.array([[[[1.0]], [[0.0]]]], np.float32)))[0, 0, 0, 0])),
        row("AdamW's weight decay", default(keras.optimizers.AdamW.__init__, "weight_decay"), "read")]
    module.EPS = eps
    traps = {"LayerNormalization's epsilon {}".format(eps): logits(logits.build(module)[1])}
    module.EPS = aw.EPS
    model, trainer = logits.build(module)
    for layer in model.layers:
        if layer.name.endswith("_ff1"):
            layer.activation = keras.ops.gelu  # the call as a translation writes it: keras.ops.gelu(x)
    traps["keras.ops.gelu's default (tanh)"] = logits(trainer)
    return rows, traps


def dense_kernel(layers):
    dense = layers.Dense(128)
    dense.build((None, 128))
    return dense.kernel


def attention_mask(layers):
    mha = layers.MultiHeadAttention(1, 2, use_bias=False)
    q, v = np.zeros((1, 1, 2), np.float32), np.array([[[0.0, 0.0], [1.0, 1.0]]], np.float32)
    mha(q, v)
    mha.set_weights([np.zeros((2, 1, 2), np.float32), np.zeros((2, 1, 2), np.float32),
                     np.eye(2, dtype=np.float32)[:, None, :], np.eye(2, dtype=np.float32)[None]])
    import keras
    out = keras.ops.convert_to_numpy(mha(q, v, attention_mask=np.array([[[False, True]]])))
    return "{} in MultiHeadAttention's attention_mask".format(attends(out[0, 0, 0], [0, 1]))


def jax(module, logits):
    import jax as jx
    import optax
    from flax import nnx
    at = float(nnx.LayerNorm(2, epsilon=0.5, rngs=nnx.Rngs(0))(np.array([[-1.0, 1.0]], np.float32))[0, 1])
    eps = default(nnx.LayerNorm.__init__, "epsilon")
    q, v = np.zeros((1, 1, 1, 2), np.float32), np.array([[[[0.0, 0.0]], [[1.0, 1.0]]]], np.float32)
    out = nnx.dot_product_attention(q, v, v, mask=np.array([[[[False, True]]]]))
    mha = nnx.MultiHeadAttention(4, 128, rngs=nnx.Rngs(0))
    gelu = jx.nn.gelu
    rows = norm_rows("nnx.LayerNorm", eps, at, nnx.LayerNorm(128, rngs=nnx.Rngs(0)).scale.value.shape) + [
        gelu_row(("jax.nn.gelu", float(gelu(np.float32(1.0))), "approximate=False")),
        row("a True mask entry means", "{} in dot_product_attention's and MultiHeadAttention's mask".format(
            attends(out[0, 0, 0, 0], [0, 1])), "measured"),
        row("q, k, v stored as", "a kernel each, query {}".format(tuple(mha.query.kernel.shape)), "read"),
        init_row(("nnx.Linear", np.asarray(nnx.Linear(128, 128, rngs=nnx.Rngs(0)).kernel[...])),
                 ("MultiHeadAttention's query kernel", np.asarray(mha.query.kernel[...]))),
        scale_row("dot_product_attention", float(nnx.dot_product_attention(  # its values as wide as its keys
            np.ones((1, 1, 1, 4), np.float32), np.array([[[[1.0] * 4], [[0.0] * 4]]], np.float32),
            np.array([[[[1.0] * 4], [[0.0] * 4]]], np.float32))[0, 0, 0, 0])),
        row("attention dropout's mask", "broadcast_dropout={}: one mask for every review and head".format(
            default(nnx.MultiHeadAttention.__init__, "broadcast_dropout")), "read"),
        row("AdamW's weight decay", default(optax.adamw, "weight_decay"), "read")]
    traps = {}
    jx.nn.gelu = lambda x, approximate=True: gelu(x)  # the call as a translation writes it: gelu(x)
    traps["jax.nn.gelu's default (tanh)"] = logits(logits.build(module)[1])
    jx.nn.gelu, module.EPS = gelu, eps
    traps["nnx.LayerNorm's epsilon {}".format(eps)] = logits(logits.build(module)[1])
    return rows, traps


def tensorflow(module, logits):
    import tensorflow as tf
    return [gelu_row(("tf.nn.gelu", float(tf.nn.gelu(tf.constant(1.0))), "approximate=False (its default)")),
            row("layer norm's epsilon", "none below Keras: tf.nn.moments and the module's 1e-5", "read")], {}


def mxnet(module, logits):
    import mxnet as mx
    from mxnet.gluon import nn
    norm = nn.LayerNorm(epsilon=0.5, in_channels=2)
    norm.initialize()
    wide = nn.LayerNorm(in_channels=128)
    gelu = nn.GELU()
    dense = nn.Dense(128, in_units=128)
    dense.initialize()
    return [init_row(("nn.Dense with initialize()", dense.weight.data().asnumpy()))] + norm_rows("nn.LayerNorm", default(nn.LayerNorm.__init__, "epsilon"), norm(mx.nd.array([[-1.0, 1.0]]))[0, 1].asscalar(),
                     wide.gamma.shape) + [gelu_row(("nn.GELU", gelu(mx.nd.array([1.0]))[0].asscalar(), "nn.GELU()"))], {}


def chainer(module, logits):
    import chainer as ch
    import chainer.functions as F
    import chainer.links as L
    at = L.LayerNormalization(2, eps=0.5)(np.array([[-1.0, 1.0]], np.float32)).array[0, 1]
    eps = default(L.LayerNormalization.__init__, "eps")
    softmax_axis = default(F.softmax, "axis")
    rows = norm_rows("L.LayerNormalization", eps, at, L.LayerNormalization(128).gamma.shape)
    rows[0]["value"] += "; F.layer_normalization: {}".format(default(F.layer_normalization, "eps"))
    rows += [
        init_row(("L.Linear", L.Linear(128, 128).W.array)),
        row("softmax's axis", "F.softmax: axis={}".format(softmax_axis), "read"),
        row("AdamW's weight decay", "optimizers.AdamW: weight_decay_rate={}".format(
            default(ch.optimizers.AdamW.__init__, "weight_decay_rate")), "read")]
    traps = {}
    module.EPS = eps
    traps["L.LayerNormalization's epsilon {}".format(eps)] = logits(logits.build(module)[1])
    module.EPS, softmax = aw.EPS, F.softmax
    F.softmax = lambda x, axis=softmax_axis: softmax(x)  # the call as a translation writes it: softmax(x)
    traps["F.softmax's axis {}, over the heads".format(softmax_axis)] = logits(logits.build(module)[1])
    F.softmax = softmax
    return rows, traps


def cntk(module, logits):
    import cntk as C
    x = C.input_variable(2)
    at = C.layers.LayerNormalization(epsilon=0.5)(x).eval({x: np.array([[-1.0, 1.0]], np.float32)})[0, 1]
    wide = C.layers.LayerNormalization()(C.input_variable(128))
    dense = C.layers.Dense(128)(C.input_variable(128))
    eps = default(C.layers.LayerNormalization, "epsilon")
    return norm_rows("layers.LayerNormalization", getattr(eps, "value", eps), at,  # a default_override_or
                     [p.shape for p in wide.parameters][0]) + [init_row(("layers.Dense", dense.W.value))], {}


def keras2(module, logits):
    import keras
    return [row("layer norm, attention, GELU", "none in Keras {}".format(keras.__version__), "read")], {}


def caffe2(module, logits):
    from caffe2.python import core, workspace

    def run(op, x, **kwargs):
        workspace.FeedBlob("x", np.array(x, np.float32))
        workspace.RunOperatorOnce(core.CreateOperator(op, ["x"], ["y"] + (["m", "s"] if op == "LayerNorm" else []), **kwargs))
        return workspace.FetchBlob("y").ravel()
    small = run("LayerNorm", [[-1e-2, 1e-2]], axis=1)[1]  # variance 1e-4, where a default of 1e-5 shows
    schema = next(a.description for a in workspace.C.OpSchema.get("LayerNorm").args if a.name == "epsilon")
    return [row("layer norm's epsilon", "LayerNorm: {:.0e}".format(1e-4 * (1 / small ** 2 - 1)), "measured"),
            row("where epsilon enters", nearest(run("LayerNorm", [[-1.0, 1.0]], axis=1, epsilon=0.5)[1], WHERE_EPS),
                "measured"),
            row("what its schema says of epsilon", schema, "read"),
            gelu_row(("Gelu", run("Gelu", [1.0])[0], "fast_gelu=0 (its default)"))], {}


class Logits:
    """The row's logits on part IV's parity batch (the synthetic corpus's first batch of parity.PROFILE)
    for the shared weights, dropout off: build(module) makes the row's model, the call its logits."""

    def __init__(self, tab):
        import datasets
        self.tab, self.weights, self.x = tab, aw.random_weights(parity.WEIGHT_SEED), None
        self.datasets = datasets
        common.model_module(MODEL, "data").prepare("synthetic")

    def build(self, module):
        self.module = module
        if self.x is None:
            x, _, y, _ = module.load_data("synthetic", parity.PROFILE)
            self.x = next(iter(self.datasets.minibatches(x, y)))[0]
        model = module.create_model()
        trainer = module.init_model(model)
        module.set_weights(model, self.weights)
        return model, trainer

    def __call__(self, trainer):
        return np.asarray(parity.logits(self.tab, self.module, trainer, self.x), np.float64)


def main(tab, out):
    parity.no_dropout(tab)
    module = common.model_module(MODEL, "attention_" + tab)
    logits = Logits(tab)
    rows, traps = globals()[tab](module, logits)
    module.EPS = aw.EPS
    asked = logits(logits.build(module)[1])  # as the module asks: the reference's logits, within parity's tolerance
    np.savez(out, x=logits.x, asked=asked, **{"trap{}".format(i): v for i, v in enumerate(traps.values())})
    print(json.dumps(dict(rows=rows, traps=list(traps))))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
