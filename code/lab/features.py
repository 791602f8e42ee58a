"""Part III's rows: each zoo's ResNet-50 extracting features, timed as the seed timed it, and the check
that each computes the NumPy ResNet-50 of its variant.

A model whose task is "features" (common.MODELS) has rows that train nothing. Its timed run is the
harness's (lab/harness.py calls `run` here, in the row's environment): the seeded weights set, the
first batch of 32 timed apart (tracing, compilation, autotuning), then each further batch; seconds
per 1,000 images from those. Its check, a proof about code, not a benchmark, runs each row once in
its environment:

    python -m lab.features ROW --check OUT_DIR

and `table` compares what the rows wrote with the NumPy reference, here. Python 3.6 compatible
(the part in the row's environment).
"""
import argparse
import json
import os
import sys
import time
import traceback

import numpy as np

import common

CHECK_IMAGES = 4  # through the float64 reference twice (both variants): about 3 s
# How far a row's features may be from the reference's, relative to the largest: float32 through 53
# convolutions and batch norms of sums over up to 4,608 products. Measured: 1e-6 to 1e-5.
TOLERANCE = 1e-4
MODEL = "resnet"


def _modules():
    return (common.model_module(MODEL, "data"), common.model_module(MODEL, "weights"),
            common.model_module(MODEL, "reference"))


def run(framework, profile_name, dataset, result, module, phases):
    """The timed run of a features row (the harness's steps for a model that trains nothing)."""
    images, weights, reference = _modules()
    prof = common.profile(profile_name, MODEL)
    batches = _timed(phases, "data", module.load_data, dataset, prof)
    model = _timed(phases, "build", module.create_model)
    module.set_weights(model, weights.random_weights(0))  # no weight host answers here: see the page
    result.update(params=int(module.count_params(model)), variant=module.describe(model)["variant"],
                  batch_size=images.BATCH, n_images=len(batches) * images.BATCH)
    result["flops_per_image"] = reference.flops(result["variant"])
    start = time.perf_counter()
    module.features(model, batches[:1])
    result["first_batch_seconds"] = time.perf_counter() - start
    steady = []
    for batch in batches[1:]:
        start = time.perf_counter()
        module.features(model, [batch])
        steady.append(time.perf_counter() - start)
        print("PROGRESS " + json.dumps(dict(batch=len(steady) + 1, batches=len(batches), seconds=steady[-1])),
              flush=True)
    result["batch_seconds"] = steady
    phases["features"] = result["first_batch_seconds"] + sum(steady)
    result["seconds_per_1000"] = images.per_1000(steady)


def _timed(phases, name, fn, *args):
    start = time.perf_counter()
    value = fn(*args)
    phases[name] = time.perf_counter() - start
    return value


def layout(module, model, x):
    """The check's images (NCHW) in the row's own layout."""
    return x if module.describe(model)["layout"] == "NCHW" else np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def check_row(framework, out_dir):
    """In the row's environment: what the table compares, into out_dir/<row>.*. The weights of the rows
    checked before it (their <row>-own.npz) are moved into this one."""
    images, weights, _ = _modules()
    spec = common.ROWS[framework]
    for key, value in common.environment(framework).items():
        os.environ.setdefault(key, value)
    module = common.model_module(MODEL, spec["module"])
    images.prepare("synthetic")
    x = images.preprocess(images.make("synthetic", 64)[:CHECK_IMAGES])
    shared = weights.random_weights(0)
    out, arrays = dict(framework=framework, errors={}), {}

    def attempt(name, fn):
        try:
            return fn()
        except Exception as e:  # one step failing leaves the others measured, and says so
            out["errors"][name] = "".join(traceback.format_exception_only(type(e), e)).strip()
            return None

    model = module.create_model()
    xr = layout(module, model, x)
    module.set_weights(model, shared)
    arrays["features"] = module.features(model, [xr])
    back = module.get_weights(model)
    out["roundtrip"] = max(float(np.max(np.abs(back[n] - shared[n]))) for n in shared)
    zoo = getattr(module, "zoo_model", None)
    out["described"] = module.describe(zoo() if zoo else model)
    out["book"] = module.describe(model)
    out["params"] = int(module.count_params(model))
    if zoo:
        def zoo_features():
            z = zoo()
            module.set_weights(z, shared)
            return module.features(z, [xr])
        arrays["zoo"] = attempt("zoo", zoo_features)
    if hasattr(module, "other_variant"):
        def other():
            m = module.create_model()
            module.set_weights(m, shared)
            return module.features(module.other_variant(m), [xr])
        arrays["other"] = attempt("other", other)
    if hasattr(module, "export_onnx"):
        path = os.path.join(out_dir, framework + ".onnx")
        attempt("export", lambda: module.export_onnx(model, path))  # the shared weights, as features
    fresh = module.create_model()  # the framework's own initial weights, out through get_weights
    own = module.get_weights(fresh)
    arrays["own"] = module.features(fresh, [xr])
    weights.save(os.path.join(out_dir, framework + "-own.npz"), own)
    out["moved_from"] = []
    for name in sorted(f[:-len("-own.npz")] for f in os.listdir(out_dir) if f.endswith("-own.npz")):
        theirs = _read(out_dir, name)
        if name == framework or not theirs or theirs["book"]["variant"] != out["book"]["variant"]:
            continue
        module.set_weights(model, weights.load(os.path.join(out_dir, name + "-own.npz")))
        arrays["from_" + name] = module.features(model, [xr])
        out["moved_from"].append(name)
    np.savez(os.path.join(out_dir, framework + ".npz"), **{k: v for k, v in arrays.items() if v is not None})
    with open(os.path.join(out_dir, framework + ".json"), "w") as f:
        json.dump(out, f)
    print(json.dumps(dict(ok=True)))


