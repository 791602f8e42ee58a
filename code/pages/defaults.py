"""The defaults chapter's tables: each framework's defaults, read from the installed framework (or,
for a framework without its environment here, from the committed reference), and what the
frameworks' own weight init costs (make bench-defaults, or its committed reference pair)."""
import html
import os

import common
from lab import envs, results
from pages.base import Run, _fmt, _order, describe_machine, html_table, reference_note, trained, where

TABLES = "book-tables"  # the purpose of a reference run that holds the defaults and parity tables


def reference_tables(results_dir=None):
    """(path, run.json) of the newest committed run of the defaults and parity tables, or (None, {})."""
    for path, meta in results.local_runs(results_dir or common.RESULTS_DIR, "reference"):
        if meta.get("purpose") == TABLES and meta.get("status") == "complete":
            return path, meta
    return None, {}


def committed_table(name, missing, results_dir=None):
    """(the committed reference's table `name` (parity.json, onnx.json), where it comes from) where
    the frameworks `missing` have no environment here; else (None, ""): the table is measured here."""
    path, meta = reference_tables(results_dir)
    found = results.read_object(os.path.join(path, name))[0] if path and missing else None
    if not found:
        return None, ""
    return found, taken_from("the committed reference run", path, meta, missing)


def reused(measured):
    """Where a check's table comes from when a reference run measured it (runs.checked_table): ", the
    committed reference run ... by this code ...", or "" when it was measured (or cached) here."""
    ref = measured.get("reference")
    if not ref:
        return ""
    return (", shown from the committed reference run {} (commit {}; the same code and pinned environments on a "
            "machine of this kind: make html FRESH=all measures it again)").format(
        ref["run"], (ref.get("commit") or "unrecorded")[:7])


def taken_from(what, path, meta, missing):
    """Where a table shown in place of a measurement here comes from, and why."""
    return ", {} {} (at commit {}: {} {} no environment here)".format(
        what, os.path.basename(path), (meta.get("commit") or "unrecorded")[:7], ", ".join(missing),
        "has" if len(missing) == 1 else "have")


def read_defaults(timeout=300, results_dir=None):
    """({tab: rows or an error text}, {tab: where it was read, for tabs read from the reference}):
    lab/introspect.py in each framework's own environment, or the committed reference's reading
    for a framework whose environment this machine does not have."""
    path, meta = reference_tables(results_dir)
    committed = results.read_object(os.path.join(path, "defaults.json"))[0] or {} if path else {}
    found, sources = {}, {}
    for name in common.implemented_frameworks():
        tab = common.tab(name)
        if tab in found:
            continue
        if envs.python_for(name)[0] is None and isinstance(committed.get(tab), list):
            found[tab] = committed[tab]
            sources[tab] = "read on {} on {} at commit {}".format(
                describe_machine(meta), (meta.get("started") or "")[:10], (meta.get("commit") or "unrecorded")[:7])
            continue
        got = envs.run_script(name, "introspect", [tab], timeout)
        found[tab] = got if isinstance(got, list) else (
            got if envs.python_for(name)[0] is None else "introspection " + got)
    return found, sources


def defaults_table(found, sources=None):
    """Topics as rows, frameworks as columns, each value with how it was found. Every column is in
    the page; the book's script shows PyTorch beside the framework picked, with a button for each."""
    sources = sources or {}
    labels = {common.tab(n): common.FRAMEWORKS[n]["label"] for n in common.FRAMEWORKS}
    topics = list(dict.fromkeys(r["topic"] for rows_ in found.values() if isinstance(rows_, list) for r in rows_))
    cells = {(tab, r["topic"]): r for tab, rows_ in found.items() if isinstance(rows_, list) for r in rows_}
    head = "<th>default</th>" + "".join('<th data-tab="{}">{}{}</th>'.format(
        html.escape(t), html.escape(labels[t]), " *" if t in sources else "") for t in found)
    body = []
    for topic in topics:
        tds = []
        for tab, rows_ in found.items():
            r = cells.get((tab, topic))
            value = "{}<br><small>{}</small>".format(html.escape(r["value"]), html.escape(r["how"])) if r else (
                "-" if isinstance(rows_, list) else "")
            tds.append('<td data-tab="{}" data-label="{}">{}</td>'.format(html.escape(tab), html.escape(labels[tab]), value))
        body.append('<tr><th data-label="default">{}</th>{}</tr>'.format(html.escape(topic), "".join(tds)))
    buttons = "".join('<button type="button" data-tab="{}">{}</button>'.format(html.escape(t), html.escape(labels[t]))
                      for t in found if t != "pytorch")
    errors = "".join('<p class="rosetta-skipped">{}: {}</p>'.format(html.escape(labels[t]), html.escape(v))
                     for t, v in found.items() if not isinstance(v, list))
    notes = "".join('<p class="rosetta-reference">* {}: no environment on this machine, so its column is the '
                    'committed reference\'s reading ({}).</p>'.format(html.escape(labels[t]), html.escape(where_))
                    for t, where_ in sources.items())
    return ('<div class="rosetta-defaults-pick" hidden>Beside PyTorch: {}</div>'
            '<table class="rosetta-results rosetta-defaults"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>'
            '{}{}').format(buttons, head, "".join(body), notes, errors)


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
    found, sources = read_defaults()
    display(HTML(defaults_table(measured_threads(found), sources)))


