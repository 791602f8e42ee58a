"""CNTK 2.7, data-parallel: the faithful momentum SGD wrapped in data_parallel_distributed_learner,
one process per device, started by mpiexec (CNTK's MPI communicator). Each process takes its share of
every batch; the distributed learner all-reduces the gradients (sums of the samples' gradients) and
sums the sample counts, so the local learner sees what one process sees for the whole batch: the
learning rate stays. Nothing is broadcast: every process must start from the same weights. The rest
is cnn_cntk's."""
import atexit

import cntk as C
from cntk.train.distributed import Communicator, data_parallel_distributed_learner

import cnn_cntk as faithful
from cnn_cntk import (count_params, create_model, get_weights, load_data, predict,  # noqa: F401
                      set_weights)  # unchanged
from common import SEED

# MPI_Finalize, after the last all-reduce: without it Open MPI reports the processes as failed.
atexit.register(Communicator.finalize)


def init_model(model):
    model, labels, sgd = faithful.init_model(model)
    own_dropout(model)
    # num_quantization_bits=32: the plain all-reduce (fewer bits need CNTK's 1-bit SGD build).
    learner = data_parallel_distributed_learner(sgd.parameter_learners[0], num_quantization_bits=32,
                                                distributed_after=0)
    return model, labels, C.Trainer(model, sgd.loss_function, [learner])


def own_dropout(graph):
    """Dropout: each process its own masks, as the halves of one process's batch have. With a fixed
    seed CNTK gives every Dropout that seed, in every process."""
    primitive = lambda f: isinstance(f, C.Function) and f.op_name == "Dropout" and not f.is_block  # noqa: E731
    for f in C.logging.graph.depth_first_search(graph, primitive, depth=-1):
        f.set_attribute("rngSeed", SEED + Communicator.rank())


def train_epoch(trainer, batches):
    rank, world = Communicator.rank(), Communicator.num_workers()

    def shares():  # every process reads the same global batch and takes its share of it
        for x, y in batches:
            share = len(x) // world
            yield x[rank * share:(rank + 1) * share], y[rank * share:(rank + 1) * share]
    # The loss the trainer reports is the global batch's: the learner sums the losses with the counts.
    return faithful.train_epoch(trainer, shares())


def runtime_info():
    return dict(faithful.runtime_info(), engine="CNTK data_parallel_distributed_learner (MPI all-reduce)",
                launcher="mpiexec", world_size=Communicator.num_workers(), rank=Communicator.rank())
