"""CNTK 2.7, which has no multi-head attention (its AttentionModel is additive), no GELU and no erf: each
review its MAXLEN padded ids (no sequence axis: attention reads every position at once), the attention
written out head by head (times_transpose, -1e9 added to the padding's keys, softmax over the keys),
layer norm written out (CNTK's LayerNormalization adds its epsilon to the standard deviation and, given a
(MAXLEN, EMBED) review, normalizes it whole, not word by word; measured), GELU by an erf to float32's
precision (Abramowitz and Stegun 7.1.26, within 1.5e-7), the mean over each review's own words, a dense
layer; Adam."""
import cntk as C
import numpy as np

from attention_weights import ADAM, BLOCK, BLOCK_SHAPES, BLOCKS, CLASSES, DROPOUT, EMBED, EPS, HEAD, HEADS, \
    MAXLEN, VOCAB, check
from common import BATCH_SIZE, SEED
from reviews import reviews_for_library

GPU = any(d.type() == C.device.DeviceKind.GPU for d in C.device.all_devices())
if not GPU:
    C.device.try_set_default_device(C.device.cpu())


def load_data(dataset, profile):
    return reviews_for_library(dataset, profile)


def erf(x):
    """Abramowitz and Stegun's 7.1.26: 1 - (a1 t + ... + a5 t^5) exp(-x^2), t = 1 / (1 + p |x|), odd."""
    t = 1.0 / (1.0 + 0.3275911 * C.abs(x))
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return C.element_select(C.greater_equal(x, 0), 1, -1) * (1 - poly * C.exp(-x * x))


def gelu(x):
    return 0.5 * x * (1 + erf(x / np.sqrt(2.0)))


def parameter(name, shape):
    """Matrices input-major, as CNTK multiplies (x @ w), Glorot-uniform; biases zero, scales one."""
    if len(shape) == 2:
        return C.parameter(shape[::-1], init=C.glorot_uniform(), name=name)
    return C.parameter(shape, init=1 if name.endswith("scale") else 0, name=name)


def layer_norm(x, scale, bias):
    centred = x - C.reduce_mean(x, axis=1)
    return centred / C.sqrt(C.reduce_mean(centred * centred, axis=1) + EPS) * scale + bias


def block(x, padding, b):
    p = {name: parameter("block{}_{}".format(b, name), shape) for name, shape in zip(BLOCK, BLOCK_SHAPES)}

    def linear(h, name):
        return C.times(h, p[name]) + p[name + "_bias"]
    h = layer_norm(x, p["norm1_scale"], p["norm1_bias"])
    q, k, v = linear(h, "query"), linear(h, "key"), linear(h, "value")  # (MAXLEN, EMBED)
    contexts = []
    for i in range(HEADS):
        def head(a):
            return C.slice(a, 1, i * HEAD, (i + 1) * HEAD)
        scores = C.times_transpose(head(q), head(k)) / np.sqrt(HEAD) + padding  # (queries, keys)
        weights = C.layers.Dropout(DROPOUT)(C.softmax(scores, axis=1))
        contexts.append(C.times(weights, head(v)))
    x = x + C.layers.Dropout(DROPOUT)(C.times(C.splice(*contexts, axis=1), p["out"]) + p["out_bias"])
    h = gelu(linear(layer_norm(x, p["norm2_scale"], p["norm2_bias"]), "ff1"))
    return x + C.layers.Dropout(DROPOUT)(linear(h, "ff2"))


def create_model():
    C.cntk_py.set_fixed_random_seed(SEED)
    ids = C.input_variable(MAXLEN)
    words = C.reshape(C.not_equal(ids, 0), (MAXLEN, 1))
    padding = C.reshape((words - 1) * 1e9, (1, MAXLEN))  # -1e9 on each padding key's score
    # Rows gathered by index, as part II's: CNTK's Adam updates a one-hot product's sparse gradient only on a GPU.
    token = C.parameter((VOCAB, EMBED), init=C.uniform(0.05), name="token")
    x = C.gather(token, ids) + C.parameter((MAXLEN, EMBED), init=C.uniform(0.05), name="position")
    for b in range(BLOCKS):
        x = block(x, padding, b)
    x = layer_norm(x, parameter("final_scale", (EMBED,)), parameter("final_bias", (EMBED,)))
    pooled = C.reshape(C.reduce_sum(x * words, axis=0) / C.reduce_sum(words, axis=0), EMBED)
    return C.times(pooled, parameter("dense", (CLASSES, EMBED))) + parameter("dense_bias", (CLASSES,))  # logits


def init_model(model):
    labels = C.input_variable(CLASSES, np.float32)
    loss = C.cross_entropy_with_softmax(model, labels)
    # As part II's: Adam on the minibatch's summed gradient, so the rate is per sample and epsilon scaled
    # by the size, to weigh what it weighs on the mean.
    adam = C.adam(model.parameters, lr=C.learning_parameter_schedule_per_sample(ADAM["lr"]),
                  momentum=C.momentum_schedule(ADAM["beta1"]), variance_momentum=C.momentum_schedule(ADAM["beta2"]),
                  epsilon=ADAM["eps"] * BATCH_SIZE)
    return model, labels, C.Trainer(model, loss, [adam])


def train_epoch(trainer, batches):
    model, labels, adam = trainer
    total, steps = 0.0, 0
    for x, y in batches:
        adam.train_minibatch({model.arguments[0]: x.astype(np.float32), labels: np.eye(CLASSES, dtype=np.float32)[y]})
        total, steps = total + adam.previous_minibatch_loss_average, steps + 1
    return total / steps


def logits_of_batch(trainer, x):
    model = trainer[0]
    return model.eval({model.arguments[0]: x.astype(np.float32)})


def predict(trainer, batches):
    return np.concatenate([logits_of_batch(trainer, x).argmax(axis=1) for x in batches])


def count_params(model):
    return sum(int(np.prod(p.shape)) for p in model.parameters)


def names():
    blocks = [["block{}_{}".format(b, n) for n in BLOCK] for b in range(BLOCKS)]
    return [["token", "position"]] + blocks + [["final_scale", "final_bias"], ["dense", "dense_bias"]]


def stored(name, value):
    """The neutral array as CNTK holds it, and back: the layers' matrices input-major, the tables as they are."""
    return value if name in ("token", "position") else value.T


def get_weights(model):
    return [[stored(n, model.find_by_name(n).value) for n in group] for group in names()]


def set_weights(model, weights):
    for group, values in zip(names(), check(weights)):
        for name, value in zip(group, values):
            model.find_by_name(name).value = np.ascontiguousarray(stored(name, value))


def export_onnx(model, path):
    model.save(path, format=C.ModelFormat.ONNX)  # CNTK's own exporter


def runtime_info():
    return dict(version=C.__version__, device="gpu" if GPU else "cpu")
