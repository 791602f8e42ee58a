"""The results chapter's tables and Altair charts, built from the result JSON at book build time.

The book's notebook cells call `show_results()`; the tests call the pieces. Every string from a
result is escaped before it reaches a page, and the charts are embedded for the vendored
vega-embed, so a page needs no network.
"""
import contextlib
import copy
import datetime
import html
import itertools
import json
import os
import statistics
import warnings

import altair as alt

import common
import results

_ids = itertools.count(1)


@contextlib.contextmanager
def shared_selection():
    """One selection shared by every view is the point (a click highlights a framework in all of
    them); Altair warns each time it merges the copies it spreads over the views."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Automatically deduplicated selection parameter")
        yield


class Run:
    """One run folder as the book shows it: a label, its run.json, valid results, skipped files."""

    def __init__(self, path, label):
        self.path, self.label = path, label
        self.meta, self.results, self.skipped = results.load_run(path)

    @property
    def caption(self):
        m = self.meta
        first = self.results[0] if self.results else {}
        date = (m.get("started") or first.get("started") or "")[:10]
        return "{}: {} dataset, {} profile, {}, {}".format(
            self.label, m.get("dataset") or first.get("dataset"), m.get("profile") or first.get("profile"),
            m.get("device") or first.get("gpu") or first.get("cpu"), date)


def wall_time(run):
    """(rows, tuned rows, seconds): how long the rows that ran took, each from its process' start
    to its result, added up (they run one after another): the benchmark's share of `make html`."""
    spans = {}
    for r in run.results:
        try:
            if r["status"] != "skipped":
                spans[r["framework"]] = (datetime.datetime.fromisoformat(r["finished"])
                                         - datetime.datetime.fromisoformat(r["started"])).total_seconds()
        except (KeyError, TypeError, ValueError):  # never finished, or written by hand
            pass
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
    """The newest complete local run, then every committed reference run."""
    root = results_dir or common.RESULTS_DIR
    runs = []
    latest = results.latest_run(root)
    if latest:
        runs.append(Run(latest, "this build"))
    ref_root = os.path.join(root, "reference")
    for name in sorted(os.listdir(ref_root)) if os.path.isdir(ref_root) else []:
        path = os.path.join(ref_root, name)
        if os.path.isdir(path):
            meta = results.read_object(os.path.join(path, "run.json"))[0] or {}
            runs.append(Run(path, "reference ({})".format(meta.get("label") or name)))
    return runs


def rows(run, tuned=False):
    """One flat row per result, ready for a chart or a table; the tuned rows only with tuned=True
    (the results chapter shows the faithful rows, "Make it fast" both)."""
    out = []
    for r in sorted(run.results, key=lambda r: _order(r["framework"])):
        if r["framework"] in common.TUNED and not tuned:
            continue
        epochs = r.get("epoch_seconds") or []
        steady = _steady(r)
        n_images = (r.get("n_train") or 0) - (r.get("n_train") or 0) % (r.get("batch_size") or 64)
        out.append(dict(
            framework=r["framework"], status=r["status"], run=run.label,
            error=(r.get("error") or "").splitlines()[0][:300] if r.get("error") else "",
            version=r.get("framework_version") or "", accuracy=r.get("accuracy"),
            train_seconds=r.get("train_seconds"), first_epoch=epochs[0] if epochs else None,
            steady_epoch=steady, images_per_second=(n_images / steady) if steady else None,
            device=r.get("gpu") or r.get("cpu") or "", hardware=r.get("device") or "",
            device_note=r.get("device_note") or "", layout=r.get("layout") or "",
            tf32="on" if r.get("tf32_conv") or r.get("tf32_matmul") else "off",
            python=r.get("python") or "", threads=r.get("threads"), cpu_busy=r.get("cpu_busy"),
            params=r.get("params"), compile_seconds=r.get("compile_seconds"),
            precision=r.get("precision") or r.get("float") or "", tuning=r.get("tuning") or [],
            dataset=r["dataset"], profile=r["profile"]))
    return out


def _order(name):
    names = list(common.ROWS)
    return names.index(name) if name in names else len(names)


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
           alt.Tooltip("steady_epoch:Q", format=".2f"), alt.Tooltip("accuracy:Q", format=".1%"), "error:N"]

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
              for kind, key in (("first epoch", "first_epoch"), ("steady epoch (median of the rest)", "steady_epoch"))
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
            bars("steady_epoch", "Steady epoch (median of the epochs after the first)", "seconds"),
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


