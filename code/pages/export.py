"""The "Export and serve" chapter: the ONNX Runtime table (every framework's exported file against
its own logits), measured here or taken from the ONNX tests' cache, else the committed reference's;
and the inference chart of make bench-inference, this machine's newest run, else the reference."""
import html
import re

import altair as alt

import common
from lab import envs, onnx_check
from pages.base import NOISY, WIDTH, apart, embed, html_table
from pages.defaults import committed_table, reused


def frameworks():
    return common.implemented_frameworks()


def measured_onnx(results_dir=None):
    """(onnx_check.table's dict, where it comes from): measured here where every framework's
    environment exists (or cached by the ONNX tests); else the committed reference's."""
    missing = [n for n in frameworks() if envs.python_for(n)[0] is None]
    committed, source = committed_table("onnx.json", missing, results_dir)
    if committed:
        return committed, source + older(committed, frameworks(), "make reference-tables")
    measured = onnx_check.table(frameworks())
    return measured, reused(measured)


def older(measured, names, remeasure):
    """A committed ONNX table's caption's warning where other export code than today's measured it."""
    if measured.get("code") == onnx_check.code_digest(names):
        return ""
    return "; other export code than today's measured it ({} measures it again)".format(remeasure)


def _mb(size):
    return "{:.1f}".format(size / 1e6) if size else "-"


def producer(row):
    """(the exporter the file names, what its producer fields really hold): an empty name or a version
    placeholder is said as such, never printed as if it were a name or a version."""
    name, _, version = row["producer"].partition(" ")
    if not name:
        return "not named", "an empty producer_name and producer_version (the exporter sets neither)"
    if re.fullmatch(r"[A-Z0-9_]+_VERSION", version):
        return name, ("{}, with producer_version the literal text {}: a placeholder the exporter's build never "
                      "replaced with its version".format(name, version))
    return name, row["producer"]


def onnx_table(measured, source="", model="cnn"):
    trained = measured.get("source", onnx_check.SOURCE)
    inputs = common.MODELS[model]["inputs"]
    head = ["framework", "exporter", "opset", "logits vs the framework's, 64 / 1 {}".format(inputs), "same classes",
            "any batch", "weights trained in {}".format(trained), "within tolerance"]
    body = []
    order = common.implemented_frameworks(model=model)
    for name, row in sorted(measured["table"].items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99):
        export = row.get("export") or {}
        why = row.get("error") or export.get("error")
        moved = "{:.1e}".format(row["from_source"]) if row.get("from_source") is not None else "-"
        if "logits" not in row:
            verdict = "cannot export" if export.get("error") else "not run" if not export else "does not run"
            body.append(([name, "-", "-", "-", "-", "-", moved, verdict], [("why", why)], []))
            continue
        exporter, written_by = producer(row)
        cells = [name, exporter, row["opset"],
                 "{:.1e} / {:.1e}".format(row["logits"], row["batch_1"]), "yes" if row["same_classes"] else "NO",
                 "yes" if row["dynamic_batch"] else "NO", moved, "yes" if onnx_check.passes(row) else "NO"]
        notes = [("why", why)] + [("", "the graph keeps Dropout nodes")] * ("Dropout" in row["ops"])
        details = [("written by", written_by), ("input, output", "{}, {}".format(row.get("input"), row.get("output"))),
                   ("size", "{} MB".format(_mb(row["bytes"]))),
                   ("export", "{:.1f} s".format(export["seconds"])), ("operators", ", ".join(row["ops"]))]
        body.append((cells, notes, details))
    caption = ("Measured {} on {}{}: ONNX Runtime {} on the CPU, the synthetic test set's first {} {} in each "
               "framework's own layout, the weights of {}.random_weights. The last check but one puts the "
               "weights of a model trained {} steps in {} into each framework with set_weights and compares its "
               "logits with ONNX Runtime's on {}'s exported file.").format(
        (measured.get("measured") or "")[:10], measured.get("machine"), source, measured.get("onnxruntime", ""),
        common.BATCH_SIZE, inputs, common.MODELS[model]["weights"], onnx_check.STEPS, trained, trained)
    return "<p>{}</p>{}".format(html.escape(caption), html_table(head, body, "rosetta-onnx"))


def show_onnx():
    from IPython.display import HTML, display
    measured, source = measured_onnx()
    display(HTML(onnx_table(measured, source)))


