"""The RNN's weights in one framework-neutral layout, and the hyperparameters every module shares.

    [[embedding (VOCAB, EMBED)],
     [w_ih (3H, EMBED), w_hh (3H, H), b_ih (3H,), b_hh (3H,)],   the GRU: gates r, z, n; output-major
     [kernel (2, H), bias (2,)]]                                   the dense layer, output-major

This is PyTorch's and cuDNN's own order. The conversions to the other orders (Keras' z, r, h with
input-major kernels and a (2, 3H) bias) are written once, here. Python 3.6 compatible.
"""
from collections import OrderedDict

import numpy as np

VOCAB, EMBED, HIDDEN, CLASSES = 30000, 125, 100, 2  # the seed's MAXFEATURES, EMBEDSIZE, NUMHIDDEN
ADAM = OrderedDict(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8)  # the seed's LR, BETA_1, BETA_2, EPS
SHAPES = [[(VOCAB, EMBED)], [(3 * HIDDEN, EMBED), (3 * HIDDEN, HIDDEN), (3 * HIDDEN,), (3 * HIDDEN,)],
          [(CLASSES, HIDDEN), (CLASSES,)]]
N_PARAMS = sum(int(np.prod(s)) for group in SHAPES for s in group)  # 3,818,302: two GRU biases (form A)


def check(weights):
    """The weights as float32 arrays in the neutral layout, or a ValueError that names the first
    array whose shape differs."""
    out = []
    for name, group, shapes in zip(("embedding", "gru", "dense"), weights, SHAPES):
        if len(group) != len(shapes):
            raise ValueError("{}: {} arrays, the layout has {}".format(name, len(group), len(shapes)))
        for i, (array, shape) in enumerate(zip(group, shapes)):
            if tuple(np.shape(array)) != shape:
                raise ValueError("{}[{}] has shape {}, the layout's is {}".format(name, i, np.shape(array), shape))
        out.append([np.asarray(a, np.float32) for a in group])
    return out


def random_weights(seed=0, vocab=VOCAB, scale=0.3):
    """Weights any framework can take, for the parity checks (a smaller vocabulary for quick tests)."""
    rng = np.random.RandomState(seed)
    shapes = [[(vocab, EMBED)]] + SHAPES[1:]
    return [[rng.uniform(-scale, scale, s).astype(np.float32) for s in group] for group in shapes]


def rzn_to_zrn(a):
    """The gate blocks along the first axis, PyTorch's r, z, n to Keras' z, r, h (and back: the same swap)."""
    r, z, n = np.split(np.asarray(a), 3, axis=0)
    return np.concatenate([z, r, n], axis=0)


def to_keras(gru):
    """The neutral GRU as Keras' GRU(reset_after=True) holds it: kernel (I, 3H), recurrent kernel
    (H, 3H), bias (2, 3H) = [input bias; recurrent bias], gates z, r, h."""
    w_ih, w_hh, b_ih, b_hh = gru
    return [rzn_to_zrn(w_ih).T, rzn_to_zrn(w_hh).T, np.stack([rzn_to_zrn(b_ih), rzn_to_zrn(b_hh)])]


def from_keras(kernel, recurrent, bias):
    return [rzn_to_zrn(kernel.T), rzn_to_zrn(recurrent.T), rzn_to_zrn(bias[0]), rzn_to_zrn(bias[1])]


def save(path, weights):
    np.savez(path, **{"{}_{}".format(g, i): a for g, group in enumerate(weights) for i, a in enumerate(group)})


def load(path):
    with np.load(path) as f:
        return [[f["{}_{}".format(g, i)] for i in range(len(shapes))] for g, shapes in enumerate(SHAPES)]