COLUMNS = [("framework", "framework"), ("status", "status"), ("version", "version"),
           ("accuracy", "accuracy"), ("train_seconds", "training s"), ("first_epoch", "first epoch s"),
           ("steady_epoch", "steady epoch s"), ("hardware", "on"), ("device", "device"),
           ("device_note", "why there"), ("layout", "layout"), ("tf32", "TF32"), ("python", "Python"),
           ("threads", "threads set"), ("cpu_busy", "cores busy (measured)"), ("error", "why not ok")]


def table(run):
    """An HTML table of one run: every value escaped, failed and skipped rows kept."""
    head = "".join("<th>{}</th>".format(html.escape(title)) for _, title in COLUMNS)
    prose = [i for i, (key, _) in enumerate(COLUMNS) if key in ("device_note", "error")]
    body = "".join(table_row([_fmt(key, row[key]) for key, _ in COLUMNS], prose) for row in rows(run))
    return '<div class="rosetta-scroll"><table class="rosetta-results"><thead><tr>{}</tr></thead><tbody>{}</tbody></table></div>'.format(head, body)


def table_row(cells, prose=()):
    """One row, every value escaped; the columns of sentences (indexes in prose) get a width to read
    them at, where the table would share out about nine characters to each."""
    return "<tr>{}</tr>".format("".join("<td{}>{}</td>".format(
        ' class="rosetta-prose"' if i in prose else "", html.escape(str(c))) for i, c in enumerate(cells)))


def _fmt(key, value):
    if value is None or value == "":
        return "-" if key != "error" else ""
    if key == "accuracy":
        return "{:.1%}".format(value)
    if isinstance(value, float):
        return "{:.2f}".format(value)
    return str(value)


def run_html(run):
    parts = ["<h3>{}</h3>".format(html.escape(run.caption))]
    n, tuned, seconds = wall_time(run)
    if n:
        parts.append('<p class="rosetta-run-time">The {} {} that ran{} took {:.1f} min, one after another, each '
                     'from the start of its process to its result.</p>'.format(
                         n, "row" if n == 1 else "rows", " ({} of them tuned, drawn in Make it fast)".format(tuned)
                         if tuned else "", seconds / 60))
    chart = charts(run)
    parts.append(embed(chart) if chart is not None else "<p>This run has no results.</p>")
    parts.append(table(run))
    parts += ['<p class="rosetta-skipped">Skipped, not a result file: {}</p>'.format(html.escape(s))
              for s in run.skipped]
    return "\n".join(parts)


def results_html(runs):
    if not runs:
        return ('<p class="rosetta-empty">No benchmark results yet: <code>make bench</code> (or '
                '<code>make html</code>) runs the frameworks and writes them under '
                '<code>data/results/</code>.</p>')
    return "\n".join(run_html(part) for run in runs for part in split(run))


def show_results():
    from IPython.display import HTML, display
    display(HTML(results_html(load_runs())))


# --- Make it fast: each tuned row beside its faithful twin, from the same run -----------------

def tuned_pairs(run):
    """(faithful row, tuned row) for every tuned row of the run whose twin ran in it too."""
    found = {d["framework"]: d for d in rows(run, tuned=True)}
    return [(found[spec["twin"]], found[name]) for name, spec in common.TUNED.items()
            if name in found and spec["twin"] in found]


def speedup(faithful, tuned, key="steady_epoch"):
    """How many times faster the tuned row is (above 1) or slower (below 1), or None."""
    ok = faithful["status"] == tuned["status"] == "ok" and faithful[key] and tuned[key]
    return faithful[key] / tuned[key] if ok else None


