"""PyTorch 2: the model as nn.Sequential, an eager training loop, cuDNN autotuning on."""
import numpy as np
import torch
import torch.nn as nn

from common import LR, MOMENTUM, N_CLASSES, SEED, TF32, torch_gpu_or_why_not
from datasets import cifar_for_library
from weights import check

GPU, WHY_CPU = torch_gpu_or_why_not()
DEVICE = torch.device("cuda" if GPU else "cpu")
torch.backends.cudnn.benchmark = True  # autotune convolution algorithms, as the seed did
torch.backends.cudnn.allow_tf32 = TF32  # on by default for convolutions: the policy decides
torch.backends.cuda.matmul.allow_tf32 = TF32


def load_data(dataset, profile):
    return cifar_for_library(dataset, profile, channel_first=True, one_hot=False)


def create_model():
    torch.manual_seed(SEED)
    model = nn.Sequential(
        nn.Conv2d(3, 50, 3, padding="same"), nn.ReLU(),
        nn.Conv2d(50, 50, 3, padding="same"), nn.ReLU(),
        nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Conv2d(50, 100, 3, padding="same"), nn.ReLU(),
        nn.Conv2d(100, 100, 3, padding="same"), nn.ReLU(),
        nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Flatten(),  # (N, 100, 8, 8) -> (N, 6400)
        nn.Linear(100 * 8 * 8, 512), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(512, N_CLASSES),  # logits: the loss applies the softmax
    )
    for layer in model:
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)  # the default is Kaiming-uniform
            nn.init.zeros_(layer.bias)  # the default is uniform, not zero
    return model.to(DEVICE)


def init_model(model):
    criterion = nn.CrossEntropyLoss()  # softmax + cross-entropy on logits and class indices
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    return model, criterion, optimizer


def train_epoch(trainer, batches):
    model, criterion, optimizer = trainer
    model.train()  # dropout on
    total, steps = torch.zeros((), device=DEVICE), 0
    for x, y in batches:
        x, y = torch.from_numpy(x).to(DEVICE), torch.from_numpy(y).long().to(DEVICE)
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        total, steps = total + loss.detach(), steps + 1
    return total.item() / steps  # .item() waits for the device: the epoch's time is honest


def predict(trainer, batches):
    model = trainer[0]
    model.eval()  # dropout off
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(x).to(DEVICE)).argmax(1).cpu().numpy()
                               for x in batches])


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def get_weights(model):
    """(kernel, bias) per layer in the neutral layout of weights.py, as NumPy arrays."""
    layers = [m for m in model if isinstance(m, (nn.Conv2d, nn.Linear))]
    out = []
    for layer in layers:
        kernel = layer.weight.detach().cpu().numpy()  # Conv2d: OIHW already
        out.append((kernel.T if isinstance(layer, nn.Linear) else kernel,  # Linear stores out x in
                    layer.bias.detach().cpu().numpy()))
    return out


def set_weights(model, weights):
    layers = [m for m in model if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():  # a copy into the existing tensors: the optimizer keeps its references
        for layer, (kernel, bias) in zip(layers, check(weights)):
            layer.weight.copy_(torch.from_numpy(kernel.T if isinstance(layer, nn.Linear) else kernel))
            layer.bias.copy_(torch.from_numpy(bias))


def export_onnx(model, path):
    model.eval()  # dropout off: the exported graph has none
    example = torch.zeros(1, 3, 32, 32, device=DEVICE)
    torch.onnx.export(model, (example,), path, input_names=["x"], output_names=["logits"],
                      dynamic_shapes=[{0: torch.export.Dim("batch")}], external_data=False)


def runtime_info():
    return dict(version=torch.__version__, device="gpu" if GPU else "cpu",
                gpu=torch.cuda.get_device_name() if GPU else None, device_note=WHY_CPU,
                threads=torch.get_num_threads(), layout="NCHW",
                tf32_conv=GPU and torch.backends.cudnn.allow_tf32,
                tf32_matmul=GPU and torch.backends.cuda.matmul.allow_tf32)
