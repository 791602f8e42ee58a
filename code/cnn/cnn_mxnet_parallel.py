"""MXNet 1.9, data-parallel: gluon.Trainer on the 'dist_sync' key-value store, MXNet's parameter
server (a scheduler, a server and the workers, found through the DMLC_* variables the launcher
sets). The server sums the workers' gradients and updates the weights; each worker takes its share
of every batch. The rest is cnn_mxnet's."""
import mxnet as mx
from mxnet import autograd, gluon, nd

import cnn_mxnet as faithful
from cnn_mxnet import CTX, count_params, get_weights, load_data, predict, set_weights  # noqa: F401 (unchanged)
from common import LR, MOMENTUM, SEED

KV = mx.kv.create("dist_sync")  # joins the scheduler: waits until every worker is there


def create_model():
    model = faithful.create_model()
    model(nd.zeros((1, 3, 32, 32), ctx=CTX))  # Gluon initialises at the first call: now, with the same seed
    # Dropout: each worker its own masks, as the two halves of one worker's batch have.
    mx.random.seed(SEED + KV.rank)
    return model


def init_model(model):
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    # The server runs SGD on the gradients it summed (update_on_kvstore): weights and momenta live there.
    trainer = gluon.Trainer(model.collect_params(), "sgd", {"learning_rate": LR, "momentum": MOMENTUM}, kvstore=KV)
    return model, loss_fn, trainer


def train_epoch(trainer, batches):
    model, loss_fn, sgd = trainer
    total, steps = nd.zeros(1, ctx=CTX), 0
    for x, y in batches:  # every worker reads the same global batch and takes its share of it
        share = len(x) // KV.num_workers
        x, y = x[KV.rank * share:(KV.rank + 1) * share], y[KV.rank * share:(KV.rank + 1) * share]
        x, y = nd.array(x, ctx=CTX), nd.array(y, ctx=CTX)
        with autograd.record():
            loss = loss_fn(model(x), y)
        loss.backward()
        sgd.step(share * KV.num_workers)  # the summed gradient of the global batch: divide by its size
        total, steps = total + loss.mean(), steps + 1
    return total.asscalar() / steps  # this worker's share's mean loss


def runtime_info():
    return dict(faithful.runtime_info(), engine="MXNet kvstore dist_sync (parameter server)",
                launcher="DMLC_* variables: a scheduler, a server, the workers", world_size=KV.num_workers,
                rank=KV.rank)