def tuned_chart(run):
    pairs = tuned_pairs(run)
    data = [dict(framework=t["framework"][:-len("-tuned")], row=label, epoch=kind, seconds=d[key])
            for f, t in pairs for label, d in (("faithful", f), ("tuned", t)) if d["status"] == "ok"
            for kind, key in (("steady epoch", "steady_epoch"), ("first epoch", "first_epoch")) if d[key]]
    if not data:
        return None
    order = [t["framework"][:-len("-tuned")] for _, t in pairs]
    ratios = ["{}: {}".format(o, "{:.2f}x".format(speedup(f, t)) if speedup(f, t) else "not measured")
              for o, (f, t) in zip(order, pairs)]
    return alt.Chart(alt.Data(values=data)).mark_bar().encode(
        y=alt.Y("framework:N", sort=order, title=None), yOffset=alt.YOffset("row:N", sort=["faithful", "tuned"]),
        x=alt.X("seconds:Q", title="seconds"),
        color=alt.Color("row:N", title=None, sort=["faithful", "tuned"], legend=alt.Legend(orient="bottom")),
        column=alt.Column("epoch:N", sort=["steady epoch", "first epoch"], title=None),
        tooltip=["framework:N", "row:N", "epoch:N", alt.Tooltip("seconds:Q", format=".2f")],
    ).resolve_scale(x="independent").properties(width=WIDTH // 2 - 20, title=alt.Title(
        "Faithful against tuned: " + run.caption, anchor="start",
        subtitle=["Steady epoch (median of the epochs after the first) and first epoch (tracing, compiling).",
                  "Speed-up of the steady epoch, faithful / tuned:"]  # three a line: a title does not wrap
                 + [", ".join(ratios[i:i + 3]) for i in range(0, len(ratios), 3)]))


def _changes(tuning, on):
    return "; ".join("{} ({})".format(c["change"], c["why"]) for c in tuning if c["on"] == on) or "none"


def tuned_table(run):
    head = ["framework", "steady epoch s, faithful → tuned", "speed-up", "first epoch s, faithful → tuned",
            "compile s (reported)", "accuracy, faithful → tuned", "precision", "changes on here", "changes off here"]
    body = []
    for f, t in tuned_pairs(run):
        ratio = speedup(f, t)
        acc = "{} → {}".format(_fmt("accuracy", f["accuracy"]), _fmt("accuracy", t["accuracy"]))
        if f["accuracy"] is not None and t["accuracy"] is not None:
            acc += " ({:+.1f} points)".format(100 * (t["accuracy"] - f["accuracy"]))
        cells = [t["framework"], "{} → {}".format(_fmt("", f["steady_epoch"]), _fmt("", t["steady_epoch"])),
                 "{:.2f}x{}".format(ratio, "" if ratio >= 1.05 else ": no faster here") if ratio else
                 t["error"] or f["error"] or t["status"],
                 "{} → {}".format(_fmt("", f["first_epoch"]), _fmt("", t["first_epoch"])),
                 _fmt("", t["compile_seconds"]), acc, t["precision"], _changes(t["tuning"], True),
                 _changes(t["tuning"], False)]
        body.append(table_row(cells, prose=(7, 8)))
    return '<div class="rosetta-scroll"><table class="rosetta-results rosetta-tuned"><thead><tr>{}</tr></thead><tbody>{}</tbody></table></div>'.format(
        "".join("<th>{}</th>".format(html.escape(h)) for h in head), "".join(body))


def tuned_html(runs):
    parts = []
    for run in runs:
        for part in split(run):
            chart = tuned_chart(part)
            if chart is not None:
                parts += [embed(chart), tuned_table(part)]
    return "\n".join(parts) or ('<p class="rosetta-empty">No run has a tuned row beside its faithful twin yet: '
                                 '<code>make bench</code> (or <code>make html</code>) runs both.</p>')


def show_tuned():
    from IPython.display import HTML, display
    display(HTML(tuned_html(load_runs())))


def ablation_run(results_dir=None):
    """The newest complete run of `make bench-tuning` (bench.tuning_ablation), or None."""
    return next((path for path, meta in results.local_runs(results_dir or common.RESULTS_DIR)
                 if meta.get("purpose") == "tuning" and meta.get("status") == "complete"), None)


