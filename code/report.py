"""The book's measured pages, built from the result JSON at book build time: this module has what
they share (runs, rows, tables, charts) and the results chapter; report_fast.py, report_defaults.py
and report_weights.py have the Make it fast, defaults and weights chapters' pieces.

The book's notebook cells call the `show_*` functions; the tests call the pieces. Every string from
a result is escaped before it reaches a page, and the charts are embedded for the vendored
vega-embed, so a page needs no network. Where this machine has no run of its own, the committed
reference runs (data/results/reference/) fill the pages, labelled with their machine, date and commit.
"""
import contextlib
import copy
import html
import itertools
import json
import os
import warnings

import altair as alt

import common
import results

_ids = itertools.count(1)

# A row's timing is flagged where its steady epochs differ by more than NOISY (their fastest over
# their slowest), or where other processes kept more than BUSY cores busy while it trained.
NOISY = 0.2
BUSY = 0.25


@contextlib.contextmanager
def shared_selection():
    """One selection shared by every view is the point (a click highlights a framework in all of
    them); Altair warns each time it merges the copies it spreads over the views."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Automatically deduplicated selection parameter")
        yield


def describe_machine(meta):
    """'AMD EPYC, 2 cores (avx2, avx512_bf16)' from a run.json's machine, or its device."""
    m = meta.get("machine") or {}
    if not m:
        return meta.get("device") or "an unrecorded machine"
    cpu = "{}, {} cores".format(m.get("cpu"), m.get("cores")) + (
        " ({})".format(", ".join(m["features"])) if m.get("features") else "")
    return "{} with {}".format(m["gpu"], cpu) if m.get("gpu") else cpu


class Run:
    """One run folder as the book shows it: a label, its run.json, valid results, skipped files.
    A reference run (committed) also knows which of its rows older code measured."""

    def __init__(self, path, label, reference=False):
        self.path, self.label, self.reference = path, label, reference
        self.meta, self.results, self.skipped = results.load_run(path)

    @property
    def caption(self):
        m = self.meta
        first = self.results[0] if self.results else {}
        date = (m.get("started") or first.get("started") or "")[:10]
        text = "{}: {} dataset, {} profile, {}, {}".format(
            self.label, m.get("dataset") or first.get("dataset"), m.get("profile") or first.get("profile"),
            m.get("device") or first.get("gpu") or first.get("cpu"), date)
        return text + (", commit {}".format(m["commit"][:7]) if self.reference and m.get("commit") else "")

    def stale(self):
        """{row: why} for the rows of a reference run whose code has changed since it measured them."""
        import bench
        if not self.reference:
            return {}
        return {r["framework"]: "its module changed since" for r in self.results if bench.older_code(r)}


def reference_note(run, remeasure="<code>make html</code> measures every row here",
                   rerun="<code>make html</code> reruns {} first"):
    """A sentence under a reference run: what it is, what measures it here, and which of its rows
    older code measured."""
    if not run.reference:
        return ""
    m = run.meta
    text = ("Reference run {}, committed with the book: measured on {} at commit {}{}. "
            "{}.").format(
        html.escape(m.get("run") or os.path.basename(run.path)), html.escape(describe_machine(m)),
        html.escape((m.get("commit") or "unrecorded")[:7]), " (with uncommitted changes)" if m.get("dirty") else "", remeasure)
    stale = run.stale()
    if stale:
        text += (' <strong class="rosetta-stale">Measured by an older commit: the code of {} has changed since, '
                 'so {} numbers may differ from what the modules do now; {}.</strong>').format(
            html.escape(", ".join(sorted(stale))), "its" if len(stale) == 1 else "their",
            rerun.format("it" if len(stale) == 1 else "them"))
    return '<p class="rosetta-reference">{}</p>'.format(text)


