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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frameworks", default="",
                        help="comma-separated names (default: every implemented framework, tuned rows included)")
    parser.add_argument("--profile", default="", help="full, quick, fidelity or smoke (default: full on a GPU, else quick)")
    parser.add_argument("--dataset", default="auto", help="auto, cifar10, fashion-mnist or synthetic (with "
                        "--model rnn: auto, imdb or synthetic)")
    parser.add_argument("--model", default="cnn", help="cnn, or rnn: part II's rows (the GRU)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the newest incomplete run of this profile and dataset")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per framework")
    parser.add_argument("--skip", action="append", default=[], metavar="NAME=REASON",
                        help="record NAME as skipped with REASON instead of running it (repeatable)")
    parser.add_argument("--label", default="", help="a name for the run, shown in the book")
    parser.add_argument("--init", default="glorot", choices=["glorot", "own"],
                        help="own: the frameworks whose own weight init differs, run with it")
    parser.add_argument("--init-cost", action="store_true",
                        help="a Glorot run and an own-init run of those frameworks, for the defaults chapter")
    parser.add_argument("--tuning", action="store_true",
                        help="each tuned row as it is and with each of its changes flipped (Make it fast)")
    parser.add_argument("--inference", action="store_true",
                        help="each framework's predict against ONNX Runtime on its exported file (Export and serve)")
    parser.add_argument("--breakdown", action="store_true",
                        help="where a training step's time goes, by PyTorch's profiler and JAX's parts timed alone (Results)")
    parser.add_argument("--scale-out", action="store_true",
                        help="each row with a data-parallel module as one process and as two (Scale out)")
    parser.add_argument("--book-tables", action="store_true",
                        help="with --reference: the defaults, parity and ONNX tables into a reference run (make reference-tables)")
    parser.add_argument("--only-if-stale", action="store_true",
                        help="with --init-cost: keep a pair made by this code (here or committed), never run one")
    parser.add_argument("--reference", action="store_true",
                        help="a reference run, into data/results/reference/ to be committed (make reference)")
    args = parser.parse_args(argv)
    kind = "reference" if args.reference else "runs"
    # Started from a shell that ignores SIGINT (a background job, nohup), Python leaves it ignored:
    # Ctrl-C (SIGINT) must still stop a run and mark it incomplete.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        common.check_choice("model", args.model, list(common.MODELS))
        named = args.frameworks
        if named and args.model != "cnn":  # FRAMEWORKS=pytorch,jax names part II's twins of those rows
            names = [n.strip() for n in named.split(",") if n.strip()]
            names = [n if n.startswith(args.model + "-") else "{}-{}".format(args.model, n) for n in names]
            named = ",".join(n for n in dict.fromkeys(names) if n in common.ROWS)
            if not named:
                sys.stderr.write("no {} row among {}: nothing to run\n".format(args.model, args.frameworks))
                return 0
        frameworks = (common.parse_frameworks(named) if named
                      else common.implemented_frameworks(tuned=True, model=args.model))
        model = common.model_of(frameworks)
        if model != "cnn" and (args.init_cost or args.tuning or args.inference or args.scale_out or args.init != "glorot"):
            raise common.UsageError("part II's rows have the benchmark's rows only: drop --model rnn, or the other option")
        if args.init == "own" or args.init_cost:
            frameworks = [f for f in frameworks if f in own_init.FRAMEWORKS]
            if not frameworks:
                sys.stderr.write("no framework here has an own weight init to measure\n")
                return 0
        if args.profile:
            common.profile(args.profile, model)
        common.check_choice("dataset", args.dataset, common.datasets_of(model))
        skip = dict(item.split("=", 1) for item in args.skip if "=" in item)
        if len(skip) != len(args.skip):
            raise common.UsageError("--skip takes NAME=REASON")
        if skip:
            common.parse_frameworks(",".join(skip))
        if args.book_tables:  # the pages read these tables where an environment is missing
            from pages import recurrent, weights
            (weights if model == "cnn" else recurrent).write_reference()
            return 0
        if args.init_cost:
            modes.init_cost(frameworks, args.profile or None, args.dataset, args.resume, args.timeout, kind,
                      args.only_if_stale)
            return 0
        if args.scale_out:
            chosen = [f for f in frameworks if f in common.PARALLEL] if args.frameworks else list(common.PARALLEL)
            if not chosen:
                raise common.UsageError("--scale-out runs the rows with a data-parallel module: {}".format(
                    ", ".join(common.PARALLEL)))
            scale_out.run(chosen, args.profile or None, args.dataset, kind, args.resume)
            return 0
        if args.breakdown:
            breakdown.run(kind)
            return 0
        if args.inference:
            onnx_check.inference([f for f in frameworks if f in common.FRAMEWORKS], kind)
            return 0
        if args.tuning:
            if not any(f in common.TUNED for f in frameworks):
                raise common.UsageError("--tuning measures the tuned rows: name some (FRAMEWORKS=pytorch-tuned,...)")
            modes.tuning_ablation(frameworks, args.profile or None, args.dataset, args.timeout, kind)
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
