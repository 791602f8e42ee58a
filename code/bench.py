"""The command line of the benchmark: every framework in its own environment, into one run.

    python code/bench.py --frameworks pytorch,jax --profile quick --dataset auto

It sits on top of the lab (code/lab/) and dispatches to its modes: the rows into one run (the
default; lab/modes.py), the own-init pair (--init-cost), the tuning ablation (--tuning), inference
(--inference, lab/onnx_check.py) and scale-out (--scale-out, lab/scale_out.py). Each framework runs
lab/harness.py in its own environment (lab/envs.py); one that fails, hangs or has no environment is
recorded as such and the others go on. Ctrl-C marks the run incomplete; `--resume` (what `make
html` passes) continues the newest incomplete run with the same profile and dataset, skipping
frameworks already done.
"""
import argparse
import signal
import sys

import common
import datasets
from lab import breakdown, modes, onnx_check, own_init, plan, scale_out


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frameworks", default="",
                   help="comma-separated names (default: every implemented framework, tuned rows included)")
    p.add_argument("--profile", default="", help="full, quick, fidelity or smoke (default: full on a GPU, else quick)")
    p.add_argument("--dataset", default="auto", help="auto, cifar10, fashion-mnist or synthetic (with "
                   "--model rnn: auto, imdb or synthetic)")
    p.add_argument("--model", default="cnn", help="cnn, or rnn: part II's rows (the GRU)")
    p.add_argument("--resume", action="store_true", help="continue the newest incomplete run of this profile and dataset")
    p.add_argument("--timeout", type=float, default=None, help="seconds per framework")
    p.add_argument("--skip", action="append", default=[], metavar="NAME=REASON",
                   help="record NAME as skipped with REASON instead of running it (repeatable)")
    p.add_argument("--label", default="", help="a name for the run, shown in the book")
    p.add_argument("--init", default="glorot", choices=["glorot", "own"],
                   help="own: the frameworks whose own weight init differs, run with it")
    p.add_argument("--reference", action="store_true",
                   help="a reference run, into data/results/reference/ to be committed (make reference)")
    modes_ = p.add_argument_group("modes", "at most one; without one, the rows are trained into one run")
    for flag, _, _, about in MODES:
        modes_.add_argument(flag, action="store_true", help=about)
    p.add_argument("--only-if-stale", action="store_true",
                   help="with --init-cost: keep a pair made by this code (here or committed), never run one")
    return p


def whole_plan(args, frameworks, kind):
    plan.whole(args.profile or None, args.dataset)


def book_tables(args, frameworks, kind):
    """The pages read these tables where an environment is missing, or where a machine of this kind
    made them with this code (a check's table is then not measured again)."""
    import importlib
    importlib.import_module("pages." + common.MODELS[args.model]["book_tables"]).write_reference()


def init_cost(args, frameworks, kind):
    modes.init_cost(frameworks, args.profile or None, args.dataset, args.resume, args.timeout, kind, args.only_if_stale)


def scale(args, frameworks, kind):
    chosen = [f for f in frameworks if f in common.PARALLEL] if args.frameworks else list(common.PARALLEL)
    if not chosen:
        raise common.UsageError("--scale-out runs the rows with a data-parallel module: {}".format(", ".join(common.PARALLEL)))
    scale_out.run(chosen, args.profile or None, args.dataset, kind, args.resume)


def inference(args, frameworks, kind):
    onnx_check.inference([f for f in frameworks if f in common.FRAMEWORKS], kind)


def tuning(args, frameworks, kind):
    if not any(f in common.TUNED for f in frameworks):
        raise common.UsageError("--tuning measures the tuned rows: name some (FRAMEWORKS=pytorch-tuned,...)")
    modes.tuning_ablation(frameworks, args.profile or None, args.dataset, args.timeout, kind)


