"""The results chapter: every run's charts and table, and the 2017 benchmark beside ours. The book's
notebook cells call the `show_*` functions; the tests call the pieces.
"""
import html
import json

import altair as alt

import common
from pages.base import (shared_selection, reference_note, wall_time, split, load_runs, rows, flags_note, WIDTH, embed, html_table, _fmt, load_seed,
                        apart, trained_line)


PHASES = ["import", "data", "build", "init", "train", "predict"]


def charts(run):
    """Every chart of one run, stacked; clicking a framework highlights it in all of them."""
    data = rows(run)
    if not data:
        return None
    order = [d["framework"] for d in data]
    pick = alt.selection_point(fields=["framework"], on="click", clear="dblclick")
    y = alt.Y("framework:N", sort=order, title=None)
    fade = alt.condition(pick, alt.value(1.0), alt.value(0.3))
    ok = alt.datum.status == "ok"
    tip = ["framework:N", "status:N", "version:N", alt.Tooltip("train_seconds:Q", format=".2f"),
           alt.Tooltip("steady_epoch:Q", format=".2f"), alt.Tooltip("spread:Q", format=".0%"),
           alt.Tooltip("accuracy:Q", format=".1%"), "error:N"]

    def bars(field, title, axis_title, fmt=None, domain=None):
        base = alt.Chart(alt.Data(values=data)).encode(y=y, tooltip=tip)
        x = alt.X(field + ":Q", title=axis_title, axis=alt.Axis(format=fmt) if fmt else alt.Axis(),
                  scale=alt.Scale(domain=domain) if domain else alt.Scale())
        chart = base.mark_bar().encode(x=x, opacity=fade).transform_filter(ok)
        not_ok = base.mark_text(align="left", dx=3, color="#b00").encode(
            x=alt.value(0), text="status:N").transform_filter(~ok)
        return (chart + not_ok).properties(title=title, width=WIDTH)

    epochs = [dict(framework=d["framework"], epoch=kind, seconds=d[key])
              for d in data if d["status"] == "ok"
              for kind, key in (("first epoch", "first_epoch"), ("steady epoch (fastest after the first)", "steady_epoch"))
              if d[key] is not None]
    first_vs_steady = alt.Chart(alt.Data(values=epochs)).mark_bar().encode(
        y=y, yOffset="epoch:N", x=alt.X("seconds:Q", title="seconds"),
        color=alt.Color("epoch:N", title=None, legend=alt.Legend(orient="bottom")),
        opacity=fade, tooltip=["framework:N", "epoch:N", alt.Tooltip("seconds:Q", format=".2f")],
    ).properties(title="First epoch (tracing, compilation, autotuning) vs steady epochs",
                                  width=WIDTH)
    phases = [dict(framework=r["framework"], phase=p, seconds=r["phase_seconds"][p])
              for r in run.results if r["status"] == "ok" and r["framework"] in order
              for p in PHASES if p in r["phase_seconds"]]
    per_phase = alt.Chart(alt.Data(values=phases)).mark_bar().encode(
        y=y, x=alt.X("seconds:Q", title="seconds, stacked", stack="zero"),
        color=alt.Color("phase:N", sort=PHASES, title=None, legend=alt.Legend(orient="bottom")),
        order=alt.Order("phase_order:Q"), opacity=fade,
        tooltip=["framework:N", "phase:N", alt.Tooltip("seconds:Q", format=".2f")],
    ).transform_calculate(phase_order="indexof({}, datum.phase)".format(json.dumps(PHASES))).properties(title="Time per phase: import, data, build, init, train, predict", width=WIDTH)
    subtitle = trained_line(run) + ["Click a bar to highlight a framework in every chart; double-click to clear."]
    with shared_selection():
        step = common.model_module("cnn", "reference").flops(common.BATCH_SIZE)["train"]
        share = [bars("share_of_peak", alt.Title("Share of the machine's measured peak", subtitle=[
            "Training FLOP/s in a steady epoch ({:.1f} GFLOP a step of {} images),".format(step / 1e9, common.BATCH_SIZE),
            "over the machine's fastest matrix product in the row's precision"]), "share of peak", fmt="%")
                 ] if any(d["share_of_peak"] for d in data) else []
        return alt.vconcat(
            bars("train_seconds", "Training time, all epochs", "seconds"),
            bars("steady_epoch", "Steady epoch (the fastest of the epochs after the first)", "seconds"),
            first_vs_steady,
            bars("images_per_second", "Training throughput in a steady epoch", "images per second"),
            *share,
            per_phase,
            bars("accuracy", "Test accuracy", "accuracy", fmt="%", domain=[0, 1]),
        ).add_params(pick).resolve_scale(color="independent").properties(
            title=alt.Title(run.caption, subtitle=subtitle, anchor="start"))


