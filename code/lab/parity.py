"""Parity: with the same weights and batches, does each framework compute what NumPy computes?

    python -m lab.parity FRAMEWORK OUT_DIR                    (in the framework's environment)
    python -m lab.parity FRAMEWORK OUT_DIR --import-from DIR

The first form builds the framework's model and writes OUT_DIR/FRAMEWORK.own.npz (the weights it
initialised itself, through get_weights) and OUT_DIR/FRAMEWORK.npz: its logits on one batch for
those weights and for the shared weights of weights.random_weights (put in with set_weights),
whether get_weights gives back exactly what set_weights took, and the losses of STEPS training
steps from the shared weights on the shared batches; the weights after them go to
OUT_DIR/FRAMEWORK.trained.npz. The second form puts every
*.own.npz of DIR into the framework and writes the logits to OUT_DIR/FRAMEWORK.imported.npz.

Dropout is switched off for these runs by replacing each framework's dropout with the identity in
this process only (the NumPy reference has none); the modules keep their rates where the layers
are defined. `compare` (run in the main environment) measures the differences from the
reference. Python 3.6 compatible.
"""
import glob
import json
import os
import sys
from collections import OrderedDict
from itertools import islice

import numpy as np

import common
import datasets
from lab import results

STEPS = 3
WEIGHT_SEED = 7
PROFILE = dict(epochs=1, n_train=STEPS * common.BATCH_SIZE, n_test=common.BATCH_SIZE)
TOLERANCE = 1e-4  # logits, losses and weights, absolute, float32 against float64
STILL = 1e-9  # an array the reference moves less than this in float64 has no gradient to follow
PREDICT_MARGIN = 1e-3  # a row's predicted class must be the reference's where its top two logits are this far apart
# A tuned row's losses with bf16 forced on: about 1e-4 from the float32 reference's, measured on a CPU with
# AMX (bf16's 8 bits of mantissa round each product by up to 0.4%, the loss is summed in float32); a
# step lost or taken twice moves them by the 0.02 to 0.04 one step changes the loss here.
BF16_TOLERANCE = 2e-3
UPDATE_TOLERANCE = 1e-2  # each array's change over the steps, relative to the reference's change:
# float32 rounding alone is about 0.001% of it; what reaches a few tenths of a percent is a near-tie
# in a max-pooling window that float32 resolves the other way (the weights chapter explains it).
# Nesterov momentum moves it by tens of percent, a learning rate on the summed gradient by thousands


# --- In the framework's environment -----------------------------------------------------------

RATES = []  # the rate each dropout was given, as its framework defines it (the rate dropped), in call order


def no_dropout(tab):
    """Replace the framework's dropout with the identity, before the model is built or traced, noting
    the rate each dropout is given (RATES: where a framework calls it at every step, over and over)."""
    def rate(value):
        RATES.append(None if value is None else float(value))
    if tab == "pytorch":
        import torch.nn
        torch.nn.Dropout.forward = lambda self, x: rate(self.p) or x
        attend = torch.nn.MultiheadAttention.forward  # its rate handed to the attention function, not a layer

        def without(self, *args, **kwargs):
            rate(self.dropout)
            kept, self.dropout = self.dropout, 0.0
            try:
                return attend(self, *args, **kwargs)
            finally:
                self.dropout = kept
        torch.nn.MultiheadAttention.forward = without
    elif tab == "tensorflow":
        import tensorflow as tf
        tf.nn.dropout = lambda x, *args, **kw: rate(args[0] if args else kw.get("rate")) or x
    elif tab in ("keras", "keras2"):
        import keras
        keras.layers.Dropout.call = lambda self, inputs, training=None: rate(self.rate) or inputs
    elif tab == "jax":
        from flax import nnx
        nnx.Dropout.__call__ = lambda self, x, **kw: rate(self.rate) or x
        attend = nnx.MultiHeadAttention.__call__  # its dropout a function of the attention, asked for none
        nnx.MultiHeadAttention.__call__ = lambda self, *a, **kw: rate(self.dropout_rate) or attend(
            self, *a, **dict(kw, deterministic=True))
    elif tab == "mxnet":
        from mxnet.gluon import nn
        nn.Dropout.hybrid_forward = lambda self, F, x: rate(self._rate) or F.identity(x)
    elif tab == "chainer":
        import chainer.functions
        chainer.functions.dropout = lambda x, ratio=0.5, **kw: rate(ratio) or x
    elif tab == "cntk":
        import cntk
        cntk.layers.Dropout = lambda dropout_rate=None, keep_prob=None, **kw: rate(
            1 - keep_prob if keep_prob is not None else dropout_rate) or cntk.layers.identity
    elif tab == "caffe2":
        from caffe2.python import brew
        brew.dropout = lambda model, blob_in, blob_out, ratio=0.5, **kw: rate(ratio) or blob_in


