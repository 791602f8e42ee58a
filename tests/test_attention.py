"""Part IV's foundations: the NumPy encoder (forward and backward, checked against finite differences),
its padding, Adam, and the one neutral layout with its conversions (PyTorch's packed projections,
Keras' and Flax's heads)."""
import os
import re
import sys

import numpy as np
import pytest

import common
from conftest import CODE, COMMITTED, ROOT, assert_weights_move, row_of
from lab import parity

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



ROWS = common.implemented_frameworks(model="attention")
# The Adam each row's three steps land on (part II's findings carry over: the same optimizers).
ADAM_FORMS = {"attention-pytorch": "epsilon after the bias correction", "attention-tensorflow": "epsilon after the bias correction",
              "attention-keras-tensorflow": "epsilon hat, a repeated word's gradients squared apart",
              "attention-keras-jax": "epsilon hat", "attention-keras-torch": "epsilon hat",
              "attention-jax": "epsilon after the bias correction", "attention-mxnet": "epsilon hat",
              "attention-chainer": "epsilon hat", "attention-cntk": "epsilon hat", "attention-keras-cntk": "epsilon hat",
              "attention-caffe2": "epsilon hat, steps counted from 2"}


@pytest.fixture(scope="module")
def table():
    """Part IV's parity: every row in its own environment on the same 3 batches of the synthetic corpus,
    from the same weights; measured unless today's code made it on a machine of this kind."""
    return parity.table(ROWS, root=COMMITTED)["table"]



def test_every_framework_has_an_encoder_row():
    assert sorted(ROWS) == sorted("attention-" + name for name in common.FRAMEWORKS) == sorted(ADAM_FORMS)


@pytest.mark.parametrize("framework", ROWS)
def test_each_row_computes_the_reference_encoder_and_takes_its_adam_steps(table, framework):
    """Logits for shared and for the row's own initial weights, three Adam steps' losses, each array's
    update within 1% of the reference's as a whole (Adam turns float32's rounding of a near-zero gradient,
    a rare word's entry, into a step of about lr), and the key bias, which has no gradient (a bias added
    to every key shifts a query's scores alike, which the softmax ignores): float64 leaves it, float32's
    rounding moves it by up to lr a step. The other forms of Adam are tens of percent away."""
    row = row_of(table, framework)
    assert row["logits"] < parity.TOLERANCE and row["own_logits"] < parity.TOLERANCE, row
    assert row["losses"] < parity.TOLERANCE and row["update"] < parity.UPDATE_TOLERANCE, row
    assert row["update_measure"] == "norm" and 0 < row["still"] <= row["still_bound"] == 3 * ref.ADAM["lr"], row
    assert row["optimizer_form"] == ADAM_FORMS[framework] and min(row["other_forms"].values()) > 0.05, row
    assert row["round_trip_exact"] and parity.passes(row)


@pytest.mark.parametrize("framework", ROWS)
def test_the_rows_own_predict_gives_the_references_classes_and_its_dropouts_are_the_models(table, framework):
    """Six dropouts of 0.1 a pass (per block: the attention weights, the attention's output, the
    feed-forward's), PyTorch's and Flax's attention dropout counted where their functions are given it."""
    row = row_of(table, framework)
    wrong, compared = row["predicted"]
    assert compared > 32 and wrong == 0, "{} of {} reviews classed otherwise than the reference".format(wrong, compared)
    assert row["dropout_as_declared"] and row["dropout_rates"] == [0.1] * 6, row["dropout_rates"]


@pytest.mark.parametrize("framework", ROWS)
def test_weights_move_from_every_framework_with_the_same_predictions(table, framework):
    assert_weights_move(row_of(table, framework), ROWS)



@pytest.fixture(scope="module")
def defaults():
    """The defaults table of part IV's page, as the book shows it: measured unless today's probe made it on
    a machine of this kind (cached or committed)."""
    from pages import attention
    return attention.defaults_table(root=COMMITTED)["table"]


def value(found, tab, topic):
    if not isinstance(found.get(tab), dict):
        pytest.skip("{}: {}".format(tab, found.get(tab)))
    return next(r["value"] for r in found[tab]["rows"] if r["topic"] == topic)


