"""Part II: the reviews (one tokenizer, a synthetic corpus shaped like IMDB, IMDB's checksum), the
NumPy GRU in both forms, checked against finite differences, and every framework's GRU row against it."""
import os
import sys
import tempfile

import numpy as np
import pytest

from conftest import CODE, COMMITTED, assert_weights_move, row_of

sys.path.insert(0, os.path.join(CODE, "rnn"))
import common  # noqa: E402
import reviews  # noqa: E402
import rnn_reference as ref  # noqa: E402
import rnn_weights  # noqa: E402
from datasets import DatasetError  # noqa: E402
from lab import envs, parity  # noqa: E402


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


def keras_by_hand(gru):
    """Keras' GRU(reset_after=True) arrays built block by block from PyTorch's r, z, n: gates z, r, h,
    kernels input-major, bias row 0 the input's and row 1 the recurrent's."""
    (w_ir, w_iz, w_in), (w_hr, w_hz, w_hn) = np.split(gru[0], 3), np.split(gru[1], 3)
    (b_ir, b_iz, b_in), (b_hr, b_hz, b_hn) = np.split(gru[2], 3), np.split(gru[3], 3)
    return [np.concatenate([w_iz.T, w_ir.T, w_in.T], axis=1), np.concatenate([w_hz.T, w_hr.T, w_hn.T], axis=1),
            np.stack([np.concatenate([b_iz, b_ir, b_in]), np.concatenate([b_hz, b_hr, b_hn])])]


def test_keras_order_is_converted_in_one_place_every_block_of_every_array():
    """Each of the twelve blocks (three gates of two kernels and two biases), both ways: a swap of the
    two bias rows, or of two gates, in to_keras and from_keras alike survives a round trip, not this."""
    gru = rnn_weights.random_weights(3, vocab=5)[1]
    kernel, recurrent, bias = rnn_weights.to_keras(gru)
    assert kernel.shape == (125, 300) and recurrent.shape == (100, 300) and bias.shape == (2, 300)
    by_hand = keras_by_hand(gru)
    assert all(np.array_equal(a, b) for a, b in zip(rnn_weights.to_keras(gru), by_hand))
    assert all(np.array_equal(a, b) for a, b in zip(rnn_weights.from_keras(*by_hand), gru))
    assert rnn_weights.N_PARAMS - 30000 * 125 - 202 == 68100  # the seed's Keras-on-TensorFlow GRU: two biases
    with pytest.raises(ValueError, match=r"gru\[1\] has shape"):
        rnn_weights.check([[np.zeros((30000, 125))], [gru[0], gru[0], gru[2], gru[3]], [np.zeros((2, 100)), np.zeros(2)]])


def test_a_real_keras_gru_computes_the_references_gru_from_the_converted_weights():
    """keras.layers.GRU(reset_after=True) itself, on 2 sequences of 4 steps: what to_keras gives it is
    the reference's GRU (form A); with the bias rows swapped it is not."""
    import subprocess
    gru = rnn_weights.random_weights(3, vocab=5)[1]
    x = np.random.RandomState(0).uniform(-1, 1, (2, 4, rnn_weights.EMBED)).astype(np.float32)
    kernel, recurrent, bias = rnn_weights.to_keras(gru)
    script = ("import sys, numpy as np, keras\n"
              "a = np.load(sys.argv[1])\n"
              "layer = keras.layers.GRU({}, reset_after=True, return_sequences=True)\n"
              "layer.build(a['x'].shape)\n"
              "for name, b in (('h', a['bias']), ('swapped', a['bias'][::-1])):\n"
              "    layer.set_weights([a['kernel'], a['recurrent'], b])\n"
              "    np.save(sys.argv[1] + name + '.npy', np.asarray(layer(a['x'])))\n").format(rnn_weights.HIDDEN)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "gru.npz")
        np.savez(path, x=x, kernel=kernel, recurrent=recurrent, bias=bias)
        subprocess.run([sys.executable, "-c", script, path], check=True, env=dict(os.environ, KERAS_BACKEND="jax"))
        got, swapped = np.load(path + "h.npy"), np.load(path + "swapped.npy")
    want = ref.gru_steps(gru, np.float64(x))[0][1:].transpose(1, 0, 2)  # (N, T, H) without h0
    assert np.max(np.abs(got - want)) < 1e-5
    assert np.max(np.abs(swapped - want)) > 1e-2


# Where each framework's Adam adds epsilon and counts its steps, as the parity runs measure it.
ADAM_FORMS = {"rnn-pytorch": "epsilon after the bias correction", "rnn-tensorflow": "epsilon after the bias correction",
              "rnn-jax": "epsilon after the bias correction", "rnn-keras-jax": "epsilon hat", "rnn-keras-torch": "epsilon hat",
              "rnn-keras-tensorflow": "epsilon hat, a repeated word's gradients squared apart",
              "rnn-mxnet": "epsilon hat", "rnn-chainer": "epsilon hat", "rnn-cntk": "epsilon hat",
              "rnn-keras-cntk": "epsilon hat", "rnn-caffe2": "epsilon hat, steps counted from 2"}
ROWS = common.implemented_frameworks(model="rnn")


@pytest.fixture(scope="module")
def table():
    """Part II's parity: every row in its own environment on the same 3 batches of the synthetic corpus
    (64 reviews of 150 ids, each padded after its words), from the same weights; measured unless
    today's code made it on a machine of this kind (as test_parity's)."""
    return parity.table(ROWS, root=COMMITTED)["table"]



