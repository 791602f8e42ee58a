"""The "Make it fast" chapter's charts and tables: each tuned row beside its faithful twin from the
same run, and what each change alone costs or saves (make bench-tuning)."""
import html
import os

import altair as alt

import common
from lab import results, runs
from pages.base import (WIDTH, _fmt, _order, embed, flags_note, html_table, load_runs, reference_note, rows,
                        run_header, split, steady)


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
        subtitle=["Steady epoch (the fastest after the first) and first epoch (tracing, compiling).",
                  "Speed-up of the steady epoch, faithful / tuned:"]  # three a line: a title does not wrap
                 + [", ".join(ratios[i:i + 3]) for i in range(0, len(ratios), 3)]))


def _changes(tuning, on):
    return "; ".join("{} ({})".format(c["change"], c["why"]) for c in tuning if c["on"] == on) or "none"


def measured(tuned, run):
    """What each change that is on in a tuned row saved or cost alone, in the newest ablation made on
    a machine of the run's kind (runs.ablation): which change lost where the row is slower."""
    if not run.meta.get("machine"):
        return ""
    root = os.path.dirname(os.path.dirname(run.path))  # the results folder the run is in
    found = runs.ablation(tuned["framework"], root, run.meta["machine"])
    return "; ".join("{} {:.2f}x ({})".format(c["change"], *found[c["change"]])
                     for c in tuned["tuning"] or [] if c["on"] and c["change"] in found)


def speedup_cell(ratio, tuned):
    """The table's speed-up, with why a tuned row is no faster than its twin."""
    if not ratio:
        return "not measured" if tuned["status"] == "ok" else tuned["status"]
    if not any(c["on"] for c in tuned["tuning"]):
        return "{:.2f}x: no change is on here, so both ran the same code".format(ratio)
    return "{:.2f}x{}".format(ratio, "" if ratio >= 1.05 else ": no faster here")


def tuned_table(run):
    head = ["tuned row", "steady epoch s, faithful → tuned", "speed-up", "first epoch s, faithful → tuned",
            "accuracy, faithful → tuned", "precision"]
    pairs = tuned_pairs(run)
    shares = any(d["share_of_peak"] for pair in pairs for d in pair)
    head += ["share of peak, faithful → tuned"] * shares  # each over the peak of its own precision
    body = []
    for f, t in pairs:
        ratio = speedup(f, t)
        acc = "{} → {}".format(_fmt("accuracy", f["accuracy"]), _fmt("accuracy", t["accuracy"]))
        if f["accuracy"] is not None and t["accuracy"] is not None:
            acc += " ({:+.1f} points)".format(100 * (t["accuracy"] - f["accuracy"]))
        cells = [t["framework"], "{} → {}".format(_fmt("", f["steady_epoch"]), _fmt("", t["steady_epoch"])),
                 speedup_cell(ratio, t),
                 "{} → {}".format(_fmt("", f["first_epoch"]), _fmt("", t["first_epoch"])), acc, t["precision"] or "-"]
        cells += [" → ".join("{:.0%} of {}".format(d["share_of_peak"], d["compute"]) if d["share_of_peak"] else "-"
                             for d in (f, t))] * shares
        flags = "; ".join("{}: {}".format(d["framework"], d["flag"]) for d in (f, t) if d["flag"])
        notes = [("not measured", t["error"] or f["error"]), ("changes on here", _changes(t["tuning"], True)),
                 ("changes off here", _changes(t["tuning"], False)),
                 ("each change on here, alone, in the ablation of a machine of this kind", measured(t, run)),
                 ("compiled ahead of time, timed by the row around lower().compile()",
                  "{:.2f} s".format(t["compile_seconds"]) if t["compile_seconds"] else ""),
                 ("timing flagged", flags), ("measured by an older commit", t["stale"] or f["stale"])]
        body.append((cells, notes if t["status"] != "skipped" else notes[:1], []))
    return html_table(head, body, "rosetta-tuned")


def tuned_html(runs):
    parts = []
    for run in runs:
        for part in split(run):
            chart = tuned_chart(part)
            if chart is not None:
                parts += [reference_note(part), embed(chart),
                          flags_note([d for pair in tuned_pairs(part) for d in pair]), tuned_table(part)]
            elif any(pair[1]["status"] == "skipped" for pair in tuned_pairs(part)):
                parts += ["<h3>{}</h3>".format(html.escape(part.caption)), tuned_table(part)]
    return "\n".join(p for p in parts if p) or (
        '<p class="rosetta-empty">No run has a tuned row beside its faithful twin yet: '
        '<code>make bench</code> (or <code>make html</code>) runs both.</p>')


def show_tuned():
    from IPython.display import HTML, display
    display(HTML(tuned_html(load_runs())))


def ablation_runs(results_dir=None):
    """(path, reference?) of every ablation the page shows: the newest complete one made here, then
    each committed one, newest first (each made on its own machine, of the tuned rows it names)."""
    root = results_dir or common.RESULTS_DIR
    found = []
    for kind in ("runs", "reference"):
        paths = [p for p, m in results.local_runs(root, kind) if m.get("purpose") == "tuning" and m.get("status") == "complete"]
        found += [(p, kind == "reference") for p in (paths[:1] if kind == "runs" else paths)]
    return found


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
        pair = [dict(status=d["status"], error=d.get("error"), steady_epoch=steady(d), first_epoch=(
            d.get("epoch_seconds") or [None])[0]) for d in (without, with_)]
        out.append(dict(framework=r["framework"], change=change["change"], on=change["on"], why=change["why"],
                        without=pair[0], with_=pair[1], speedup=speedup(pair[0], pair[1])))
    return out


def ablation_html(results_dir=None):
    runs = ablation_runs(results_dir)
    if not runs:
        return ('<p class="rosetta-empty">No measurement of the changes one by one yet: <code>make bench-tuning</code> '
                'makes one (it is not part of <code>make html</code>).</p>')
    return "\n".join(ablation_table(*run_header(path, reference, "bench-tuning")) for path, reference in runs)


def ablation_table(run, header):
    head = ["tuned row", "change", "steady epoch s, without → with", "speed-up from the change",
            "first epoch s, without → with"]
    body = []
    for row in ablation_rows(run.path):
        w, o = row["with_"], row["without"]
        ratio = row["speedup"]
        cells = [row["framework"], row["change"],
                 "{} → {}".format(_fmt("", o["steady_epoch"]), _fmt("", w["steady_epoch"])),
                 "{:.2f}x".format(ratio) if ratio else "not measured",
                 "{} → {}".format(_fmt("", o["first_epoch"]), _fmt("", w["first_epoch"]))]
        notes = [("on in this run" if row["on"] else "off in this run", row["why"]),
                 ("not measured", "" if ratio else (w["error"] or o["error"] or "").splitlines()[0] if (
                     w["error"] or o["error"]) else "")]
        body.append((cells, notes, []))
    return header + html_table(head, body, "rosetta-ablation")


def show_ablation():
    from IPython.display import HTML, display
    display(HTML(ablation_html()))
