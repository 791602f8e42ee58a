"""ONNX: each framework's model exported by its own exporter, and run by one ONNX Runtime.

    python -m lab.onnx_check FRAMEWORK OUT_DIR [--source FILE.npz]   (in the framework's environment)
    python -m lab.onnx_check FRAMEWORK OUT_DIR --time

In its environment, a framework builds its model (the row's: part I's CNN or part II's GRU), puts in
the shared weights (the model's random_weights, through set_weights), computes its logits for one
batch of the synthetic test images or reviews, in its own layout, and exports the model with its module's export_onnx to OUT_DIR/FRAMEWORK.onnx (the seconds
that took, or the exporter's error). Without --source it then trains a few steps and exports the
trained model too (FRAMEWORK.trained.onnx, its weights in FRAMEWORK.trained.npz); with --source it
puts those trained weights in and computes its logits for them. With --time it measures its own
`predict` instead: the latency of one image and the throughput of batches of 64.

In the main environment, `table` checks every framework's file with onnx.checker and ONNX Runtime
(the framework's own logits within 1e-4 and its classes, at batch 64 and at batch 1), and the one
trained model against every framework given its weights; `inference` (make bench-inference) times
each framework's predict against ONNX Runtime on its file. The framework side is Python 3.6
compatible.
"""
import functools
import json
import os
import sys
import time
from itertools import islice

import numpy as np

import common
import datasets
from lab import parity  # logits(): each framework's forward pass in inference mode
from lab.parity import PROFILE, STEPS, WEIGHT_SEED, max_diff  # the parity tests' weights and batches

TOLERANCE = 1e-4  # logits, absolute: float32 in the framework and in ONNX Runtime
WARMUP, REPEATS, BATCHES, ROUNDS = 5, 50, 10, 5  # warm-up calls, batch-1 calls, batches of 64 a burst, rounds
SOURCE = "pytorch"  # the framework that trains the model every other one is compared with
# Measured here at the pinned versions: rows whose export ONNX Runtime cannot run, and why. The tests
# expect them to fail, so a release that fixes one shows.
CANNOT = {"keras-jax": "jax2onnx writes Keras' max pooling on JAX (lax.reduce_window) as a MaxPool over four "
                       "dimensions, batch and channels included, which ONNX Runtime does not run",
          "rnn-cntk": "CNTK's exporter writes the sequence axis as the file's first dimension and a batch of one: "
                      "its file reads one review at a time, at its own length, not a batch of padded reviews",
          "rnn-keras-cntk": "CNTK 2.7's exporter has no NotEqual, which Keras 2 writes for the mask of "
                            "Embedding(mask_zero=True)",
          "rnn-caffe2": "caffe2.python.onnx's frontend has no translation of RecurrentNetwork, the operator "
                        "gru_cell.GRU builds the steps with"}


class OnnxFileError(ValueError):
    """A file ONNX Runtime cannot run as this book's CNN: the message names it and says what to do."""


def first_line(error):
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return "{}: {}".format(type(error).__name__, lines[0] if lines else "(no message)")


# --- In the framework's environment -----------------------------------------------------------

def export(module, model, path):
    """{"seconds": ...} for the module's export_onnx, or {"error": the exporter's first line}."""
    start = time.perf_counter()
    try:
        module.export_onnx(model, path)
    except Exception as e:  # the exporter's own words: the chapter shows them where a framework cannot export
        return dict(error=first_line(e))
    return dict(seconds=time.perf_counter() - start)


def timed(predict, x):
    """`predict(batches)` (a framework's own, or ONNX Runtime's), after warm-up calls: one image's
    median seconds over REPEATS calls, and images per second in batches of 64, the median of ROUNDS
    bursts; each with its range (the lowest and highest of ROUNDS rounds), to show the noise."""
    for _ in range(WARMUP):
        predict([x[:1]])
        predict([x])
    latency, bursts = [], []
    for _ in range(REPEATS):
        start = time.perf_counter()
        predict([x[:1]])
        latency.append(time.perf_counter() - start)
    for _ in range(ROUNDS):
        start = time.perf_counter()
        predict([x] * BATCHES)
        bursts.append(BATCHES * len(x) / (time.perf_counter() - start))
    rounds = [float(np.median(part)) for part in np.array_split(latency, ROUNDS)]
    return dict(latency=float(np.median(latency)), latency_range=[min(rounds), max(rounds)],
                throughput=float(np.median(bursts)), throughput_range=[min(bursts), max(bursts)])


