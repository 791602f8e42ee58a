"""Chainer 7, data-parallel: ChainerMN (in Chainer since 5.0), one MPI process per device, started
by mpiexec. Each process takes its share of every batch; the multi-node optimizer averages the
gradients across the processes (MPI all-reduce) before the faithful MomentumSGD step. The rest is
cnn_chainer's."""
import chainermn
import numpy as np

import cnn_chainer as faithful
from cnn_chainer import (DEVICE, GPU, count_params, create_model, get_weights, load_data,  # noqa: F401
                         predict, set_weights)  # unchanged
from common import SEED

# naive: MPI on host arrays; on GPUs, pure_nccl (and one GPU per process: comm.intra_rank).
COMM = chainermn.create_communicator("pure_nccl" if GPU else "naive")


def init_model(model):
    model, optimizer = faithful.init_model(model)
    optimizer = chainermn.create_multi_node_optimizer(optimizer, COMM)
    # Its first update() would only broadcast rank 0's weights and skip that step's SGD: broadcast
    # here, and let it record the parameters, so that every update() steps.
    COMM.bcast_data(model)
    optimizer.is_changed(model)
    np.random.seed(SEED + COMM.rank)  # dropout: each process its own masks, as the halves of one's batch have
    return model, optimizer


def train_epoch(trainer, batches):
    def shares():  # every process reads the same global batch and takes its share of it
        for x, y in batches:
            share = len(x) // COMM.size
            yield x[COMM.rank * share:(COMM.rank + 1) * share], y[COMM.rank * share:(COMM.rank + 1) * share]
    return faithful.train_epoch(trainer, shares())  # update() averages the gradients first


def runtime_info():
    return dict(faithful.runtime_info(), engine="ChainerMN {} (MPI)".format(type(COMM).__name__),
                launcher="mpiexec", world_size=COMM.size, rank=COMM.rank)
