"""The scale-out chapter's tables: two processes against the NumPy reference (the equivalence check),
what the second process costs on this machine (make scale-out), and the seed's 1 and 4 V100s."""
import functools
import html
import os

import common
from lab import envs, parity, scale_out
from pages.base import apart, html_table, load_seed, steady
from pages.defaults import reused, taken_from


@functools.lru_cache()  # the machine's paragraph and the table read it once per build
def measured_equivalence(results_dir=None):
    """({"measured", "machine", "table"}, where it comes from): measured here, or cached by the tests,
    where every row's environment exists; else the figures of the newest scale-out run (this
    machine's, else the committed reference's), labelled; ({}, why) where there is neither."""
    names = list(common.PARALLEL)
    missing = [n for n in names if envs.python_for(n)[0] is None]
    if not missing:
        measured = scale_out.table(names)
        return measured, reused(measured)
    run, _ = apart("scale-out", "scale-out", "", results_dir)
    if run is None:
        return {}, "no environment here for {}, and no scale-out run".format(", ".join(missing))
    table = {r["framework"]: r["equivalence"] for r in run.results if r.get("equivalence")}
    return (dict(measured=run.meta.get("started"), machine=run.meta.get("device"), table=table),
            taken_from("the scale-out run", run.path, run.meta, missing))


def machine_html(results_dir=None):
    """Where this chapter's rows ran, read when the book is built: this machine's GPU and cores, and
    the devices of the runs the chapter shows (the equivalence check and the scale-out run)."""
    gpu, cores = envs.gpu_name(), os.cpu_count()
    run, _ = apart("scale-out", "scale-out", "", results_dir)
    rows = list(measured_equivalence(results_dir)[0].get("table", {}).values()) + (run.results if run else [])
    devices = sorted({d for r in rows for d in (r.get("devices") or []) if d and d != "cpu"})
    text = ("This machine has {} and {} cores. Every row runs as <strong>two processes on one machine</strong>, each "
            "asked for a share of its cores. They exchange their gradients over the loopback (TCP, on ports chosen "
            "when the launch starts), except the MPI rows (Chainer, CNTK, Keras 2), which Open MPI joins through "
            "shared memory. The same module runs on several GPUs and machines: only the launch line changes, and on "
            "a GPU the engine's transport (gloo becomes NCCL, where the module says so). ").format(
        "a GPU, the {}".format(html.escape(gpu)) if gpu else "no GPU", cores)
    text += ("The runs this chapter shows used {}; none had a second machine, so the lines for several machines "
             "below are the engines' documented routes, not tried here.".format(html.escape(", ".join(devices))) if devices else
             "None of the runs this chapter shows had a GPU or a second machine, so the GPU lines below are the "
             "engines' documented routes, not tried here.")
    return "<p>{}</p>".format(text)


def show_machine():
    from IPython.display import HTML, display
    display(HTML(machine_html()))


