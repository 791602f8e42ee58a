"""The attention model's weights in one framework-neutral layout, and the hyperparameters every module
shares.

    [[token (VOCAB, EMBED), position (MAXLEN, EMBED)],                 the embeddings
     [norm1 scale (EMBED,), norm1 bias,                                 one group per encoder block:
      query (EMBED, EMBED), query bias, key, key bias, value, value bias,   the projections, output-major,
      out (EMBED, EMBED), out bias,                                        the heads side by side
      norm2 scale, norm2 bias,
      ff1 (FF, EMBED), ff1 bias (FF,), ff2 (EMBED, FF), ff2 bias (EMBED,)],  ... BLOCKS of them
     [final norm scale (EMBED,), final norm bias],
     [kernel (CLASSES, EMBED), bias (CLASSES,)]]                        the dense layer, output-major

Each projection is a Linear layer as PyTorch holds it: the output features first, head h's in rows
h * HEAD to (h + 1) * HEAD. What the frameworks hold instead is converted here, once: PyTorch's
MultiheadAttention packs the three in one (3 EMBED, EMBED) in_proj_weight (to_packed), Keras and
Flax keep a kernel per projection shaped (EMBED, HEADS, HEAD) and the output's (HEADS, HEAD, EMBED)
(to_heads, out_to_heads). Python 3.6 compatible.
"""
from collections import OrderedDict

import numpy as np

VOCAB, MAXLEN, EMBED, HEADS, FF, BLOCKS, CLASSES = 30000, 150, 128, 4, 512, 2, 2
HEAD = EMBED // HEADS  # 32
EPS = 1e-5  # every LayerNorm's, added to the variance
DROPOUT = 0.1  # on the attention weights, on the attention's output and on the feed-forward's
ADAM = OrderedDict(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8)  # part II's, the seed's RNN's
BLOCK = ["norm1_scale", "norm1_bias", "query", "query_bias", "key", "key_bias", "value", "value_bias",
         "out", "out_bias", "norm2_scale", "norm2_bias", "ff1", "ff1_bias", "ff2", "ff2_bias"]
BLOCK_SHAPES = [(EMBED,), (EMBED,)] + [(EMBED, EMBED), (EMBED,)] * 4 + [(EMBED,), (EMBED,), (FF, EMBED), (FF,),
                                                                      (EMBED, FF), (EMBED,)]
SHAPES = ([[(VOCAB, EMBED), (MAXLEN, EMBED)]] + [list(BLOCK_SHAPES) for _ in range(BLOCKS)]
          + [[(EMBED,), (EMBED,)], [(CLASSES, EMBED), (CLASSES,)]])
GROUPS = ["embedding"] + ["block{}".format(i) for i in range(BLOCKS)] + ["final_norm", "dense"]
N_PARAMS = sum(int(np.prod(s)) for group in SHAPES for s in group)  # 4,256,258


def check(weights):
    """The weights as float32 arrays in the neutral layout, or a ValueError that names the first
    array whose shape differs."""
    if len(weights) != len(SHAPES):
        raise ValueError("{} groups of arrays, the layout has {}: {}".format(len(weights), len(SHAPES), GROUPS))
    out = []
    for name, group, shapes in zip(GROUPS, weights, SHAPES):
        if len(group) != len(shapes):
            raise ValueError("{}: {} arrays, the layout has {}".format(name, len(group), len(shapes)))
        for i, (array, shape) in enumerate(zip(group, shapes)):
            if tuple(np.shape(array)) != shape:
                label = BLOCK[i] if name.startswith("block") else str(i)
                raise ValueError("{}[{}] has shape {}, the layout's is {}".format(name, label, np.shape(array), shape))
        out.append([np.asarray(a, np.float32) for a in group])
    return out


def random_weights(seed=0, vocab=VOCAB, scale=0.3):
    """Weights any framework can take, for the parity checks (a smaller vocabulary for quick tests):
    uniform, and the norms' scales around one, so that no array is what an init would leave."""
    rng = np.random.RandomState(seed)
    out = []
    for g, shapes in enumerate([[(vocab, EMBED), (MAXLEN, EMBED)]] + SHAPES[1:]):
        group = [rng.uniform(-scale, scale, s).astype(np.float32) for s in shapes]
        for i in range(len(group)):
            if (0 < g <= BLOCKS and BLOCK[i].endswith("_scale")) or (g == BLOCKS + 1 and i == 0):
                group[i] += np.float32(1)
        out.append(group)
    return out


def to_packed(block):
    """A block's query, key and value as PyTorch's MultiheadAttention packs them: in_proj_weight
    (3 EMBED, EMBED) and in_proj_bias (3 EMBED,), query first."""
    q, qb, k, kb, v, vb = block[2:8]
    return np.concatenate([q, k, v]), np.concatenate([qb, kb, vb])


def from_packed(weight, bias):
    """[query, query bias, key, key bias, value, value bias] from in_proj_weight and in_proj_bias."""
    (q, k, v), (qb, kb, vb) = np.split(np.asarray(weight), 3), np.split(np.asarray(bias), 3)
    return [q, qb, k, kb, v, vb]


def to_heads(weight, bias):
    """A projection (EMBED out, EMBED in) and its bias as Keras' and Flax's attention hold it: kernel
    (EMBED in, HEADS, HEAD), bias (HEADS, HEAD)."""
    return np.asarray(weight).T.reshape(EMBED, HEADS, HEAD), np.asarray(bias).reshape(HEADS, HEAD)


def from_heads(kernel, bias):
    return np.asarray(kernel).reshape(EMBED, EMBED).T, np.asarray(bias).reshape(EMBED)


def out_to_heads(weight):
    """The output projection (EMBED out, EMBED in: the heads' outputs side by side) as Keras and Flax
    hold it: (HEADS, HEAD, EMBED out); its bias stays (EMBED,)."""
    return np.asarray(weight).T.reshape(HEADS, HEAD, EMBED)


def out_from_heads(kernel):
    return np.asarray(kernel).reshape(EMBED, EMBED).T


def save(path, weights):
    np.savez(path, **{"{}_{}".format(g, i): a for g, group in enumerate(weights) for i, a in enumerate(group)})


def load(path):
    with np.load(path) as f:
        return [[f["{}_{}".format(g, i)] for i in range(len(shapes))] for g, shapes in enumerate(SHAPES)]
