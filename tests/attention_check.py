"""Drive one of part IV's modules through the parity steps and write what it computed, for the test to
compare with the NumPy reference in the main environment (until part IV's parity table exists, when
lab.parity does this):

    python tests/attention_check.py MODULE OUT.npz    (in the row's environment; KERAS_BACKEND chooses
                                                       a Keras module's backend)

Dropout off (the reference has none): each framework's layer made the identity, and PyTorch's and
Flax's attention dropout, which they apply as functions, asked for none. Python 3.6 compatible."""
import os
import sys

CODE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "code")
sys.path[:0] = [CODE, os.path.join(CODE, "attention")]
import numpy as np  # noqa: E402

import attention_weights as aw  # noqa: E402


def batch(seed, n=64):  # a minibatch of BATCH_SIZE: CNTK scales Adam's epsilon by it
    rng = np.random.RandomState(seed)
    ids = np.zeros((n, aw.MAXLEN), np.int32)
    for i, words in enumerate(rng.randint(1, aw.MAXLEN + 1, n)):
        ids[i, :words] = rng.randint(1, aw.VOCAB, words)
    return ids, rng.randint(0, 2, n)


def no_dropout(name):
    if name in ("attention_keras", "attention_keras2"):
        import keras
        keras.layers.Dropout.call = lambda self, inputs, training=None: inputs
    if name == "attention_tensorflow":
        import tensorflow as tf
        tf.nn.dropout = lambda x, *args, **kwargs: x
    if name == "attention_jax":
        from flax import nnx
        nnx.Dropout.__call__ = lambda self, x, **kw: x
        call = nnx.MultiHeadAttention.__call__
        nnx.MultiHeadAttention.__call__ = lambda self, *a, **kw: call(self, *a, **dict(kw, deterministic=True))
    if name == "attention_caffe2":
        from caffe2.python import brew
        brew.dropout = lambda model, blob_in, blob_out, ratio=0.5, **kw: blob_in
    if name == "attention_cntk":
        import cntk
        cntk.layers.Dropout = lambda dropout_rate=None, **kw: cntk.layers.identity
    if name == "attention_chainer":
        import chainer.functions
        chainer.functions.dropout = lambda x, ratio=0.5, **kw: x
    if name == "attention_mxnet":
        from mxnet.gluon import nn
        nn.Dropout.hybrid_forward = lambda self, F, x: F.identity(x)
    if name == "attention_pytorch":
        import torch
        torch.nn.Dropout.forward = lambda self, x: x
        call = torch.nn.MultiheadAttention.forward

        def without(self, *args, **kwargs):
            self.dropout = 0.0  # a rate its forward hands to a function, not an nn.Dropout
            return call(self, *args, **kwargs)
        torch.nn.MultiheadAttention.forward = without


def module_of(name):
    return sys.modules[name]


def logits_of(name, model, trainer, x):
    if name == "attention_pytorch":
        import torch
        model.eval()
        with torch.no_grad():
            return model(torch.from_numpy(x).long()).numpy()
    if name == "attention_jax":
        model.eval()
        return np.asarray(model(x))
    if name == "attention_tensorflow":
        return model(x).numpy()
    if name == "attention_mxnet":
        import mxnet as mx
        return model(mx.nd.array(x)).asnumpy()
    if name in ("attention_cntk", "attention_caffe2"):
        return module_of(name).logits_of_batch(trainer, x)
    if name == "attention_chainer":
        import chainer
        with chainer.using_config("train", False), chainer.no_backprop_mode():
            return model(x).array
    return np.asarray(trainer.predict_on_batch(x))


def main(name, out):
    no_dropout(name)
    module = __import__(name)
    model = module.create_model()
    trainer = module.init_model(model)
    own = module.get_weights(model)
    weights = aw.random_weights(7)
    module.set_weights(model, weights)
    back = module.get_weights(model)
    batches = [batch(s) for s in range(3)]
    arrays = dict(logits=logits_of(name, model, trainer, batches[0][0]),
                  losses=np.array([module.train_epoch(trainer, [b]) for b in batches]),
                  params=np.array(module.count_params(model)),
                  round_trip=np.array(all(np.array_equal(a, b) for g, h in zip(weights, back) for a, b in zip(g, h))))
    for g, group in enumerate(module.get_weights(model)):
        for i, a in enumerate(group):
            arrays["trained_{}_{}".format(g, i)] = a
    for i, a in enumerate(own[1][2:10:2]):
        arrays["own_{}".format(i)] = a
    np.savez(out, **arrays)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
