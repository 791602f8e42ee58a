"""Part II's pages: the GRU's translation table (each framework's recurrent API, measured against the
NumPy reference) and its benchmark runs, in charts of their own beside the 2018 benchmark's RNN table.
"""
import html
import os

import altair as alt

import common
from lab import envs, onnx_check, parity, results
from pages.weights import predicted
from pages import export
from pages.base import (Run, WIDTH, _fmt, apart, embed, flags_note, html_table, load_seed, purpose_run,
                        reference_note, rows, shared_selection, trained_line)
from pages.defaults import reused
from pages.results import table as results_table

MODEL = "rnn"

# How each module feeds the GRU and reads each review's last step, how its weights are laid out, and
# what its GRU's weights start from: what its code does (code/rnn/), which the parity run proves by
# computing the reference's logits. The initial weights are each framework's defaults, read from its
# installed source (tests/test_book_claims.py checks the main environment's), or the module's own
# where the module writes the GRU or sets an initializer.
HOW = {
    "pytorch": ("nn.GRU, batch first", "r, z, n; (3H, in); two biases", "every step, then the state at each review's length - 1",
                "nn.GRU's default: every weight and bias uniform within ±1/√H"),
    "tensorflow": ("tf.scan over a written-out step", "r, z, n; (in, 3H); two biases", "every step, then gather_nd at length - 1",
                   "no GRU below Keras; the module's: Glorot-uniform kernels, zero biases"),
    "keras": ("layers.GRU(reset_after=True)", "z, r, h; (in, 3H); bias (2, 3H)", "Embedding(mask_zero=True): masked steps keep the state",
              "GRU's defaults: Glorot-uniform kernel, orthogonal recurrent kernel, zero biases"),
    "jax": ("nnx.RNN over nnx.GRUCell + the recurrent bias", "r, z, n; (in, 3H); two biases",
            "nnx.RNN(seq_lengths=...): every step, then each review's carry at its length",
            "GRUCell's defaults: LeCun-normal input kernel, orthogonal recurrent kernel, zero bias; the added bias zero"),
    "mxnet": ("gluon.rnn.GRU, layout NTC", "r, z, n; (3H, in); two biases", "every step, then SequenceLast with the lengths",
              "rnn.GRU's: zero biases, weights from initialize() (by default uniform within ±0.07); the module's "
              "Xavier: Glorot-uniform over each stacked array"),
    "chainer": ("L.NStepGRU", "r, z, n as six blocks w0-w5, b0-b5", "a list of unpadded reviews: each one's last state",
                "NStepGRU's defaults: LeCun-normal weights, zero biases"),
    "cntk": ("Recurrence of a written-out step", "r, z, n; (in, 3H); two biases", "sequences of their own length (dynamic axis), sequence.last",
             "layers.GRU's defaults, which the written-out step keeps: Glorot-uniform, zero biases"),
    "keras2": ("layers.GRU(reset_after=True, recurrent_activation='sigmoid')", "z, r, h; (in, 3H); bias (2, 3H)",
               "Embedding(mask_zero=True) at a fixed length of 150",
               "GRU's defaults, as Keras 3's: Glorot-uniform kernel, orthogonal recurrent kernel, zero biases"),
    "caffe2": ("gru_cell.GRU(linear_before_reset=True), time-major", "r, z, n; i2h (3H, in), one FC (H, H) per gate",
               "seq_lengths: every step, and past its length a state stays",
               "every FC's default: XavierFill, uniform within ±√(3 / fan in), and zero biases"),
}


def rows_of_model(model=MODEL):
    return common.implemented_frameworks(model=model)


def here_or_committed(table, filename, results_dir=None, model=MODEL):
    """`table(rows)`'s dict for a part's rows: the one cached where the tests measured it with this code,
    else measured now in every row's environment; where some environment is missing (make book creates
    only the main one), the committed reference's `filename`, else measured on the rows that have one."""
    names = rows_of_model(model)
    here = [n for n in names if envs.python_for(n)[0]]
    if here == names:
        return table(names)
    path = newest_reference(results_dir, model)
    committed = results.read_object(os.path.join(path, filename))[0] if path else None
    return committed or table(here)


def measured_parity(results_dir=None, model=MODEL):
    """parity.table's dict for a part's rows (part II's, or part IV's, which share this page's
    machinery; measuring it takes about three minutes on two cores)."""
    return here_or_committed(parity.table, "parity.json", results_dir, model)