HEAD = ["framework", "status", "accuracy", "training s", "first epoch s", "steady epoch s", "on"]


def table(run):
    """An HTML table of one run: failed and skipped rows kept, each reason in a sentence under its row."""
    body = []
    found = rows(run)
    shares = any(row["share_of_peak"] for row in found)  # only a run that measured its peak
    for row in found:
        steady_cell = _fmt("", row["steady_epoch"]) + (
            " (+{:.0%})".format(row["spread"]) if row["spread"] is not None and row["spread"] >= 0.005 else "")
        cells = ["{} {}".format(row["framework"], row["version"]).strip(), row["status"], _fmt("accuracy", row["accuracy"]),
                 _fmt("", row["train_seconds"]), _fmt("", row["first_epoch"]), steady_cell, row["hardware"] or "-"]
        cells += ["{:.0%} ({:.0f} GFLOP/s)".format(row["share_of_peak"], row["flops"] / 1e9) if row["share_of_peak"]
                  else "-"] * shares
        notes = [("why not ok", row["error"]), ("why there", row["device_note"]), ("timing flagged", row["flag"]),
                 ("measured by an older commit", row["stale"])]
        details = [("device", row["device"] or "-"), ("layout", row["layout"] or "-"), ("TF32", row["tf32"]),
                   ("Python", row["python"] or "-"), ("threads set", _fmt("", row["threads"])),
                   ("cores busy (measured)", _fmt("", row["cpu_busy"])),
                   ("cores other processes kept busy", _fmt("", row["others_busy"]))] + (
            [("oneDNN", "on" if row["onednn"] else "off")] if row["onednn"] is not None else [])
        body.append((cells, notes, details if row["status"] != "skipped" else []))
    return html_table(HEAD + ["share of peak"] * shares, body)


def run_html(run):
    parts = ["<h3>{}</h3>".format(html.escape(run.caption)), reference_note(run)]
    n, tuned, seconds = wall_time(run)
    if n:
        parts.append('<p class="rosetta-run-time">The {} {} that ran{} took {:.1f} min, one after another, each '
                     'from the start of its process to its result.</p>'.format(
                         n, "row" if n == 1 else "rows", " ({} of them tuned, drawn in Make it fast)".format(tuned)
                         if tuned else "", seconds / 60))
    chart = charts(run)
    parts.append(embed(chart) if chart is not None else "<p>This run has no results.</p>")
    parts.append(flags_note(rows(run)))
    parts.append(table(run))
    parts += ['<p class="rosetta-skipped">Skipped, not a result file: {}</p>'.format(html.escape(s))
              for s in run.skipped]
    return "\n".join(p for p in parts if p)


def results_html(runs):
    if not runs:
        return ('<p class="rosetta-empty">No benchmark results yet: <code>make bench</code> (or '
                '<code>make html</code>) runs the frameworks and writes them under '
                '<code>data/results/</code>.</p>')
    return "\n".join(run_html(part) for run in runs for part in split(run))


def show_results():
    from IPython.display import HTML, display
    display(HTML(results_html(load_runs())))


def breakdown_html(results_dir=None):
    """Where a step's time goes (make bench-breakdown): each row's parts, their share of the step and,
    for the convolutions and products, their FLOP/s against the run's float32 peak; then, per row,
    its largest part in a sentence."""
    run, header = apart("breakdown", "bench-breakdown", "No breakdown of a step yet", results_dir)
    if run is None:
        return header
    peak = ((run.meta.get("peak_flops") or {}).get("float32") or {}).get("flops")
    head = ["row", "part of a step", "seconds a step", "share of the step", "GFLOP/s", "share of peak"]
    body, largest = [], []
    for r in run.results:
        b = r.get("breakdown")
        if r["status"] != "ok" or not b:
            body.append(([r["framework"], "not measured", "-", "-", "-", "-"], [("why", r.get("error") or "")], []))
            continue
        for part, seconds in b["parts"].items():
            rate = b["flops"].get(part, 0) / seconds if b["flops"].get(part) and seconds else None
            body.append(([r["framework"], part, "{:.3f}".format(seconds), "{:.0%}".format(seconds / b["step"]),
                          "{:.0f}".format(rate / 1e9) if rate else "-", "{:.0%}".format(rate / peak) if rate and peak else "-"],
                         [], []))
        part, seconds = max(b["parts"].items(), key=lambda item: item[1])
        rate = b["flops"].get(part, 0) / seconds if b["flops"].get(part) else None
        largest.append("{}, {} ({:.0%} of its {:.2f} s step{})".format(
            r["framework"], part, seconds / b["step"], b["step"],
            ", at {:.0f} GFLOP/s".format(rate / 1e9) + (", {:.0%} of the peak".format(rate / peak) if peak else "")
            if rate else ""))
        body[-len(b["parts"])] = (body[-len(b["parts"])][0], [("measured by", b["by"])], [])
    sentence = "<p>The largest part of each step: {}.</p>".format(html.escape("; ".join(largest))) if largest else ""
    return header + peak_sentence(peak) + sentence + html_table(head, body, "rosetta-breakdown")


