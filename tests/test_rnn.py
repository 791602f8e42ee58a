"""Part II's foundation: the reviews (one tokenizer, a synthetic corpus shaped like IMDB, IMDB's
checksum) and the NumPy GRU in both forms, checked against finite differences."""
import os
import sys

import numpy as np
import pytest

from conftest import CODE

sys.path.insert(0, os.path.join(CODE, "rnn"))
import reviews  # noqa: E402
import rnn_reference as ref  # noqa: E402
import rnn_weights  # noqa: E402
from datasets import DatasetError  # noqa: E402


def test_the_tokenizer_numbers_words_as_keras_and_keeps_the_last_150():
    assert list(reviews.tokenize([1, 2, 29996, 29997, 80000])) == [1, 4, 5, 29999, 2, 2]  # start, rank + 3, OOV
    ids, lengths = reviews.pad([[5] * 400, [], [7, 8]])
    assert ids.shape == (3, 150) and list(lengths) == [150, 1, 3]
    assert list(ids[0][:3]) == [8, 8, 8]  # a long review loses its start mark and its first words
    assert list(ids[1][:2]) == [1, 0] and list(ids[2][:4]) == [1, 10, 11, 0]  # padding after, as Keras' "post"
    assert list(reviews.lengths(ids)) == [150, 1, 3]
    with pytest.raises(DatasetError, match="ranks start at 1"):
        reviews.tokenize([3, 0])


def test_the_synthetic_corpus_is_balanced_long_tailed_seeded_and_labelled_by_its_rule():
    corpus = reviews.make_synthetic(600, 400)
    (train, y_train), (test, y_test) = corpus["train"], corpus["test"]
    assert len(train) == 600 and len(test) == 400 and y_train.mean() == 0.5 and y_test.mean() == 0.5
    lengths = np.array([len(r) for r in train])
    assert 140 < np.median(lengths) < 220 and lengths.max() > 600 and (lengths > 150).mean() > 0.4
    ids, n = reviews.pad(train)
    assert all(reviews.label_of(ids[i, :n[i]]) == y_train[i] for i in range(len(train)))
    again = reviews.make_synthetic(600, 400)["train"]
    assert all(np.array_equal(a, b) for a, b in zip(train[:20], again[0][:20]))


def test_a_negation_flips_what_follows_so_counting_words_cannot_tell():
    good, bad, no = reviews.POSITIVE[0] + 3, reviews.NEGATIVE[0] + 3, reviews.NEGATIONS[0] + 3
    filler = 40 + 3
    assert reviews.label_of([filler, good, filler]) == 1 and reviews.label_of([filler, bad]) == 0
    assert reviews.label_of([no, good, filler]) == 0 and reviews.label_of([no, filler, good]) == 0
    assert reviews.label_of([good, no, filler, filler, good]) == 1  # too far back to flip it
    assert reviews.label_of([good, bad]) is None  # a draw is drawn again


def test_a_file_that_is_not_imdb_npz_is_refused_before_anything_is_unpickled(tmp_path):
    path = tmp_path / "imdb.npz"
    path.write_bytes(b"not the archive" * 100)
    with pytest.raises(DatasetError, match="not Keras' imdb.npz"):
        reviews.read_imdb(str(path))


def small(seed=0):
    weights = rnn_weights.random_weights(seed, vocab=40)
    rng = np.random.RandomState(seed)
    ids = np.zeros((4, 7), np.int32)
    for i, length in enumerate([7, 3, 1, 5]):
        ids[i, :length] = rng.randint(1, 40, length)
    return weights, ids, rng.randint(0, 2, 4)


@pytest.mark.parametrize("form", ["A", "B"])
def test_the_reference_gradients_match_finite_differences(form):
    weights, ids, labels = small()
    weights = [[np.float64(a) for a in g] for g in weights]
    _, grads = ref.gradients(weights, ids, labels, form)
    rng = np.random.RandomState(1)
    for g, group in enumerate(weights):
        for i, array in enumerate(group):
            for _ in range(6):
                at = tuple(rng.randint(s) for s in array.shape)
                if g == 0:  # an embedding row that some review uses
                    at = (int(ids[0, rng.randint(7)]), at[1])
                saved = array[at]
                array[at] = saved + 1e-6
                up = ref.loss_and_grad(ref.forward(weights, ids, form)[0], labels)[0]
                array[at] = saved - 1e-6
                down = ref.loss_and_grad(ref.forward(weights, ids, form)[0], labels)[0]
                array[at] = saved
                assert grads[g][i][at] == pytest.approx((up - down) / 2e-6, rel=1e-5, abs=1e-9), (form, g, i, at)