def measured_onnx(results_dir=None, model=MODEL, target="make reference-rnn"):
    """(onnx_check.table's dict, where it comes from) for part II's rows (or part IV's): as make
    test-onnx-rnn measured it here with this code and these environments, else the committed reference's
    (measuring it takes four minutes on two cores, which the book's build does not spend)."""
    names = rows_of_model(model)
    here = onnx_check.table(names, cached_only=True) if all(envs.python_for(n)[0] for n in names) else None
    path = newest_reference(results_dir, model)
    if here or not path:
        here = here or onnx_check.table(names)
        return here, reused(here)
    meta = results.read_object(os.path.join(path, "run.json"))[0] or {}
    committed = results.read_object(os.path.join(path, "onnx.json"))[0]
    return committed, ", the committed reference run {} (at commit {}){}".format(
        os.path.basename(path), (meta.get("commit") or "unrecorded")[:7], export.older(committed, names, target))


def newest_reference(results_dir=None, model=MODEL):
    return next((p for p, m in results.local_runs(results_dir or common.RESULTS_DIR, "reference")
                 if m.get("purpose") == model and m.get("status") == "complete"), None)


def write_reference(results_dir=None):
    """Part II's parity and ONNX tables, measured now, into its newest committed run (make reference-rnn)."""
    path = newest_reference(results_dir)
    if not path:
        raise common.UsageError("no committed run of part II to add its tables to: make reference-rnn")
    results.write_json(os.path.join(path, "parity.json"), parity.table(rows_of_model(), fresh=True))
    results.write_json(os.path.join(path, "onnx.json"), onnx_check.table(rows_of_model(), fresh=True))
    results.write_manifest(path)
    return path


def label_of(name):
    spec = common.ROWS[name]
    return spec["label"] + (" ({})".format(spec["vars"]["KERAS_BACKEND"]) if common.tab(name) == "keras" else "")


def translation_html():
    """What each module calls, how its weights and lengths go in, and what its GRU starts from: read off
    its code in code/rnn/ and its framework's defaults."""
    head = ["framework", "its GRU", "weights: gates, layout", "each review's last step"]
    body = [([label_of(name)] + list(HOW[common.tab(name)][:3]), [("initial weights", HOW[common.tab(name)][3])], [])
            for name in rows_of_model()]
    return html_table(head, body, "rosetta-translation")


def parity_body(measured, names, cells):
    """html_table's body of a parity table: a line per row, `cells(name, row, moved)` its cells (moved:
    the largest difference of another row's weights moved in), a note where it is outside the
    tolerances, and where it ran and how far the other forms of Adam are beneath it."""
    body = []
    for name in names:
        row = (measured or {}).get("table", {}).get(name)
        if not row or "error" in row:
            why = (row or {}).get("error") or envs.python_for(name)[1] or "not measured"
            body.append(([label_of(name)] + ["-"] * (len(cells(None, None, None)) - 1), [("not measured", why)], []))
            continue
        moved = max(list(row["imported"].values()) + list(row["as_source"].values()))
        notes = [] if parity.passes(row) else [("outside the tolerances", "the largest differences are above")]
        others = "; ".join("{}: {:.0%}".format(k, v) for k, v in row["other_forms"].items())
        body.append((cells(name, row, moved), notes, [("device", row["device"]), ("update off the other forms of Adam", others)]))
    return body


def parity_caption(measured):
    return ("" if not measured else "Measured {} on {}{}: three Adam steps from the same weights on the synthetic "
            "corpus's first three shuffled batches of {} reviews, float32 in the frameworks, float64 in the "
            "reference.".format(measured["measured"][:10], measured["machine"], reused(measured), common.BATCH_SIZE))


def parity_html(measured):
    """Each row against the reference: its logits, the other GRU's distance, the Adam its weights
    landed on, and the weights of every other row moved into it."""
    head = ["framework", "logits vs reference", "vs form B", "Adam (measured)", "update off", "weights from all",
            "its own predict"]

    def cells(name, row, moved):
        return head if row is None else [
            label_of(name), "{:.1e}".format(row["logits"]), "{:.2f}".format(row["logits_form_b"]), row["optimizer_form"],
            "{:.2%}".format(row["update"]), "{:.1e} ({})".format(moved, len(row["imported"])), predicted(row["predicted"])]
    return "<p>{}</p>{}".format(html.escape(parity_caption(measured)),
                                html_table(head, parity_body(measured, rows_of_model(), cells), "rosetta-parity"))


def show_translation():
    from IPython.display import HTML, display
    display(HTML(translation_html()))


def show_parity():
    from IPython.display import HTML, display
    display(HTML(parity_html(measured_parity())))


# --- Part II's runs --------------------------------------------------------------------------

def baseline_of(run):
    return results.read_object(os.path.join(run.path, results.BASELINE))[0]


