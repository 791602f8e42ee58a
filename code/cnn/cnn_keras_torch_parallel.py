"""Keras 3 on torch, data-parallel: fit has no multi-process route on this backend, but a Keras
model is a torch.nn.Module here, so DistributedDataParallel wraps it in a training loop of torch's
own, launched by torchrun (gloo on the CPU, NCCL on GPUs). Each process takes its share of every
batch; DDP averages the gradients. The model, its data and its weights are cnn_keras's."""
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

if torch.cuda.is_available():  # before Keras makes its variables: "cuda" is this process's GPU
    torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
import keras  # noqa: E402
import cnn_keras as faithful  # noqa: E402
from cnn_keras import count_params, create_model, get_weights, load_data, set_weights  # noqa: E402,F401 (unchanged)
from common import LR, MOMENTUM  # noqa: E402

# torchrun sets RANK, WORLD_SIZE and the rendezvous address in each process's environment.
dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


def init_model(model):
    # Broadcasts rank 0's weights. fit() would call the model itself, not the wrapper, and nothing
    # would be averaged: the loop below calls the wrapper, with torch's SGD (Keras' rule, v = 0.9 v - lr g).
    wrapped = DistributedDataParallel(model)
    for layer in model.layers:  # dropout: each process its own masks (DDP gave each rank 0's seeds)
        if isinstance(layer, keras.layers.Dropout):
            state = layer.seed_generator.state
            state.assign(state + keras.ops.convert_to_tensor([dist.get_rank(), 0], dtype=state.dtype))
    return model, wrapped, torch.optim.SGD(wrapped.parameters(), lr=LR, momentum=MOMENTUM)


def train_epoch(trainer, batches):
    model, wrapped, optimizer = trainer
    rank, world = dist.get_rank(), dist.get_world_size()
    total, steps = 0.0, 0
    for x, y in batches:  # every process reads the same global batch and takes its share of it
        share = len(x) // world
        x, y = (keras.ops.convert_to_tensor(a[rank * share:(rank + 1) * share]) for a in (x, y))  # on Keras' device
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(wrapped(x, training=True), y)  # y one-hot: the mean cross-entropy
        loss.backward()  # DDP all-reduces the gradients here: their mean over the processes
        optimizer.step()
        total, steps = total + loss.detach(), steps + 1
    dist.all_reduce(total)  # the global batch's mean loss: the processes' means, averaged
    return total.item() / world / steps


def predict(trainer, batches):
    return faithful.predict(trainer[0], batches)  # Keras' predict, on this process's copy


def runtime_info():
    return dict(faithful.runtime_info(), engine="torch.distributed {} around the Keras model".format(
        dist.get_backend()), launcher="torchrun", world_size=dist.get_world_size(), rank=dist.get_rank())
