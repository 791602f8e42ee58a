"""Keras 3 on JAX, data-parallel: keras.distribution joins the processes (JAX's coordinator) and
DataParallel splits every batch over all their devices; compile and fit are unchanged. Each process
gives fit its share of every batch, which Keras joins into the global batch. The rest is cnn_keras's."""
import os

import keras

# Before any computation: the launcher gives each process the coordinator's address (process 0
# serves it), the number of processes and its own index.
keras.distribution.initialize(os.environ["JAX_COORDINATOR_ADDRESS"], int(os.environ["WORLD_SIZE"]),
                              int(os.environ["RANK"]))
DISTRIBUTION = keras.distribution.DataParallel()  # every device of every process
DISTRIBUTION.auto_shard_dataset = False  # a generator: each process gives its share itself (train_epoch)
keras.distribution.set_distribution(DISTRIBUTION)
import cnn_keras as faithful  # noqa: E402
from cnn_keras import (count_params, create_model, get_weights, init_model, load_data,  # noqa: E402,F401
                       predict, set_weights)  # unchanged


def train_epoch(trainer, batches):
    import jax
    rank, world = jax.process_index(), jax.process_count()
    shares = ((x[rank * (len(x) // world):(rank + 1) * (len(x) // world)],
               y[rank * (len(y) // world):(rank + 1) * (len(y) // world)]) for x, y in batches)
    return faithful.train_epoch(trainer, shares)  # the loss is the global batch's, the same in each process


def runtime_info():
    import jax
    return dict(faithful.runtime_info(), engine="keras.distribution DataParallel on jax.distributed",
                launcher="the JAX coordinator (one process per device)", world_size=jax.process_count(),
                rank=jax.process_index())
