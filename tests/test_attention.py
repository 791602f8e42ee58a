"""Part IV's foundations: the NumPy encoder (forward and backward, checked against finite differences),
its padding, Adam, and the one neutral layout with its conversions (PyTorch's packed projections,
Keras' and Flax's heads)."""
import os
import sys

import numpy as np
import pytest

from conftest import CODE, ROOT, env_python, run

sys.path[:0] = [os.path.join(CODE, "attention"), os.path.join(ROOT, "tests")]
import attention_reference as ref  # noqa: E402
import attention_weights as aw  # noqa: E402


def small(seed=0):
    """Four reviews of 9 ids (3 to 9 words, padded after them), a vocabulary of 40."""
    weights = aw.random_weights(seed, vocab=40)
    rng = np.random.RandomState(seed)
    ids = np.zeros((4, 9), np.int32)
    for i, length in enumerate([9, 3, 1, 6]):
        ids[i, :length] = rng.randint(1, 40, length)
    return [[np.float64(a) for a in g] for g in weights], ids, rng.randint(0, 2, 4)


def loss_of(weights, ids, labels):
    return ref.loss_and_grad(ref.forward(weights, ids)[0], labels)[0]


def test_the_reference_gradients_match_finite_differences_in_every_array():
    weights, ids, labels = small()
    _, grads = ref.gradients(weights, ids, labels)
    rng = np.random.RandomState(1)
    for g, group in enumerate(weights):
        for i, array in enumerate(group):
            for _ in range(4):
                at = tuple(rng.randint(s) for s in array.shape)
                if g == 0:  # an embedding row or a position that some review uses
                    at = (int(ids[0, rng.randint(9)]) if i == 0 else rng.randint(9), at[1])
                saved = array[at]
                array[at] = saved + 1e-6
                up = loss_of(weights, ids, labels)
                array[at] = saved - 1e-6
                down = loss_of(weights, ids, labels)
                array[at] = saved
                assert grads[g][i][at] == pytest.approx((up - down) / 2e-6, rel=1e-5, abs=1e-9), (g, i, at)


def test_a_review_gives_the_same_logits_padded_or_alone_and_the_padding_gets_no_gradient():
    weights, ids, labels = small()
    padded = ref.forward(weights, ids)[0]
    for i in range(len(ids)):
        alone = ids[i:i + 1, :int((ids[i] != 0).sum())]
        assert np.allclose(ref.forward(weights, alone)[0], padded[i], atol=1e-12, rtol=0)
    _, grads = ref.gradients(weights, ids, labels)
    assert not grads[0][0][0].any()  # the padding id's embedding row
    assert not grads[0][1][9:].any() and grads[0][1][:9].any()  # positions past the longest review


def test_adam_lowers_the_loss_and_its_forms_differ():
    weights, ids, labels = small()
    losses, trained = ref.train(weights, [(ids, labels)] * 10)
    assert losses[-1] < losses[0] and trained[1][2].shape == (aw.EMBED, aw.EMBED)
    _, hat = ref.train(weights, [(ids, labels)] * 3, eps_hat=True)
    _, plain = ref.train(weights, [(ids, labels)] * 3)
    assert 1e-6 < np.max(np.abs(hat[1][2] - plain[1][2])) < 1e-3  # where a gradient is near eps


def test_the_exact_gelu_is_not_the_tanh_one():
    u = np.linspace(-4, 4, 81)
    tanh_form = 0.5 * u * (1 + np.tanh(np.sqrt(2 / np.pi) * (u + 0.044715 * u ** 3)))
    assert 1e-4 < np.max(np.abs(ref.gelu(u) - tanh_form)) < 1e-2
    assert ref.gelu(np.array([1.0]))[0] == pytest.approx(0.8413447460685429, abs=1e-15)  # 1 * Phi(1)


def test_the_layout_counts_and_checks_its_arrays():
    assert aw.N_PARAMS == 4256258
    weights = aw.random_weights(0)
    assert [len(g) for g in aw.check(weights)] == [2, 16, 16, 2, 2]
    weights[1][12] = weights[1][12].T
    with pytest.raises(ValueError, match=r"block0\[ff1\] has shape \(128, 512\), the layout's is \(512, 128\)"):
        aw.check(weights)