def test_each_review_is_read_at_its_own_last_step_exactly_as_without_padding():
    weights, ids, _ = small()
    padded = ref.forward(weights, ids)[0]
    for i in range(len(ids)):
        alone = ids[i:i + 1, :reviews.lengths(ids)[i]]
        assert np.allclose(ref.forward(weights, alone)[0], padded[i], atol=1e-12, rtol=0)


def test_the_two_forms_are_different_functions_and_adam_lowers_the_loss():
    weights, ids, labels = small()
    assert np.max(np.abs(ref.forward(weights, ids, "A")[0] - ref.forward(weights, ids, "B")[0])) > 1e-3
    losses, trained = ref.train(weights, [(ids, labels)] * 20)
    assert losses[-1] < losses[0] and trained[1][0].shape == weights[1][0].shape


def test_keras_order_is_converted_in_one_place_and_back():
    gru = rnn_weights.random_weights(3, vocab=5)[1]
    kernel, recurrent, bias = rnn_weights.to_keras(gru)
    assert kernel.shape == (125, 300) and recurrent.shape == (100, 300) and bias.shape == (2, 300)
    assert np.array_equal(kernel[:, :100], gru[0][100:200].T)  # Keras' first gate is z, PyTorch's second
    assert all(np.array_equal(a, b) for a, b in zip(rnn_weights.from_keras(kernel, recurrent, bias), gru))
    assert rnn_weights.N_PARAMS - 30000 * 125 - 202 == 68100  # the seed's Keras-on-TensorFlow GRU: two biases
    with pytest.raises(ValueError, match=r"gru\[1\] has shape"):
        rnn_weights.check([[np.zeros((30000, 125))], [gru[0], gru[0], gru[2], gru[3]], [np.zeros((2, 100)), np.zeros(2)]])


def three_batches(seed=0):
    """Three batches of 8 reviews of 1 to 12 ids from the whole vocabulary, padded after them."""
    rng = np.random.RandomState(seed)
    batches = []
    for _ in range(3):
        ids = np.zeros((8, 12), np.int32)
        for i, n in enumerate(rng.randint(1, 13, 8)):
            ids[i, :n] = rng.randint(1, rnn_weights.VOCAB, n)
        batches.append((ids, rng.randint(0, 2, 8).astype(np.int32)))
    return batches


def test_pytorch_nn_gru_computes_form_a_and_its_adam_steps_are_the_references():
    """The first framework row of part II: logits, three Adam steps' losses and weights against the
    float64 reference, with the CNN's parity tolerances; form B is another function."""
    pytest.importorskip("torch")
    import torch
    import rnn_pytorch as m
    from lab import parity
    batches, shared = three_batches(), rnn_weights.random_weights(7)
    model = m.create_model()
    trainer = m.init_model(model)
    m.set_weights(model, shared)
    assert m.count_params(model) == rnn_weights.N_PARAMS
    assert all(np.array_equal(a, b) for g, h in zip(m.get_weights(model), shared) for a, b in zip(g, h))
    with torch.no_grad():
        logits = model(torch.from_numpy(batches[0][0]).long()).numpy()
    assert parity.max_diff(logits, ref.forward(shared, batches[0][0], "A")[0]) < parity.TOLERANCE
    assert parity.max_diff(logits, ref.forward(shared, batches[0][0], "B")[0]) > 0.1
    losses = [m.train_epoch(trainer, iter([b])) for b in batches]
    ref_losses, ref_trained = ref.train(shared, batches, "A")
    assert parity.max_diff(losses, ref_losses) < parity.TOLERANCE
    after = parity.after_steps(m.get_weights(model), ref_trained, shared)
    assert after["weights"] < parity.TOLERANCE and after["update"] < parity.UPDATE_TOLERANCE, after


