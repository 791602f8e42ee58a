"""The network in plain NumPy, in float64: the oracle that every framework is compared with.

Forward pass (dropout off), mean softmax cross-entropy, its gradients by hand, and one step of
SGD with classic momentum (v = momentum v + g; w -= lr v), on weights in the neutral layout of
code/weights.py and images in NCHW. Written for clarity, not speed: one step of 64 images takes
about a second.
"""
import numpy as np

from common import LR, MOMENTUM
from weights import LAYERS


def im2col(x):
    """(N, C, H, W) -> (N*H*W, C*9): each output pixel's 3x3 neighbourhood, zero-padded ('same')."""
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.empty((n, h, w, c, 3, 3), x.dtype)
    for i in range(3):
        for j in range(3):
            cols[..., i, j] = padded[:, :, i:i + h, j:j + w].transpose(0, 2, 3, 1)
    return cols.reshape(n * h * w, c * 9)


def col2im(cols, shape):
    """The adjoint of im2col: each neighbourhood's gradient added back onto its pixels."""
    n, c, h, w = shape
    cols = cols.reshape(n, h, w, c, 3, 3)
    padded = np.zeros((n, c, h + 2, w + 2), cols.dtype)
    for i in range(3):
        for j in range(3):
            padded[:, :, i:i + h, j:j + w] += cols[..., i, j].transpose(0, 3, 1, 2)
    return padded[:, :, 1:-1, 1:-1]


def conv(x, kernel, bias):
    """A 3x3 'same' cross-correlation, as every framework's convolution computes it."""
    n, _, h, w = x.shape
    out = im2col(x) @ kernel.reshape(len(kernel), -1).T + bias
    return out.reshape(n, h, w, -1).transpose(0, 3, 1, 2)


def pool(x):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def forward(weights, x):
    """Logits for images x (N, 3, 32, 32), and what the backward pass needs."""
    (k1, b1), (k2, b2), (k3, b3), (k4, b4), (d1, c1), (d2, c2) = [
        (np.float64(k), np.float64(b)) for k, b in weights]
    acts = [np.float64(x)]
    for kernel, bias, pooled in ((k1, b1, False), (k2, b2, True), (k3, b3, False), (k4, b4, True)):
        acts.append(np.maximum(conv(acts[-1], kernel, bias), 0))
        if pooled:
            acts.append(pool(acts[-1]))
    flat = acts[-1].reshape(len(x), -1)  # channel-height-width order
    hidden = np.maximum(flat @ d1 + c1, 0)
    return hidden @ d2 + c2, (acts, flat, hidden)


def loss_and_grad(logits, labels):
    """Mean softmax cross-entropy over the batch, and its gradient with respect to the logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = len(labels)
    grad = np.exp(log_p)
    grad[np.arange(n), labels] -= 1
    return -log_p[np.arange(n), labels].mean(), grad / n


def pool_backward(grad, before):
    """Each window's gradient goes to its first maximum in row-major order, as in the frameworks
    (equal values do occur: a clipped, flat patch of an image gives equal activations)."""
    n, c, h, w = before.shape
    windows = before.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
    first = np.eye(4)[windows.argmax(axis=-1)] * grad[..., None]
    return first.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h, w)


def gradients(weights, x, labels):
    """The loss on one batch, and d loss / d weights in the neutral layout."""
    logits, (acts, flat, hidden) = forward(weights, x)
    loss, g = loss_and_grad(logits, labels)
    grads = [(hidden.T @ g, g.sum(0))]
    g = (g @ np.float64(weights[5][0]).T) * (hidden > 0)
    grads.append((flat.T @ g, g.sum(0)))
    g = (g @ np.float64(weights[4][0]).T).reshape(acts[-1].shape)
    # acts: input, relu1, relu2, pool, relu3, relu4, pool: walk the convolutions backwards.
    for layer, inp, out, pooled in ((3, 4, 5, True), (2, 3, 4, False), (1, 1, 2, True), (0, 0, 1, False)):
        if pooled:
            g = pool_backward(g, acts[out])
        g = g * (acts[out] > 0)
        kernel = np.float64(weights[layer][0])
        g_cols = g.transpose(0, 2, 3, 1).reshape(-1, len(kernel))
        grads.append(((g_cols.T @ im2col(acts[inp])).reshape(kernel.shape), g_cols.sum(0)))
        g = col2im(g_cols @ kernel.reshape(len(kernel), -1), acts[inp].shape)
    return loss, grads[::-1]


def train(weights, batches, lr=LR, momentum=MOMENTUM):
    """SGD with classic momentum over the batches: (the loss of each step, the final weights)."""
    weights = [(np.float64(k), np.float64(b)) for k, b in weights]
    velocity = [(np.zeros_like(k), np.zeros_like(b)) for k, b in weights]
    losses = []
    for x, labels in batches:
        loss, grads = gradients(weights, x, labels)
        losses.append(loss)
        velocity = [(momentum * vk + gk, momentum * vb + gb) for (vk, vb), (gk, gb) in zip(velocity, grads)]
        weights = [(k - lr * vk, b - lr * vb) for (k, b), (vk, vb) in zip(weights, velocity)]
    return losses, weights


def flops(batch):
    """The floating-point operations of one training step on `batch` images, counted as the
    frameworks' counters count them: two per multiply-add of the convolutions and matrix products,
    the element-wise work (ReLU, pooling, the loss, the update: about 1% here) left out. Forward,
    each layer is one matrix product (im2col's for a convolution); backward, two, the weights' and
    the input's gradient, except the images': {"forward", "train"}."""
    pixels = dict(conv1=32 * 32, conv2=32 * 32, conv3=16 * 16, conv4=16 * 16, dense1=1, dense2=1)
    forward = [2 * batch * pixels[name] * int(np.prod(shape)) for name, shape in LAYERS.items()]
    return dict(forward=sum(forward), train=3 * sum(forward) - forward[0])
