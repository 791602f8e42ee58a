"""Part III's page: each zoo's ResNet-50 as its installed code builds it, measured against the NumPy
ResNet-50 of its variant, and the rows' feature extraction timed beside ONNX Runtime and the 2018
benchmark's inference table.
"""
import html
import os

import altair as alt

import common
from lab import envs, features, results
from pages.base import (Run, WIDTH, apart, embed, html_table, load_seed, purpose_run, reference_note,
                        shared_selection)
from pages.defaults import reused
from pages.recurrent import label_of

MODEL = "resnet"


def rows_of_model():
    return common.implemented_frameworks(model=MODEL)


def newest_reference(results_dir=None):
    return next((p for p, m in results.local_runs(results_dir or common.RESULTS_DIR, "reference")
                 if m.get("purpose") == MODEL and m.get("status") == "complete"), None)


_MEASURED = {}  # the page shows it twice: measured once per build


def measured_table(results_dir=None):
    if results_dir not in _MEASURED:
        _MEASURED[results_dir] = _measured_table(results_dir)
    return _MEASURED[results_dir]


def _measured_table(results_dir=None):
    """features.table's dict for part III's rows: made by this code on a machine of this kind (cached or
    committed), else measured now in every row's environment; where some environment is missing (make
    book creates only the main one), the committed reference's."""
    names = rows_of_model()
    if all(envs.python_for(n)[0] for n in names):
        return features.table(names)
    path = newest_reference(results_dir)
    committed = results.read_object(os.path.join(path, "features.json"))[0] if path else None
    return committed or features.table([n for n in names if envs.python_for(n)[0]])


def write_reference(results_dir=None):
    """Part III's check table, measured now, into its newest committed run (make reference-resnet)."""
    path = newest_reference(results_dir)
    if not path:
        raise common.UsageError("no committed run of part III to add its table to: make reference-resnet")
    results.write_json(os.path.join(path, "features.json"), features.table(rows_of_model(), fresh=True))
    results.write_manifest(path)
    return path


def _rel(value):
    return "-" if value is None else "{:.1e}".format(value)


def caption(measured):
    return ("Measured {} on {}{}: {} images of the synthetic set resized to 224x224, the same seeded weights in every "
            "row, float32 in the frameworks, float64 in the reference; each difference is the largest over the "
            "largest feature.".format(measured["measured"][:10], measured["machine"], reused(measured),
                                      features.CHECK_IMAGES))


def not_measured(name, row, width):
    why = (row or {}).get("error") or envs.python_for(name)[1] or "not measured"
    return [label_of(name)] + ["-"] * (width - 1), [("not measured", why.splitlines()[-1][:300])], []


def variants_html(measured):
    """What each zoo's ResNet-50 is, read from the installed model, and how far its defaults are from
    the book's function of its variant."""
    head = ["framework", "variant: stride", "batch-norm epsilon", "stem and pooling pad", "layout",
            "as shipped vs the book's"]
    body = []
    for name in rows_of_model():
        row = (measured or {}).get("table", {}).get(name)
        if not row or "error" in row:
            body.append(not_measured(name, row, len(head)))
            continue
        d = row["described"]
        zoo = _rel(row.get("zoo")) if "zoo" in row else "no zoo model: written here"
        cells = [label_of(name), "{} ({})".format(d["variant"], common.model_module(MODEL, "weights").VARIANTS[d["variant"]]),
                 "{:g}".format(d["bn_eps"]), "{}; {}".format(d["stem"], d["pool"]), d["layout"], zoo]
        notes = [("its pre-trained weights expect", d.get("preprocessing") or "-")]
        details = [("convolution biases", d.get("conv_bias") or "none"), ("parameters", "{:,}".format(row["params"]))]
        body.append((cells, notes, details))
    return "<p>{}</p>{}".format(html.escape(caption(measured)) if measured else "", html_table(head, body, "rosetta-variants"))


def parity_html(measured):
    """Each row's features against the reference of its variant, its own weights out, the other
    variant, the weights of the rows of its variant moved in, and its exported file in ONNX Runtime."""
    head = ["framework", "features vs reference", "its own weights out", "as the other variant",
            "weights moved in", "ONNX Runtime"]
    body = []
    for name in rows_of_model():
        row = (measured or {}).get("table", {}).get(name)
        if not row or "error" in row:
            body.append(not_measured(name, row, len(head)))
            continue
        moved = "{} ({})".format(_rel(max(row["moved"].values())), len(row["moved"])) if row["moved"] else "-"
        onnx = _rel(row["onnx"]["difference"]) if "difference" in row["onnx"] else "fails"
        cells = [label_of(name), _rel(row["features"]), _rel(row["own"]),
                 _rel(row.get("other")) if "other" in row else "no switch", moved, onnx]
        notes = [] if features.passes(row) else [("outside the tolerance", "the largest differences are above {:g}".format(
            features.TOLERANCE))]
        if "error" in row["onnx"]:
            notes.append(("ONNX", row["onnx"]["error"]))
        details = [("from", ", ".join(label_of(n) for n in row["moved"]) or "none"),
                   ("the two variants' functions apart", _rel(row["variants_apart"]))]
        body.append((cells, notes, details))
    return "<p>{}</p>{}".format(html.escape(caption(measured)) if measured else "", html_table(head, body, "rosetta-parity"))


