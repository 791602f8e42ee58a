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
from lab import parity  # noqa: E402


def batch(seed, n=64):  # a minibatch of BATCH_SIZE: CNTK scales Adam's epsilon by it
    rng = np.random.RandomState(seed)
    ids = np.zeros((n, aw.MAXLEN), np.int32)
    for i, words in enumerate(rng.randint(1, aw.MAXLEN + 1, n)):
        ids[i, :words] = rng.randint(1, aw.VOCAB, words)
    return ids, rng.randint(0, 2, n)


def no_dropout(tab):
    """The parity runs' switch (lab.parity.no_dropout), and the two attention layers that apply their
    dropout as a function, not through the framework's dropout layer: PyTorch's MultiheadAttention (its
    rate handed to the attention function) and Flax's (asked to be deterministic)."""
    parity.no_dropout(tab)
    if tab == "pytorch":
        import torch
        call = torch.nn.MultiheadAttention.forward

        def without(self, *args, **kwargs):
            self.dropout = 0.0
            return call(self, *args, **kwargs)
        torch.nn.MultiheadAttention.forward = without
    if tab == "jax":
        from flax import nnx
        attend = nnx.MultiHeadAttention.__call__
        nnx.MultiHeadAttention.__call__ = lambda self, *a, **kw: attend(self, *a, **dict(kw, deterministic=True))


def main(name, out):
    tab = name[len("attention_"):]  # the module's framework tab: attention_keras2 -> keras2
    no_dropout(tab)
    module = __import__(name)
    model = module.create_model()
    trainer = module.init_model(model)
    own = module.get_weights(model)
    weights = aw.random_weights(7)
    module.set_weights(model, weights)
    back = module.get_weights(model)
    batches = [batch(s) for s in range(3)]
    arrays = dict(logits=parity.logits(tab, module, trainer, batches[0][0]),
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