def purpose_run(purpose, results_dir=None):
    """(the newest complete run of `purpose` here, else the newest committed one, whether it is a
    reference), or (None, False): the ablation and the inference runs, which have pages of their own."""
    for kind in ("runs", "reference"):
        for path, meta in results.local_runs(results_dir or common.RESULTS_DIR, kind):
            if meta.get("purpose") == purpose and meta.get("status") == "complete":
                return path, kind == "reference"
    return None, False


def apart(purpose, target, nothing, results_dir=None):
    """The newest complete run of a target that `make html` does not run (make bench-tuning, make
    bench-inference), this machine's or else the committed reference's: (Run, its caption and its
    reference note as HTML), or (None, a paragraph that says which target makes one)."""
    path, reference = purpose_run(purpose, results_dir)
    if path is None:
        return None, ('<p class="rosetta-empty">{}: <code>make {}</code> makes one (it is not part of '
                      '<code>make html</code>).</p>').format(nothing, target)
    run = Run(path, "reference" if reference else "this machine", reference)
    m = run.meta
    caption = "Run {}: {} dataset, {} profile, {}, {}.".format(
        os.path.basename(path), m.get("dataset"), m.get("profile"), describe_machine(m), (m.get("started") or "")[:10])
    note = reference_note(run, "<code>make {}</code> measures it here".format(target),
                          "<code>make {}</code> measures {{}} again".format(target))
    return run, "<p>{}</p>{}".format(html.escape(caption), note)


def wall_time(run):
    """(rows, tuned rows, seconds): how long the rows that ran took, each from its process' start
    to its result, added up (they run one after another): the benchmark's share of `make html`."""
    spans = {r["framework"]: results.row_seconds(r) for r in run.results if r["status"] != "skipped"}
    spans = {name: seconds for name, seconds in spans.items() if seconds is not None}
    return len(spans), len([n for n in spans if n in common.TUNED]), sum(spans.values())


def where(result):
    """The profile and the device a result ran with: results that differ here are never drawn together."""
    name = result.get("gpu") if result.get("device") == "gpu" else result.get("cpu")
    return result.get("profile"), name if result.get("device") else None


def split(run):
    """A run as one view per (profile, device): without PROFILE, a GPU machine trains the frameworks
    on the GPU with the full profile and the ones that stay on the CPU with the CPU's profile."""
    groups = {}
    for r in run.results:
        groups.setdefault(where(r), []).append(r)
    unplaced = [r for key in [k for k in groups if k[1] is None] for r in groups.pop(key)]  # never ran
    if not groups:
        return [run]
    parts = []
    for i, ((profile, device), found) in enumerate(groups.items()):
        part = copy.copy(run)
        part.meta = dict(run.meta, profile=profile, device=device)
        part.results = found + (unplaced if i == 0 else [])
        part.skipped = run.skipped if i == 0 else []
        parts.append(part)
    return parts


def load_runs(results_dir=None):
    """The newest complete local run, then every committed reference run of the book's rows (the
    own-init pairs and the tuning ablation have pages of their own)."""
    root = results_dir or common.RESULTS_DIR
    runs = []
    latest = results.latest_run(root)
    if latest:
        runs.append(Run(latest, "this build"))
    for path, meta in sorted(results.local_runs(root, "reference")):
        if meta.get("init", "glorot") == "glorot" and not meta.get("purpose"):
            runs.append(Run(path, "reference ({})".format(meta.get("label") or os.path.basename(path)), True))
    return runs


def steady(result):
    """The steady epoch: the fastest epoch after the first. Other work on the machine can make an
    epoch slower, never faster, so the fastest is the one it disturbed least."""
    epochs = (result.get("epoch_seconds") or [])[1:]
    return min(epochs) if epochs else None


def spread(result):
    """How much slower the slowest steady epoch was than the fastest (0.1: 10%), or None."""
    epochs = (result.get("epoch_seconds") or [])[1:]
    return max(epochs) / min(epochs) - 1 if len(epochs) > 1 and min(epochs) > 0 else None