def framework_run(framework, out_dir, source=None, timing=False):
    spec = common.ROWS[framework]
    for key, value in spec.get("vars", {}).items():
        os.environ[key] = value
    common.model_module(spec["model"], "data").prepare("synthetic")
    neutral = parity.oracle(spec["model"])[0]
    module = common.model_module(spec["model"], spec["module"])
    x_train, x_test, y_train, _ = module.load_data("synthetic", PROFILE)
    x = np.ascontiguousarray(x_test[:common.BATCH_SIZE])
    model = module.create_model()
    trainer = module.init_model(model)
    module.set_weights(model, neutral.random_weights(WEIGHT_SEED))
    tab = common.tab(framework)
    arrays = dict(x=x, logits=parity.logits(tab, module, trainer, x))
    summary = dict(info=module.runtime_info(), export=export(module, model, os.path.join(out_dir, framework + ".onnx")))
    if timing:
        summary["native"] = timed(lambda batches: module.predict(trainer, batches), x)
        if tab == "keras":  # a server's route: predict() builds its data pipeline and callbacks on every call
            summary["served"] = timed(lambda batches: [trainer.predict_on_batch(b).argmax(1) for b in batches], x)
    elif source:
        module.set_weights(model, neutral.load(source))
        arrays["trained_logits"] = parity.logits(tab, module, trainer, x)
    else:  # the source: a few real training steps, then the trained model exported
        module.train_epoch(trainer, islice(datasets.minibatches(x_train, y_train), STEPS))
        neutral.save(os.path.join(out_dir, framework + ".trained.npz"), module.get_weights(model))
        arrays["trained_logits"] = parity.logits(tab, module, trainer, x)
        summary["export_trained"] = export(module, model, os.path.join(out_dir, framework + ".trained.onnx"))
    np.savez(os.path.join(out_dir, framework + ".npz"), **arrays)
    return summary


# --- In the main environment: ONNX Runtime ------------------------------------------------------

def load(path, image_shape, model="cnn"):
    """(ONNX Runtime session, the model's proto, its input's dimensions) for a file that should be
    this book's `model` taking inputs of `image_shape` (images, or part II's padded reviews); else an
    OnnxFileError, one line that names the file and says what to do."""
    import onnx
    import onnxruntime as ort
    again = "export it again with its framework's export_onnx (code/{0}/{0}_*.py)".format(model)
    try:
        proto = onnx.load(path)
    except Exception as e:  # protobuf's DecodeError for a truncated file, an OSError
        raise OnnxFileError("{}: not a readable ONNX file ({}); {}".format(path, first_line(e), again))
    newest = runtime_opset()
    if (opset(proto) or 0) > newest:
        raise OnnxFileError("{}: uses opset {}, newer than ONNX Runtime {} runs (up to {}); export it with an opset "
                            "this runtime supports".format(path, opset(proto), ort.__version__, newest))
    try:
        onnx.checker.check_model(proto)
    except Exception as e:
        raise OnnxFileError("{}: onnx.checker rejects it ({}); {}".format(path, first_line(e), again))
    weights = {t.name for t in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in weights]
    dims = [d.dim_value or d.dim_param or None for d in inputs[0].type.tensor_type.shape.dim] if len(inputs) == 1 else []
    if len(inputs) != 1 or tuple(dims[1:]) != tuple(image_shape):
        raise OnnxFileError("{}: takes {}, not a batch of {} of shape {}: a file from another model? {}".format(
            path, [d or "?" for d in dims] if len(inputs) == 1 else "{} inputs".format(len(inputs)),
            common.MODELS[model]["inputs"], tuple(image_shape), again))
    try:
        options = ort.SessionOptions()
        options.log_severity_level = 4  # its warnings (weights among the inputs) and errors: this module words them
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise OnnxFileError("{}: ONNX Runtime {} cannot run it (opset {}: {}); export it with an opset this runtime "
                            "supports".format(path, ort.__version__, opset(proto), first_line(e)))
    return session, proto, dims


def opset(proto):
    return max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=None)


