"""Parity: every framework, in its own environment, computes what the NumPy reference computes.

Same weights (weights.random_weights), same 64 images, dropout off: the same logits; STEPS steps
of SGD with momentum on the shared batches: the same losses and weights; get_weights gives back
exactly what set_weights took; and every framework's own initial weights, moved into every other
framework, give the logits the reference gives for them.
"""
import numpy as np
import pytest

from conftest import COMMITTED, row_of

from lab import envs
import common
from lab import parity
import reference
import weights


@pytest.fixture(scope="module")
def table():
    """The table that today's code and environments give on a machine of this kind: measured now unless
    one is cached here or committed (runs.checked_table: a changed row, check or environment changes its
    key); FRESH=all measures it anyway. The book shows the same one (base.show_parity)."""
    return parity.table(common.implemented_frameworks(tuned=True), root=COMMITTED)["table"]



@pytest.mark.parametrize("framework", common.implemented_frameworks(tuned=True))
def test_same_logits_for_the_same_weights(table, framework):
    row = row_of(table, framework)
    assert row["logits"] < parity.TOLERANCE, "largest difference {:.2e}".format(row["logits"])
    assert row["own_logits"] < parity.TOLERANCE, "own weights: {:.2e}".format(row["own_logits"])


@pytest.mark.parametrize("framework", common.implemented_frameworks(tuned=True))
def test_same_losses_and_weights_after_sgd_steps(table, framework):
    row = row_of(table, framework)
    assert row["losses"] < parity.TOLERANCE, (row["losses_seen"], row["reference_losses"])
    assert row["weights"] < parity.TOLERANCE, "largest weight difference {:.2e}".format(row["weights"])
    # A momentum formula or learning rate that differs shows in the update, relative to its size.
    assert row["update"] < parity.UPDATE_TOLERANCE, "update off by {:.1%}".format(row["update"])


@pytest.mark.parametrize("framework", common.implemented_frameworks(tuned=True))
def test_weights_round_trip_exactly(table, framework):
    assert row_of(table, framework)["round_trip_exact"]


@pytest.mark.parametrize("framework", common.implemented_frameworks(tuned=True))
def test_weights_from_every_framework_give_the_same_logits(table, framework):
    row = row_of(table, framework)
    available = [f for f in common.implemented_frameworks(tuned=True) if envs.python_for(f)[0]]
    assert sorted(row["imported"]) == sorted(available)
    worst = max(row["imported"].items(), key=lambda kv: kv[1])
    assert worst[1] < parity.TOLERANCE, "weights from {}: logits differ by {:.2e}".format(*worst)
    # and the logits that the framework the weights came from computed itself, PyTorch's included
    worst = max(row["as_source"].items(), key=lambda kv: kv[1])
    assert worst[1] < parity.TOLERANCE, "{}'s own logits differ by {:.2e}".format(*worst)


@pytest.mark.parametrize("framework", common.implemented_frameworks(tuned=True))
def test_the_rows_own_predict_gives_the_references_classes(table, framework):
    """Its predict as the book's program calls it, after a training step, dropout untouched: a predict
    that leaves the model in training mode drops activations and gets other classes."""
    wrong, compared = row_of(table, framework)["predicted"]
    assert compared > 32 and wrong == 0, "{} of {} images classed otherwise than the reference".format(wrong, compared)


@pytest.mark.parametrize("framework", common.implemented_frameworks(tuned=True))
def test_each_dropout_has_the_models_rate(table, framework):
    row = row_of(table, framework)
    assert row["dropout_as_declared"], "rates given: {}, the model's: {}".format(
        row["dropout_rates"], common.MODELS["cnn"]["dropout"])


@pytest.mark.parametrize("framework", [f for f in common.implemented_frameworks(tuned=True)
                                       if "twin" in common.ROWS[f]])
def test_a_tuned_row_in_bf16_stays_near_the_reference(table, framework):
    """bf16 forced on, whether or not this CPU computes it in hardware: the row's own training steps and predict."""
    bf16 = row_of(table, framework)["bf16"]
    assert "error" not in bf16, bf16.get("error")
    assert bf16["on"] and bf16["losses"] < parity.BF16_TOLERANCE, bf16["losses_seen"]
    assert bf16["predicted"][0] == 0, bf16["predicted"]


def test_dropout_rates_are_read_once_per_pass_in_the_models_order():
    assert parity.rates_as_declared([0.25, 0.25, 0.5] * 3, (0.25, 0.25, 0.5))
    assert not parity.rates_as_declared([0.25, 0.25, 0.75] * 3, (0.25, 0.25, 0.5))  # keep_prob for rate
    assert not parity.rates_as_declared([], (0.25, 0.25, 0.5)) and parity.rates_as_declared([], ())
    assert parity.mismatches([1, 0], np.array([[0.0, 1.0], [0.0, 1e-6]])) == [0, 1]  # a near-tie is not compared


def test_reference_gradients_match_finite_differences():
    rng = np.random.RandomState(3)
    w = weights.random_weights(1)
    x, labels = rng.rand(4, 3, 32, 32), rng.randint(0, 10, 4)
    _, grads = reference.gradients(w, x, labels)
    eps = 1e-6
    for layer, part, index in [(0, 0, (3, 1, 2, 0)), (1, 1, (7,)), (3, 0, (5, 40, 1, 1)),
                               (4, 0, (100, 17)), (5, 1, (2,))]:
        def loss_at(delta):
            moved = [[np.float64(a).copy() for a in pair] for pair in w]
            moved[layer][part][index] += delta
            return reference.loss_and_grad(reference.forward(moved, x)[0], labels)[0]
        numeric = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
        assert abs(numeric - grads[layer][part][index]) < 1e-6 + 1e-4 * abs(numeric), (layer, part, index)