def ablation_rows(path):
    """One row per change of each tuned row: its steady and first epoch with the change and without it."""
    found = results.load_run(path)[1]
    base = {r["framework"]: r for r in found if not r.get("flipped")}
    out = []
    for r in sorted((r for r in found if r.get("flipped")), key=lambda r: _order(r["framework"])):
        b = base.get(r["framework"])
        change = next((c for c in (b or {}).get("tuning") or [] if c["change"] == r["flipped"]), None)
        if change is None:
            continue
        with_, without = (b, r) if change["on"] else (r, b)
        pair = [dict(status=d["status"], error=d.get("error"), steady_epoch=_steady(d), first_epoch=(
            d.get("epoch_seconds") or [None])[0]) for d in (without, with_)]
        out.append(dict(framework=r["framework"], change=change["change"], on=change["on"], why=change["why"],
                        without=pair[0], with_=pair[1], speedup=speedup(pair[0], pair[1])))
    return out


def _steady(result):
    epochs = result.get("epoch_seconds") or []
    return statistics.median(epochs[1:]) if len(epochs) > 1 else None


def ablation_html(results_dir=None):
    path = ablation_run(results_dir)
    if path is None:
        return ('<p class="rosetta-empty">No measurement of the changes one by one on this machine yet: '
                '<code>make bench-tuning</code> makes one (it is not part of <code>make html</code>).</p>')
    meta = results.load_run(path)[0]
    head = ["tuned row", "change", "here", "steady epoch s, without → with", "speed-up from the change",
            "first epoch s, without → with"]
    body = []
    for row in ablation_rows(path):
        w, o = row["with_"], row["without"]
        ratio = row["speedup"]
        cells = [row["framework"], row["change"], ("on: " if row["on"] else "off: ") + row["why"],
                 "{} → {}".format(_fmt("", o["steady_epoch"]), _fmt("", w["steady_epoch"])),
                 "{:.2f}x".format(ratio) if ratio else (w["error"] or o["error"] or "not measured").splitlines()[0],
                 "{} → {}".format(_fmt("", o["first_epoch"]), _fmt("", w["first_epoch"]))]
        body.append(table_row(cells, prose=(2,)))
    caption = "Run {}: {} dataset, {} profile, {}, {}.".format(
        os.path.basename(path), meta.get("dataset"), meta.get("profile"), meta.get("device"), (meta.get("started") or "")[:10])
    return ('<p>{}</p><div class="rosetta-scroll"><table class="rosetta-results rosetta-ablation"><thead><tr>{}</tr>'
            '</thead><tbody>{}</tbody></table></div>').format(
        html.escape(caption), "".join("<th>{}</th>".format(html.escape(h)) for h in head), "".join(body))


def show_ablation():
    from IPython.display import HTML, display
    display(HTML(ablation_html()))


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
    published = {r["framework"]: r for r in seed["rows"] if r["framework"] and r["table"] == "2017-11-24"}
    measured = [{d["framework"]: d for d in rows(run)} for run in runs]
    names = [n for n in common.FRAMEWORKS if n in published or any(n in m for m in measured)]
    head = ["framework", "published 2017-11-24 (CIFAR-10)"] + [run.caption for run in runs]
    body = []
    for name in names:
        cells = [name, "{:.0%} ({})".format(published[name]["accuracy"], published[name]["name"])
                 if name in published else "not in the benchmark"]
        for m in measured:
            found = m.get(name)
            cells.append(_fmt("accuracy", found["accuracy"]) if found and found["accuracy"] is not None
                         else (found["status"] if found else "not run"))
        body.append("<tr>{}</tr>".format("".join("<td>{}</td>".format(html.escape(c)) for c in cells)))
    return '<div class="rosetta-scroll"><table class="rosetta-results"><thead><tr>{}</tr></thead><tbody>{}</tbody></table></div>'.format(
        "".join("<th>{}</th>".format(html.escape(h)) for h in head), "".join(body))


def comparison_html(runs):
    seed = load_seed()
    return "\n".join([embed(comparison_chart(runs, seed)), accuracy_table(runs, seed),
                      '<p class="rosetta-note">Source: {}. {}</p>'.format(
                          html.escape(seed["source"]), html.escape(seed["note"]))])


def show_comparison():
    from IPython.display import HTML, display
    display(HTML(comparison_html(load_runs())))


# --- Defaults, read from the installed frameworks ---------------------------------------------

def read_defaults(timeout=300):
    """{tab: rows or an error text}: code/introspect.py in each framework's own environment."""
    import bench
    found = {}
    for name in common.implemented_frameworks():
        tab = common.tab(name)
        if tab not in found:
            got = bench.run_script(name, [os.path.join(common.ROOT, "code", "introspect.py"), tab], timeout)
            found[tab] = got if isinstance(got, list) else (
                got if bench.python_for(name)[0] is None else "introspection " + got)
    return found


