"""The attention model in NumPy, float64: the oracle every framework's encoder is checked against.

Token embedding + learned position embedding -> BLOCKS pre-norm encoder blocks, each
    x = x + attention(norm1(x))          HEADS heads of HEAD, scores scaled by 1/sqrt(HEAD), the
                                          padding's keys masked out, softmax over the keys
    x = x + ff2(gelu(ff1(norm2(x))))     GELU exact: u * Phi(u), Phi the normal's CDF (erf)
-> a final norm -> the mean over each review's own words (the padding, id 0, left out) -> dense to 2
logits; softmax cross-entropy, Adam. Every norm adds EPS to the variance and has a scale and a bias
per feature. Dropout is not here: the parity checks switch it off in the frameworks. Weights in the
neutral layout of attention_weights.py.
"""
from collections import OrderedDict

import numpy as np
from attention_weights import ADAM, BLOCKS, CLASSES, EMBED, EPS, FF, HEAD, HEADS, MAXLEN

# Where Adam adds epsilon, as part II measured the frameworks: each row's parity run says which.
OPTIMIZER_FORMS = OrderedDict([("epsilon after the bias correction", dict(eps_hat=False)),
                               ("epsilon hat", dict(eps_hat=True)),
                               ("epsilon hat, steps counted from 2", dict(eps_hat=True, first_step=2)),
                               ("epsilon hat, a repeated word's gradients squared apart",
                                dict(eps_hat=True, rows_apart=True))])


def layer_norm(x, scale, bias):
    centred = x - x.mean(axis=-1, keepdims=True)
    inv = 1.0 / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + EPS)
    normed = centred * inv
    return normed * scale + bias, (normed, inv, scale)


def layer_norm_back(d_out, saved):
    normed, inv, scale = saved
    d_normed = d_out * scale
    d_x = inv * (d_normed - d_normed.mean(axis=-1, keepdims=True)
                 - normed * (d_normed * normed).mean(axis=-1, keepdims=True))
    return d_x, (d_out * normed).reshape(-1, normed.shape[-1]).sum(axis=0), d_out.reshape(-1, d_out.shape[-1]).sum(axis=0)


def phi(u):
    """The normal's CDF, by SciPy's erf: imported here, since the frameworks' processes import this module
    (parity's and the ONNX check's layout) where their environments have no SciPy, and never call it."""
    from scipy.special import erf
    return 0.5 * (1.0 + erf(u / np.sqrt(2.0)))


def gelu(u):
    return u * phi(u)


def gelu_grad(u):
    return phi(u) + u * np.exp(-0.5 * u * u) / np.sqrt(2.0 * np.pi)


def linear(x, weight, bias):
    return x @ weight.T + bias


def linear_back(d_out, x, weight):
    """(d x, d weight, d bias) of x @ weight.T + bias, over every leading axis."""
    flat_d, flat_x = d_out.reshape(-1, d_out.shape[-1]), x.reshape(-1, x.shape[-1])
    return d_out @ weight, flat_d.T @ flat_x, flat_d.sum(axis=0)


def heads(x):
    """(N, T, EMBED) -> (N, HEADS, T, HEAD), and back with merge."""
    return x.reshape(x.shape[0], x.shape[1], HEADS, HEAD).transpose(0, 2, 1, 3)


def merge(x):
    return x.transpose(0, 2, 1, 3).reshape(x.shape[0], x.shape[2], HEADS * HEAD)


def attention(h, block, keys):
    """Multi-head self-attention of h (N, T, EMBED) with the keys where `keys` (N, T) is True."""
    q, k, v = (heads(linear(h, block[i], block[i + 1])) for i in (2, 4, 6))
    scores = np.where(keys[:, None, None, :], q @ k.transpose(0, 1, 3, 2) / np.sqrt(HEAD), -np.inf)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    context = merge(weights @ v)
    return linear(context, block[8], block[9]), (q, k, v, weights, context)


def attention_back(d_out, h, block, saved):
    q, k, v, weights, context = saved
    d_context, d_wo, d_bo = linear_back(d_out, context, block[8])
    d_context = heads(d_context)
    d_weights = d_context @ v.transpose(0, 1, 3, 2)
    d_v = weights.transpose(0, 1, 3, 2) @ d_context
    d_scores = weights * (d_weights - (d_weights * weights).sum(axis=-1, keepdims=True)) / np.sqrt(HEAD)
    d_q, d_k = d_scores @ k, d_scores.transpose(0, 1, 3, 2) @ q
    d_h, grads = 0.0, []
    for i, d in zip((2, 4, 6), (d_q, d_k, d_v)):
        d_x, d_w, d_b = linear_back(merge(d), h, block[i])
        d_h, grads = d_h + d_x, grads + [d_w, d_b]
    return d_h, grads + [d_wo, d_bo]


def forward(weights, ids):
    """(logits (N, 2), what backward needs) for padded ids (N, T): each review's mean over its own words."""
    weights = [[np.float64(a) for a in group] for group in weights]
    (token, position), final, (kernel, bias) = weights[0], weights[BLOCKS + 1], weights[BLOCKS + 2]
    words = ids != 0
    x = token[ids] + position[:ids.shape[1]]
    saved = []
    for block in weights[1:BLOCKS + 1]:
        h1, norm1 = layer_norm(x, block[0], block[1])
        attended, att = attention(h1, block, words)
        x2 = x + attended
        h2, norm2 = layer_norm(x2, block[10], block[11])
        u = linear(h2, block[12], block[13])
        x = x2 + linear(gelu(u), block[14], block[15])
        saved.append((h1, norm1, att, h2, norm2, u))
    y, final_norm = layer_norm(x, final[0], final[1])
    counts = words.sum(axis=1, keepdims=True)
    pooled = (y * words[:, :, None]).sum(axis=1) / counts
    return linear(pooled, kernel, bias), (weights, words, counts, saved, final_norm, pooled)