KERAS_CHECK = """
import json, sys
import keras, numpy as np
sys.path.insert(0, "tests")
import rnn_keras as m, rnn_reference as ref, rnn_weights
from lab import parity
from test_rnn import three_batches
batches, shared = three_batches(), rnn_weights.random_weights(7)
model = m.create_model(); trainer = m.init_model(model); m.set_weights(model, shared)
logits = keras.ops.convert_to_numpy(model(batches[0][0], training=False))
losses = [m.train_epoch(trainer, iter([b])) for b in batches]
out = dict(params=m.count_params(model), a=parity.max_diff(logits, ref.forward(shared, batches[0][0], "A")[0]),
           b=parity.max_diff(logits, ref.forward(shared, batches[0][0], "B")[0]))
for eps_hat in (True, False):
    ref_losses, ref_trained = ref.train(shared, batches, "A", eps_hat=eps_hat)
    out[str(eps_hat)] = dict(parity.after_steps(m.get_weights(model), ref_trained, shared),
                             losses=parity.max_diff(losses, ref_losses))
print(json.dumps(out))
"""


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_keras_gru_computes_form_a_and_its_adam_takes_epsilon_hat(backend):
    """Keras 3's GRU(reset_after=True) behind a masked Embedding, on each backend: form A at each
    review's own last step; its Adam adds epsilon to the uncorrected root (the paper's epsilon hat),
    so with the seed's 1e-8 three steps land within tolerance of that reference, not PyTorch's."""
    import json
    from conftest import env_python, run
    from lab import envs
    out = run([env_python("keras-" + backend), "-c", KERAS_CHECK],
              env=dict(envs.row_env("keras-" + backend), PYTHONPATH=os.pathsep.join([CODE, os.path.join(CODE, "rnn")])))
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["params"] == rnn_weights.N_PARAMS and got["a"] < 1e-4 < 0.1 < got["b"], got
    hat, plain = got["True"], got["False"]
    assert hat["losses"] < 1e-4 and hat["weights"] < 1e-4 and hat["update"] < 1e-2, hat
    assert plain["update"] > 0.1, plain  # PyTorch's placement of epsilon is another optimizer here


def test_the_corpus_is_cached_once_and_a_corrupt_cache_says_what_to_do(tmp_path, monkeypatch):
    import datasets
    monkeypatch.setattr(datasets, "CACHE_DIR", str(tmp_path))
    small_corpus = reviews.make_synthetic(40, 20)
    monkeypatch.setattr(reviews, "make_synthetic", lambda: small_corpus)
    assert reviews.resolve("synthetic") == "synthetic"
    reviews.prepare("synthetic")
    x_train, x_test, y_train, y_test = reviews.reviews_for_library("synthetic", dict(n_train=32, n_test=16))
    assert x_train.shape == (32, 150) and x_test.shape == (16, 150) and x_train.dtype == np.int32
    assert y_train.dtype == np.int32 and set(y_train) <= {0, 1} and (x_train[:, 0] > 0).all()
    with open(os.path.join(reviews.cache_dir("synthetic"), "x_test.npy"), "wb") as f:
        f.write(b"broken")
    with pytest.raises(DatasetError, match="delete that folder and run again"):
        reviews.reviews_for_library("synthetic", dict(n_train=32, n_test=16))
    with pytest.raises(DatasetError, match="choose auto, imdb or synthetic"):
        reviews.resolve("cifar10")


def test_a_downloaded_file_that_is_not_imdb_npz_is_never_taken_for_it(tmp_path, monkeypatch):
    """The IMDB download goes through the shared one, verified by Keras' checksum before it moves."""
    import io
    import datasets

    class Body(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False
    monkeypatch.setattr(datasets, "CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(datasets.urllib.request, "urlopen", lambda url, timeout: Body(b"an error page" * 50))
    with pytest.raises(DatasetError, match="not Keras' imdb.npz"):
        reviews.prepare("imdb")
    assert not os.path.exists(os.path.join(str(tmp_path), "imdb.npz"))
