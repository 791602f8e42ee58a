"""CNTK 2.7: each review a sequence of its own length (CNTK's dynamic axis, no padding), an embedding, a
Recurrence of a GRU step written in CNTK operations (form A), sequence.last, Dense; Adam. CNTK's
layers.GRU is form B, and its form A (optimized_rnnstack) runs only on cuDNN."""
import cntk as C
import numpy as np

from common import BATCH_SIZE, SEED
from reviews import reviews_for_library
from rnn_weights import ADAM, CLASSES, EMBED, HIDDEN, VOCAB, check

GPU = any(d.type() == C.device.DeviceKind.GPU for d in C.device.all_devices())
if not GPU:
    C.device.try_set_default_device(C.device.cpu())


def load_data(dataset, profile):
    return reviews_for_library(dataset, profile)


def sequences(ids):
    """Padded ids (N, T) as CNTK takes sequences: each review's own ids, a list of (length, 1) arrays."""
    return [row[:n, None].astype(np.float32) for row, n in zip(ids, (ids != 0).sum(axis=1))]


def gru(x):
    """Form A, gates r, z, n; input-major weights named as the neutral layout's arrays."""
    glorot = C.glorot_uniform()
    w_ih = C.parameter((EMBED, 3 * HIDDEN), init=glorot, name="w_ih")
    w_hh = C.parameter((HIDDEN, 3 * HIDDEN), init=glorot, name="w_hh")
    b_ih = C.parameter(3 * HIDDEN, init=0, name="b_ih")
    b_hh = C.parameter(3 * HIDDEN, init=0, name="b_hh")
    gates = lambda a, i: C.slice(a, 0, i * HIDDEN, (i + 1) * HIDDEN)  # noqa: E731

    def step(h, x_t):
        a_x, a_h = C.times(x_t, w_ih) + b_ih, C.times(h, w_hh) + b_hh
        r, z = C.sigmoid(gates(a_x, 0) + gates(a_h, 0)), C.sigmoid(gates(a_x, 1) + gates(a_h, 1))
        n = C.tanh(gates(a_x, 2) + r * gates(a_h, 2))  # form A: r scales the recurrent product and b_hn
        return (1 - z) * n + z * h
    return C.layers.Recurrence(step)(x)


def create_model():
    C.cntk_py.set_fixed_random_seed(SEED)
    ids = C.sequence.input_variable(1)
    # Rows gathered by index: the Embedding layer takes one-hot input, whose sparse gradient CNTK's
    # Adam updates only on a GPU ("Feature Not Implemented" on the CPU).
    embedding = C.parameter((VOCAB, EMBED), init=C.uniform(0.05), name="embedding")
    states = gru(C.reshape(C.gather(embedding, ids), EMBED))
    return C.layers.Dense(CLASSES, name="dense")(C.sequence.last(states))  # logits


def init_model(model):
    labels = C.input_variable(CLASSES, np.float32)
    loss = C.cross_entropy_with_softmax(model, labels)
    # CNTK steps Adam on the minibatch's summed gradient, BATCH_SIZE times the mean: the rate is per
    # sample (a minibatch's rate would be divided by its size, and Adam's step does not grow with the
    # gradient), and epsilon is scaled by the size, so that it weighs what it weighs on the mean.
    adam = C.adam(model.parameters, lr=C.learning_parameter_schedule_per_sample(ADAM["lr"]),
                  momentum=C.momentum_schedule(ADAM["beta1"]), variance_momentum=C.momentum_schedule(ADAM["beta2"]),
                  epsilon=ADAM["eps"] * BATCH_SIZE)  # unit_gain (the default): m = beta1 m + (1 - beta1) g
    return model, labels, C.Trainer(model, loss, [adam])


def train_epoch(trainer, batches):
    model, labels, adam = trainer
    total, steps = 0.0, 0
    for x, y in batches:
        adam.train_minibatch({model.arguments[0]: sequences(x), labels: np.eye(CLASSES, dtype=np.float32)[y]})
        total, steps = total + adam.previous_minibatch_loss_average, steps + 1
    return total / steps


def logits_of_batch(trainer, x):
    model = trainer[0]
    return model.eval({model.arguments[0]: sequences(x)})


def predict(trainer, batches):
    return np.concatenate([logits_of_batch(trainer, x).argmax(axis=1) for x in batches])


def count_params(model):
    return sum(int(np.prod(p.shape)) for p in model.parameters)


def params(model):
    kernel, bias = sorted(model.find_by_name("dense").parameters, key=lambda p: -len(p.shape))
    return [[model.find_by_name(n) for n in names] for names in (("embedding",), ("w_ih", "w_hh", "b_ih", "b_hh"))] + [
        [kernel, bias]]


def get_weights(model):
    (embedding,), (w_ih, w_hh, b_ih, b_hh), (kernel, bias) = [[p.value for p in g] for g in params(model)]
    return [[embedding], [w_ih.T, w_hh.T, b_ih, b_hh], [kernel.T, bias]]


def set_weights(model, weights):
    (embedding,), (w_ih, w_hh, b_ih, b_hh), (kernel, bias) = check(weights)
    values = [[embedding], [w_ih.T, w_hh.T, b_ih, b_hh], [kernel.T, bias]]
    for group, group_values in zip(params(model), values):
        for p, value in zip(group, group_values):
            p.value = np.ascontiguousarray(value)


def export_onnx(model, path):
    # CNTK's own exporter. The sequence axis becomes the file's first dimension and the batch is one:
    # the file reads one review at a time, at its own length.
    model.save(path, format=C.ModelFormat.ONNX)


def runtime_info():
    return dict(version=C.__version__, device="gpu" if GPU else "cpu", cudnn=False,
                gru_form="A (a Recurrence of a written-out step)")
