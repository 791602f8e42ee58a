"""The RNN in NumPy, float64: the oracle every framework's GRU is checked against.

Embedding -> one GRU over each review's own steps -> its last step -> dense to 2 logits; softmax
cross-entropy, Adam. Weights in the neutral layout of rnn_weights.py (gates r, z, n; output-major).
Two forms of the GRU, which differ only in the candidate n:
  A, reset after the recurrent product (cuDNN's, PyTorch's, Keras' reset_after=True):
     n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
  B, reset before it (the 2014 paper's, Keras' reset_after=False, CNTK's layers.GRU):
     n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)
and in both r = sigmoid(W_ir x + b_ir + W_hr h + b_hr), z likewise, h' = (1 - z) * n + z * h.
"""
from collections import OrderedDict

import numpy as np

from rnn_weights import ADAM

# Where Adam adds epsilon: the frameworks split between the two (each row's parity run says which).
OPTIMIZER_FORMS = OrderedDict([("epsilon after the bias correction", dict(eps_hat=False)),
                               ("epsilon hat", dict(eps_hat=True)),
                               ("epsilon hat, steps counted from 2", dict(eps_hat=True, first_step=2)),
                               ("epsilon hat, a repeated word's gradients squared apart",
                                dict(eps_hat=True, rows_apart=True))])


def sigmoid(a):
    return 0.5 * (1.0 + np.tanh(0.5 * a))  # no overflow for large |a|


def gru_steps(weights, x, form="A"):
    """Every step of the GRU from h = 0 over x (N, T, I): the states (T + 1, N, H), h[0] = 0, and what
    the backward pass needs."""
    w_ih, w_hh, b_ih, b_hh = (np.float64(a) for a in weights)
    hidden = w_hh.shape[1]
    h = [np.zeros((x.shape[0], hidden))]
    saved = []
    for t in range(x.shape[1]):
        gi = x[:, t] @ w_ih.T + b_ih
        gh = h[-1] @ w_hh.T + b_hh
        r = sigmoid(gi[:, :hidden] + gh[:, :hidden])
        z = sigmoid(gi[:, hidden:2 * hidden] + gh[:, hidden:2 * hidden])
        if form == "A":
            recurrent = gh[:, 2 * hidden:]
            n = np.tanh(gi[:, 2 * hidden:] + r * recurrent)
        else:
            recurrent = (r * h[-1]) @ w_hh[2 * hidden:].T + b_hh[2 * hidden:]
            n = np.tanh(gi[:, 2 * hidden:] + recurrent)
        saved.append((r, z, n, recurrent))
        h.append((1 - z) * n + z * h[-1])
    return np.stack(h), saved


def forward(weights, ids, form="A"):
    """(logits (N, 2), what backward needs) for padded ids (N, T): each review's state after its own
    last id (its length: the ids before the padding, 0)."""
    (embedding,), gru, (kernel, bias) = weights
    lengths = (ids != 0).sum(axis=1)
    x = np.float64(embedding)[ids]
    h, saved = gru_steps(gru, x, form)
    last = h[lengths, np.arange(len(ids))]
    return last @ np.float64(kernel).T + np.float64(bias), (x, h, saved, lengths, last)


