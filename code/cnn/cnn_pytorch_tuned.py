"""PyTorch, tuned: channels_last, bf16 autocast where the device has bf16 units, and on a GPU the
data on the device and the model compiled into CUDA graphs. The rest is cnn_pytorch's."""
import torch

import cnn_pytorch as faithful
import tuning
from cnn_pytorch import DEVICE, GPU, count_params, get_weights, set_weights  # noqa: F401 (unchanged)

CHANNELS_LAST = tuning.change("channels_last", True, "NHWC in memory, for the convolutions' channels-last kernels")
BF16 = tuning.change("bf16", *(tuning.gpu_bf16(torch.cuda.get_device_capability()) if GPU else tuning.cpu_bf16()))
ON_DEVICE = tuning.change("data on device", GPU, "the training set is copied to the GPU once" if GPU
                          else "on the CPU the batches are on the device already")
COMPILE = tuning.change("compile", GPU, "torch.compile with mode='reduce-overhead': Inductor's kernels, "
                        "replayed as CUDA graphs" if GPU else "CUDA graphs need a GPU; `make bench-tuning` "
                        "measures torch.compile on this CPU")
LAYOUT = torch.channels_last if CHANNELS_LAST else torch.contiguous_format


def load_data(dataset, profile):
    x_train, x_test, y_train, y_test = faithful.load_data(dataset, profile)
    if ON_DEVICE:  # y_test stays in NumPy: the harness scores the predictions there
        x_train, x_test, y_train = [torch.from_numpy(a).to(DEVICE) for a in (x_train, x_test, y_train)]
    return x_train, x_test, y_train, y_test


def create_model():
    return faithful.create_model().to(memory_format=LAYOUT)


def init_model(model):
    model, criterion, optimizer = faithful.init_model(model)
    if COMPILE:  # compiled on the first call: the first epoch pays for it
        model = torch.compile(model, mode="reduce-overhead")
    return model, criterion, optimizer


def train_epoch(trainer, batches):
    model, criterion, optimizer = trainer
    model.train()  # dropout on
    total, steps = torch.zeros((), device=DEVICE), 0
    for x, y in batches:
        x, y = torch.as_tensor(x, device=DEVICE).to(memory_format=LAYOUT), torch.as_tensor(y, device=DEVICE).long()
        optimizer.zero_grad()
        with torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=BF16):  # weights stay float32
            loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        total, steps = total + loss.detach(), steps + 1
    return total.item() / steps  # .item() waits for the device: the epoch's time is honest


def predict(trainer, batches):
    model = trainer[0]
    model.eval()  # dropout off
    with torch.no_grad(), torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=BF16):
        return torch.cat([model(torch.as_tensor(x, device=DEVICE).to(memory_format=LAYOUT)).argmax(1)
                          for x in batches]).cpu().numpy()


def runtime_info():
    return dict(faithful.runtime_info(), memory_format="channels_last" if CHANNELS_LAST else "contiguous",
                precision="bf16 autocast" if BF16 else "float32")