def test_the_flop_count_is_what_torchs_counter_counts():
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    import cnn_pytorch
    model = cnn_pytorch.create_model()
    with FlopCounterMode(display=False) as counter:
        loss = torch.nn.functional.cross_entropy(model(torch.rand(64, 3, 32, 32)), torch.zeros(64, dtype=torch.long))
        forward = counter.get_total_flops()
        loss.backward()
    assert (forward, counter.get_total_flops()) == (reference.flops(64)["forward"], reference.flops(64)["train"])
    assert 23e9 < reference.flops(64)["train"] < 25e9


def test_reference_momentum_is_classic():
    w = [(np.ones(s, np.float32), np.ones(weights.n_out(n), np.float32)) for n, s in weights.LAYERS.items()]
    grads = [(np.full(s, 2.0), np.full(weights.n_out(n), 2.0)) for n, s in weights.LAYERS.items()]
    original = reference.gradients
    try:
        reference.gradients = lambda weights_, x, y: (0.0, grads)
        _, after = reference.train(w, [(None, None)] * 2, lr=0.1, momentum=0.5)
    finally:
        reference.gradients = original
    # v1 = g = 2, w1 = 1 - 0.2; v2 = 0.5 * 2 + 2 = 3, w2 = 0.8 - 0.3 = 0.5 (Nesterov: 0.35)
    assert np.allclose(after[0][0], 0.5)


def test_neutral_layout_rejects_wrong_shapes():
    w = weights.random_weights(0)
    w[4] = (w[4][0].T, w[4][1])
    with pytest.raises(ValueError, match="dense1.*neutral layout"):
        weights.check(w)


def test_flatten_reordering_is_a_round_trip():
    k = np.arange(6400 * 3, dtype=np.float32).reshape(6400, 3)
    assert np.array_equal(weights.hwc_rows_to_chw(weights.chw_rows_to_hwc(k)), k)
    # row (c=1, h=0, w=0) of the CHW order is row (h=0, w=0, c=1) of the HWC order
    assert np.array_equal(weights.chw_rows_to_hwc(k)[1], k[64])


def test_weights_file_round_trip(tmp_path):
    w = weights.random_weights(5)
    weights.save(str(tmp_path / "w.npz"), w)
    back = weights.load(str(tmp_path / "w.npz"))
    assert all(np.array_equal(a, b) for pa, pb in zip(w, back) for a, b in zip(pa, pb))


def test_the_book_reuses_a_parity_table_only_where_the_same_code_measured_it(monkeypatch, tmp_path):
    import datasets
    monkeypatch.setattr(datasets, "CACHE_DIR", str(tmp_path))
    runs, outcome = [], {"error": "failed"}
    monkeypatch.setattr(parity, "run_all", lambda frameworks, out_dir, timeout: runs.append(frameworks))
    monkeypatch.setattr(parity, "compare", lambda frameworks, out_dir, found: {f: dict(outcome) for f in frameworks})
    parity.table(["pytorch"])
    parity.table(["pytorch"])
    assert len(runs) == 2  # a failure is never kept
    outcome = {"logits": 0.0}
    first = parity.table(["pytorch"])
    assert parity.table(["pytorch"]) == first and len(runs) == 3
    assert parity.table(["pytorch"], fresh=True)["table"] == first["table"] and len(runs) == 4
    parity.table(["pytorch", "jax"])
    assert len(runs) == 5 and first["machine"] and first["measured"][:4].isdigit()


@pytest.mark.parametrize("framework", common.implemented_frameworks(tuned=True))
def test_set_weights_keeps_the_optimizers_momentum_and_a_new_init_model_starts_clean(table, framework):
    """What the weights chapter tells a reader who loads weights into a model that has trained."""
    row = row_of(table, framework)
    assert row["restart_clean"] < parity.TOLERANCE, "built anew: {:.2e}".format(row["restart_clean"])
    assert row["restart_stale"] > max(parity.TOLERANCE, 100 * row["restart_clean"]), (
        "the old optimizer's step is the clean one: {:.2e}".format(row["restart_stale"]))


def test_the_weights_chapter_shows_each_rows_predict_dropout_and_bf16():
    from pages import weights as report_weights
    row = dict(device="cpu", logits=1e-7, own_logits=1e-7, losses=1e-7, weights=1e-7, update=1e-5, round_trip_exact=True,
               imported={"pytorch": 1e-7}, as_source={"pytorch": 1e-7}, predicted=[0, 64],
               dropout_rates=[0.25, 0.25, 0.75], dropout_as_declared=False,
               bf16=dict(on=True, losses=1e-4, losses_seen=[2.3] * 3, predicted=[2, 49]))
    page = report_weights.parity_table({"pytorch-tuned": row, "pytorch": dict(row, bf16=None)})
    assert "the same 64 classes" in page and "0.25, 0.25, 0.75 (NOT the model&#x27;s)" in page
    assert "losses 1.0e-04, 2 of 49 classes differ" in page and page.count(">NO<") == 2