def rates_as_declared(rates, declared):
    """Whether the rates noted are the model's, once per forward pass (as many passes as were run)."""
    declared, n = list(declared), len(declared)
    if not n:
        return not rates
    return bool(rates) and len(rates) % n == 0 and all(
        rates[i:i + n] == declared for i in range(0, len(rates), n))


def logits(tab, module, trainer, x):
    """The model's logits for one batch, in inference mode, as a NumPy array."""
    if hasattr(module, "logits_of_batch"):  # an input the framework takes in its own form (sequences)
        return module.logits_of_batch(trainer, x)
    if tab == "pytorch":
        import torch
        model = trainer[0].eval()
        with torch.no_grad():
            return model(torch.from_numpy(x).to(module.DEVICE)).cpu().numpy()
    if tab == "tensorflow":
        return module.logits_of(trainer[0], x).numpy()
    if tab in ("keras", "keras2"):
        return np.asarray(trainer.predict_on_batch(x))
    if tab == "jax":
        trainer[0].eval()
        return np.asarray(trainer[0](x))
    if tab == "mxnet":
        return trainer[0](module.nd.array(x, ctx=module.CTX)).asnumpy()
    if tab == "chainer":
        import chainer
        with chainer.using_config("train", False), chainer.no_backprop_mode():
            return chainer.backends.cuda.to_cpu(trainer[0](module.DEVICE.send(x)).array)
    if tab == "cntk":
        return trainer[0].eval({trainer[0].arguments[0]: x})
    if tab == "caffe2":
        module.workspace.FeedBlob("data", x, module.DEVICE)
        module.workspace.RunNet(trainer[1].net)
        return module.workspace.FetchBlob("logits")
    raise ValueError("no logits for " + tab)


def oracle(model):
    """A model's weight layout and its NumPy reference: (weights, reference)."""
    return common.model_module(model, "weights"), common.model_module(model, "reference")


