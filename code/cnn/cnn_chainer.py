"""Chainer 7: a Chain of links, define-by-run (the design PyTorch took up), MomentumSGD."""
import chainer
import chainer.functions as F
import chainer.links as L
import numpy as np

from common import LR, MOMENTUM, N_CLASSES, SEED, nvidia_tf32
from datasets import cifar_for_library
from weights import check

GPU = chainer.backends.cuda.available
DEVICE = chainer.get_device("@cupy:0" if GPU else "@numpy")
chainer.global_config.autotune = True  # cuDNN autotuning where cuDNN is there, as the seed did


def load_data(dataset, profile):
    return cifar_for_library(dataset, profile, channel_first=True, one_hot=False)


class CNN(chainer.Chain):
    def __init__(self):
        super().__init__()
        glorot = chainer.initializers.GlorotUniform()  # the default is LeCun-normal; biases are 0
        with self.init_scope():  # links created here become the chain's parameters
            self.conv1 = L.Convolution2D(3, 50, ksize=3, pad=1, initialW=glorot)
            self.conv2 = L.Convolution2D(50, 50, ksize=3, pad=1, initialW=glorot)
            self.conv3 = L.Convolution2D(50, 100, ksize=3, pad=1, initialW=glorot)
            self.conv4 = L.Convolution2D(100, 100, ksize=3, pad=1, initialW=glorot)
            self.fc1 = L.Linear(8 * 8 * 100, 512, initialW=glorot)
            self.fc2 = L.Linear(512, N_CLASSES, initialW=glorot)

    def forward(self, x):
        h = F.relu(self.conv2(F.relu(self.conv1(x))))
        h = F.dropout(F.max_pooling_2d(h, 2), 0.25)  # dropout is off when config.train is False
        h = F.relu(self.conv4(F.relu(self.conv3(h))))
        h = F.dropout(F.max_pooling_2d(h, 2), 0.25)
        h = F.dropout(F.relu(self.fc1(h)), 0.5)  # Linear flattens (N, 100, 8, 8) itself
        return self.fc2(h)  # logits


def create_model():
    np.random.seed(SEED)  # Chainer's initializers draw from NumPy's generator
    model = CNN()
    model.to_device(DEVICE)
    return model


def init_model(model):
    optimizer = chainer.optimizers.MomentumSGD(lr=LR, momentum=MOMENTUM)  # v = 0.9 v - lr g
    optimizer.setup(model)
    return model, optimizer


def train_epoch(trainer, batches):
    model, optimizer = trainer
    total, steps = 0, 0
    for x, y in batches:
        loss = F.softmax_cross_entropy(model(DEVICE.send(x)), DEVICE.send(y))
        model.cleargrads()
        loss.backward()
        optimizer.update()
        total, steps = total + loss.array, steps + 1
    return float(total) / steps  # float() copies to the host, so it waits for the GPU


def predict(trainer, batches):
    model = trainer[0]
    with chainer.using_config("train", False), chainer.no_backprop_mode():
        return np.concatenate([chainer.backends.cuda.to_cpu(model(DEVICE.send(x)).array.argmax(axis=1))
                               for x in batches])


def count_params(model):
    return sum(p.size for p in model.params())


def get_weights(model):
    """(kernel, bias) per layer in the neutral layout of weights.py, as NumPy arrays."""
    links = [model.conv1, model.conv2, model.conv3, model.conv4, model.fc1, model.fc2]
    to_cpu = chainer.backends.cuda.to_cpu
    return [(to_cpu(link.W.array).T if isinstance(link, L.Linear) else to_cpu(link.W.array),
             to_cpu(link.b.array)) for link in links]  # Linear stores out x in; Convolution2D is OIHW


def set_weights(model, weights):
    links = [model.conv1, model.conv2, model.conv3, model.conv4, model.fc1, model.fc2]
    for link, (kernel, bias) in zip(links, check(weights)):
        link.W.array[...] = DEVICE.send(np.ascontiguousarray(kernel.T if isinstance(link, L.Linear) else kernel))
        link.b.array[...] = DEVICE.send(bias)


def export_onnx(model, path):
    import onnx
    import onnx_chainer  # ships with Chainer 7; it needs the onnx package
    from onnx_graph import any_batch
    x = np.zeros((1, 3, 32, 32), np.float32)  # traced with this batch: Linear's flatten keeps its size
    proto = onnx_chainer.export(model, x, input_names=["x"], output_names=["logits"], train=False)
    onnx.save(any_batch(proto), path)


def runtime_info():
    return dict(version=chainer.__version__, device="gpu" if GPU else "cpu",
                device_note=None if GPU else "no CuPy with a usable GPU: Chainer runs on NumPy",
                gpu=chainer.backends.cuda.cupy.cuda.runtime.getDeviceProperties(0)["name"].decode() if GPU else None,
                layout="NCHW", cudnn=bool(GPU and chainer.backends.cuda.cudnn_enabled),
                tf32_conv=GPU and nvidia_tf32(), tf32_matmul=GPU and nvidia_tf32())