def loss_and_grad(logits, labels):
    """Mean softmax cross-entropy and its gradient with respect to the logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    n = len(labels)
    loss = -np.mean(np.log(p[np.arange(n), labels]))
    p[np.arange(n), labels] -= 1
    return loss, p / n


def gradients(weights, ids, labels, form="A", rows_apart=False):
    """(loss, gradients in the weights' layout): backpropagation through each review's own steps.
    With rows_apart, also the embedding's gradient squared per occurrence of a word, then summed."""
    (embedding,), (w_ih, w_hh, b_ih, b_hh), (kernel, bias) = [[np.float64(a) for a in g] for g in weights]
    logits, (x, h, saved, lengths, last) = forward(weights, ids, form)
    loss, d_logits = loss_and_grad(logits, labels)
    hidden, steps = w_hh.shape[1], ids.shape[1]
    grads = [np.zeros_like(a) for a in (w_ih, w_hh, b_ih, b_hh)]
    dx = np.zeros_like(x)
    dh = np.zeros_like(h[0])
    d_last = d_logits @ kernel
    for t in range(steps - 1, -1, -1):
        dh = dh + np.where((lengths - 1 == t)[:, None], d_last, 0.0)  # a review's loss enters at its last step
        r, z, n, recurrent = saved[t]
        dn, dz, dh_prev = dh * (1 - z), dh * (h[t] - n), dh * z
        da_n = dn * (1 - n * n)
        da_z = dz * z * (1 - z)
        if form == "A":
            da_r = da_n * recurrent * r * (1 - r)
            dgh = np.concatenate([da_r, da_z, da_n * r], axis=1)
        else:
            d_rh = da_n @ w_hh[2 * hidden:]
            da_r = d_rh * h[t] * r * (1 - r)
            dh_prev = dh_prev + d_rh * r
            dgh = np.concatenate([da_r, da_z, np.zeros_like(da_n)], axis=1)
            grads[1][2 * hidden:] += da_n.T @ (r * h[t])
            grads[3][2 * hidden:] += da_n.sum(axis=0)
        dgi = np.concatenate([da_r, da_z, da_n], axis=1)
        grads[0] += dgi.T @ x[:, t]
        grads[2] += dgi.sum(axis=0)
        grads[1] += dgh.T @ h[t]
        grads[3] += dgh.sum(axis=0)
        dx[:, t] = dgi @ w_ih
        dh = dh_prev + dgh @ w_hh
    d_embedding = np.zeros_like(embedding)
    np.add.at(d_embedding, ids, dx)
    grads = [[d_embedding], grads, [d_logits.T @ last, d_logits.sum(axis=0)]]
    if rows_apart:
        squares = np.zeros_like(embedding)
        np.add.at(squares, ids, dx * dx)
        return loss, grads, squares
    return loss, grads


def train(weights, batches, form="A", eps_hat=False, first_step=1, rows_apart=False, lr=ADAM["lr"],
          beta1=ADAM["beta1"], beta2=ADAM["beta2"], eps=ADAM["eps"]):
    """Adam over the batches: (losses, weights after the steps). As PyTorch steps it (the paper's
    Algorithm 1: eps added to the bias-corrected root), or with eps_hat as Keras does (the paper's
    "epsilon hat", added to the uncorrected root: eps / sqrt(1 - beta2^t) in Algorithm 1's terms).
    first_step=2 corrects the bias of step t as of step t + 1, as Caffe2's Adam does. rows_apart
    adds to the embedding's second moment the square of each occurrence's gradient, not the square of
    their sum, as Keras 3's Adam does on TensorFlow (whose embedding gradient holds a row per occurrence)."""
    weights = [[np.float64(a) for a in group] for group in weights]
    m = [[np.zeros_like(a) for a in group] for group in weights]
    v = [[np.zeros_like(a) for a in group] for group in weights]
    losses = []
    for step, (ids, labels) in enumerate(batches, first_step):
        loss, grads, *apart = gradients(weights, ids, labels, form, rows_apart)
        losses.append(loss)
        squared = [[g * g for g in group] for group in grads]
        if apart:
            squared[0][0] = apart[0]  # the embedding's, squared per occurrence
        for group, g_group, s_group, m_group, v_group in zip(weights, grads, squared, m, v):
            for i, g in enumerate(g_group):
                m_group[i] = beta1 * m_group[i] + (1 - beta1) * g
                v_group[i] = beta2 * v_group[i] + (1 - beta2) * s_group[i]
                m_hat, v_hat = m_group[i] / (1 - beta1 ** step), v_group[i] / (1 - beta2 ** step)
                root = np.sqrt(v_hat) + (eps / np.sqrt(1 - beta2 ** step) if eps_hat else eps)
                group[i] = group[i] - lr * m_hat / root
    return np.array(losses), weights