def timing_flag(result):
    """Why a row's times may be off (its epochs disagree, or other processes were busy), or ''."""
    why = []
    if (spread(result) or 0) > NOISY:
        why.append("its steady epochs differ by {:.0%}".format(spread(result)))
    if (result.get("others_busy") or 0) > BUSY:
        why.append("other processes kept {:.1f} cores busy while it trained".format(result["others_busy"]))
    return " and ".join(why)


def rows(run, tuned=False):
    """One flat row per result, ready for a chart or a table; the tuned rows only with tuned=True
    (the results chapter shows the faithful rows, "Make it fast" both)."""
    out = []
    stale = run.stale()
    for r in sorted(run.results, key=lambda r: _order(r["framework"])):
        if r["framework"] in common.TUNED and not tuned:
            continue
        epochs = r.get("epoch_seconds") or []
        fastest = steady(r)
        n_images = (r.get("n_train") or 0) - (r.get("n_train") or 0) % (r.get("batch_size") or 64)
        out.append(dict(
            framework=r["framework"], status=r["status"], run=run.label,
            error=(r.get("error") or "").splitlines()[0][:300] if r.get("error") else "",
            version=r.get("framework_version") or "", accuracy=r.get("accuracy"),
            train_seconds=r.get("train_seconds"), first_epoch=epochs[0] if epochs else None,
            steady_epoch=fastest, spread=spread(r), flag=timing_flag(r) if r["status"] == "ok" else "",
            stale=stale.get(r["framework"], ""), images_per_second=(n_images / fastest) if fastest else None,
            device=r.get("gpu") or r.get("cpu") or "", hardware=r.get("device") or "",
            device_note=r.get("device_note") or "", layout=r.get("layout") or "",
            tf32="on" if r.get("tf32_conv") or r.get("tf32_matmul") else "off", onednn=r.get("onednn"),
            python=r.get("python") or "", threads=r.get("threads"), cpu_busy=r.get("cpu_busy"),
            others_busy=r.get("others_busy"), params=r.get("params"), compile_seconds=r.get("compile_seconds"),
            precision=r.get("precision") or r.get("float") or "", tuning=r.get("tuning") or [],
            dataset=r["dataset"], profile=r["profile"]))
    return out


def _order(name):
    names = list(common.ROWS)
    return names.index(name) if name in names else len(names)


def flags_note(data):
    """A sentence under a chart naming the rows whose timing is flagged or older than their code."""
    parts = []
    flagged = [d for d in data if d["flag"]]
    if flagged:
        parts.append("Timing flagged: {}. Other work slowed some of their epochs: the steady epoch, the "
                     "fastest, is the least disturbed, but the training time counts every epoch.".format(
                         "; ".join("{} ({})".format(d["framework"], d["flag"]) for d in flagged)))
    stale = [d["framework"] for d in data if d["stale"]]
    if stale:
        parts.append("Measured by an older commit than the code shown: {}.".format(", ".join(stale)))
    return '<p class="rosetta-flags">{}</p>'.format(html.escape(" ".join(parts))) if parts else ""


PHASES = ["import", "data", "build", "init", "train", "predict"]
WIDTH = 560


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
    subtitle = "Click a bar to highlight a framework in every chart; double-click to clear."
    with shared_selection():
        return alt.vconcat(
            bars("train_seconds", "Training time, all epochs", "seconds"),
            bars("steady_epoch", "Steady epoch (the fastest of the epochs after the first)", "seconds"),
            first_vs_steady,
            bars("images_per_second", "Training throughput in a steady epoch", "images per second"),
            per_phase,
            bars("accuracy", "Test accuracy", "accuracy", fmt="%", domain=[0, 1]),
        ).add_params(pick).resolve_scale(color="independent").properties(
            title=alt.Title(run.caption, subtitle=subtitle, anchor="start"))


