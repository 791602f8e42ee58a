"""JAX, data-parallel: jax.distributed joins the processes (gloo between CPUs), one mesh spans every
process's devices, and each batch is sharded over it with a NamedSharding; XLA puts the all-reduce
of the gradients into the compiled step. The rest is cnn_jax's."""
import os

import jax
import numpy as np
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import cnn_jax as faithful
from cnn_jax import count_params, create_model, load_data, predict_step, train_step  # noqa: F401 (unchanged)

# Before any computation: the launcher gives each process the coordinator's address (process 0
# serves it), the number of processes and its own index.
jax.distributed.initialize(os.environ["JAX_COORDINATOR_ADDRESS"], int(os.environ["WORLD_SIZE"]),
                           int(os.environ["RANK"]))
MESH = Mesh(np.array(jax.devices()), ("batch",))  # every process's devices, in one axis
SHARDED = NamedSharding(MESH, PartitionSpec("batch"))  # a batch: split over the processes
REPLICATED = NamedSharding(MESH, PartitionSpec())  # the parameters and momenta: whole in each


def replicated(a):
    """An array of the whole mesh from this process's copy (every process has the same one)."""
    if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):  # dropout's key: its data, then a key again
        return jax.random.wrap_key_data(replicated(jax.random.key_data(a)), impl=jax.random.key_impl(a))
    return jax.make_array_from_process_local_data(REPLICATED, np.asarray(a))


def replicate(*nodes):
    """The nodes' state (parameters, momenta, dropout's key) as arrays of the whole mesh."""
    for node in nodes:
        nnx.update(node, jax.tree.map(replicated, nnx.state(node)))


def share(a):
    """This process's share of a global batch that every process reads whole, as the global array."""
    n = len(a) // jax.process_count()
    return jax.make_array_from_process_local_data(SHARDED, a[jax.process_index() * n:(jax.process_index() + 1) * n])


def init_model(model):
    model, optimizer = faithful.init_model(model)
    replicate(model, optimizer)
    return model, optimizer  # the learning rate stays: the loss is the global batch's mean


def train_epoch(trainer, batches):
    model, optimizer = trainer
    model.train()  # dropout on
    losses = [train_step(model, optimizer, share(x), share(y)) for x, y in batches]
    return float(np.mean([loss.addressable_data(0) for loss in losses]))  # the same in every process


def predict(trainer, batches):
    model = trainer[0]
    model.eval()  # dropout off
    return np.concatenate([multihost_utils.process_allgather(predict_step(model, share(x)), tiled=True)
                           for x in batches])


def local(model):
    """A copy of the model on this process's device alone, for what reads its arrays."""
    graphdef, state = nnx.split(model)
    return nnx.merge(graphdef, jax.tree.map(lambda a: a.addressable_data(0), state))


def get_weights(model):
    return faithful.get_weights(local(model))


def set_weights(model, weights):
    faithful.set_weights(model, weights)  # this process's arrays ...
    replicate(model)  # ... made the mesh's again


def runtime_info():
    return dict(faithful.runtime_info(), engine="jax.distributed ({} collectives)".format(
        jax.config.jax_cpu_collectives_implementation if jax.devices()[0].platform == "cpu" else "NCCL"),
        launcher="the JAX coordinator (one process per device)", world_size=jax.process_count(),
        rank=jax.process_index())
