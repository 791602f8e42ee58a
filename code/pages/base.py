"""What the book's measured pages share, built from the result JSON at book build time: runs, rows,
tables and the charts' embedding. Each page has its module beside this one (results.py: the results
chapter; fast.py, defaults.py, weights.py, export.py, scale.py: theirs).

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

import common
from lab import digest, results
from lab.results import steady  # noqa: F401  (the pages read it from here)

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
        if not self.reference:
            return {}
        purpose = self.meta.get("purpose", "")
        return {r["framework"]: "its module changed since" for r in self.results if digest.older_code(r, purpose)}


def trained(found, end=""):
    """What a run's rows trained on: '3 epochs of 3,200 images' (each epoch's whole batches: the
    harness drops a last partial one), from their results, or from their profile where a result does
    not record it (a scale-out run's), then `end`; '' where the rows disagree or none trained."""
    done = set()
    for r in found:
        model = common.ROWS.get(r.get("framework"), {}).get("model")
        if r.get("status") != "ok" or model not in common.MODELS:
            continue
        prof = common.profile(r["profile"], model) if r.get("profile") in common.PROFILES else {}
        done.add((r.get("epochs") or prof.get("epochs"), r.get("n_train") or prof.get("n_train"),
                  r.get("batch_size") or common.BATCH_SIZE, common.MODELS[model]["inputs"]))
    if len(done) != 1:
        return ""
    epochs, n, batch, inputs = done.pop()
    if not epochs or not n:
        return ""
    return "{} epoch{} of {:,} {}{}".format(epochs, "s" if epochs != 1 else "", n - n % batch, inputs, end)


def trained_line(run):
    """A chart's subtitle line: what each row of the run trained on, or none."""
    found = trained(run.results)
    return ["Each row trained {}.".format(found)] if found else []


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
    return run_header(path, reference, target)


def run_header(path, reference, target):
    """(Run, its caption and reference note as HTML) of a run that `make <target>` makes."""
    run = Run(path, "reference" if reference else "this machine", reference)
    m = run.meta
    caption = "Run {}: {}{} dataset, {} profile, {}, {}.".format(
        os.path.basename(path), trained(run.results, ", "), m.get("dataset"), m.get("profile"), describe_machine(m),
        (m.get("started") or "")[:10])
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


def compute_precision(result):
    """What a row's products run in: bfloat16 where its bf16 change is on, else float32."""
    return "bfloat16" if any(c["change"] == "bf16" and c["on"] for c in result.get("tuning") or []) else "float32"


def flops_per_second(result, images_per_second):
    """A row's training FLOP/s in its steady epoch, where its model counts them (reference.flops), or None."""
    model = common.ROWS.get(result["framework"], {}).get("model")
    if not images_per_second or "flops" not in common.MODELS.get(model, {}).get("has", ()):
        return None
    return common.model_module(model, "reference").flops(common.BATCH_SIZE)["train"] / common.BATCH_SIZE * images_per_second


def rows(run, tuned=False):
    """One flat row per result, ready for a chart or a table; the tuned rows only with tuned=True
    (the results chapter shows the faithful rows, "Make it fast" both)."""
    out = []
    stale = run.stale()
    peak = run.meta.get("peak_flops") or {}
    for r in sorted(run.results, key=lambda r: _order(r["framework"])):
        if r["framework"] in common.TUNED and not tuned:
            continue
        epochs = r.get("epoch_seconds") or []
        fastest = steady(r)
        n_images = (r.get("n_train") or 0) - (r.get("n_train") or 0) % (r.get("batch_size") or 64)
        achieved = flops_per_second(r, (n_images / fastest) if fastest else None)
        compute = compute_precision(r)
        limit = (peak.get(compute) or {}).get("flops")
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
            dataset=r["dataset"], profile=r["profile"], flops=achieved, compute=compute,
            share_of_peak=achieved / limit if achieved and limit else None))
    return out


def _order(name):
    names = list(common.ROWS)
    return names.index(name) if name in names else len(names)


def flags_note(data):
    """A sentence under a chart naming the rows whose timing is flagged or older than their code."""
    parts = []
    flagged = [d for d in data if d["flag"]]
    if flagged:
        parts.append("Timing flagged: {}. The steady epoch, the fastest, is the one least disturbed, but "
                     "the training time counts every epoch.".format(
                         "; ".join("{} ({})".format(d["framework"], d["flag"]) for d in flagged)))
    stale = [d["framework"] for d in data if d["stale"]]
    if stale:
        parts.append("Measured by an older commit than the code shown: {}.".format(", ".join(stale)))
    return '<p class="rosetta-flags">{}</p>'.format(html.escape(" ".join(parts))) if parts else ""


WIDTH = 560


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


def _fmt(key, value):
    if value is None or value == "":
        return "-" if key != "error" else ""
    if key == "accuracy":
        return "{:.1%}".format(value)
    if isinstance(value, float):
        return "{:.2f}".format(value)
    return str(value)


SEED_FILE = os.path.join(common.ROOT, "data", "seed-2017.json")


def load_seed():
    with open(SEED_FILE) as f:
        return json.load(f)