def _read(out_dir, name):
    path = os.path.join(out_dir, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def relative(a, b):
    """The largest difference of two feature arrays, over the largest magnitude of the second."""
    a, b = np.float64(a), np.float64(b)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def compare(frameworks, out_dir, found):
    """{row: its line of the table}: features against the reference of its variant, the zoo's own model
    against the book's function, the other variant, weights moved in from the rows before it, ONNX."""
    images, weights, reference = _modules()
    x = images.preprocess(images.make("synthetic", 64)[:CHECK_IMAGES])
    shared = weights.random_weights(0)
    refs = {v: reference.forward(shared, x, v) for v in weights.VARIANTS}
    table = {}
    for name in frameworks:
        doc = _read(out_dir, name)
        if not isinstance(found.get(name), dict) or doc is None:
            table[name] = dict(error=found.get(name) if isinstance(found.get(name), str) else "wrote nothing")
            continue
        variant = doc["book"]["variant"]
        other = next(v for v in weights.VARIANTS if v != variant)
        with np.load(os.path.join(out_dir, name + ".npz")) as f:
            arrays = dict(f)
        own = weights.load(os.path.join(out_dir, name + "-own.npz"))
        row = dict(variant=variant, described=doc["described"], book=doc["book"], params=doc["params"],
                   errors=doc["errors"], roundtrip=doc["roundtrip"],
                   features=relative(arrays["features"], refs[variant]),
                   own=relative(arrays["own"], reference.forward(own, x, variant)),
                   variants_apart=relative(refs[other], refs[variant]))
        if "zoo" in arrays:
            row["zoo"] = relative(arrays["zoo"], refs[variant])
        if "other" in arrays:
            row["other"] = relative(arrays["other"], refs[other])
        row["moved"] = {src: relative(arrays["from_" + src], np.load(os.path.join(out_dir, src + ".npz"))["own"])
                        for src in doc["moved_from"]}
        row["onnx"] = onnx_features(os.path.join(out_dir, name + ".onnx"), layout_of(doc, x), arrays["features"],
                                    doc["errors"].get("export"))
        table[name] = row
    return table


def layout_of(doc, x):
    return x if doc["book"]["layout"] == "NCHW" else np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def onnx_features(path, x, want, export_error):
    """The exported file in ONNX Runtime against the framework's own features: dict(difference) or
    dict(error)."""
    if export_error:
        return dict(error=export_error.splitlines()[-1][:300])
    if not os.path.exists(path):
        return dict(error="the exporter wrote no file")
    try:
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.log_severity_level = 3  # CNTK's file lists its weights as inputs too: a warning for each
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
    except Exception as e:
        return dict(error="ONNX Runtime: " + str(e).strip().splitlines()[0][:300])
    return dict(difference=relative(np.reshape(got, want.shape), want))


def passes(row):
    """Whether a row computes its variant's function and moves weights both ways."""
    return ("error" not in row and row["features"] <= TOLERANCE and row["own"] <= TOLERANCE
            and row["roundtrip"] == 0.0 and all(d <= TOLERANCE for d in row["moved"].values())
            and row.get("other", 0.0) <= TOLERANCE)


def run_all(frameworks, out_dir, timeout=600):
    from lab import envs
    return {name: envs.run_script(name, "features", [name, "--check", out_dir], timeout) for name in frameworks}


def table(frameworks, fresh=False, timeout=600, cached_only=False, root=None):
    """{"measured", "machine", "table"} for `frameworks`: measured now if `fresh`, else the one this code,
    these environments and a machine of this kind made (cached or committed: runs.checked_table)."""
    import tempfile
    from lab import digest, envs, results, runs

    def measure():
        with tempfile.TemporaryDirectory(prefix="rosetta-features-") as out_dir:
            found = run_all(frameworks, out_dir, timeout)
            measured = dict(measured=results.now(), machine=envs.gpu_name() or results.cpu_name(),
                            table=compare(frameworks, out_dir, found))
        return measured, all("error" not in row for row in measured["table"].values())
    return runs.checked_table("features", digest.check_key(frameworks, "features"), measure, fresh, cached_only, root)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("framework", choices=[n for n, s in common.ROWS.items() if s["model"] == MODEL])
    parser.add_argument("--check", metavar="OUT_DIR", required=True)
    args = parser.parse_args(argv)
    check_row(args.framework, args.check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
