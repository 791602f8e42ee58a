"""What the pages say about a run, read from the run, and what part II says about the frameworks'
defaults, read from the installed frameworks (issue 40, item 1): a chart's title gives the epochs and
images or reviews its rows trained; the breakdown's shares are over its own run's peak; Make it fast
names the ablation that keeps a change off, the one today's code of the row measured where there is
one, and says where the only one was measured by older code."""
import os

import numpy as np
import pytest

from conftest import ROOT
import common
from lab import digest, envs, results, runs
from pages import base, fast, recurrent, results as results_page


def done(framework, profile="quick", **extra):
    return results.new_result(framework, profile, "synthetic", status="ok", epoch_seconds=[2.0, 1.0, 1.0],
                              train_seconds=4.0, accuracy=0.5, **extra)


def run_of(docs, profile="quick"):
    run = base.Run.__new__(base.Run)
    run.path, run.label, run.reference, run.skipped = "/nowhere", "this build", False, []
    run.meta = dict(profile=profile, dataset="synthetic", device="Test CPU", started="2026-01-01T00:00:00")
    run.results = docs
    return run


def test_what_a_runs_rows_trained_is_read_from_their_results_or_their_profile():
    cnn = [done("pytorch", epochs=3, n_train=3200), done("jax", epochs=3, n_train=3200)]
    assert base.trained(cnn) == "3 epochs of 3,200 images"
    assert base.trained([done("rnn-pytorch", epochs=3, n_train=1920)]) == "3 epochs of 1,920 reviews"
    # each epoch's whole batches (the last partial one is dropped), and the profile where a result does not say
    assert base.trained([done("pytorch", "full", epochs=10, n_train=50000)]) == "10 epochs of 49,984 images"
    assert base.trained([done("pytorch")]) == "3 epochs of 3,200 images"  # the quick profile's
    assert base.trained([done("pytorch", epochs=3, n_train=3200), done("jax", epochs=2, n_train=128)]) == ""
    assert base.trained([dict(done("pytorch"), status="failed")]) == ""


def test_the_charts_titles_give_the_epochs_and_images_or_reviews_their_rows_trained():
    run = run_of([done("pytorch", epochs=3, n_train=3200, n_test=1280)])
    title = results_page.charts(run).to_dict()["title"]
    assert title["text"] == run.caption and title["subtitle"][0] == "Each row trained 3 epochs of 3,200 images."
    rnn = run_of([done("rnn-pytorch", epochs=3, n_train=1920, n_test=1280)])
    assert recurrent.chart(rnn, None).to_dict()["title"]["subtitle"] == ["Each row trained 3 epochs of 1,920 reviews."]
    pair = run_of([done("pytorch", epochs=3, n_train=3200, tuning=[]),
                   done("pytorch-tuned", epochs=3, n_train=3200, tuning=[dict(change="bf16", on=True, why="")])])
    assert fast.tuned_chart(pair).to_dict()["title"]["subtitle"][0] == "Each row trained 3 epochs of 3,200 images."


def test_a_run_of_its_own_page_names_the_epochs_and_images_its_rows_trained(tmp_path):
    write_ablation(str(tmp_path), "20260101-000000-quick-tuning", "0" * 16, 1.0, {})
    header = base.run_header(str(tmp_path / "reference" / "20260101-000000-quick-tuning"), True, "bench-tuning")[1]
    assert header.startswith("<p>Run 20260101-000000-quick-tuning: 3 epochs of 3,200 images, synthetic dataset")


def test_the_breakdowns_shares_are_over_its_own_runs_peak():
    assert "over this run's own float32 peak, 169 GFLOP/s" in results_page.peak_sentence(169.04e9)
    assert "no peak" in results_page.peak_sentence(None)
    root = os.path.join(ROOT, "data", "results")  # the committed breakdown, or one made here
    run, _ = base.apart("breakdown", "bench-breakdown", "none", root)
    peak = run.meta["peak_flops"]["float32"]["flops"]
    assert "{:.0f} GFLOP/s, measured when it started".format(peak / 1e9) in results_page.breakdown_html(root)


def write_ablation(root, name, code, speedup, machine):
    """A make bench-tuning run of jax-tuned: bf16 on, and once flipped off; `speedup` is its steady
    epoch without bf16 over with it; `code` the digest the run records for the row."""
    path = os.path.join(root, "reference", name)
    os.makedirs(path)
    results.write_json(os.path.join(path, "run.json"), dict(
        run=name, purpose="tuning", status="complete", profile="quick", dataset="synthetic", machine=machine))
    on = [dict(change="bf16", on=True, why="bf16 units")]
    base_doc = done("jax-tuned", tuning=on, code=code)  # steady epoch 1.0
    flipped = dict(done("jax-tuned", tuning=on, code=code, flipped="bf16"), epoch_seconds=[2.0, speedup, speedup])
    results.write_json(os.path.join(path, "jax-tuned.json"), base_doc)
    results.write_json(os.path.join(path, "jax-tuned@bf16.json"), flipped)