@functools.lru_cache()
def runtime_opset():
    """The newest opset of the ONNX domain this ONNX Runtime runs, found by loading a one-node model at
    each opset from a few past the installed onnx's newest downwards (the runtime can know more or
    fewer than onnx does)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper
    one = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in "xy"]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", one[:1], one[1:])
    for version in range(onnx.defs.onnx_opset_version() + 4, 6, -1):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", version)], ir_version=onnx.IR_VERSION)
        try:
            ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
            return version
        except Exception:  # ValidateOpsetForDomain: newer than this runtime
            continue
    return None


INTEGERS = {"tensor(int32)": np.int32, "tensor(int64)": np.int64}  # part II's ids, as each exporter types them


def run(session, x):
    head = session.get_inputs()[0]
    try:
        return session.run(None, {head.name: x.astype(INTEGERS.get(head.type, x.dtype), copy=False)})[0]
    except Exception as e:  # a batch size the file fixed otherwise, most often
        raise OnnxFileError("ONNX Runtime cannot run it on a batch of {}: {}".format(len(x), first_line(e)))


def check_file(path, x, want, model="cnn"):
    """What ONNX Runtime computes with one exported file, against the framework's own logits `want`."""
    session, proto, dims = load(path, x.shape[1:], model)
    batch, one = run(session, x), run(session, x[:1])
    return dict(logits=max_diff(batch, want), batch_1=max_diff(one, want[:1]),
                input=session.get_inputs()[0].name, output=session.get_outputs()[0].name,
                same_classes=bool(np.array_equal(batch.argmax(1), want.argmax(1))),
                dynamic_batch=not isinstance(dims[0], int), opset=opset(proto),
                ops=sorted({n.op_type for n in proto.graph.node}), bytes=os.path.getsize(path),
                producer="{} {}".format(proto.producer_name, proto.producer_version).strip())


def said(error, path, out_dir):
    """An OnnxFileError's line, naming the file (load's do already, run's do not) but not the
    temporary folder it was in."""
    text = str(error) if str(error).startswith(path) else "{}: {}".format(path, error)
    return text.replace(out_dir + os.sep, "")


def run_all(frameworks, out_dir, timeout=900):
    """Every framework in its own environment, the source first: {framework: summary or error}."""
    from lab import envs
    common.model_module(common.model_of(frameworks), "data").prepare("synthetic")
    source = SOURCE if SOURCE in frameworks else frameworks[0]
    found = {source: envs.run_script(source, "onnx_check", [source, out_dir], timeout)}
    trained = os.path.join(out_dir, source + ".trained.npz")
    for name in frameworks:
        if name != source:
            found[name] = (envs.run_script(name, "onnx_check", [name, out_dir, "--source", trained], timeout)
                           if os.path.exists(trained) else "the source, {}, did not train: {}".format(source, found[source]))
    return source, found


def compare(frameworks, out_dir, source, found):
    """{framework: its export and what ONNX Runtime computed with it} for the runs of run_all."""
    table = {}
    model = common.model_of(frameworks) if all(f in common.ROWS for f in frameworks) else "cnn"
    trained = None  # ONNX Runtime's logits from the source's trained file
    path = os.path.join(out_dir, source + ".trained.onnx")
    if isinstance(found.get(source), dict) and os.path.exists(path):
        with np.load(os.path.join(out_dir, source + ".npz")) as f:
            try:
                trained = run(load(path, f["x"].shape[1:], model)[0], f["x"])
            except OnnxFileError as e:
                trained = said(e, path, out_dir)
    for name in frameworks:
        got = found.get(name, "not run")
        if not isinstance(got, dict):
            table[name] = dict(error=got)
            continue
        row = dict(export=got["export"], device=got["info"].get("device"), version=got["info"].get("version"),
                   layout=got["info"].get("layout"))
        with np.load(os.path.join(out_dir, name + ".npz")) as f:
            arrays = dict(f)
        if "seconds" in got["export"]:
            onnx_file = os.path.join(out_dir, name + ".onnx")
            try:
                row.update(check_file(onnx_file, arrays["x"], arrays["logits"], model))
            except OnnxFileError as e:
                row["error"] = said(e, onnx_file, out_dir)
        if isinstance(trained, np.ndarray):  # the source's trained model, in ONNX Runtime, against this framework
            row["from_source"] = max_diff(arrays["trained_logits"], trained)
            row["from_source_classes"] = bool(np.array_equal(arrays["trained_logits"].argmax(1), trained.argmax(1)))
        else:
            row["from_source_error"] = trained or "the source's trained model was not exported"
        table[name] = row
    return table


