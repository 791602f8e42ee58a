"""The bag-of-words baseline beside the GRU: logistic regression on which words a review has, in NumPy.

It sees the same padded ids as the GRU, but not their order: on the synthetic corpus, whose label
flips a polarity word after a negation, what it reaches is what counting words can. Its L2 weight
is chosen on a fifth of the training reviews held out, then it is trained on all of them.
"""
import numpy as np
from scipy import sparse  # installed with JAX in the main environment

from reviews import PAD, VOCAB, reviews_for_library

L2 = (1e-3, 1e-2, 1e-1, 1.0)
STEPS, RATE = 300, 0.05  # full-batch Adam


def words_of(ids):
    """Which words each review has: a sparse (N, VOCAB) matrix of ones, the padding left out."""
    ids = np.asarray(ids)
    rows = np.repeat(np.arange(len(ids)), ids.shape[1])[ids.ravel() != PAD]
    words = sparse.csr_matrix((np.ones(len(rows)), (rows, ids.ravel()[ids.ravel() != PAD])), shape=(len(ids), VOCAB))
    words.data[:] = 1.0  # a word seen twice is there once
    return words


def fit(words, labels, l2):
    w, b = np.zeros(VOCAB), 0.0
    m, v = np.zeros(VOCAB), np.zeros(VOCAB)
    for t in range(1, STEPS + 1):
        p = 1 / (1 + np.exp(-(words @ w + b)))
        g = words.T @ ((p - labels) / len(labels)) + l2 * w
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        w -= RATE * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        b -= RATE * np.mean(p - labels)
    return w, b


def accuracy(model, words, labels):
    w, b = model
    return float(np.mean((words @ w + b > 0) == labels))


def baseline(dataset, profile):
    """{accuracy, train_accuracy, l2, n_train, n_test} on the reviews the GRU rows read with this
    profile: the held-out fifth picks the L2 weight."""
    x_train, x_test, y_train, y_test = reviews_for_library(dataset, profile)
    words, test = words_of(x_train), words_of(x_test)
    cut = words.shape[0] * 4 // 5
    l2 = max(L2, key=lambda a: accuracy(fit(words[:cut], y_train[:cut], a), words[cut:], y_train[cut:]))
    model = fit(words, y_train, l2)
    return dict(accuracy=accuracy(model, test, y_test), train_accuracy=accuracy(model, words, y_train), l2=l2,
                n_train=len(y_train), n_test=len(y_test))
