"""CNTK 2.7: the layers API (a Sequential of layers applied to an input variable) and a Trainer."""
import cntk as C
import numpy as np

from common import LR, MOMENTUM, N_CLASSES, SEED, nvidia_tf32
from datasets import cifar_for_library
from weights import LAYERS, check


def probe(device):
    """A convolution (cuDNN) and a matrix product (cuBLAS) on `device`: on a GPU, the kernels whose
    PTX the driver must compile for a card newer than the build."""
    ones = lambda *shape: np.ones(shape, np.float32)  # noqa: E731
    x = C.input_variable((1, 4, 4))  # a constant as the convolution's operand crashes CNTK 2.7's CPU build
    C.convolution(C.constant(ones(1, 1, 3, 3)), x).eval({x: ones(1, 1, 4, 4)}, device=device)
    C.times(C.constant(ones(4, 4)), C.constant(ones(4, 4))).eval(device=device)


def gpu_or_why_not():
    """(True, None) where CNTK computes on the first GPU, else (False, why): cntk-gpu 2.7 is built
    with CUDA 10, which may have no code for a newer card, and only running something tells (a
    hang there ends at the row's time limit)."""
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
    # CNTK's cross_entropy_with_softmax takes one-hot labels.
    return cifar_for_library(dataset, profile, channel_first=True, one_hot=True)


def create_model():
    C.cntk_py.set_fixed_random_seed(SEED)
    # CNTK's defaults are already Glorot-uniform weights and zero biases.
    with C.layers.default_options(activation=C.relu):
        model = C.layers.Sequential([
            C.layers.Convolution2D((3, 3), 50, pad=True),  # pad=True: "same"
            C.layers.Convolution2D((3, 3), 50, pad=True),
            C.layers.MaxPooling((2, 2), strides=2),
            C.layers.Dropout(0.25),
            C.layers.Convolution2D((3, 3), 100, pad=True),
            C.layers.Convolution2D((3, 3), 100, pad=True),
            C.layers.MaxPooling((2, 2), strides=2),
            C.layers.Dropout(0.25),
            C.layers.Dense(512),  # takes the (100, 8, 8) input whole: no flatten needed
            C.layers.Dropout(0.5),
            C.layers.Dense(N_CLASSES, activation=None),  # logits
        ])
    return model(C.input_variable((3, 32, 32), np.float32))  # the graph is built on this input


def init_model(model):
    labels = C.input_variable(N_CLASSES, np.float32)
    loss = C.cross_entropy_with_softmax(model, labels)
    # unit_gain=False: classic momentum (CNTK's default scales the gradient by 1 - momentum).
    # A learning_parameter_schedule without minibatch_size applies to the mean gradient.
    learner = C.momentum_sgd(model.parameters, lr=C.learning_parameter_schedule(LR),
                             momentum=C.momentum_schedule(MOMENTUM), unit_gain=False)
    return model, labels, C.Trainer(model, loss, [learner])


def train_epoch(trainer, batches):
    model, labels, sgd = trainer
    total, steps = 0.0, 0
    for x, y in batches:
        sgd.train_minibatch({model.arguments[0]: x, labels: y})  # dropout is on in training
        total, steps = total + sgd.previous_minibatch_loss_average, steps + 1
    return total / steps


def predict(trainer, batches):
    model = trainer[0]  # eval() runs the graph in inference mode: dropout off
    return np.concatenate([model.eval({model.arguments[0]: x}).argmax(axis=1) for x in batches])


def count_params(model):
    return sum(int(np.prod(p.shape)) for p in model.parameters)


def parameters(model):
    """(W, b) per layer from the input on: CNTK lists a graph's parameters from the output back."""
    params = model.parameters[::-1]
    return list(zip(params[1::2], params[0::2]))


def get_weights(model):
    """(kernel, bias) per layer in the neutral layout of weights.py, as NumPy arrays."""
    # Kernels are OIHW and in x out already; conv biases are (C, 1, 1), dense1's W (100, 8, 8, 512).
    return [(w.value.reshape(shape), b.value.reshape(-1))
            for (w, b), shape in zip(parameters(model), LAYERS.values())]


def set_weights(model, weights):
    for (w, b), (kernel, bias) in zip(parameters(model), check(weights)):
        w.value, b.value = kernel.reshape(w.shape), bias.reshape(b.shape)


def export_onnx(model, path):
    import onnx
    from onnx_graph import any_batch, without_dropout
    model.save(path, format=C.ModelFormat.ONNX)  # CNTK's own exporter: a batch of one, Dropout kept
    onnx.save(any_batch(without_dropout(onnx.load(path))), path)


def runtime_info():
    return dict(version=C.__version__, device="gpu" if GPU else "cpu", gpu="GPU 0" if GPU else None,
                device_note=WHY_CPU,
                layout="NCHW", tf32_conv=GPU and nvidia_tf32(), tf32_matmul=GPU and nvidia_tf32())