# --- Part III's runs -------------------------------------------------------------------------

def peer_of(run):
    return results.read_object(os.path.join(run.path, results.BASELINE))[0]


def run_rows(run, peer):
    """One flat row per result and the peer: seconds per 1,000 images, the first batch, GFLOP/s and
    its share of the run's measured float32 peak."""
    peak = ((run.meta.get("peak_flops") or {}).get("float32") or {}).get("flops")
    out = []
    ordered = sorted(run.results, key=lambda r: list(common.ROWS).index(r["framework"]) if r["framework"] in common.ROWS else 0)
    for r in ordered + ([dict(peer, status="ok", framework_version=peer["version"])] if peer else []):
        if r.get("status") != "ok" or not r.get("seconds_per_1000"):
            continue
        flops = r["flops_per_image"] * 1000.0 / r["seconds_per_1000"]
        out.append(dict(framework=r["framework"] if r["framework"] in common.ROWS else r["label"],
                        label=label_of(r["framework"]) if r["framework"] in common.ROWS else r["label"],
                        version=r.get("framework_version") or "", per_1000=r["seconds_per_1000"],
                        first_batch=r["first_batch_seconds"], gflops=flops / 1e9, device=r.get("device") or "cpu",
                        share=flops / peak if peak else None))
    return out


def chart(run, peer):
    data = run_rows(run, peer)
    if not data:
        return None
    y = alt.Y("label:N", sort=[d["label"] for d in data], title=None)
    tip = ["label:N", "version:N", alt.Tooltip("per_1000:Q", format=".1f"), alt.Tooltip("first_batch:Q", format=".2f"),
           alt.Tooltip("gflops:Q", format=".0f"), alt.Tooltip("share:Q", format=".0%")]

    def bars(field, title, axis):
        return alt.Chart(alt.Data(values=data)).mark_bar().encode(
            y=y, x=alt.X(field + ":Q", title=axis), tooltip=tip).properties(title=title, width=WIDTH)
    with shared_selection():
        return alt.vconcat(bars("per_1000", "Seconds per 1,000 images (steady batches of 32)", "seconds"),
                           bars("first_batch", "The first batch (tracing, compilation, autotuning)", "seconds")
                           ).properties(title=alt.Title(run.caption, anchor="start", subtitle=[
                               "Each row extracted the features of {:,} images; the seconds per 1,000 are scaled "
                               "from its steady batches.".format(run_images(run))]))


def run_images(run):
    found = {r.get("n_images") for r in run.results if r.get("status") == "ok"}
    return found.pop() if len(found) == 1 else 0


def table_html(run, peer):
    head = ["framework", "version", "device", "s per 1,000 images", "first batch (s)", "GFLOP/s", "of the peak"]
    body = [([d["label"], d["version"], d["device"], "{:.1f}".format(d["per_1000"]), "{:.2f}".format(d["first_batch"]),
              "{:.0f}".format(d["gflops"]), "{:.0%}".format(d["share"]) if d["share"] else "-"], [], [])
            for d in run_rows(run, peer)]
    failed = [(r["framework"], (r.get("error") or "").splitlines()[0][:300]) for r in run.results if r["status"] != "ok"]
    body += [([label_of(n), "-", "-", "-", "-", "-", "-"], [("failed", why)], []) for n, why in failed]
    return html_table(head, body, "rosetta-resnet-runs")


def runs_html(results_dir=None):
    path, reference = purpose_run(MODEL, results_dir)
    if path is None:
        return apart(MODEL, "bench-resnet", "No run of part III's rows yet", results_dir)[1]
    run = Run(path, "reference" if reference else "this machine", reference)
    peer = peer_of(run)
    drawn = chart(run, peer)
    parts = ["<h3>{}</h3>".format(html.escape(run.caption)),
             reference_note(run, "<code>make bench-resnet</code> measures it here",
                            "<code>make bench-resnet</code> measures {} again"),
             embed(drawn) if drawn is not None else "<p>This run has no results.</p>", table_html(run, peer)]
    return "\n".join(p for p in parts if p)


def seed_html():
    seed = load_seed()["resnet"]
    head = ["framework", "K80 (s per 1,000)", "P100 (s per 1,000)"]
    body = [([r["name"], "-" if r["K80"] is None else "{:.1f}".format(r["K80"]),
              "-" if r["P100"] is None else "{:.1f}".format(r["P100"])], [], []) for r in seed["rows"]]
    return "{}<p class=\"rosetta-note\">Source: {}. Conditions: {}.</p>".format(
        html_table(head, body), html.escape(seed["source"]), html.escape(seed["conditions"]))


def _show(text):
    from IPython.display import HTML, display
    display(HTML(text))


def show_variants():
    _show(variants_html(measured_table()))


def show_parity():
    _show(parity_html(measured_table()))


def show_runs():
    _show(runs_html())


def show_seed():
    _show(seed_html())