def peak_sentence(peak):
    """Which peak the breakdown's shares are over: its own run's, not the charted runs'."""
    if not peak:
        return "<p>This run recorded no peak, so no part has a share of one.</p>"
    return ("<p>Each share of peak is over this run's own float32 peak, {:.0f} GFLOP/s, measured when it "
            "started: not the peak of the runs charted above, each measured when that run started.</p>").format(peak / 1e9)


def show_breakdown():
    from IPython.display import HTML, display
    display(HTML(breakdown_html()))


# --- The 2017 benchmark beside ours -----------------------------------------------------------

def show_seed_note():
    """The seed's dropout bugs, as data/seed-2017.json states them (the results chapter shows the same)."""
    from IPython.display import HTML, display
    display(HTML('<p class="rosetta-note">{}</p>'.format(html.escape(load_seed()["note"]))))


def comparison_rows(runs, seed):
    """Training throughput, images per second: the final published table's K80 and P100 (the
    published training seconds over the 499,840 images they trained on), and each of our runs'
    steady epochs."""
    out = [dict(framework=r["framework"], source="{} (published {})".format(r["gpu"], r["table"][:7]),
                images_per_second=seed["images_per_run"] / r["seconds"], detail=r["name"])
           for r in seed["rows"] if r["framework"] and r["table"] == "2018-06-19"]
    for run in runs:
        out += [dict(framework=d["framework"], source="{} ({})".format(run.label, d["device"]),
                     images_per_second=d["images_per_second"], detail="{} {}, {} dataset, {} profile".format(
                         d["framework"], d["version"], d["dataset"], d["profile"]))
                for d in rows(run) if d["images_per_second"]]
    return out


def comparison_chart(runs, seed):
    data = comparison_rows(runs, seed)
    order = [n for n in common.FRAMEWORKS if any(d["framework"] == n for d in data)]
    return alt.Chart(alt.Data(values=data)).mark_point(filled=True, size=90, opacity=0.85).encode(
        y=alt.Y("framework:N", sort=order, title=None),  # points: bars have no baseline on a log scale
        x=alt.X("images_per_second:Q", scale=alt.Scale(type="log"), title="training images per second (log scale)"),
        color=alt.Color("source:N", title=None, legend=alt.Legend(orient="bottom", columns=1, labelLimit=500)),
        tooltip=["framework:N", "source:N", "detail:N", alt.Tooltip("images_per_second:Q", format=",.0f")],
    ).properties(width=WIDTH, title=alt.Title(
        "Training throughput: the 2018 benchmark's GPUs beside this book's runs",
        subtitle=["Published: {:,} images / training seconds (CIFAR-10, final table of 2018-06-19).".format(
            seed["images_per_run"])] + ["Measured steady epochs of {}".format(run.caption) for run in runs],
        anchor="start"))


def accuracy_table(runs, seed):
    """The published accuracies beside each run's (named by its label; the captions are above)."""
    published = {r["framework"]: r for r in seed["rows"] if r["framework"] and r["table"] == "2017-11-24"}
    measured = [{d["framework"]: d for d in rows(run)} for run in runs]
    names = [n for n in common.FRAMEWORKS if n in published or any(n in m for m in measured)]
    head = ["framework", "published 2017-11-24 (CIFAR-10)"] + [run.label for run in runs]
    body = []
    for name in names:
        cells = [name, "{:.0%} ({})".format(published[name]["accuracy"], published[name]["name"])
                 if name in published else "not in the benchmark"]
        for m in measured:
            found = m.get(name)
            cells.append(_fmt("accuracy", found["accuracy"]) if found and found["accuracy"] is not None
                         else (found["status"] if found else "not run"))
        body.append((cells, [], []))
    return html_table(head, body)


def comparison_html(runs):
    seed = load_seed()
    return "\n".join([embed(comparison_chart(runs, seed)), accuracy_table(runs, seed),
                      '<p class="rosetta-note">Source: {}. {}</p>'.format(
                          html.escape(seed["source"]), html.escape(seed["note"]))])


def show_comparison():
    from IPython.display import HTML, display
    display(HTML(comparison_html(load_runs())))
