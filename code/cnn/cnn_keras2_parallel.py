"""Keras 2.2.4 on CNTK, data-parallel: the CNTK learner that Keras builds for its SGD wrapped in
CNTK's data_parallel_distributed_learner, one process per device, started by mpiexec. Each process
takes its share of every batch; the distributed learner sums the processes' gradients (each of its
share's mean loss), so the optimizer divides them by the number of processes: the mean over the
whole batch, at the same learning rate. Nothing is broadcast: every process must start from the same
weights. The rest is cnn_keras2's."""
import cntk as C
from cntk.train.distributed import Communicator, data_parallel_distributed_learner

import cnn_keras2 as faithful
# The CNTK row's per-process dropout seeds; importing its module registers MPI_Finalize at exit.
from cnn_cntk_parallel import own_dropout
from cnn_keras2 import (count_params, create_model, get_weights, load_data, predict,  # noqa: F401
                        set_weights)  # unchanged


def init_model(model):
    model = faithful.init_model(model)
    own_dropout(model.outputs[0].owner)
    world, get_gradients = Communicator.num_workers(), model.optimizer.get_gradients
    model.optimizer.get_gradients = lambda loss, params: [g / world for g in get_gradients(loss, params)]
    model._make_train_function()  # Keras' CNTK backend builds its Trainer here, else at the first batch
    f = model.train_function
    # The same Trainer, on the distributed learner: CNTK's plain all-reduce at 32 bits.
    learner = data_parallel_distributed_learner(f.trainer.parameter_learners[0], num_quantization_bits=32,
                                                distributed_after=0)
    f.trainer = C.Trainer(f.loss, (f.loss,), [learner])
    return model


def train_epoch(trainer, batches):
    rank, world = Communicator.rank(), Communicator.num_workers()

    def shares():  # every process reads the same global batch and takes its share of it
        for x, y in batches:
            share = len(x) // world
            yield x[rank * share:(rank + 1) * share], y[rank * share:(rank + 1) * share]
    # train_on_batch's loss is all-reduced in place with the gradients: the sum of the shares' means.
    return faithful.train_epoch(trainer, shares()) / world


def runtime_info():
    return dict(faithful.runtime_info(), engine="CNTK data_parallel_distributed_learner (MPI all-reduce)",
                launcher="mpiexec", world_size=Communicator.num_workers(), rank=Communicator.rank())
