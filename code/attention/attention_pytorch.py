"""PyTorch 2: nn.Embedding for the words and their positions, two nn.TransformerEncoderLayer asked for
this block (pre-norm, exact GELU, batch first; its defaults are post-norm, ReLU and sequence first),
a final nn.LayerNorm, the mean over each review's own words and nn.Linear; Adam. The layer's
key_padding_mask is True where a key is padding: the opposite of scaled_dot_product_attention's."""
import numpy as np
import torch
import torch.nn as nn

from attention_weights import ADAM, BLOCKS, CLASSES, DROPOUT, EMBED, EPS, FF, HEADS, MAXLEN, VOCAB, check, \
    from_packed, to_packed
from common import SEED, TF32, torch_gpu_or_why_not
from reviews import reviews_for_library

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
        self.position = nn.Embedding(MAXLEN, EMBED)
        self.blocks = nn.ModuleList(nn.TransformerEncoderLayer(
            EMBED, HEADS, dim_feedforward=FF, dropout=DROPOUT, activation="gelu",  # "gelu": the exact one
            layer_norm_eps=EPS, batch_first=True, norm_first=True) for _ in range(BLOCKS))
        for block in self.blocks:
            block.dropout = nn.Identity()  # the layer's own dropout between its two Linear layers: not this model's
        self.norm = nn.LayerNorm(EMBED, eps=EPS)
        self.dense = nn.Linear(EMBED, CLASSES)

    def forward(self, ids):
        padding = ids == 0
        x = self.embedding(ids) + self.position(torch.arange(ids.shape[1], device=ids.device))
        for block in self.blocks:
            x = block(x, src_key_padding_mask=padding)
        words = (~padding).unsqueeze(-1).to(x.dtype)
        return self.dense((self.norm(x) * words).sum(dim=1) / words.sum(dim=1))


def create_model():
    torch.manual_seed(SEED)
    model = Net()
    for name, p in model.named_parameters():  # the model's init: Glorot-uniform weights, zero biases
        if name.endswith("in_proj_weight"):  # one (3E, E) matrix to PyTorch's own init: Glorot per projection
            for projection in p.data.chunk(3):
                nn.init.xavier_uniform_(projection)
        elif p.dim() > 1 and not name.startswith(("embedding", "position")):
            nn.init.xavier_uniform_(p)  # Linear's own default is Kaiming-uniform
        elif name.endswith("bias") and "norm" not in name:
            nn.init.zeros_(p)
    return model.to(DEVICE)


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


def block_arrays(block):
    """A layer's parameters in the neutral layout's order, the packed projections split by to_packed's inverse."""
    attn = block.self_attn
    return ([block.norm1.weight, block.norm1.bias], [attn.in_proj_weight, attn.in_proj_bias],
            [attn.out_proj.weight, attn.out_proj.bias, block.norm2.weight, block.norm2.bias,
             block.linear1.weight, block.linear1.bias, block.linear2.weight, block.linear2.bias])


def get_weights(model):
    def numpy(ps):
        return [p.detach().cpu().numpy().copy() for p in ps]
    out = [numpy([model.embedding.weight, model.position.weight])]
    for block in model.blocks:
        norm1, packed, rest = block_arrays(block)
        out.append(numpy(norm1) + from_packed(*numpy(packed)) + numpy(rest))
    return out + [numpy([model.norm.weight, model.norm.bias]), numpy([model.dense.weight, model.dense.bias])]


def set_weights(model, weights):
    weights = check(weights)
    with torch.no_grad():
        pairs = list(zip([model.embedding.weight, model.position.weight], weights[0]))
        for block, values in zip(model.blocks, weights[1:1 + BLOCKS]):
            norm1, packed, rest = block_arrays(block)
            pairs += list(zip(norm1, values[:2])) + list(zip(packed, to_packed(values))) + list(zip(rest, values[8:]))
        pairs += list(zip([model.norm.weight, model.norm.bias], weights[1 + BLOCKS]))
        pairs += list(zip([model.dense.weight, model.dense.bias], weights[2 + BLOCKS]))
        for p, v in pairs:
            p.copy_(torch.from_numpy(np.ascontiguousarray(v)))


def export_onnx(model, path):
    model.eval()
    example = torch.ones(2, MAXLEN, dtype=torch.long, device=DEVICE)
    # torch.export traces the layer's own path (in eval mode, with no gradient, the layer may take a fused
    # kernel instead, which no ONNX converter knows); the batch stays free.
    with torch.enable_grad():
        program = torch.export.export(model, (example,), dynamic_shapes=[{0: torch.export.Dim("batch")}], strict=True)
    torch.onnx.export(program, (example,), path, input_names=["ids"], output_names=["logits"],
                      dynamic_shapes=[{0: "batch"}], external_data=False)


def runtime_info():
    return dict(version=torch.__version__, device="cuda" if GPU else "cpu",
                gpu=torch.cuda.get_device_name(0) if GPU else None, device_note=WHY_CPU)