def equivalence_table(measured, source=""):
    head = ["row", "engine", "losses", "weights", "update", "ranks", "passes"]
    body = []
    for name in common.PARALLEL:
        row = measured.get("table", {}).get(name)
        if row is None:
            continue
        if "error" in row:
            body.append(([name, "-", "-", "-", "-", "-", "not measured"],
                         [("why", row["error"])], []))
            continue
        body.append(([name, row["engine"], "{:.1e}".format(row["losses"]),
                      "{:.1e}".format(row["weights"]), "{:.2%}".format(row["update"]),
                      "equal" if row["ranks_identical"] else "DIFFERENT",
                      "yes" if scale_out.passes(row) else "NO"], [], []))
    caption = ("Measured {} on {}{}: {} processes with a share of {} images each, against the NumPy "
               "reference with the whole batch of {}; the synthetic dataset's first {} shuffled batches, "
               "the shared weights, dropout off. Losses and weights: the largest difference from the "
               "reference's over the {} steps; update: the largest error of any array's change, relative "
               "to the reference's change; ranks: the processes' weights, bit for bit.").format(
        (measured.get("measured") or "")[:10], measured.get("machine"), source, scale_out.WORLD,
        common.BATCH_SIZE // scale_out.WORLD, common.BATCH_SIZE, parity.STEPS, parity.STEPS)
    return "<p>{}</p>{}".format(html.escape(caption), html_table(head, body, "rosetta-parity"))


def show_equivalence():
    from IPython.display import HTML, display
    measured, source = measured_equivalence()
    if not measured:
        display(HTML('<p class="rosetta-empty">Not measured: {}.</p>'.format(html.escape(source))))
        return
    display(HTML(equivalence_table(measured, source)))


def _s(seconds):
    return "{:.2f}".format(seconds) if seconds else "-"


def cost_table(run):
    """Per row: the steady epoch as one process with every core and as two with a share each."""
    head = ["row", "1 process, steady epoch s", "2 processes, steady epoch s", "speed-up of 2",
            "cores busy, 1 process / each of 2", "accuracy, 1 / 2"]
    body = []
    order = list(common.PARALLEL)
    for r in sorted(run.results, key=lambda r: order.index(r["framework"]) if r["framework"] in order else 99):
        one, two = r.get("processes_1") or {}, r.get("processes_{}".format(scale_out.WORLD)) or {}
        ratio = steady(one) / steady(two) if steady(one) and steady(two) else None  # as Make it fast's: above 1, faster
        busy = " / ".join("{:.1f}".format(x["cpu_busy"]) for x in [one] + two.get("ranks", []) if x.get("cpu_busy"))
        accuracy = " / ".join("{:.1%}".format(x["accuracy"]) if x.get("accuracy") is not None else "-" for x in (one, two))
        body.append(([r["framework"], _s(steady(one)), _s(steady(two)), "{:.2f}x".format(ratio) if ratio else "-",
                      busy or "-", accuracy], [("failed", r.get("error"))], []))
    return html_table(head, body, "rosetta-scale")


def accuracy_html(run):
    """How far one process's accuracy is from two's in the run, as a sentence."""
    gaps = {}
    for r in run.results:
        one, two = (r.get("processes_{}".format(w)) or {} for w in (1, scale_out.WORLD))
        if one.get("accuracy") is not None and two.get("accuracy") is not None:
            gaps[r["framework"]] = abs(one["accuracy"] - two["accuracy"])
    if not gaps:
        return ""
    widest, n_test = max(gaps, key=gaps.get), common.profile(run.meta["profile"])["n_test"]
    return ("<p>In this run the test accuracies of one and two processes differ by {:.1f} points on average, and by "
            "{:.1f} at most ({}); one of the {:,} test images is {:.2f} points.</p>").format(
        100 * sum(gaps.values()) / len(gaps), 100 * gaps[widest], html.escape(widest), n_test, 100 / n_test)


def cost_html(results_dir=None):
    run, header = apart("scale-out", "scale-out", "No scale-out run yet", results_dir)
    if run is None:
        return header
    return header + cost_table(run) + accuracy_html(run)


def show_cost():
    from IPython.display import HTML, display
    display(HTML(cost_html()))


def seed_html():
    seed = load_seed()["multi_gpu"]
    head = ["framework", "data", "1 V100, min", "4 V100s, min", "speed-up"]
    body = [([r["name"], r["data"], r["minutes_1_gpu"], r["minutes_4_gpus"],
              "{:.1f}x".format(r["minutes_1_gpu"] / r["minutes_4_gpus"])], [], []) for r in seed["rows"]]
    caption = "{}. Source: {}. {}".format(seed["conditions"], seed["source"], seed["note"])
    return "<p>{}</p>{}".format(html.escape(caption), html_table(head, body, "rosetta-seed-scale"))


def show_seed():
    from IPython.display import HTML, display
    display(HTML(seed_html()))