def test_every_framework_has_a_gru_row():
    assert sorted(ROWS) == sorted("rnn-" + name for name in common.FRAMEWORKS)
    assert sorted(ROWS) == sorted(ADAM_FORMS)


@pytest.mark.parametrize("framework", ROWS)
def test_each_gru_computes_form_a_at_each_reviews_own_last_step(table, framework):
    row = row_of(table, framework)
    assert row["logits"] < parity.TOLERANCE and row["own_logits"] < parity.TOLERANCE, row
    assert row["logits_form_b"] > 0.1  # the other GRU is another function on the same weights


@pytest.mark.parametrize("framework", ROWS)
def test_three_adam_steps_land_on_the_reference_of_the_frameworks_adam(table, framework):
    """Each framework's Adam is one of the reference's forms, and only that one: the others are tens
    of percent away in some array's update."""
    row = row_of(table, framework)
    assert row["losses"] < parity.TOLERANCE and row["weights"] < parity.TOLERANCE, row
    assert row["update"] < parity.UPDATE_TOLERANCE, "update off by {:.1%}".format(row["update"])
    assert row["optimizer_form"] == ADAM_FORMS[framework] and min(row["other_forms"].values()) > 0.1, row
    assert row["round_trip_exact"] and row["restart_clean"] < parity.TOLERANCE


@pytest.mark.parametrize("framework", ROWS)
def test_the_rows_own_predict_gives_the_references_classes_and_it_has_no_dropout(table, framework):
    row = row_of(table, framework)
    wrong, compared = row["predicted"]
    assert compared > 32 and wrong == 0, "{} of {} reviews classed otherwise than the reference".format(wrong, compared)
    assert row["dropout_as_declared"], row["dropout_rates"]


@pytest.mark.parametrize("framework", ROWS)
def test_weights_move_from_every_framework_with_the_same_predictions(table, framework):
    assert_weights_move(row_of(table, framework), ROWS)


def test_flax_nnx_gru_cell_drops_the_recurrent_candidate_bias():
    """The built-in nnx.GRUCell has no b_hn (its docstring has one): with the shared weights it is
    another function, and with b_hn = 0 it is form A; the module's cell adds the bias."""
    pytest.importorskip("flax")
    import jax.numpy as jnp
    from flax import nnx
    weights, ids, _ = small()
    (embedding,), (w_ih, w_hh, b_ih, b_hh), (kernel, bias) = weights
    cell = nnx.GRUCell(rnn_weights.EMBED, rnn_weights.HIDDEN, rngs=nnx.Rngs(0))
    assert not hasattr(cell.dense_h, "bias") or cell.dense_h.bias is None
    cell.dense_i.kernel[...], cell.dense_h.kernel[...] = jnp.asarray(w_ih.T), jnp.asarray(w_hh.T)
    cell.dense_i.bias[...] = jnp.asarray(b_ih + np.concatenate([b_hh[:200], np.zeros(100, np.float32)]))  # r, z fold
    last, _ = nnx.RNN(cell, return_carry=True)(jnp.asarray(embedding[ids]), seq_lengths=reviews.lengths(ids))
    logits = np.asarray(last) @ kernel.T + bias
    zeroed = [[embedding], [w_ih, w_hh, b_ih, np.concatenate([b_hh[:200], np.zeros(100, np.float32)])], [kernel, bias]]
    assert np.max(np.abs(logits - ref.forward(zeroed, ids)[0])) < parity.TOLERANCE
    assert np.max(np.abs(logits - ref.forward(weights, ids)[0])) > 1e-2  # what b_hn does, lost


MXNET_LENGTHS = """
import mxnet as mx, numpy as np
from mxnet.gluon import rnn
gru = rnn.GRU(4, layout="NTC", input_size=3, use_sequence_length=True)
gru.initialize()
x = mx.nd.random.uniform(shape=(2, 5, 3))
_, (h,) = gru(x, gru.begin_state(2), mx.nd.array([5, 3]))
plain = rnn.GRU(4, layout="NTC", input_size=3, params=gru.collect_params())
print(float(np.abs(h[0, 1].asnumpy() - plain(x)[1, 4].asnumpy()).max()))
"""


def test_mxnet_cpu_gru_takes_sequence_lengths_and_ignores_them():
    """What rnn_mxnet's docstring says: on the CPU build, GRU(use_sequence_length=True) returns for a
    review of 3 steps the state after all 5, so the module runs every step and reads its own last one."""
    from conftest import run
    if envs.python_for("rnn-mxnet")[0] is None:
        pytest.skip(envs.python_for("rnn-mxnet")[1])
    out = run([envs.python_for("rnn-mxnet")[0], "-c", MXNET_LENGTHS])
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout.strip().splitlines()[-1]) == 0.0


@pytest.mark.parametrize("option", ["--scale-out", "--inference", "--tuning", "--init-cost", "--init=own"])
def test_part_two_rows_refuse_the_cnns_other_modes_before_anything_runs(option, capsys):
    """Part II has the benchmark's rows only: asking it for another mode says so, and runs no CNN row."""
    import bench
    assert bench.main(["--model", "rnn", option]) == 2
    assert "--model rnn (the GRU on IMDB reviews) has the benchmark's rows only" in capsys.readouterr().err


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