# The modes besides training the rows: (flag, what the model must have (common.MODELS' "has"), what
# runs, help). --plan and --book-tables work for every model.
MODES = [
    ("--plan", None, whole_plan, "what make html will run, every part's rows and the book's check tables, and for how long"),
    ("--book-tables", None, book_tables,
     "with --reference: the model's check tables (defaults, parity, ONNX, scale-out) into a reference run"),
    ("--init-cost", "init-cost", init_cost, "a Glorot run and an own-init run of those frameworks, for the defaults chapter"),
    ("--scale-out", "scale-out", scale, "each row with a data-parallel module as one process and as two (Scale out)"),
    ("--breakdown", "breakdown", lambda args, frameworks, kind: breakdown.run(kind),
     "where a training step's time goes, by PyTorch's profiler and JAX's parts timed alone (Results)"),
    ("--inference", "inference", inference,
     "each framework's predict against ONNX Runtime on its exported file (Export and serve)"),
    ("--tuning", "tuning", tuning, "each tuned row as it is and with each of its changes flipped (Make it fast)"),
]


def rows_named(args):
    """The rows --frameworks names, for --model's model: FRAMEWORKS=pytorch,jax names another model's
    twins of those rows (its prefix, rnn-), so one list serves every part."""
    prefix = common.MODELS[args.model]["prefix"]
    if not args.frameworks:
        return common.implemented_frameworks(tuned=True, model=args.model)
    names = [n.strip() for n in args.frameworks.split(",") if n.strip()]
    names = [n if n.startswith(prefix) else prefix + n for n in names]
    named = ",".join(n for n in dict.fromkeys(names) if n in common.ROWS) if prefix else ",".join(names)
    return common.parse_frameworks(named) if named else []


def asked(args, flag):
    """Whether the command line asked for the mode `flag` (--init-cost: args.init_cost)."""
    return getattr(args, flag[2:].replace("-", "_"))


def check(args, model):
    """Usage errors before anything runs: a mode (or --init own) the model does not have, a profile,
    dataset or --skip that is not one."""
    has = common.MODELS[model]["has"]
    missing = [flag for flag, needs, _, _ in MODES if asked(args, flag) and needs and needs not in has]
    if missing or (args.init != "glorot" and "own-init" not in has):
        raise common.UsageError("--model {} ({}) has the benchmark's rows only: drop --model {}, or {}".format(
            model, common.MODELS[model]["label"], model, " ".join(missing) or "--init own"))
    if args.profile:
        common.profile(args.profile, model)
    common.check_choice("dataset", args.dataset, common.datasets_of(model))
    skip = dict(item.split("=", 1) for item in args.skip if "=" in item)
    if len(skip) != len(args.skip):
        raise common.UsageError("--skip takes NAME=REASON")
    if skip:
        common.parse_frameworks(",".join(skip))
    return skip


def main(argv=None):
    args = parser().parse_args(argv)
    kind = "reference" if args.reference else "runs"
    # Started from a shell that ignores SIGINT (a background job, nohup), Python leaves it ignored:
    # Ctrl-C (SIGINT) must still stop a run and mark it incomplete.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        common.check_choice("model", args.model, list(common.MODELS))
        frameworks = rows_named(args)
        if not frameworks:
            sys.stderr.write("no {} row among {}: nothing to run\n".format(args.model, args.frameworks))
            return 0
        model = common.model_of(frameworks)
        skip = check(args, model)
        if args.init == "own" or args.init_cost:
            frameworks = [f for f in frameworks if f in own_init.FRAMEWORKS]
            if not frameworks:
                sys.stderr.write("no framework here has an own weight init to measure\n")
                return 0
        mode = next((run for flag, _, run, _ in MODES if asked(args, flag)), None)
        if mode:
            mode(args, frameworks, kind)
            return 0
        if not args.frameworks and kind == "runs":
            frameworks = plan.stale_first(frameworks)
        modes.bench(frameworks + [n for n in skip if n not in frameworks], args.profile or None, args.dataset,
                    args.resume, args.timeout, skip, args.label, args.init, kind=kind,
                    skip_unchanged=kind == "runs" and args.init == "glorot")
    except (common.UsageError, datasets.DatasetError) as e:
        sys.stderr.write("error: {}\n".format(e))
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted: the run is marked incomplete; `make html` (or bench.py "
                         "--resume) continues it\n")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
