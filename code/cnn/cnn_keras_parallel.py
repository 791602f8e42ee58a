"""Keras 3 on JAX, data-parallel: keras.distribution joins the processes (JAX's coordinator) and
DataParallel splits every batch over all their devices; compile and fit are unchanged. Each process
gives fit its share of every batch, which Keras joins into the global batch. The rest is cnn_keras's."""
import os

import jax
import keras
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

# Before any computation: the launcher gives each process the coordinator's address (process 0
# serves it), the number of processes and its own index.
keras.distribution.initialize(os.environ["JAX_COORDINATOR_ADDRESS"], int(os.environ["WORLD_SIZE"]),
                              int(os.environ["RANK"]))
DISTRIBUTION = keras.distribution.DataParallel()  # every device of every process
DISTRIBUTION.auto_shard_dataset = False  # a generator: each process gives its share itself (train_epoch)
keras.distribution.set_distribution(DISTRIBUTION)
import cnn_keras as faithful  # noqa: E402
from cnn_keras import (count_params, create_model, get_weights, init_model, load_data,  # noqa: E402,F401
                       set_weights)  # unchanged


def share(a):
    """This process's share of a global batch that every process reads whole."""
    n = len(a) // jax.process_count()
    return a[jax.process_index() * n:(jax.process_index() + 1) * n]


def train_epoch(trainer, batches):
    # The loss fit reports is the global batch's, the same in every process.
    return faithful.train_epoch(trainer, ((share(x), share(y)) for x, y in batches))


def predict(trainer, batches):
    # predict() cannot fetch an output spread over the processes: the model is called on the global
    # batch (each process's share of it), and the classes are gathered from every process.
    sharded = NamedSharding(Mesh(np.array(jax.devices()), ("batch",)), PartitionSpec("batch"))
    return np.concatenate([multihost_utils.process_allgather(
        trainer(jax.make_array_from_process_local_data(sharded, share(x)), training=False).argmax(axis=1), tiled=True)
        for x in batches])


def runtime_info():
    return dict(faithful.runtime_info(), engine="keras.distribution DataParallel on jax.distributed",
                launcher="the JAX coordinator (one process per device)", world_size=jax.process_count(),
                rank=jax.process_index())