def passes(row):
    """Whether a framework's file is this model: ONNX Runtime computes its logits and classes, at
    batch 64 and 1, the file has no Dropout node, and its weights from the source compute the same."""
    return ("error" not in row and "seconds" in row.get("export", {}) and row["same_classes"]
            and max(row["logits"], row["batch_1"]) < TOLERANCE and row["dynamic_batch"]
            and "Dropout" not in row["ops"] and row.get("from_source", 1.0) < TOLERANCE
            and row.get("from_source_classes", False))


def code_digest(frameworks):
    """The modules whole (export_onnx is not in a row's code digest), the checks (but NOT_RUN), and the ONNX
    packages each environment pins: what a table records, so that a committed one shows its age."""
    import hashlib
    from lab import digest
    whole = hashlib.sha256()
    model = common.model_of(frameworks)
    for name in sorted({common.ROWS[f]["module"] for f in frameworks}) + ["onnx_check", "onnx_graph", "parity"]:
        whole.update(digest.module_text(name, model))
    for env in sorted({common.ROWS[f]["env"] for f in frameworks}):
        whole.update(digest.file_text(os.path.join(common.ROOT, "envs", env, "requirements-onnx.txt")))
    return whole.hexdigest()[:16]


def table(frameworks, fresh=False, timeout=900, cached_only=False, root=None):
    """{"measured": when, "machine": where, "source": which trained, "table": compare's}: measured now
    if `fresh`, else the one this code, these environments and a machine of this kind measured, cached
    or committed (runs.checked_table; with `cached_only`, None where there is none)."""
    import tempfile
    from lab import digest, envs, results, runs

    def measure():
        import onnxruntime as ort
        with tempfile.TemporaryDirectory(prefix="rosetta-onnx-") as out_dir:
            source, found = run_all(frameworks, out_dir, timeout)
            measured = dict(measured=results.now(), machine=envs.gpu_name() or results.cpu_name(), source=source,
                            onnxruntime=ort.__version__, code=code_digest(frameworks),
                            table=compare(frameworks, out_dir, source, found))
        return measured, all(isinstance(got, dict) for got in found.values())  # one that did not run runs again
    return runs.checked_table("onnx", digest.check_key(frameworks, "onnx"), measure, fresh, cached_only, root)


def inference(frameworks, kind="runs", timeout=900):
    """Each framework's own predict against ONNX Runtime on the file it exported, one after the other
    on this machine: a run (purpose "inference") of one result per framework. Returns its folder."""
    import tempfile
    import onnxruntime as ort
    from lab import digest, envs, results, runs
    datasets.prepare("synthetic")
    path, meta = runs.start_run(frameworks, "inference", "synthetic", envs.gpu_name() or results.cpu_name(), False,
                                purpose="inference", kind=kind)
    meta["onnxruntime"] = ort.__version__
    runs.open_run(path, meta)
    with tempfile.TemporaryDirectory(prefix="rosetta-inference-") as out_dir:
        for name in frameworks:
            result = results.new_result(name, "inference", "synthetic", run=meta["run"], code=digest.inference_code(name))
            got = envs.run_script(name, "onnx_check", [name, out_dir, "--time"], timeout)
            if isinstance(got, dict):
                info = got["info"]
                result.update(framework_version=info.get("version"), device=info.get("device"), gpu=info.get("gpu"),
                              native=got["native"], served=got.get("served"), export=got["export"])
                result.update(status="ok" if "seconds" in got["export"] else "failed", error=got["export"].get("error"))
            else:
                result["error"] = got
            onnx_file = os.path.join(out_dir, name + ".onnx")
            if result["status"] == "ok":
                with np.load(os.path.join(out_dir, name + ".npz")) as f:
                    x = f["x"]
                try:
                    session, proto, _ = load(onnx_file, x.shape[1:])
                    result.update(bytes=os.path.getsize(onnx_file), opset=opset(proto))
                    result.update(onnx=timed(lambda batches: [run(session, b).argmax(1) for b in batches], x))
                except OnnxFileError as e:
                    result.update(status="failed", error=said(e, onnx_file, out_dir))
            result["finished"] = results.now()
            results.write_json(os.path.join(path, name + ".json"), result)
            sys.stderr.write("{:<18}{:<8} {}\n".format(name, result["status"], result["error"] or ""))
    runs.finish_run(path, meta)
    return path


def main(argv):
    framework, out_dir = argv[0], argv[1]
    source = argv[3] if len(argv) > 3 and argv[2] == "--source" else None
    print(json.dumps(framework_run(framework, out_dir, source, timing="--time" in argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
