"""Part IV's page: the encoder's translation table, its parity table against the NumPy encoder (the
machinery of part II's page, for this model) and its benchmark runs."""
import html
import os
import tempfile

import numpy as np

import common
from lab import onnx_check, parity, results
from pages import defaults, export, recurrent
from pages.base import html_table
from pages.defaults import reused
from pages.weights import predicted

MODEL = "attention"

# What each module calls for the attention, how it holds the query, key and value projections, what
# its padding mask means, and how it asks for this model's norm and GELU: what its code does
# (code/attention/), which the parity run proves by computing the reference's logits.
HOW = {
    "pytorch": ("nn.TransformerEncoderLayer(norm_first=True, activation=\"gelu\", batch_first=True)",
                "one packed in_proj_weight (3E, E): q, k, v stacked", "src_key_padding_mask, True = ignore",
                "layer_norm_eps=1e-5 (its default); \"gelu\" is the exact one"),
    "tensorflow": ("written out: tf.matmul, tf.nn.softmax", "a (E, E) variable each, input first",
                   "-inf added where a key is padding", "tf.nn.moments + 1e-5; tf.nn.gelu(approximate=False)"),
    "keras": ("layers.MultiHeadAttention(4, 32)", "a kernel each, (E, heads, head size)", "attention_mask, True = attend",
              "LayerNormalization(epsilon=1e-5): its default is 1e-3; activation \"gelu\", the exact one"),
    "jax": ("nnx.MultiHeadAttention(4, 128, broadcast_dropout=False)", "a kernel each, (E, heads, head size)",
            "mask, True = attend", "nnx.LayerNorm(epsilon=1e-5): its default is 1e-6; "
            "jax.nn.gelu(approximate=False): its default is the tanh one"),
    "mxnet": ("written out: batch_dot, softmax", "a Dense each, (E, E) output first", "-1e9 added where a key is padding",
              "nn.LayerNorm (1e-5, its default); nn.GELU, the exact one"),
    "chainer": ("written out: F.matmul, F.softmax(axis=-1)", "an L.Linear each, (E, E) output first",
                "-inf where a key is padding", "L.LayerNormalization(eps=1e-5): its default is 1e-6; GELU by F.erf"),
    "cntk": ("written out: times_transpose, softmax", "a (E, E) parameter each, input first",
             "-1e9 added where a key is padding", "layer norm written out (its LayerNormalization adds epsilon to the "
             "standard deviation); GELU by an erf written out"),
    "keras2": ("a layer of its own: K.batch_dot, K.softmax", "a kernel each, (E, E) input first",
               "-1e9 added where a key is padding", "a LayerNorm layer of its own; the CNTK row's GELU"),
    "caffe2": ("operators: FC, BatchMatMul, Softmax", "an FC each, (E, E) output first", "-1e9 added where a key is padding",
               "LayerNorm(epsilon=1e-5), asked for: its schema says 0.001; Gelu(fast_gelu=0)"),
}


def rows_of_model():
    return recurrent.rows_of_model(MODEL)


def write_reference(results_dir=None):
    """Part IV's parity, defaults and ONNX tables, measured now, into its newest committed run (make reference-attention)."""
    path = recurrent.newest_reference(results_dir, MODEL)
    if not path:
        raise common.UsageError("no committed run of part IV to add its tables to: make reference-attention")
    results.write_json(os.path.join(path, "parity.json"), parity.table(rows_of_model(), fresh=True))
    results.write_json(os.path.join(path, "defaults.json"), defaults_table(fresh=True))
    results.write_json(os.path.join(path, "onnx.json"), onnx_check.table(rows_of_model(), fresh=True))
    results.write_manifest(path)
    return path


def cost(logits, want):
    """How far a default's logits are from the reference's: the largest difference over the reviews
    whose logits are numbers, and how many reviews got none (NaN: every key masked, say)."""
    finite = np.all(np.isfinite(logits), axis=1)
    return dict(max=float(np.max(np.abs(logits[finite] - want[finite]))) if finite.any() else None,
                nan=int(np.sum(~finite)), reviews=len(logits))