def chart(run, baseline):
    data = [d for d in rows(run) if d["status"] == "ok"]
    if not data:
        return None
    order = [d["framework"] for d in data]
    y = alt.Y("framework:N", sort=order, title=None)
    tip = ["framework:N", "version:N", alt.Tooltip("train_seconds:Q", format=".2f"),
           alt.Tooltip("steady_epoch:Q", format=".2f"), alt.Tooltip("accuracy:Q", format=".1%")]

    def bars(field, title, axis, fmt=None, domain=None):
        x = alt.X(field + ":Q", title=axis, axis=alt.Axis(format=fmt) if fmt else alt.Axis(),
                  scale=alt.Scale(domain=domain) if domain else alt.Scale())
        return alt.Chart(alt.Data(values=data)).mark_bar().encode(y=y, x=x, tooltip=tip).properties(title=title, width=WIDTH)
    accuracy = bars("accuracy", "Test accuracy", "accuracy", fmt="%", domain=[0, 1])
    if baseline:
        rule = alt.Chart(alt.Data(values=[dict(accuracy=baseline["accuracy"])])).mark_rule(
            color="#b00", strokeDash=[4, 3]).encode(x="accuracy:Q")
        accuracy = (accuracy + rule).properties(title=alt.Title("Test accuracy", subtitle=(
            "dashed: the bag-of-words baseline, {:.1%}".format(baseline["accuracy"]))))
    with shared_selection():
        return alt.vconcat(bars("train_seconds", "Training time, all epochs", "seconds"),
                           bars("steady_epoch", "Steady epoch (the fastest after the first)", "seconds"),
                           accuracy).properties(title=alt.Title(run.caption, subtitle=trained_line(run), anchor="start"))


def baseline_html(baseline, dataset, accuracies=()):
    if not baseline:
        return ""
    reviews = common.model_module(MODEL, "data")
    synthetic = (" The reviews are synthetic (no dataset host is reachable from the machine that ran it): about one "
                 "word in {:.0f} is a polarity phrase, {:.0%} of which say the review's label; {:.0%} of the phrases put "
                 "a negation before their polarity word, which turns the word around. A count of the words gets the "
                 "first rule; only a reader of the words in order gets the second.".format(
                     1 / reviews.PHRASES, reviews.AGREE, reviews.NEGATED)
                 if dataset == "synthetic" else "")
    grus = (" The GRU rows of this run reach {:.1%} to {:.1%}.".format(min(accuracies), max(accuracies))
            if accuracies else "")
    return ('<p class="rosetta-baseline">The bag-of-words baseline (logistic regression on which words a review '
            'has, <code>code/rnn/rnn_baseline.py</code>, L2 weight {} chosen on held-out training reviews) reaches '
            '{:.1%} on the same {:,} test reviews after training on the same {:,}.{}{}</p>').format(
        baseline["l2"], baseline["accuracy"], baseline["n_test"], baseline["n_train"], grus, html.escape(synthetic))


def runs_html(results_dir=None, model=MODEL, target="bench-rnn", part="part II"):
    path, reference = purpose_run(model, results_dir)
    if path is None:
        return apart(model, target, "No run of {}'s rows yet".format(part), results_dir)[1]
    run = Run(path, "reference" if reference else "this machine", reference)
    baseline = baseline_of(run)
    drawn = chart(run, baseline)
    parts = ["<h3>{}</h3>".format(html.escape(run.caption)),
             reference_note(run, "<code>make {}</code> measures it here".format(target),
                            "<code>make {}</code> measures {{}} again".format(target)),
             embed(drawn) if drawn is not None else "<p>This run has no results.</p>",
             baseline_html(baseline, run.meta.get("dataset"), [d["accuracy"] for d in rows(run) if d["status"] == "ok"]),
             flags_note(rows(run)), results_table(run)]
    return "\n".join(p for p in parts if p)


def seed_html():
    seed = load_seed()["rnn"]
    head = ["framework", "table", "GPU", "training s", "cuDNN", "accuracy"]
    body = [([r["name"], r["table"], r["gpu"], _fmt("", float(r["seconds"])),
              {True: "yes", False: "no", None: "-"}[r["cudnn"]], _fmt("accuracy", r["accuracy"])], [], [])
            for r in seed["rows"] if r["gpu"] in ("K80", "P100")]
    return "{}<p class=\"rosetta-note\">Source: {}. Conditions: {}.</p>".format(
        html_table(head, body), html.escape(seed["source"]), html.escape(seed["conditions"]))


def show_runs():
    from IPython.display import HTML, display
    display(HTML(runs_html()))


def show_seed():
    from IPython.display import HTML, display
    display(HTML(seed_html()))


def show_onnx():
    from IPython.display import HTML, display
    from pages.export import onnx_table
    measured, source = measured_onnx()
    display(HTML(onnx_table(measured, source, MODEL)))