def framework_run(framework, out_dir, import_from=None, bf16=False):
    spec = common.ROWS[framework]
    tab = common.tab(framework)
    neutral = common.model_module(spec["model"], "weights")  # the reference may need what this environment lacks
    for key, value in spec.get("vars", {}).items():
        os.environ[key] = value
    if "twin" in spec:  # a tuned row: parity is float32's, and a pass of its own checks bf16, loosely
        os.environ["ROSETTA_TUNING"] = "bf16=1" if bf16 else os.environ.get("ROSETTA_TUNING", "bf16=0")
    common.model_module(spec["model"], "data").prepare("synthetic")
    if not import_from:  # the import pass keeps dropout, as the book's programs run it
        no_dropout(tab)
    module = common.model_module(spec["model"], spec["module"])
    x_train, _, y_train, _ = module.load_data("synthetic", PROFILE)
    batches = list(islice(datasets.minibatches(x_train, y_train), STEPS))
    model = module.create_model()
    trainer = module.init_model(model)
    shared = neutral.random_weights(WEIGHT_SEED)
    if bf16:  # the row's own bf16 paths: its predict and its training steps
        module.set_weights(model, shared)
        classes = module.predict(trainer, iter([batches[0][0]]))
        losses = [module.train_epoch(trainer, (b for b in [batch])) for batch in batches]
        import tuning
        return dict(predicted=np.asarray(classes).tolist(), losses=[float(v) for v in losses],
                    bf16=[c["on"] for c in tuning.report() if c["change"] == "bf16"] == [True])
    if import_from:
        found = {}
        for path in sorted(glob.glob(os.path.join(import_from, "*.own.npz"))):
            module.set_weights(model, neutral.load(path))
            found[os.path.basename(path)[:-len(".own.npz")]] = logits(tab, module, trainer, batches[0][0])
        np.savez(os.path.join(out_dir, framework + ".imported.npz"), **found)
        # The row's own predict, dropout untouched, after a training step has put the model in training mode.
        module.train_epoch(trainer, (b for b in batches[:1]))
        module.set_weights(model, shared)
        classes = module.predict(trainer, iter([batches[0][0]]))
        return dict(imported=sorted(found), predicted=np.asarray(classes).tolist())
    own = module.get_weights(model)
    neutral.save(os.path.join(out_dir, framework + ".own.npz"), own)
    out = dict(logits_own=logits(tab, module, trainer, batches[0][0]))
    module.set_weights(model, shared)
    back = module.get_weights(model)
    exact = all(np.array_equal(a, b) and np.asarray(b).dtype == np.float32  # the same values and type
                for pair, back_pair in zip(shared, back) for a, b in zip(pair, back_pair))
    out["logits"] = logits(tab, module, trainer, batches[0][0])
    out["losses"] = np.array([module.train_epoch(trainer, (b for b in [batch])) for batch in batches], np.float64)
    np.savez(os.path.join(out_dir, framework + ".npz"), **out)
    neutral.save(os.path.join(out_dir, framework + ".trained.npz"), module.get_weights(model))
    # set_weights moves weights, not the optimizer's momentum: one step from the shared weights with
    # the trained optimizer (stale), and with a model and optimizer built anew first (clean).
    module.set_weights(model, shared)
    module.train_epoch(trainer, (b for b in batches[:1]))
    neutral.save(os.path.join(out_dir, framework + ".stale.npz"), module.get_weights(model))
    model = module.create_model()
    trainer = module.init_model(model)
    module.set_weights(model, shared)
    module.train_epoch(trainer, (b for b in batches[:1]))
    neutral.save(os.path.join(out_dir, framework + ".clean.npz"), module.get_weights(model))
    return dict(round_trip_exact=bool(exact), info=module.runtime_info(), dropout_rates=RATES)


# --- In the main environment: the reference, and the frameworks run in theirs -----------------

def reference_batches(model="cnn"):
    loader, kwargs = common.MODELS[model]["reference_data"]
    x_train, _, y_train, _ = getattr(common.model_module(model, "data"), loader)("synthetic", PROFILE, **kwargs)
    return list(islice(datasets.minibatches(x_train, y_train), STEPS))


def run_all(frameworks, out_dir, timeout=600):
    """Both passes for every framework in its own environment: {framework: summary or error}."""
    from lab import envs
    common.model_module(common.model_of(frameworks), "data").prepare("synthetic")
    own_dir = os.path.join(out_dir, "own")
    os.makedirs(own_dir, exist_ok=True)
    found = dict(zip(frameworks, envs.run_scripts([(n, "parity", [n, own_dir]) for n in frameworks], timeout)))
    import_dir = os.path.join(out_dir, "imported")
    os.makedirs(import_dir, exist_ok=True)
    ran = [n for n in frameworks if isinstance(found[n], dict)]
    for name, got in zip(ran, envs.run_scripts([(n, "parity", [n, import_dir, "--import-from", own_dir]) for n in ran], timeout)):
        if not isinstance(got, dict):
            found[name] = "importing the others' weights failed: " + got
        else:
            found[name]["predicted"] = got["predicted"]
    # a tuned row's bf16, forced on: every kind of CPU can run it (emulated where it must)
    tuned = [n for n in frameworks if isinstance(found[n], dict) and "twin" in common.ROWS[n]]
    for name, got in zip(tuned, envs.run_scripts([(n, "parity", [n, out_dir, "--bf16"]) for n in tuned], timeout)):
        found[name]["bf16"] = got
    return found


