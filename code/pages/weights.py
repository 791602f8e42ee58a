"""The weights chapter's parity table: every row against the NumPy reference, measured here (or
taken from the parity tests' cache), or, on a machine without every environment, the committed
reference's measurement, labelled."""
import html
import os

import common
from lab import envs, parity, results, runs
from pages.base import html_table
from pages.defaults import committed_table, reused


def parity_table(table, measured=None, machine=None, source=""):
    """One row per framework: its largest differences from the reference, and whether they pass."""
    head = ["row", "device", "logits", "losses", "weights after {} steps".format(parity.STEPS), "update, relative",
            "round trip", "weights from every framework", "within tolerance"]
    body = []
    for name, row in ordered(table):
        if "error" in row:
            body.append(([name] + ["-"] * (len(head) - 2) + ["not measured"], [("why", str(row["error"]))], []))
            continue
        moved = max(list(row.get("imported", {}).values()) + list(row.get("as_source", {}).values()) or [float("nan")])
        cells = [name, row["device"], "{:.1e}".format(row["logits"]), "{:.1e}".format(row["losses"]),
                 "{:.1e}".format(row["weights"]), "{:.2%}".format(row["update"]),
                 "exact" if row["round_trip_exact"] else "NOT exact",
                 "{:.1e} ({} sources)".format(moved, len(row.get("imported", {}))),
                 "yes" if parity.passes(row) else "NO"]
        body.append((cells, [], []))
    caption = ("Measured {} on {}{} (the device column says where each framework ran): the synthetic "
               "dataset's first {} shuffled batches of {} images, float32 in the frameworks, float64 in "
               "the reference.").format((measured or results.now())[:10], machine or results.cpu_name(), source,
                                        parity.STEPS, common.BATCH_SIZE)
    return "<p>{}</p>{}{}".format(html.escape(caption), html_table(head, body, "rosetta-parity"), own_paths(table))


def ordered(table):
    """The table's rows, each tuned row after its twin (a cached table is by name)."""
    order = common.implemented_frameworks(tuned=True)
    return sorted(table.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order))


def own_paths(table):
    """The second table: what each row's own code does where the first one's checks go around it."""
    head = ["row", "its own predict", "dropout rates", "bf16 forced on"]
    body = [([name, predicted(row["predicted"]), dropout(row), bf16(row.get("bf16"))], [], [])
            for name, row in ordered(table) if "error" not in row]
    return html_table(head, body, "rosetta-parity rosetta-own-paths")


def predicted(found):
    """[wrong, compared] as a cell: the row's own predict against the reference's classes."""
    wrong, compared = found
    return "{} of {} classes differ".format(wrong, compared) if wrong else "the same {} classes".format(compared)


def dropout(row):
    rates = ", ".join("{:g}".format(r) if r is not None else "none" for r in row["dropout_rates"]) or "none"
    return rates if row["dropout_as_declared"] else rates + " (NOT the model's)"


def bf16(found):
    if not found:
        return "-"  # not a tuned row
    if "error" in found:
        return "failed: " + found["error"]
    return "losses {:.1e}, {}".format(found["losses"], predicted(found["predicted"]))


def measured_table(results_dir=None):
    """(parity.table's dict, where it comes from): measured here where every row's environment
    exists (or cached by the parity tests); else the committed reference's, if there is one."""
    names = common.implemented_frameworks(tuned=True)
    missing = [n for n in names if envs.python_for(n)[0] is None]
    committed, source = committed_table("parity.json", missing, results_dir)
    if committed:
        return committed, source
    measured = parity.table(names)
    return measured, reused(measured)


def show_parity():
    from IPython.display import HTML, display
    measured, source = measured_table()
    display(HTML(parity_table(measured["table"], measured["measured"], measured["machine"], source)))


def write_reference(results_dir=None):
    """The defaults, parity, ONNX and scale-out equivalence tables as measured here, into a committed
    reference run (make reference-tables): what a machine without every environment shows in their
    place, and what a machine of this kind shows instead of measuring them again."""
    from lab import onnx_check, scale_out
    from pages.defaults import TABLES, read_defaults
    missing = [n for n in common.implemented_frameworks(tuned=True) if envs.python_for(n)[0] is None]
    if missing:
        raise common.UsageError("no environment for {}: `make envs` first (a reference is read from every "
                                "framework)".format(", ".join(missing)))
    path, meta = runs.start_run([], "parity", "synthetic", envs.gpu_name() or results.cpu_name(), False,
                                purpose=TABLES, kind="reference")
    runs.open_run(path, meta)
    found = read_defaults()[0]
    results.write_json(os.path.join(path, "defaults.json"), found)
    results.write_json(os.path.join(path, "parity.json"), parity.table(common.implemented_frameworks(tuned=True), fresh=True))
    results.write_json(os.path.join(path, "onnx.json"), onnx_check.table(common.implemented_frameworks(), fresh=True))
    results.write_json(os.path.join(path, "scale-out.json"), scale_out.table(list(common.PARALLEL), fresh=True))
    runs.finish_run(path, meta)
    return path