def defaults_table(names=None, fresh=False, root=None):
    """{"measured", "machine", "table": {tab: the probe's rows and each kept default's cost, or why not}}:
    lab/attention_defaults.py in each framework's environment (one row per tab), each trap's
    logits against the NumPy reference's; cached or committed where this code made it on a machine of
    this kind (runs.checked_table), else measured (about two minutes on two cores)."""
    from lab import digest, envs, runs
    names = names or rows_of_model()

    def measure():
        reference, found = common.model_module(MODEL, "reference"), {}
        weights = common.model_module(MODEL, "weights").random_weights(parity.WEIGHT_SEED)
        firsts = {}  # tab -> its first row: one probe a tab
        for name in names:
            firsts.setdefault(common.tab(name), name)
        with tempfile.TemporaryDirectory(prefix="rosetta-defaults-") as out:
            paths = [os.path.join(out, tab + ".npz") for tab in firsts]
            got_all = envs.run_scripts([(name, "attention_defaults", [tab, path])
                                        for (tab, name), path in zip(firsts.items(), paths)], 600)
            for tab, path, got in zip(firsts, paths, got_all):
                if isinstance(got, dict):
                    with np.load(path) as f:
                        want = reference.forward(weights, f["x"])[0]
                        got.update(asked=cost(f["asked"], want), costs=[
                            cost(f["trap{}".format(i)], want) for i in range(len(got["traps"]))])
                found[tab] = got
        return (dict(measured=results.now(), machine=envs.gpu_name() or results.cpu_name(), table=found),
                all(isinstance(v, dict) for v in found.values()))
    return runs.checked_table("defaults", digest.check_key(names, "defaults"), measure, fresh, root=root)


def translation_html():
    head = ["framework", "its attention", "q, k, v held as", "the padding mask", "norm and GELU, as asked for"]
    body = [([recurrent.label_of(name)] + list(HOW[common.tab(name)]), [], []) for name in rows_of_model()]
    return html_table(head, body, "rosetta-translation")


def parity_html(measured):
    """Each row against the reference: its logits, the Adam its weights landed on and how far off that
    one's update it is, the key bias the reference leaves, and the weights of every other row moved in."""
    head = ["framework", "logits vs reference", "Adam (measured)", "update off", "key bias moved",
            "weights from all", "its own predict"]

    def cells(name, row, moved):
        return head if row is None else [
            recurrent.label_of(name), "{:.1e}".format(row["logits"]), row["optimizer_form"], "{:.2%}".format(row["update"]),
            "{:.1e}".format(row["still"]), "{:.1e} ({})".format(moved, len(row["imported"])), predicted(row["predicted"])]
    return "<p>{}</p>{}".format(html.escape(recurrent.parity_caption(measured)),
                                html_table(head, recurrent.parity_body(measured, rows_of_model(), cells), "rosetta-parity"))


def defaults_html(measured):
    """The defaults, topics as rows and frameworks as columns (the defaults chapter's table), and what
    keeping each default the module overrides does to the logits."""
    stored = (measured or {}).get("table", {})
    tabs = list(dict.fromkeys(common.tab(n) for n in rows_of_model()))
    table = {tab: stored[tab] for tab in tabs if tab in stored}  # the book's order of tabs, PyTorch's topics first
    found = {tab: got["rows"] if isinstance(got, dict) else got for tab, got in table.items()}
    labels = {}
    for name in rows_of_model():  # the probe's row of each tab: Keras 3's on TensorFlow
        labels.setdefault(common.tab(name), recurrent.label_of(name))
    body = []
    for tab, got in table.items():
        if not isinstance(got, dict):
            continue
        for trap, c in zip(got["traps"], got["costs"]):
            off = "-" if c["max"] is None else "{:.1e}".format(c["max"])
            if c["nan"]:
                off += " (NaN for {} of {} reviews)".format(c["nan"], c["reviews"])
            body.append(([labels[tab], trap, off, "{:.1e}".format(got["asked"]["max"])], [], []))
    caption = ("Read and measured {} on {}{}, each framework in its own environment; the logits on the parity "
               "check's first batch of {} reviews, from its shared weights, against the NumPy encoder's.".format(
                   measured["measured"][:10], measured["machine"], reused(measured), common.BATCH_SIZE) if measured else "")
    return "<p>{}</p>{}<h4>What keeping a default costs</h4>{}".format(
        html.escape(caption), defaults.defaults_table(found),
        html_table(["framework", "the default kept", "logits off the reference by", "as the module asks"], body,
                   "rosetta-parity"))


def show_defaults():
    from IPython.display import HTML, display
    display(HTML(defaults_html(recurrent.here_or_committed(defaults_table, "defaults.json", model=MODEL))))


def show_translation():
    from IPython.display import HTML, display
    display(HTML(translation_html()))


def show_parity():
    from IPython.display import HTML, display
    display(HTML(parity_html(recurrent.measured_parity(model=MODEL))))


def show_runs():
    from IPython.display import HTML, display
    display(HTML(recurrent.runs_html(model=MODEL, target="bench-attention", part="part IV")))


def show_onnx():
    from IPython.display import HTML, display
    measured, source = recurrent.measured_onnx(model=MODEL, target="make reference-attention")
    display(HTML(export.onnx_table(measured, source, MODEL)))
