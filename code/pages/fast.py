"""The "Make it fast" chapter's charts and tables: each tuned row beside its faithful twin from the
same run, and what each change alone costs or saves (make bench-tuning)."""
import html
import os
import re

import altair as alt

import common
import tuning
from lab import digest, results, runs
from pages.base import (WIDTH, _fmt, _order, describe_machine, embed, flags_note, html_table, load_runs,
                        reference_note, rows, run_header, split, steady, trained_line)


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
        subtitle=trained_line(run) + ["Steady epoch (the fastest after the first) and first epoch (tracing, compiling).",
                  "Speed-up of the steady epoch, faithful / tuned:"]  # three a line: a title does not wrap
                 + [", ".join(ratios[i:i + 3]) for i in range(0, len(ratios), 3)]))


OLDER = "measured by older code of the row: make bench-tuning on such a machine measures it again"
CITED = re.compile(r"\(ablation ([\w-]+)\)")  # how tuning.change cites the ablation that keeps a change off


def ablation(row, root, machine):
    """runs.ablations (today's code of the row first, else older) with kept: the change was on in the
    ablation's row, or kept off by an ablation."""
    return {change: dict(found, kept=found["on"] or bool(CITED.search(found["why"])))
            for change, found in runs.ablations(row, root, machine).items()}


def cited_older(row, why, root):
    """Whether the ablation a change's reason cites ("... (ablation RUN): off", tuning.change) was
    measured by older code of the row than today's."""
    cited = CITED.search(why or "")
    for run, path, _ in runs.tuning_runs(root) if cited else []:
        if run == cited.group(1):
            base = next((r for r in results.load_run(path)[1] if r["framework"] == row and not r.get("flipped")), None)
            return bool(base) and digest.older_code(base, "tuning")
    return False


def _changes(tuned, on, root):
    return "; ".join("{} ({}{})".format(c["change"], c["why"], "; that ablation was " + OLDER if not on and cited_older(
        tuned["framework"], c["why"], root) else "") for c in tuned["tuning"] if c["on"] == on) or "none"


def measured(tuned, run):
    """What each change that is on in a tuned row saved or cost alone, in the ablation made on a
    machine of the run's kind by the row's code (ablation): which change lost where the row is slower."""
    if not run.meta.get("machine"):
        return ""
    found = ablation(tuned["framework"], results_root(run), run.meta["machine"])
    shown = [(c["change"], found[c["change"]]) for c in tuned["tuning"] or [] if c["on"] and c["change"] in found]
    older = sorted({got["run"] for _, got in shown if got["older"]})
    return "; ".join(["{} {:.2f}x ({})".format(change, got["speedup"], got["run"]) for change, got in shown] + [
        "ablation {} {}".format(" and ".join(older), OLDER)] * bool(older))


def results_root(run):
    return os.path.dirname(os.path.dirname(run.path))  # the results folder the run is in


def kept_off(results_dir=None):
    """[(machine, row, change, found)] for each change that the ablations of a kind of machine measured
    a loss (tuning.LOSS) where the row would have it on: the row keeps it off there, unless found["older"]
    (older code of the row measured it, and the harness applies only today's code's ablations)."""
    root = results_dir or common.RESULTS_DIR
    kinds = {}
    for _, _, meta in runs.tuning_runs(root):
        made_on = meta.get("machine") or {}
        kinds.setdefault((tuple(made_on.get("features") or ()), made_on.get("gpu")), meta)
    out = []
    for meta in kinds.values():
        for row in [n for n in common.TUNED if n in common.ROWS]:
            for change, found in sorted(ablation(row, root, meta.get("machine") or {}).items()):
                if found["kept"] and found["speedup"] < tuning.LOSS:
                    out.append((describe_machine(meta), row, change, found))
    return out


def kept_off_html(results_dir=None):
    found = kept_off(results_dir)
    if not found:
        return '<p class="rosetta-empty">No ablation here or committed measured a loss for a change.</p>'
    items = "".join("<li>{}: {} in <code>{}</code>, {:.2f}x (ablation {}{})</li>".format(
        html.escape(machine), html.escape(change), html.escape(row), got["speedup"], html.escape(got["run"]),
        ", " + html.escape(OLDER) + ", so it is not kept off" if got["older"] else ": kept off")
        for machine, row, change, got in found)
    return '<ul class="rosetta-kept-off">{}</ul>'.format(items)


def show_kept_off():
    from IPython.display import HTML, display
    display(HTML(kept_off_html()))


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
        notes = [("not measured", t["error"] or f["error"]), ("changes on here", _changes(t, True, results_root(run))),
                 ("changes off here", _changes(t, False, results_root(run))),
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