def names_html(measured):
    """What a server must read off each file: its input's and output's names, which every exporter
    chooses for itself, and the opsets the runtime here runs."""
    rows = {name: row for name, row in measured["table"].items() if row.get("input")}
    names = sorted({row["input"] for row in rows.values()})
    return ("<p>The files' inputs are named {} by their exporters, and their outputs differ as much, so a server reads "
            "them from the session (<code>session.get_inputs()[0].name</code>, <code>get_outputs()</code>) rather "
            "than typing one; each row's details give its pair. ONNX Runtime {} runs opsets up to {} (found by "
            "loading a one-node model at each opset when this page was built); the files here say {}.</p>").format(
        ", ".join("<code>{}</code>".format(html.escape(n)) for n in names), measured.get("onnxruntime", ""),
        onnx_check.runtime_opset(), " to ".join(str(f(r["opset"] for r in rows.values())) for f in (min, max)))


def show_names():
    from IPython.display import HTML, display
    measured, _ = measured_onnx()
    if any(row.get("input") for row in measured["table"].values()):
        display(HTML(names_html(measured)))


ENGINES = (("its own predict", "native"), ("Keras' predict_on_batch", "served"), ("ONNX Runtime", "onnx"))


def spread(timing, key):
    """How far a timing's rounds spread: the highest over the lowest, minus one (0.1: 10%), or None."""
    low, high = (timing or {}).get(key + "_range") or (None, None)
    return high / low - 1 if low else None


def inference_rows(run):
    """Per framework: its own predict, Keras' predict_on_batch where measured, and ONNX Runtime on its
    file where that ran."""
    out = []
    for r in run.results:
        for engine, key in ENGINES:
            if not r.get(key):
                continue
            out.append(dict(framework=r["framework"], engine=engine, latency_ms=1000 * r[key]["latency"],
                            throughput=r[key]["throughput"]))
    return out


def inference_chart(run):
    order = [n for n in frameworks() if any(r["framework"] == n for r in run.results)]
    data = alt.Data(values=inference_rows(run))
    base = alt.Chart(data).encode(
        y=alt.Y("framework:N", sort=order, title=None),
        yOffset=alt.YOffset("engine:N"),
        color=alt.Color("engine:N", title=None, legend=alt.Legend(orient="top")),
    ).properties(width=WIDTH - 140)  # the framework names take the rest
    latency = base.mark_bar().encode(
        x=alt.X("latency_ms:Q", title="one image, median ms (less is better)"),
        tooltip=["framework:N", "engine:N", alt.Tooltip("latency_ms:Q", format=".2f")])
    throughput = base.mark_bar().encode(
        x=alt.X("throughput:Q", title="batches of 64, images per s (more is better)"),
        tooltip=["framework:N", "engine:N", alt.Tooltip("throughput:Q", format=",.0f")])
    return alt.vconcat(latency, throughput).properties(
        title=alt.Title(run.caption, subtitle="ONNX Runtime {}".format(run.meta.get("onnxruntime", "")), anchor="start"))


def inference_table(run):
    head = ["framework", "status", "own predict, 1 image ms", "ONNX Runtime, 1 image ms",
            "own predict, images/s", "ONNX Runtime, images/s", "MB", "opset", "export s"]
    body = []
    for r in sorted(run.results, key=lambda r: frameworks().index(r["framework"]) if r["framework"] in frameworks() else 99):
        n, o, export = r.get("native") or {}, r.get("onnx") or {}, r.get("export") or {}
        ms = lambda d: "{:.2f}".format(1000 * d["latency"]) if d else "-"  # noqa: E731
        per_s = lambda d: "{:,.0f}".format(d["throughput"]) if d else "-"  # noqa: E731
        served = r.get("served")
        notes = [("why", r.get("error")),
                 ("predict_on_batch, a server's route", "{} ms for one image, {} images/s".format(ms(served), per_s(served))
                  if served else None)]
        noisy = ["{} {}: its rounds differ by {:.0%}".format(engine, what, spread(r.get(key), field))
                 for engine, key in ENGINES for what, field in (("one image", "latency"), ("batches", "throughput"))
                 if (spread(r.get(key), field) or 0) > NOISY]
        notes.append(("timing flagged", "; ".join(noisy)))
        body.append(([r["framework"], r["status"], ms(n), ms(o), per_s(n), per_s(o), _mb(r.get("bytes")),
                      r.get("opset") or "-", "{:.1f}".format(export["seconds"]) if "seconds" in export else "-"],
                     notes, []))
    return html_table(head, body, "rosetta-inference")


def inference_html(results_dir=None):
    run, header = apart("inference", "bench-inference", "No inference measurement yet", results_dir)
    if run is None:
        return header
    return header + embed(inference_chart(run)) + inference_table(run)


def show_inference():
    from IPython.display import HTML, display
    display(HTML(inference_html()))