def defaults_table(found):
    """Topics as rows, frameworks as columns; each value with how it was found."""
    labels = {common.tab(n): common.FRAMEWORKS[n]["label"] for n in common.FRAMEWORKS}
    topics = list(dict.fromkeys(r["topic"] for rows_ in found.values() if isinstance(rows_, list) for r in rows_))
    cells = {(tab, r["topic"]): r for tab, rows_ in found.items() if isinstance(rows_, list) for r in rows_}
    head = "<th>default</th>" + "".join("<th>{}</th>".format(html.escape(labels[t])) for t in found)
    body = []
    for topic in topics:
        tds = []
        for tab, rows_ in found.items():
            r = cells.get((tab, topic))
            tds.append("<td>{}<br><small>{}</small></td>".format(html.escape(r["value"]), html.escape(r["how"]))
                       if r else "<td>-</td>" if isinstance(rows_, list) else "<td></td>")
        body.append("<tr><th>{}</th>{}</tr>".format(html.escape(topic), "".join(tds)))
    errors = "".join('<p class="rosetta-skipped">{}: {}</p>'.format(html.escape(labels[t]), html.escape(v))
                     for t, v in found.items() if not isinstance(v, list))
    return ('<div class="rosetta-scroll"><table class="rosetta-results rosetta-defaults"><thead><tr>{}</tr></thead>'
            '<tbody>{}</tbody></table></div>{}').format(
        head, "".join(body), errors)


def measured_threads(found, results_dir=None):
    """Add to each tab's rows the CPU cores its frameworks kept busy while training in the newest
    local run (the harness measures it), beside the threads the framework itself reports."""
    latest = results.latest_run(results_dir)
    for r in results.load_run(latest)[1] if latest else []:
        known = r["framework"] in common.FRAMEWORKS and r.get("cpu_busy")
        tab_rows = found.get(common.tab(r["framework"])) if known else None
        if not isinstance(tab_rows, list):
            continue
        cell = next((x for x in tab_rows if x["topic"] == "CPU cores busy in training"), None)
        if cell is None:
            cell = dict(topic="CPU cores busy in training", value="", how="measured: run {} on {}".format(
                os.path.basename(latest), r.get("device") or "?"))
            tab_rows.append(cell)
        cell["value"] = ", ".join(v for v in [cell["value"], "{}: {:.2f}".format(r["framework"], r["cpu_busy"])] if v)
    return found


def show_defaults():
    from IPython.display import HTML, display
    display(HTML(defaults_table(measured_threads(read_defaults()))))


# --- Parity with the NumPy reference (parity.table: measured now, or the parity tests') -----

def parity_table(table, measured=None, machine=None):
    """One row per framework: its largest differences from the reference, and whether they pass."""
    import parity
    head = ("<th>framework</th><th>device</th><th>logits</th><th>losses</th><th>weights after {} steps</th>"
            "<th>update, relative</th><th>round trip</th><th>weights from every framework</th>"
            "<th>within tolerance</th>").format(parity.STEPS)
    body = []
    order = common.implemented_frameworks(tuned=True)  # each tuned row after its twin; a cached table is by name
    for name, row in sorted(table.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)):
        if "error" in row:
            body.append('<tr><th>{}</th><td colspan="8" class="rosetta-skipped">{}</td></tr>'.format(
                html.escape(name), html.escape(str(row["error"]))))
            continue
        moved = max(list(row.get("imported", {}).values()) + list(row.get("as_source", {}).values()) or [float("nan")])
        cells = [row["device"], "{:.1e}".format(row["logits"]), "{:.1e}".format(row["losses"]),
                 "{:.1e}".format(row["weights"]), "{:.2%}".format(row["update"]),
                 "exact" if row["round_trip_exact"] else "NOT exact",
                 "{:.1e} ({} sources)".format(moved, len(row.get("imported", {}))),
                 "yes" if parity.passes(row) else "NO"]
        body.append("<tr><th>{}</th>{}</tr>".format(
            html.escape(name), "".join("<td>{}</td>".format(html.escape(str(c))) for c in cells)))
    caption = ("Measured {} on {} (the device column says where each framework ran): the synthetic "
               "dataset's first {} shuffled batches of {} images, float32 in the frameworks, float64 in "
               "the reference.").format((measured or results.now())[:10], machine or results.cpu_name(),
                                        parity.STEPS, common.BATCH_SIZE)
    return ('<p>{}</p><div class="rosetta-scroll"><table class="rosetta-results rosetta-parity"><thead><tr>{}</tr>'
            "</thead><tbody>{}</tbody></table></div>").format(html.escape(caption), head, "".join(body))


