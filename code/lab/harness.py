"""Run one framework module through the seed's steps, time each phase, write one JSON result.

    python -m lab.harness FRAMEWORK --profile quick --dataset fashion-mnist --out result.json

The lab's runner (lab/runner.py) runs this in the framework's own environment, with code/ and the
row's model folder on PYTHONPATH (lab/envs.py). Progress goes to
stdout as lines `PROGRESS {json}`; the result goes to --out, written atomically, also when the
framework fails. Python 3.6 compatible.
"""
import argparse
import json
import os
import platform
import sys
import time
import traceback

import numpy as np

import common
import datasets
from lab import features, introspect, own_init, results


def progress(**fields):
    print("PROGRESS " + json.dumps(fields), flush=True)


def machine_cpu_seconds():
    """CPU seconds every process on this machine has used since boot (Linux's /proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = sum(fields[3:5])  # idle and iowait
    return (sum(fields[:8]) - idle) / float(os.sysconf("SC_CLK_TCK"))


def timed(phases, name, fn, *args):
    start = time.perf_counter()
    value = fn(*args)
    phases[name] = time.perf_counter() - start
    return value


def keras_torch_device():
    """Keras' torch backend takes "cuda" wherever torch lists a GPU, even one the build has no code
    for; there it gets the CPU, as the pytorch row does, and the reason (to go in the result)."""
    if os.environ.get("KERAS_BACKEND") != "torch" or "KERAS_TORCH_DEVICE" in os.environ:
        return None
    import torch
    gpu, why = common.torch_gpu_or_why_not()
    if gpu or not torch.cuda.is_available():
        return None  # a CPU build: Keras' own choice is already the CPU, and its note says why
    os.environ["KERAS_TORCH_DEVICE"] = "cpu"
    return why


def load_module(name, model):
    why_cpu = keras_torch_device()  # before keras is imported: it reads the device then
    return common.model_module(model, name), why_cpu


def device_profile(result, profile_name, cpu_profile, gpu_seen):
    """The profile for where the framework really runs: a framework that stays on the CPU while
    there is a GPU (its build cannot use it) trains `cpu_profile`, and its result says why."""
    if result["device"] != "cpu" or not cpu_profile or cpu_profile == profile_name:
        return profile_name
    why = result.get("device_note") or "{} {} does not use it".format(result["framework"], result["framework_version"])
    result["device_note"] = "{} is here, but {}: on the CPU with the {} profile instead of {}".format(
        gpu_seen or "a GPU", why, cpu_profile, profile_name)
    prof = common.profile(cpu_profile, common.ROWS[result["framework"]]["model"])
    result.update(profile=cpu_profile, epochs=prof["epochs"], n_train=prof["n_train"], n_test=prof["n_test"])
    return cpu_profile


def run(framework, profile_name, dataset, result, init="glorot", cpu_profile=None, gpu_seen=None):
    """The seed's steps; `result` is filled in as they go, so a failure keeps what was measured.
    init="own" takes the module's Glorot override out first (own_init.py); cpu_profile: see
    device_profile."""
    spec = common.ROWS[framework]
    for key, value in common.environment(framework).items():
        os.environ.setdefault(key, value)
    result["nvidia_tf32_override"] = os.environ.get("NVIDIA_TF32_OVERRIDE")
    phases = result["phase_seconds"]
    module, why_cpu = timed(phases, "import", load_module, spec["module"], spec["model"])
    if init == "own":
        own_init.apply(framework, module)
    info = module.runtime_info()
    result.update(info, framework_version=info.pop("version"))
    if hasattr(module, "ADAM"):  # part II's optimizer, not the CNN's momentum SGD
        result.update(lr=module.ADAM["lr"], momentum=None, adam=dict(module.ADAM))
    if why_cpu:
        result["device_note"] = why_cpu
    if common.MODELS[spec["model"]].get("task") == "features":  # part III: inference only
        return features.run(framework, profile_name, dataset, result, module, phases)
    tuning = sys.modules.get("tuning")  # a tuned row: which of its changes are on here, and why
    if tuning:
        result.update(twin=spec["twin"], tuning=tuning.report())
    prof = common.profile(device_profile(result, profile_name, cpu_profile, gpu_seen), spec["model"])
    x_train, x_test, y_train, y_test = timed(phases, "data", module.load_data, dataset, prof)
    model = timed(phases, "build", module.create_model)
    result["params"] = int(module.count_params(model))
    trainer = timed(phases, "init", module.init_model, model)
    # a model whose modules keep each framework's own initializers (part II's) has no Glorot rule to take out
    glorot = common.MODELS[spec["model"]]["init"] == "glorot"
    result["init"] = init if glorot else "own"
    if glorot:  # the rule conv3's initial weights follow (50 -> 100 channels, as introspect.py's probe)
        result["init_rule"] = introspect.classify_weights(module.get_weights(model)[2][0])
    cpu_start, machine_start = time.process_time(), machine_cpu_seconds()  # this process; every process
    for epoch in range(prof["epochs"]):
        start = time.perf_counter()
        loss = module.train_epoch(trainer, datasets.minibatches(x_train, y_train, epoch=epoch))
        result["epoch_seconds"].append(time.perf_counter() - start)
        result["losses"].append(float(loss))
        progress(epoch=epoch + 1, epochs=prof["epochs"], seconds=result["epoch_seconds"][-1], loss=float(loss))
    phases["train"] = sum(result["epoch_seconds"])
    if tuning:  # the compilation the framework itself timed, inside the first epoch
        result["compile_seconds"] = tuning.compile_seconds()
    # CPU seconds per second of training: how many cores the framework really kept busy.
    result["cpu_busy"] = (time.process_time() - cpu_start) / phases["train"]
    # The cores that other processes kept busy meanwhile: what slowed this row's epochs down.
    if machine_start is not None:
        others = (machine_cpu_seconds() - machine_start) / phases["train"] - result["cpu_busy"]
        result["others_busy"] = max(0.0, others)
    batches = datasets.minibatches(x_test, None, shuffle=False)
    y_pred = timed(phases, "predict", module.predict, trainer, batches)
    result["accuracy"] = datasets.evaluate(y_pred, y_test)
    result["n_predicted"] = int(len(np.asarray(y_pred).reshape(-1)))
    expected = common.n_params(spec["model"])
    if result["params"] != expected:
        raise AssertionError("{} has {:,} parameters, the seed's model has {:,}".format(
            framework, result["params"], expected))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("framework", choices=list(common.ROWS))
    parser.add_argument("--profile", default="smoke", choices=list(common.PROFILES))
    parser.add_argument("--dataset", default="synthetic",
                        choices=sorted({d for m in common.MODELS for d in common.datasets_of(m)} - {"auto"}))
    parser.add_argument("--out", help="the result file (required unless --probe)")
    parser.add_argument("--run", default="")
    parser.add_argument("--init", default="glorot", choices=["glorot", "own"])
    parser.add_argument("--cpu-profile", default=None, choices=list(common.PROFILES),
                        help="the profile if the framework runs on the CPU after all")
    parser.add_argument("--gpu-seen", default=None, help="the GPU the orchestrator found, for the result's note")
    parser.add_argument("--probe", action="store_true",
                        help="import the module and print which tuned changes are on here, as JSON; train nothing")
    args = parser.parse_args(argv)
    if args.framework in common.TUNED:  # what its changes measured here, for tuning.change to read
        from lab import runs
        os.environ["ROSETTA_MEASURED"] = json.dumps(runs.ablation(args.framework))
    if args.probe:  # what the orchestrator's plan needs before it runs a tuned row
        for key, value in common.environment(args.framework).items():
            os.environ.setdefault(key, value)
        load_module(common.ROWS[args.framework]["module"], common.ROWS[args.framework]["model"])
        tuning = sys.modules.get("tuning")
        print(json.dumps(dict(tuning=tuning.report() if tuning else None)))
        return 0
    if not args.out:
        parser.error("--out is required")
    prof = common.profile(args.profile, common.ROWS[args.framework]["model"])
    result = results.new_result(args.framework, args.profile, args.dataset, run=args.run,
                                epochs=prof["epochs"], n_train=prof["n_train"], n_test=prof["n_test"],
                                python=platform.python_version(), cpu=results.cpu_name())
    try:
        run(args.framework, args.profile, args.dataset, result, args.init, args.cpu_profile, args.gpu_seen)
        result["status"] = "ok"
    except BaseException as e:  # KeyboardInterrupt too: what was measured is kept
        result.update(status="failed", error="".join(traceback.format_exception_only(type(e), e)).strip(),
                      traceback=traceback.format_exc())
    result["train_seconds"] = sum(result["epoch_seconds"]) if result["epoch_seconds"] else None
    result["predict_seconds"] = result["phase_seconds"].get("predict")
    result["finished"] = results.now()
    results.write_json(args.out, result)
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
