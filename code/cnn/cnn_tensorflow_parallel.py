"""TensorFlow 2, data-parallel: tf.distribute.MultiWorkerMirroredStrategy around the faithful
tf.Module loop, one worker per process, each told the cluster and its place in it by TF_CONFIG.
Each worker takes its share of every batch; the gradients are summed across the workers, so each
worker's loss is divided by the global batch. The rest is cnn_tensorflow's."""
import tensorflow as tf

STRATEGY = tf.distribute.MultiWorkerMirroredStrategy()  # reads TF_CONFIG; before any other op
import cnn_tensorflow as faithful  # noqa: E402
from cnn_tensorflow import (count_params, get_weights, load_data, predict, set_weights,  # noqa: E402,F401
                            LR, MOMENTUM, SEED)  # unchanged


def same_everywhere(next_creator, **kwargs):
    # Without an aggregation each worker would assign only its own copy; the first worker's value,
    # broadcast to every copy, keeps them equal whatever the workers compute.
    kwargs["aggregation"] = tf.VariableAggregation.ONLY_FIRST_REPLICA
    return next_creator(**kwargs)


def create_model():
    with STRATEGY.scope(), tf.variable_creator_scope(same_everywhere):  # mirrored on every worker
        return faithful.create_model()


def init_model(model):
    with STRATEGY.scope(), tf.variable_creator_scope(same_everywhere):
        trainer = faithful.init_model(model)
    # Dropout: each worker its own masks, as the two halves of one worker's batch have (train_step's
    # dropout ops take their seeds from the global seed when it is first traced, after this).
    tf.random.set_seed(SEED + STRATEGY.cluster_resolver.task_id)
    return trainer


@tf.function
def train_step(model, velocities, x, y, global_batch):
    def step(x, y):
        with tf.GradientTape() as tape:
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(y, model(x, training=True))
            loss = tf.nn.compute_average_loss(losses, global_batch_size=global_batch)  # sum / global batch
        grads = tape.gradient(loss, model.trainable_variables)
        grads = tf.distribute.get_replica_context().all_reduce("sum", grads)  # the global batch's mean gradient
        for v, w, g in zip(velocities, model.trainable_variables, grads):
            v.assign(MOMENTUM * v + g)  # classic momentum, as in cnn_tensorflow
            w.assign_sub(LR * v)
        return loss
    return STRATEGY.reduce("sum", STRATEGY.run(step, args=(x, y)), axis=None)  # the global batch's mean loss


def train_epoch(trainer, batches):
    model, velocities = trainer
    rank, world = STRATEGY.cluster_resolver.task_id, STRATEGY.num_replicas_in_sync
    total, steps = tf.constant(0.0), 0
    for x, y in batches:  # every worker reads the same global batch and takes its share of it
        share = len(x) // world
        total = total + train_step(model, velocities, x[rank * share:(rank + 1) * share],
                                   y[rank * share:(rank + 1) * share], len(x))
        steps += 1
    return float(total) / steps


def runtime_info():
    return dict(faithful.runtime_info(), engine="tf.distribute.MultiWorkerMirroredStrategy",
                launcher="TF_CONFIG, one per worker", world_size=STRATEGY.num_replicas_in_sync,
                rank=STRATEGY.cluster_resolver.task_id)