# --- What the frameworks' own weight init costs ------------------------------------------------

def own_init_pair(results_dir=None):
    """(Glorot run, own-init run) for the defaults chapter: the newest pair that `make bench-defaults`
    made (lab.modes.init_cost), the one on the dataset of the book's latest run first; else the newest
    own-init run of the latest run's profile and dataset, beside the latest run; else the newest
    committed reference pair; else (latest, None)."""
    root = results_dir or common.RESULTS_DIR
    latest = results.latest_run(root)
    latest_meta = results.load_run(latest)[0] if latest else {}
    for kind in ("runs", "reference"):
        runs = list(results.local_runs(root, kind))
        meta_of = {meta.get("run"): meta for _, meta in runs}
        pairs = [(os.path.join(root, kind, meta["twin"]), path, meta) for path, meta in runs
                 if meta.get("init") == "own" and meta.get("status") == "complete"
                 and meta_of.get(meta.get("twin"), {}).get("status") == "complete"]
        pairs.sort(key=lambda pair: pair[2].get("dataset") != latest_meta.get("dataset"))  # stable: newest first
        if pairs:
            return pairs[0][:2]
        for path, meta in runs if kind == "runs" else []:
            if latest and (meta.get("init"), meta.get("status"), meta.get("profile"), meta.get("dataset")) == (
                    "own", "complete", latest_meta.get("profile"), latest_meta.get("dataset")):
                return latest, path
    return latest, None


def init_cost_html(results_dir=None):
    from lab import own_init
    root = results_dir or common.RESULTS_DIR
    glorot_run, own = own_init_pair(root)
    if own is None:
        return ('<p class="rosetta-empty">No run with the frameworks\' own weight init beside a Glorot run: '
                '<code>make bench-defaults</code> makes both.</p>')
    reference = os.path.dirname(own) == os.path.join(root, "reference")
    glorot = {r["framework"]: r for r in results.load_run(glorot_run)[1]}
    run = Run(own, "reference" if reference else "this machine", reference)
    head = ["framework", "own init (measured)", "accuracy, own init", "accuracy, Glorot-uniform", "difference"]
    body = []
    for r in sorted(run.results, key=lambda r: _order(r["framework"])):
        g = glorot.get(r["framework"], {})
        ok = r.get("status") == "ok" and g.get("status") == "ok"
        cells = [r["framework"], r.get("init_rule") or "-", _fmt("accuracy", r.get("accuracy")),
                 _fmt("accuracy", g.get("accuracy")),
                 "{:+.1f} points".format(100 * (r["accuracy"] - g["accuracy"])) if ok else "not measured"]
        why = "" if ok else (r.get("error") or g.get("error") or "not run").splitlines()[0]
        body.append((cells, [("why not", why)], []))
    for name, why in own_init.SAME.items():
        if name in common.implemented_frameworks():
            body.append(([name, "Glorot-uniform", "-", "-", "-"], [("", why)], []))
    where_ = sorted({"{} profile, {}".format(*where(r)) for r in run.results if where(r)[1]})
    caption = "{}{} dataset, {}: runs {} and {}".format(
        trained(run.results, ", "), run.meta.get("dataset"), "; ".join(where_) or "not run", os.path.basename(own), os.path.basename(glorot_run))
    note = reference_note(run, "<code>make bench-defaults</code> measures the pair here (<code>make html</code> does not)",
                          "<code>make bench-defaults</code> measures {} again")
    return "<p>{}</p>{}{}".format(html.escape(caption), note, html_table(head, body, "rosetta-init-cost"))


def show_init_cost():
    from IPython.display import HTML, display
    display(HTML(init_cost_html()))