def show_parity():
    import parity
    from IPython.display import HTML, display
    measured = parity.table(common.implemented_frameworks(tuned=True))
    display(HTML(parity_table(measured["table"], measured["measured"], measured["machine"])))


# --- What the frameworks' own weight init costs ------------------------------------------------

def own_init_pair(results_dir=None):
    """(Glorot run, own-init run) for the defaults chapter: the newest pair that `make bench` made
    (bench.init_cost), the one on the dataset of the book's latest run first; else the newest own-init
    run of the latest run's profile and dataset, beside the latest run; else (latest, None)."""
    root = results_dir or common.RESULTS_DIR
    latest = results.latest_run(root)
    latest_meta = results.load_run(latest)[0] if latest else {}
    runs = list(results.local_runs(root))
    meta_of = {meta.get("run"): meta for _, meta in runs}
    pairs = [(os.path.join(root, "runs", meta["twin"]), path, meta) for path, meta in runs
             if meta.get("init") == "own" and meta.get("status") == "complete"
             and meta_of.get(meta.get("twin"), {}).get("status") == "complete"]
    pairs.sort(key=lambda pair: pair[2].get("dataset") != latest_meta.get("dataset"))  # stable: newest first
    if pairs:
        return pairs[0][:2]
    for path, meta in runs:
        if latest and (meta.get("init"), meta.get("status"), meta.get("profile"), meta.get("dataset")) == (
                "own", "complete", latest_meta.get("profile"), latest_meta.get("dataset")):
            return latest, path
    return latest, None


def init_cost_html(results_dir=None):
    import own_init
    glorot_run, own = own_init_pair(results_dir)
    if own is None:
        return ('<p class="rosetta-empty">No run with the frameworks\' own weight init beside a Glorot run: '
                '<code>make bench</code> makes both.</p>')
    glorot = {r["framework"]: r for r in results.load_run(glorot_run)[1]}
    meta, own_results, _ = results.load_run(own)
    head = ("<th>framework</th><th>own init (measured)</th><th>accuracy, own init</th>"
            "<th>accuracy, Glorot-uniform</th><th>difference</th>")
    body = []
    for r in sorted(own_results, key=lambda r: _order(r["framework"])):
        g = glorot.get(r["framework"], {})
        ok = r.get("status") == "ok" and g.get("status") == "ok"
        cells = [r.get("init_rule") or "-", _fmt("accuracy", r.get("accuracy")), _fmt("accuracy", g.get("accuracy")),
                 "{:+.1f} points".format(100 * (r["accuracy"] - g["accuracy"])) if ok else
                 (r.get("error") or g.get("error") or "not run").splitlines()[0]]
        body.append("<tr><th>{}</th>{}</tr>".format(html.escape(r["framework"]), "".join(
            "<td>{}</td>".format(html.escape(str(c))) for c in cells)))
    for name, why in own_init.SAME.items():
        if name in common.implemented_frameworks():
            body.append('<tr><th>{}</th><td colspan="4">{}</td></tr>'.format(html.escape(name), html.escape(why)))
    where_ = sorted({"{} profile, {}".format(*where(r)) for r in own_results if where(r)[1]})
    caption = "{} dataset, {}: runs {} and {}".format(
        meta.get("dataset"), "; ".join(where_) or "not run", os.path.basename(own), os.path.basename(glorot_run))
    return ('<p>{}</p><div class="rosetta-scroll"><table class="rosetta-results rosetta-init-cost"><thead><tr>{}'
            '</tr></thead><tbody>{}</tbody></table></div>').format(html.escape(caption), head, "".join(body))


def show_init_cost():
    from IPython.display import HTML, display
    display(HTML(init_cost_html()))
