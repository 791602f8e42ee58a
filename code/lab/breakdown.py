"""Where a training step's time goes, for the results chapter's paragraph on what keeps a row from
the machine's peak: PyTorch's own profiler by operator; JAX's step against its convolutions and
products, each compiled and timed alone at the step's shapes. A run (purpose "breakdown") of one
result per row, `make bench-breakdown`; in a row's environment: python -m lab.breakdown ROW.
"""
import json
import os
import sys
import time

import numpy as np

import common

ROWS = ("pytorch", "jax", "jax-tuned")  # the rows whose profile splits a step by operator
STEPS = 8
# What each row's measured parts (all but the last, the rest of the step) may add up to, over the step:
# the profiler's self times lie within the step's time, and on a CPU cover most of it; JAX's parts, each
# timed alone without what XLA fuses into it, may add up to more than the step, not to twice it.
BOUNDS = {"pytorch": (0.5, 1.02), "jax": (0.3, 2.0), "jax-tuned": (0.3, 2.0)}
PIXELS = dict(conv1=32 * 32, conv2=32 * 32, conv3=16 * 16, conv4=16 * 16, dense1=1, dense2=1)


def layer_flops(name, batch=common.BATCH_SIZE):
    """One layer's forward product (two FLOPs per multiply-add), as reference.flops counts it."""
    return 2 * batch * PIXELS[name] * int(np.prod(common.model_module("cnn", "weights").LAYERS[name]))


def fastest(fn, repeats=STEPS):
    """Seconds of the fastest of `repeats` calls after one unmeasured call (other work only slows one)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def batch():
    rng = np.random.default_rng(0)
    return rng.random((common.BATCH_SIZE, 32, 32, 3), dtype=np.float32), rng.integers(0, 10, common.BATCH_SIZE)


def pytorch():
    """torch.profiler's self CPU time per operator over STEPS steps of cnn_pytorch, in groups."""
    import torch
    import cnn_pytorch as m
    trainer = m.init_model(m.create_model())
    x, y = batch()
    batches = [(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), y)] * STEPS
    m.train_epoch(trainer, batches[:2])
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        m.train_epoch(trainer, batches)
        step = (time.perf_counter() - start) / STEPS
    parts = dict.fromkeys(["convolutions", "matrix products", "other operators"], 0.0)
    for event in prof.key_averages():
        group = ("convolutions" if "convolution" in event.key else
                 "matrix products" if event.key in ("aten::addmm", "aten::mm", "aten::bmm") else "other operators")
        parts[group] += event.self_cpu_time_total / 1e6 / STEPS
    parts["outside operators (Python)"] = max(0.0, step - sum(parts.values()))
    conv = sum(3 * layer_flops(n) for n in PIXELS if n.startswith("conv")) - layer_flops("conv1")
    dense = 3 * (layer_flops("dense1") + layer_flops("dense2"))
    return dict(step=step, parts=parts, flops={"convolutions": conv, "matrix products": dense},
                by="torch.profiler, self CPU time by operator, {} steps of cnn_pytorch".format(STEPS))


def jax_parts(module):
    """cnn_jax's (or the tuned row's) step, and the same step's convolutions and products alone."""
    import jax
    import jax.numpy as jnp
    m = __import__(module)
    model, optimizer = m.init_model(m.create_model())
    model.train()
    x, y = (jnp.asarray(a) for a in batch())
    train = getattr(m, "step_by_step", None) or m.train_step
    step = fastest(lambda: jax.block_until_ready(train(model, optimizer, x, y)))
    layers = __import__("cnn_jax").layers(model)  # the tuned row's model is cnn_jax's
    convs, denses = layers[:4], layers[4:]
    inputs = dict(conv1=x.shape, conv2=x.shape[:3] + (50,), conv3=(x.shape[0], 16, 16, 50), conv4=(x.shape[0], 16, 16, 100))
    parts, flops = {}, {}

    def timed(part, name, fn, *args):
        compiled = jax.jit(fn)
        parts[part] = parts.get(part, 0.0) + fastest(lambda: jax.block_until_ready(compiled(*args)))
        flops[part] = flops.get(part, 0) + layer_flops(name)
    for name, layer in zip(list(PIXELS)[:4], convs):
        kernel, xin = layer.kernel[...], jnp.ones(inputs[name], jnp.float32)
        conv = layer.conv_general_dilated
        forward = lambda a, k: conv(a, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))  # noqa: E731
        dy = forward(xin, kernel)
        timed("convolutions, forward", name, forward, xin, kernel)
        if name != "conv1":  # the images need no gradient
            timed("convolutions, input gradients", name, lambda a, k, d: jax.vjp(lambda a: forward(a, k), a)[1](d)[0],
                  xin, kernel, dy)
        timed("convolutions, kernel gradients", name, lambda a, k, d: jax.vjp(lambda k: forward(a, k), k)[1](d)[0],
              xin, kernel, dy)
    for name, layer in zip(("dense1", "dense2"), denses):
        kernel = layer.kernel[...]
        xin, dy = (jnp.ones((x.shape[0], n), jnp.float32) for n in kernel.shape)
        timed("matrix products", name, lambda a, k: a @ k, xin, kernel)
        timed("matrix products", name, lambda a, d: a.T @ d, xin, dy)  # the kernel's gradient
        timed("matrix products", name, lambda d, k: d @ k.T, dy, kernel)  # the input's
    parts["the rest of the step"] = max(0.0, step - sum(parts.values()))
    return dict(step=step, parts=parts, flops=flops,
                by="each part compiled by jax.jit and timed alone at the step's shapes, the fastest of {}: alone, a "
                   "part misses what XLA fuses into it inside the step, so the parts can add up to more than "
                   "the step".format(STEPS))


def within_bounds(row, found):
    """Whether a breakdown's measured parts are each above 0 and add up to within BOUNDS of its step."""
    measured = list(found["parts"].values())[:-1]
    low, high = BOUNDS[row]
    return all(p > 0 for p in measured) and low * found["step"] <= sum(measured) <= high * found["step"]


def measure(row):
    return pytorch() if row == "pytorch" else jax_parts(common.ROWS[row]["module"])


def run(kind="runs", timeout=600):
    """Each row of ROWS measured in its environment, one after the other: a run of purpose "breakdown"."""
    from lab import digest, envs, results, runs
    path, meta = runs.start_run(list(ROWS), "breakdown", "synthetic", envs.gpu_name() or results.cpu_name(), False,
                                purpose="breakdown", kind=kind)
    runs.open_run(path, meta)
    for row in ROWS:
        result = results.new_result(row, "breakdown", "synthetic", run=meta["run"], code=digest.row_code(row))
        got = envs.run_script(row, "breakdown", [row], timeout)
        if isinstance(got, dict):
            result.update(status="ok", breakdown=got)
        else:
            result.update(status="failed", error=got)
        result["finished"] = results.now()
        results.write_json(os.path.join(path, row + ".json"), result)
        sys.stderr.write("{:<12}{:<8} {}\n".format(row, result["status"], result["error"] or ""))
    runs.finish_run(path, meta)
    return path


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1])))
