"""PyTorch 2: nn.Embedding, nn.GRU (the reset gate after the recurrent product, form A, on the CPU as
with cuDNN) and nn.Linear, with each review read at its own last step; Adam. The GRU runs every step:
pack_padded_sequence would skip the padding, but torch.export, which export_onnx uses, refuses it."""
import numpy as np
import torch
import torch.nn as nn

from common import SEED, TF32, torch_gpu_or_why_not
from reviews import reviews_for_library
from rnn_weights import ADAM, CLASSES, EMBED, HIDDEN, VOCAB, check

GPU, WHY_CPU = torch_gpu_or_why_not()
DEVICE = torch.device("cuda" if GPU else "cpu")
torch.backends.cudnn.allow_tf32 = TF32
torch.backends.cuda.matmul.allow_tf32 = TF32


def load_data(dataset, profile):
    return reviews_for_library(dataset, profile)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, EMBED)
        self.gru = nn.GRU(EMBED, HIDDEN, batch_first=True)  # gates r, z, n in its weights
        self.dense = nn.Linear(HIDDEN, CLASSES)

    def forward(self, ids):
        steps, _ = self.gru(self.embedding(ids))  # (N, T, H): the state after every step
        last = (ids != 0).sum(dim=1) - 1  # each review's own last step: the padding comes after it
        return self.dense(steps[torch.arange(len(ids), device=ids.device), last])


def create_model():
    torch.manual_seed(SEED)
    return Net().to(DEVICE)


def init_model(model):
    optimizer = torch.optim.Adam(model.parameters(), lr=ADAM["lr"], betas=(ADAM["beta1"], ADAM["beta2"]),
                                 eps=ADAM["eps"])
    return model, nn.CrossEntropyLoss(), optimizer


def train_epoch(trainer, batches):
    model, criterion, optimizer = trainer
    model.train()
    total, n = 0.0, 0
    for x, y in batches:
        x = torch.from_numpy(x).long().to(DEVICE)
        y = torch.from_numpy(y).long().to(DEVICE)
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        total, n = total + loss.item(), n + 1
    return total / n


def predict(trainer, batches):
    model = trainer[0]
    model.eval()
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(x).long().to(DEVICE)).argmax(1).cpu().numpy()
                               for x in batches])


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def groups(model):
    """The parameters in the neutral layout's groups and order, which are PyTorch's own."""
    gru = model.gru
    return [[model.embedding.weight], [gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0],
            [model.dense.weight, model.dense.bias]]


def get_weights(model):
    return [[p.detach().cpu().numpy().copy() for p in group] for group in groups(model)]


def set_weights(model, weights):
    with torch.no_grad():
        for group, values in zip(groups(model), check(weights)):
            for p, v in zip(group, values):
                p.copy_(torch.from_numpy(v))


def export_onnx(model, path):
    from reviews import MAXLEN
    model.eval()
    example = torch.ones(2, MAXLEN, dtype=torch.long, device=DEVICE)
    # torch.onnx's own capture reads len(ids) in forward as the example's 2 and, finding the batch
    # not free, exports again with it fixed, without a word; Dynamo's strict capture keeps it free.
    program = torch.export.export(model, (example,), dynamic_shapes=[{0: torch.export.Dim("batch")}], strict=True)
    torch.onnx.export(program, (example,), path, input_names=["ids"], output_names=["logits"],
                      dynamic_shapes=[{0: "batch"}], external_data=False)


def runtime_info():
    return dict(version=torch.__version__, device="cuda" if GPU else "cpu",
                gpu=torch.cuda.get_device_name(0) if GPU else None, device_note=WHY_CPU,
                cudnn=GPU and torch.backends.cudnn.is_available(), gru_form="A (reset after the recurrent product)")