def test_packed_and_per_head_projections_are_converted_in_one_place_and_compute_the_same():
    block = aw.random_weights(3, vocab=40)[1]
    weight, bias = aw.to_packed(block)
    assert weight.shape == (3 * aw.EMBED, aw.EMBED)
    assert all(np.array_equal(a, b) for a, b in zip(aw.from_packed(weight, bias), block[2:8]))
    h = np.random.RandomState(0).randn(2, 5, aw.EMBED)
    q = ref.heads(ref.linear(h, block[2], block[3]))  # (N, HEADS, T, HEAD)
    kernel, b = aw.to_heads(block[2], block[3])
    assert np.allclose(np.einsum("nte,ehd->nhtd", h, kernel) + b[None, :, None, :], q, atol=1e-12)
    assert all(np.array_equal(x, y) for x, y in zip(aw.from_heads(kernel, b), block[2:4]))
    context = np.random.RandomState(1).randn(2, aw.HEADS, 5, aw.HEAD)
    out = aw.out_to_heads(block[8])
    assert np.allclose(np.einsum("nhtd,hde->nte", context, out), ref.merge(context) @ block[8].T, atol=1e-12)
    assert np.array_equal(aw.out_from_heads(out), block[8])



ROWS = [("attention_pytorch", "pytorch", None), ("attention_keras", "keras-tensorflow", "tensorflow"),
        ("attention_keras", "keras-jax", "jax"), ("attention_keras", "keras-torch", "torch"),
        ("attention_jax", "jax", None), ("attention_tensorflow", "tensorflow", None), ("attention_mxnet", "mxnet", None),
        ("attention_chainer", "chainer", None), ("attention_cntk", "cntk", None),
        ("attention_keras2", "keras-cntk", "cntk"), ("attention_caffe2", "caffe2", None)]


@pytest.fixture(scope="module")
def reference():
    """What every row is compared with: the reference's logits for the shared weights on the first batch,
    and its losses and weights after the three steps in each form of Adam."""
    import attention_check
    weights = aw.random_weights(7)
    batches = [attention_check.batch(s) for s in range(3)]
    return weights, ref.forward(weights, batches[0][0])[0], {
        form: ref.train(weights, batches, **kw) for form, kw in ref.OPTIMIZER_FORMS.items()}


@pytest.mark.parametrize("module, framework, backend", ROWS)
def test_a_row_computes_the_reference_and_takes_its_adam_steps(module, framework, backend, reference, tmp_path):
    """Part IV's rows so far, each in its framework's environment, checked here until part IV's parity
    table exists: logits for the shared weights, three Adam steps' losses (in the form of Adam the row
    lands on), each array's update within 1% of the reference's (Adam scales float32's rounding up where
    a gradient is near zero, a few of the token embedding's entries), and the key bias, which has no
    gradient (a bias added to every key shifts a query's scores alike, which the softmax ignores):
    float64 leaves it, float32's rounding moves it by up to lr a step."""
    env = dict(os.environ, **({"KERAS_BACKEND": backend} if backend else {}))
    out = run([env_python(framework), os.path.join(ROOT, "tests", "attention_check.py"), module,
               str(tmp_path / "row.npz")], env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    with np.load(str(tmp_path / "row.npz")) as f:
        got = dict(f)
    assert int(got["params"]) == aw.N_PARAMS and bool(got["round_trip"])
    assert max(np.abs(got["own_{}".format(i)]).max() for i in range(4)) <= np.sqrt(6 / (2 * aw.EMBED)) + 1e-7
    weights, logits, forms = reference
    assert np.max(np.abs(got["logits"] - logits)) < 1e-4
    trained = [[got["trained_{}_{}".format(g, i)] for i in range(len(s))] for g, s in enumerate(aw.SHAPES)]
    found = {}
    for form, (ref_losses, ref_weights) in forms.items():
        update, key_bias = 0.0, []
        for g, (row, want, start) in enumerate(zip(trained, ref_weights, weights)):
            for i, (a, b, w) in enumerate(zip(row, want, start)):
                if 0 < g <= aw.BLOCKS and aw.BLOCK[i] == "key_bias":
                    key_bias.append((np.max(np.abs(b - w)), np.max(np.abs(a - w))))
                else:
                    update = max(update, np.linalg.norm((a - w) - (b - w)) / np.linalg.norm(b - w))
        found[form] = (np.max(np.abs(got["losses"] - ref_losses)), update, key_bias)
    form = min(found, key=lambda f: found[f][1])
    losses, update, key_bias = found[form]
    assert losses < 1e-4 and update < 1e-2, (form, found)
    for reference_moved, row_moved in key_bias:
        assert reference_moved < 1e-9 and row_moved <= 3 * ref.ADAM["lr"] + 1e-6