def table(frameworks, fresh=False, timeout=600, root=None):
    """{"measured": when, "machine": where, "table": compare's} for `frameworks`: measured now if
    `fresh`, else the one this code, these environments and a machine of this kind measured, cached
    (the parity tests store theirs) or committed (runs.checked_table)."""
    import tempfile
    from lab import digest, envs, runs

    def measure():
        with tempfile.TemporaryDirectory(prefix="rosetta-parity-") as out_dir:
            found = run_all(frameworks, out_dir, timeout)
            measured = dict(measured=results.now(), machine=envs.gpu_name() or results.cpu_name(),
                            table=compare(frameworks, out_dir, found))
        return measured, all("error" not in row for row in measured["table"].values())
    return runs.checked_table("parity", digest.check_key(frameworks, "parity"), measure, fresh, root=root)


def max_diff(a, b):
    return float(np.max(np.abs(np.float64(a) - np.float64(b))))


def source_logits(own_dir, framework):
    with np.load(os.path.join(own_dir, framework + ".npz")) as f:
        return f["logits_own"]


def after_steps(trained, ref_trained, shared, norm=np.max):
    """How far trained weights are from the reference's after the same steps from `shared`: the
    largest difference of any weight, and of any array's change relative to the reference's change
    (its largest entry's, or with norm=np.linalg.norm the whole array's). An array the reference
    leaves where it was (part IV's key bias, which has no gradient) is apart: `still`, the most a
    row moved one."""
    update, weights, still = [], [], [0.0]
    for t_pair, r_pair, w_pair in zip(trained, ref_trained, shared):
        for t, r, w in zip(t_pair, r_pair, w_pair):
            if np.max(np.abs(np.float64(r) - w)) < STILL:
                still.append(max_diff(t, w))
                continue
            update.append(norm(np.abs(np.float64(t) - r)) / norm(np.abs(np.float64(r) - w)))
            weights.append(max_diff(t, r))
    return dict(weights=max(weights), update=float(max(update)), still=max(still))


def compare(frameworks, out_dir, found):
    """{framework: the largest differences from the reference} for the runs of run_all."""
    model = common.model_of(frameworks)
    neutral, reference = oracle(model)
    batches = reference_batches(model)
    x0 = batches[0][0]
    shared = neutral.random_weights(WEIGHT_SEED)
    ref_logits = reference.forward(shared, x0)[0]
    # A model whose frameworks' optimizers differ in form (Adam's epsilon) has a reference for each:
    # each row is compared with the one its weights land nearest, and the others' distance is kept.
    forms = OrderedDict((name, (reference.train(shared, batches, **kw), reference.train(shared, batches[:1], **kw)[1]))
                        for name, kw in getattr(reference, "OPTIMIZER_FORMS", {None: {}}).items())
    norm = np.linalg.norm if common.MODELS[model].get("update") == "norm" else np.max
    # Adam moves a weight by about its learning rate a step at most, whatever the gradient's size.
    still_bound = STEPS * getattr(reference, "ADAM", {}).get("lr", common.LR)
    own_dir, import_dir = os.path.join(out_dir, "own"), os.path.join(out_dir, "imported")
    own_logits = {}  # the reference's logits for each framework's own initial weights
    for name in frameworks:
        path = os.path.join(own_dir, name + ".own.npz")
        if os.path.exists(path):
            own_logits[name] = reference.forward(neutral.load(path), x0)[0]
    table = {}
    for name in frameworks:
        if not isinstance(found.get(name), dict):
            table[name] = dict(error=found.get(name, "not run"))
            continue
        with np.load(os.path.join(own_dir, name + ".npz")) as f:
            got = dict(f)
        trained = neutral.load(os.path.join(own_dir, name + ".trained.npz"))
        steps = OrderedDict((form, after_steps(trained, ref[0][1], shared, norm)) for form, ref in forms.items())
        form = min(steps, key=lambda f: steps[f]["update"])
        (ref_losses, _), ref_one_step = forms[form]
        row = dict(logits=max_diff(got["logits"], ref_logits),
                   own_logits=max_diff(got["logits_own"], own_logits[name]),
                   losses=max_diff(got["losses"], ref_losses), round_trip_exact=found[name]["round_trip_exact"],
                   device=found[name]["info"].get("device"), losses_seen=[float(v) for v in got["losses"]],
                   reference_losses=[float(v) for v in ref_losses], still_bound=still_bound, **steps[form])
        if norm is not np.max:
            row["update_measure"] = "norm"
        if len(forms) > 1:
            row.update(optimizer_form=form, other_forms={f: steps[f]["update"] for f in steps if f != form})
        other = common.MODELS[model].get("other_form")  # part II: form A's distance from the other GRU
        if other:
            row["logits_form_" + other.lower()] = max_diff(got["logits"], reference.forward(shared, x0, other)[0])
        for kind in ("stale", "clean"):  # one step after set_weights: the old optimizer, or one built anew
            stepped = neutral.load(os.path.join(own_dir, "{}.{}.npz".format(name, kind)))
            row["restart_" + kind] = max(max_diff(t, r) for tp, rp in zip(stepped, ref_one_step) for t, r in zip(tp, rp))
        path = os.path.join(import_dir, name + ".imported.npz")
        if os.path.exists(path):
            with np.load(path) as f:
                row["imported"] = {src: max_diff(f[src], own_logits[src]) for src in f.files if src in own_logits}
                # ... and against the logits the source framework itself computed for them
                row["as_source"] = {src: max_diff(f[src], source_logits(own_dir, src)) for src in row["imported"]}
        declared = common.MODELS[model]["dropout"]
        row.update(dropout_rates=found[name]["dropout_rates"][:len(declared) or None],
                   dropout_as_declared=rates_as_declared(found[name]["dropout_rates"], declared),
                   predicted=mismatches(found[name]["predicted"], ref_logits))
        if "bf16" in found[name]:
            row["bf16"] = bf16_row(found[name]["bf16"], ref_logits, ref_losses)
        table[name] = row
    return table


