"""Caffe2 (inside PyTorch 1.8.1), data-parallel: Gloo's collective operators in the train net, one
process per rank, the ranks meeting through files in a shared folder (GLOO_FILE_STORE). Each rank
takes its share of every batch and scales its loss by 1/world; an Allreduce sums the gradients:
the global batch's mean gradient. Nothing is broadcast: set_weights puts the same weights in every
rank. (data_parallel_model, Caffe2's own wrapper for this, needs networkx, which this environment
lacks.) The rest is cnn_caffe2's."""
import os

import numpy as np
from caffe2.python import core, model_helper, optimizer, workspace

import cnn_caffe2 as faithful
from cnn_caffe2 import (DEVICE, add_layers, count_params, create_model, get_weights, load_data,  # noqa: F401
                        predict, set_weights)  # unchanged
from common import BATCH_SIZE, LR, MOMENTUM, SEED

RANK, WORLD = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])


def init_model(model):
    with core.DeviceScope(DEVICE):
        model.net.SoftmaxWithLoss(["logits", "label"], ["softmax", "loss"])  # this rank's share's mean
        model.net.Scale("loss", "scaled_loss", scale=1.0 / WORLD)  # summed over the ranks: the global mean
        model.AddGradientOperators(["scaled_loss"])
        # The ranks meet when param_init_net runs; then one Allreduce per gradient, in the same order
        # on every rank (a simple net runs its operators one after another), before the update.
        store = model.param_init_net.FileStoreHandlerCreate([], "store", path=os.environ["GLOO_FILE_STORE"])
        world = model.param_init_net.CreateCommonWorld(store, "world", size=WORLD, rank=RANK, engine="GLOO")
        for grad in model.param_to_grad.values():
            model.net.Allreduce([world, grad], grad, engine="GLOO")
        # cnn_caffe2's update: its learning rate, classic momentum (build_sgd's default is Nesterov's)
        optimizer.build_sgd(model, base_learning_rate=LR, policy="fixed", momentum=MOMENTUM, nesterov=False)
        test = model_helper.ModelHelper(name="test", init_params=False, arg_scope=model.arg_scope)
        add_layers(test, is_test=True)
    for op in model.net.Proto().op:  # dropout: each rank its own masks, as the halves of one's batch have
        if op.type == "Dropout":
            op.device_option.random_seed = SEED + RANK
    workspace.RunNetOnce(model.param_init_net)
    workspace.FeedBlob("data", np.zeros((BATCH_SIZE, 3, 32, 32), np.float32), DEVICE)
    workspace.FeedBlob("label", np.zeros(BATCH_SIZE, np.int32), DEVICE)
    workspace.CreateNet(model.net)
    workspace.CreateNet(test.net)
    return model, test


def train_epoch(trainer, batches):
    def shares():  # every rank reads the same global batch and takes its share of it
        for x, y in batches:
            share = len(x) // WORLD
            yield x[RANK * share:(RANK + 1) * share], y[RANK * share:(RANK + 1) * share]
    return faithful.train_epoch(trainer, shares())  # this rank's share's mean loss


def runtime_info():
    return dict(faithful.runtime_info(), engine="Caffe2 Gloo operators (CreateCommonWorld, Allreduce)",
                launcher="RANK, WORLD_SIZE, GLOO_FILE_STORE: one process per rank", world_size=WORLD, rank=RANK)
