"""The results chapter's tables and Altair charts, built from the result JSON at book build time.

The book's notebook cells call `show_results()`; the tests call the pieces. Every string from a
result is escaped before it reaches a page, and the charts are embedded for the vendored
vega-embed, so a page needs no network.
"""
import contextlib
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


def load_runs(results_dir=None):
    """The newest complete local run, then every committed reference run."""
    root = results_dir or common.RESULTS_DIR
    runs = []
    latest = results.latest_run() if results_dir is None else _latest_in(root)
    if latest:
        runs.append(Run(latest, "this build"))
    ref_root = os.path.join(root, "reference")
    for name in sorted(os.listdir(ref_root)) if os.path.isdir(ref_root) else []:
        path = os.path.join(ref_root, name)
        if os.path.isdir(path):
            meta = results._read_plain(os.path.join(path, "run.json"))[0] or {}
            runs.append(Run(path, "reference ({})".format(meta.get("label") or name)))
    return runs


def _latest_in(root):
    try:
        with open(os.path.join(root, "latest")) as f:
            path = os.path.join(root, f.read().strip())
    except OSError:
        return None
    return path if os.path.isdir(path) else None


def rows(run):
    """One flat row per result, ready for a chart or a table."""
    out = []
    for r in sorted(run.results, key=lambda r: _order(r["framework"])):
        epochs = r.get("epoch_seconds") or []
        steady = statistics.median(epochs[1:]) if len(epochs) > 1 else None
        n_images = (r.get("n_train") or 0) - (r.get("n_train") or 0) % (r.get("batch_size") or 64)
        out.append(dict(
            framework=r["framework"], status=r["status"], run=run.label,
            error=(r.get("error") or "").splitlines()[0][:300] if r.get("error") else "",
            version=r.get("framework_version") or "", accuracy=r.get("accuracy"),
            train_seconds=r.get("train_seconds"), first_epoch=epochs[0] if epochs else None,
            steady_epoch=steady, images_per_second=(n_images / steady) if steady else None,
            device=r.get("gpu") or r.get("cpu") or "", hardware=r.get("device") or "",
            python=r.get("python") or "", threads=r.get("threads"), params=r.get("params"),
            dataset=r["dataset"], profile=r["profile"]))
    return out


def _order(name):
    names = list(common.FRAMEWORKS)
    return names.index(name) if name in names else len(names)


PHASES = ["import", "data", "build", "init", "train", "predict"]
WIDTH = 420


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
              for r in run.results if r["status"] == "ok" for p in PHASES if p in r["phase_seconds"]]
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
        ).add_params(pick).properties(title=alt.Title(run.caption, subtitle=subtitle, anchor="start"))


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
           ("steady_epoch", "steady epoch s"), ("device", "device"), ("python", "Python"),
           ("threads", "threads"), ("error", "why not ok")]


def table(run):
    """An HTML table of one run: every value escaped, failed and skipped rows kept."""
    head = "".join("<th>{}</th>".format(html.escape(title)) for _, title in COLUMNS)
    body = "".join("<tr>{}</tr>".format("".join(
        "<td>{}</td>".format(html.escape(_fmt(key, row[key]))) for key, _ in COLUMNS)) for row in rows(run))
    return '<table class="rosetta-results"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>'.format(head, body)


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
    return "\n".join(run_html(run) for run in runs)


def show_results():
    from IPython.display import HTML, display
    display(HTML(results_html(load_runs())))