def loss_and_grad(logits, labels):
    """Mean softmax cross-entropy and its gradient with respect to the logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    n = len(labels)
    loss = -np.mean(np.log(p[np.arange(n), labels]))
    p[np.arange(n), labels] -= 1
    return loss, p / n


def gradients(weights, ids, labels, rows_apart=False):
    """(loss, gradients in the weights' layout). With rows_apart, also the embeddings' gradients squared:
    the token embedding's per occurrence of a word, then summed (what Keras 3's Adam on TensorFlow
    squares, its gradient a row per occurrence), the position table's as it is (a table added whole)."""
    logits, (weights, words, counts, saved, final_norm, pooled) = forward(weights, ids)
    loss, d_logits = loss_and_grad(logits, labels)
    _, d_kernel, d_bias = linear_back(d_logits, pooled, weights[BLOCKS + 2][0])
    d_y = (d_logits @ weights[BLOCKS + 2][0])[:, None, :] * words[:, :, None] / counts[:, :, None]
    d_x, d_scale, d_shift = layer_norm_back(d_y, final_norm)
    grads = [None] * BLOCKS + [[d_scale, d_shift], [d_kernel, d_bias]]
    for b in range(BLOCKS - 1, -1, -1):
        block, (h1, norm1, att, h2, norm2, u) = weights[b + 1], saved[b]
        d_gelu, d_w2, d_b2 = linear_back(d_x, gelu(u), block[14])
        d_h2, d_w1, d_b1 = linear_back(d_gelu * gelu_grad(u), h2, block[12])
        d_x2, d_g2, d_s2 = layer_norm_back(d_h2, norm2)
        d_x2 = d_x2 + d_x
        d_h1, att_grads = attention_back(d_x2, h1, block, att)
        d_x1, d_g1, d_s1 = layer_norm_back(d_h1, norm1)
        d_x = d_x1 + d_x2
        grads[b] = [d_g1, d_s1] + att_grads + [d_g2, d_s2, d_w1, d_b1, d_w2, d_b2]
    token, position = weights[0]
    d_token = np.zeros_like(token)
    np.add.at(d_token, ids, d_x)
    d_position = np.zeros_like(position)
    d_position[:ids.shape[1]] = d_x.sum(axis=0)
    grads = [[d_token, d_position]] + grads
    if rows_apart:
        squares = [np.zeros_like(token), d_position * d_position]
        np.add.at(squares[0], ids, d_x * d_x)
        return loss, grads, squares
    return loss, grads


def train(weights, batches, eps_hat=False, first_step=1, rows_apart=False, lr=ADAM["lr"],
          beta1=ADAM["beta1"], beta2=ADAM["beta2"], eps=ADAM["eps"]):
    """Adam over the batches: (losses, weights after the steps), in the forms of part II's reference:
    eps added to the bias-corrected root (PyTorch's), or to the uncorrected one (eps_hat, Keras'),
    steps counted from first_step, and rows_apart."""
    weights = [[np.float64(a) for a in group] for group in weights]
    m = [[np.zeros_like(a) for a in group] for group in weights]
    v = [[np.zeros_like(a) for a in group] for group in weights]
    losses = []
    for step, (ids, labels) in enumerate(batches, first_step):
        loss, grads, *apart = gradients(weights, ids, labels, rows_apart)
        losses.append(loss)
        squared = [[g * g for g in group] for group in grads]
        if apart:
            squared[0] = apart[0]  # the embeddings', squared per occurrence
        for group, g_group, s_group, m_group, v_group in zip(weights, grads, squared, m, v):
            for i, g in enumerate(g_group):
                m_group[i] = beta1 * m_group[i] + (1 - beta1) * g
                v_group[i] = beta2 * v_group[i] + (1 - beta2) * s_group[i]
                m_hat, v_hat = m_group[i] / (1 - beta1 ** step), v_group[i] / (1 - beta2 ** step)
                root = np.sqrt(v_hat) + (eps / np.sqrt(1 - beta2 ** step) if eps_hat else eps)
                group[i] = group[i] - lr * m_hat / root
    return np.array(losses), weights


def flops(batch, length=MAXLEN):
    """The floating-point operations of one training step on `batch` reviews, two per multiply-add of
    the matrix products, over every position of the padded reviews (the frameworks compute the padding,
    masked, as they compute the words); the element-wise work (norms, GELU, softmax, Adam) left out.
    Forward, per block: the four projections, the scores and the weighted values (length x length per
    head), the feed-forward's two layers. Backward, two products per forward one (the embeddings are
    looked up, but their gradient needs the first block's input gradient): {"forward", "train"}."""
    block = 4 * length * EMBED * EMBED + 2 * length * length * EMBED + 2 * length * EMBED * FF
    forward = 2 * batch * (BLOCKS * block + EMBED * CLASSES)
    return dict(forward=forward, train=3 * forward)
