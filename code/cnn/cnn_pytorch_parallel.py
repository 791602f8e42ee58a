"""PyTorch, data-parallel: DistributedDataParallel, one process per device, launched by torchrun
(gloo on the CPU, NCCL on GPUs). Each process takes its share of every batch; DDP averages the
gradients across the processes during backward. The rest is cnn_pytorch's."""
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

if torch.cuda.is_available():  # before cnn_pytorch makes its tensors: "cuda" is this process's GPU
    torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
import cnn_pytorch as faithful  # noqa: E402
from cnn_pytorch import (DEVICE, GPU, count_params, create_model, get_weights, load_data,  # noqa: E402,F401
                         predict, set_weights)  # unchanged
from common import SEED  # noqa: E402

# torchrun sets RANK, WORLD_SIZE and the rendezvous address in each process's environment.
dist.init_process_group("nccl" if GPU else "gloo")


def init_model(model):
    model, criterion, optimizer = faithful.init_model(model)
    # Dropout: each process its own masks, as the two halves of one process's batch have.
    torch.manual_seed(SEED + dist.get_rank())
    # Broadcasts rank 0's weights; the learning rate stays: the averaged gradient is the global batch's.
    return DistributedDataParallel(model), criterion, optimizer


def train_epoch(trainer, batches):
    model, criterion, optimizer = trainer
    model.train()  # dropout on
    rank, world = dist.get_rank(), dist.get_world_size()
    total, steps = torch.zeros((), device=DEVICE), 0
    for x, y in batches:  # every process reads the same global batch and takes its share of it
        share = len(x) // world
        x, y = x[rank * share:(rank + 1) * share], y[rank * share:(rank + 1) * share]
        x, y = torch.from_numpy(x).to(DEVICE), torch.from_numpy(y).long().to(DEVICE)
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()  # DDP all-reduces the gradients here: their mean over the processes
        optimizer.step()
        total, steps = total + loss.detach(), steps + 1
    dist.all_reduce(total)  # the global batch's mean loss: the processes' means, averaged
    return total.item() / world / steps


def runtime_info():
    return dict(faithful.runtime_info(), engine="torch.distributed {}".format(dist.get_backend()),
                launcher="torchrun", world_size=dist.get_world_size(), rank=dist.get_rank())