def bf16_row(got, ref_logits, ref_losses):
    """A tuned row with bf16 forced on, against the float32 reference: its losses and its predict."""
    if not isinstance(got, dict):
        return dict(error=got)
    return dict(on=got["bf16"], losses=max_diff(got["losses"], ref_losses), losses_seen=got["losses"],
                predicted=mismatches(got["predicted"], ref_logits, 10 * BF16_TOLERANCE))


def mismatches(predicted, ref_logits, margin=PREDICT_MARGIN):
    """[classes predicted otherwise than the reference, images compared]: those whose reference logits
    separate the top two by `margin` or more (float32 may break a closer tie either way)."""
    top2 = np.sort(ref_logits, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) >= margin
    predicted = np.asarray(predicted).reshape(-1)
    if len(predicted) != len(ref_logits):
        return [len(ref_logits), len(ref_logits)]
    return [int(np.sum((predicted != ref_logits.argmax(1)) & clear)), int(np.sum(clear))]


def passes(row):
    """Whether one framework's row of `compare` meets the tolerances. Where each array's update is
    measured whole (update_measure "norm"), one weight may be off by Adam's step: a gradient near zero
    in float64 and in float32 alike (a rare word's entry) is a step of about lr either way, its sign
    float32's rounding's, so the whole arrays' updates are the check, not the largest weight's."""
    weights = 0.0 if row.get("update_measure") == "norm" else row.get("weights", 0.0)
    return ("error" not in row and row["round_trip_exact"] and row["update"] < UPDATE_TOLERANCE
            and row.get("still", 0) <= row.get("still_bound", 0)
            and max(row["logits"], row["own_logits"], row["losses"], weights) < TOLERANCE
            and bool(row.get("imported")) and max(row["imported"].values()) < TOLERANCE
            and max(row["as_source"].values()) < TOLERANCE
            and row["dropout_as_declared"] and row["predicted"][0] == 0
            and ("bf16" not in row or bf16_passes(row["bf16"])))


def bf16_passes(row):
    return "error" not in row and row["on"] and row["losses"] < BF16_TOLERANCE and row["predicted"][0] == 0


def main(argv):
    framework, out_dir = argv[0], argv[1]
    import_from = argv[3] if len(argv) > 3 and argv[2] == "--import-from" else None
    print(json.dumps(framework_run(framework, out_dir, import_from, bf16="--bf16" in argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