def test_the_pages_sentences_on_the_defaults_are_what_the_frameworks_report(defaults):
    """The page's paragraph on the traps, against the installed frameworks' own answers."""
    assert value(defaults, "keras", "layer norm's epsilon") == "LayerNormalization: 0.001"
    assert value(defaults, "jax", "layer norm's epsilon") == "nnx.LayerNorm: 1e-06"
    assert value(defaults, "chainer", "layer norm's epsilon") == "L.LayerNormalization: 1e-06; F.layer_normalization: 1e-05"
    assert value(defaults, "cntk", "where epsilon enters") == "the standard deviation"
    for tab in ("pytorch", "keras", "jax", "mxnet", "chainer"):
        assert value(defaults, tab, "where epsilon enters") == "the variance"
    assert "jax.nn.gelu: tanh approximation" in value(defaults, "jax", "GELU's default form")
    assert "keras.ops.gelu: tanh approximation" in value(defaults, "keras", "GELU's default form")
    assert "keras.activations.gelu: exact (erf)" in value(defaults, "keras", "GELU's default form")
    for tab in ("pytorch", "tensorflow", "mxnet", "caffe2"):
        assert ": exact (erf)" in value(defaults, tab, "GELU's default form")
    assert value(defaults, "pytorch", "a True mask entry means").startswith("ignore in MultiheadAttention's key_padding_mask; attend")
    assert value(defaults, "keras", "a True mask entry means").startswith("attend")
    assert value(defaults, "jax", "a True mask entry means").startswith("attend")
    assert value(defaults, "pytorch", "encoder layer's defaults") == "norm_first=False, activation=relu, batch_first=False"
    assert value(defaults, "jax", "attention dropout's mask").startswith("broadcast_dropout=True")
    assert value(defaults, "chainer", "softmax's axis") == "F.softmax: axis=1"
    assert value(defaults, "caffe2", "layer norm's epsilon") == "LayerNorm: 1e-05"
    assert "0.001" in value(defaults, "caffe2", "what its schema says of epsilon")
    assert value(defaults, "caffe2", "where epsilon enters") == "the variance"
    # each default kernel's form and spread against Glorot-uniform's for 128 x 128 (its draw unseeded: near)
    kernels = {(tab, call): (form, float(ratio)) for tab in defaults if isinstance(defaults[tab], dict)
               for call, form, ratio in re.findall(r"([^;:]+): (uniform|normal), std [0-9.]+, ([0-9.]+)x Glorot's",
                                                   value(defaults, tab, "default kernel init") if any(
                                                       r["topic"] == "default kernel init" for r in defaults[tab]["rows"]) else "")}
    expected = {("keras", "Dense"): ("uniform", 1.0), ("keras", " MultiHeadAttention's query kernel"): ("uniform", 1.0),
                ("cntk", "layers.Dense"): ("uniform", 1.0), ("pytorch", "nn.Linear"): ("uniform", np.sqrt(1 / 3)),
                ("jax", "nnx.Linear"): ("normal", 1.0), ("chainer", "L.Linear"): ("normal", 1.0),
                ("mxnet", "nn.Dense with initialize()"): ("uniform", 0.07 / np.sqrt(3) / np.sqrt(2 / 256))}
    for key, (form, ratio) in expected.items():
        assert kernels[key][0] == form and kernels[key][1] == pytest.approx(ratio, rel=0.05), (key, kernels.get(key))
    for tab in ("pytorch", "keras", "jax"):
        assert "0.500 for a head of 4 (1/sqrt(head size))" in value(defaults, tab, "the scores' scale")


def test_each_kept_default_moves_the_logits_beyond_the_parity_tolerance(defaults):
    """What a default costs is measured, and each is a different function: further from the reference than
    the row as its module asks, by more than parity's tolerance."""
    for tab, found in defaults.items():
        assert isinstance(found, dict), (tab, found)
        assert found["asked"]["max"] < parity.TOLERANCE and not found["asked"]["nan"], (tab, found["asked"])
        for trap, cost in zip(found["traps"], found["costs"]):
            assert cost["nan"] or cost["max"] > parity.TOLERANCE, (tab, trap, cost)
    assert len([t for found in defaults.values() for t in found["traps"]]) == 9
    assert value(defaults, "pytorch", "batch_first=False on batch-first reviews").startswith("AssertionError")


@pytest.mark.parametrize("option", ["--scale-out", "--inference", "--tuning", "--init-cost", "--init=own"])
def test_part_four_refuses_the_cnns_other_modes_before_anything_runs(option, capsys):
    import bench
    assert bench.main(["--model", "attention", option]) == 2
    assert "--model attention (the Transformer encoder on IMDB reviews) has the benchmark's rows only" in capsys.readouterr().err


def test_bad_reviews_give_the_references_logits_or_say_what_is_wrong():
    """Part II's tokenizer on what a user may hand part IV: an empty review (its start mark alone, one word
    to attend to and average), one longer than 150 words (its last 150), words past the vocabulary (id 2),
    each run through the PyTorch row from shared weights against the reference; a word rank below 1 is
    refused with what ranks are."""
    reviews = common.model_module("attention", "data")
    ids, lengths = reviews.pad([[], list(range(1, 400)), [5, 40000, 29998, 7]])
    assert list(lengths) == [1, 150, 5] and ids[2, 2] == ids[2, 3] == 2
    import attention_pytorch as row
    import torch
    model = row.create_model()
    weights = aw.random_weights(7)
    row.set_weights(model, weights)
    with torch.no_grad():
        got = model.eval()(torch.from_numpy(ids).long()).numpy()
    assert np.all(np.isfinite(got)) and np.max(np.abs(got - ref.forward(weights, ids)[0])) < parity.TOLERANCE
    with pytest.raises(reviews.DatasetError, match="ranks start at 1"):
        reviews.pad([[3, 0, 4]])


def test_the_translation_table_has_a_line_for_every_tab():
    from pages import attention
    assert set(attention.HOW) == {common.tab(n) for n in ROWS}