def test_the_page_takes_the_ablation_todays_code_of_the_row_measured_and_says_where_older_code_did(tmp_path):
    root = str(tmp_path)
    machine = dict(results.machine(), gpu=envs.gpu_name())
    today = digest.row_code("jax-tuned")
    write_ablation(root, "20260102-000000-quick-tuning", "0" * 16, 0.5, machine)  # newer, older code: a loss
    found = fast.ablation("jax-tuned", root, machine)["bf16"]
    assert (found["run"], found["older"], found["kept"]) == ("20260102-000000-quick-tuning", True, True)
    assert found["speedup"] == pytest.approx(0.5)
    listed = fast.kept_off_html(root)
    assert ("bf16 in <code>jax-tuned</code>, 0.50x (ablation 20260102-000000-quick-tuning, " + fast.OLDER
            + ", so it is not kept off") in listed
    assert runs.ablation("jax-tuned", root, machine) == {}  # the harness applies no ablation of older code
    tuned = dict(framework="jax-tuned", tuning=[dict(change="bf16", on=True, why="bf16 units")])
    run = run_of([])
    run.path, run.meta["machine"] = os.path.join(root, "runs", "20260103-000000-quick"), machine
    assert fast.measured(tuned, run).endswith("ablation 20260102-000000-quick-tuning " + fast.OLDER)
    why = "bf16 units, but on a machine of this kind it measured 0.50x (ablation 20260102-000000-quick-tuning): off"
    assert fast._changes(dict(tuned, tuning=[dict(change="bf16", on=False, why=why)]), False, root).endswith(
        "; that ablation was " + fast.OLDER + ")")

    write_ablation(root, "20260101-000000-quick-tuning", today, 1.5, machine)  # older run, today's code: a gain
    found = fast.ablation("jax-tuned", root, machine)["bf16"]
    assert (found["run"], found["older"]) == ("20260101-000000-quick-tuning", False)
    assert "jax-tuned" not in fast.kept_off_html(root)
    assert fast.measured(tuned, run) == "bf16 1.50x (20260101-000000-quick-tuning)"
    other = dict(machine, features=["another kind"])
    assert fast.ablation("jax-tuned", root, other) == {}  # another kind of machine: none


def test_part_twos_initial_weights_are_the_installed_frameworks_defaults(monkeypatch):
    """The translation table's initial weights for the main environment's frameworks, against them."""
    import math
    import torch
    from flax import nnx
    monkeypatch.setenv("KERAS_BACKEND", os.environ.get("KERAS_BACKEND", "jax"))  # read once, at import
    import keras
    table = {name: recurrent.HOW[name][3] for name in recurrent.HOW}
    gru = torch.nn.GRU(125, 100)
    bound = 1 / math.sqrt(100)
    assert all(0.9 * bound < float(p.detach().abs().max()) <= bound for p in gru.parameters())
    assert "every weight and bias uniform within ±1/√H" in table["pytorch"]
    cell = keras.layers.GRU(100).cell
    assert [type(i).__name__ for i in (cell.kernel_initializer, cell.recurrent_initializer, cell.bias_initializer)] == [
        "GlorotUniform", "Orthogonal", "Zeros"]
    assert "Glorot-uniform kernel, orthogonal recurrent kernel, zero biases" in table["keras"]
    flax_cell = nnx.GRUCell(1000, 100, rngs=nnx.Rngs(0))
    assert flax_cell.dense_i.bias is not None and flax_cell.dense_h.bias is None  # one bias, on the input layer
    kernel, recurrent_kernel = np.asarray(flax_cell.dense_i.kernel[...]), np.asarray(flax_cell.dense_h.kernel[...])
    assert abs(kernel.std() * math.sqrt(1000) - 1) < 0.05  # LeCun: variance 1 / fan in
    assert np.allclose(recurrent_kernel @ recurrent_kernel.T, np.eye(100), atol=1e-5)  # orthogonal
    assert not np.asarray(flax_cell.dense_i.bias[...]).any()
    assert "LeCun-normal input kernel, orthogonal recurrent kernel, zero bias" in table["jax"]
    assert set(recurrent.HOW) == {common.tab(n) for n in recurrent.rows_of_model()}