def embed(chart):
    """A chart as HTML for the vendored vega-embed: no CDN, and nothing in it can close the tag."""
    with shared_selection():
        spec = chart.to_dict()
    spec.pop("$schema", None)
    payload = json.dumps(spec, sort_keys=True).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    div = "rosetta-chart-{}".format(next(_ids))
    return ('<div class="rosetta-chart" id="{0}"></div>\n<script type="text/javascript">\n'
            'vegaEmbed("#{0}", {1}, {{"mode": "vega-lite", "renderer": "svg", "actions": false}})'
            '.catch(function (e) {{ document.getElementById("{0}").textContent = '
            '"This chart could not be drawn: " + e; }});\n</script>').format(div, payload)


def html_table(head, body, cls=""):
    """A table that fits its column. `body` has (cells, notes, details) per row: the notes, (label,
    sentence) pairs, go in a line of their own under the row's cells, the details, (name, value)
    pairs, behind a toggle there. On a narrow screen each row stacks, every cell with its column's
    name. Every value is escaped."""
    cells_html = []
    for cells, notes, details in body:
        tds = "".join('<td data-label="{}">{}</td>'.format(html.escape(h), html.escape(str(c))) for h, c in zip(head, cells))
        lines = ["<span>{}</span>".format(html.escape(n if not label else "{}: {}".format(label, n)))
                 for label, n in notes if n]
        if details:
            lines.append("<details><summary>details</summary>{}</details>".format("; ".join(
                "{}: {}".format(html.escape(k), html.escape(str(v))) for k, v in details)))
        note = '<tr class="rosetta-note"><td colspan="{}">{}</td></tr>'.format(len(head), " ".join(lines)) if lines else ""
        cells_html.append('<tr{}>{}</tr>{}'.format(' class="rosetta-has-note"' if note else "", tds, note))
    return '<table class="rosetta-results {}"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>'.format(
        cls, "".join("<th>{}</th>".format(html.escape(h)) for h in head), "".join(cells_html))


HEAD = ["framework", "status", "accuracy", "training s", "first epoch s", "steady epoch s", "on"]


def table(run):
    """An HTML table of one run: failed and skipped rows kept, each reason in a sentence under its row."""
    body = []
    for row in rows(run):
        steady_cell = _fmt("", row["steady_epoch"]) + (
            " (+{:.0%})".format(row["spread"]) if row["spread"] is not None and row["spread"] >= 0.005 else "")
        cells = ["{} {}".format(row["framework"], row["version"]).strip(), row["status"], _fmt("accuracy", row["accuracy"]),
                 _fmt("", row["train_seconds"]), _fmt("", row["first_epoch"]), steady_cell, row["hardware"] or "-"]
        notes = [("why not ok", row["error"]), ("why there", row["device_note"]), ("timing flagged", row["flag"]),
                 ("measured by an older commit", row["stale"])]
        details = [("device", row["device"] or "-"), ("layout", row["layout"] or "-"), ("TF32", row["tf32"]),
                   ("Python", row["python"] or "-"), ("threads set", _fmt("", row["threads"])),
                   ("cores busy (measured)", _fmt("", row["cpu_busy"])),
                   ("cores other processes kept busy", _fmt("", row["others_busy"]))] + (
            [("oneDNN", "on" if row["onednn"] else "off")] if row["onednn"] is not None else [])
        body.append((cells, notes, details if row["status"] != "skipped" else []))
    return html_table(HEAD, body)


def _fmt(key, value):
    if value is None or value == "":
        return "-" if key != "error" else ""
    if key == "accuracy":
        return "{:.1%}".format(value)
    if isinstance(value, float):
        return "{:.2f}".format(value)
    return str(value)


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


# --- The 2017 benchmark beside ours -----------------------------------------------------------

SEED_FILE = os.path.join(common.ROOT, "data", "seed-2017.json")


def load_seed():
    with open(SEED_FILE) as f:
        return json.load(f)


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
