"""Drive one framework module through the contract on synthetic data and print what it did.

    python tests/module_check.py FRAMEWORK [--learn]   (with the framework environment's interpreter)

The tests run this as a subprocess, so each framework is checked in its own environment (and
each Keras backend in a fresh process). The contract takes a few steps; --learn trains long enough
for the loss to fall (one row does: the parity tests show every other row taking the same steps).
Python 3.6 compatible.
"""
import importlib
import json
import os
import sys

CODE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "code")
sys.path[:0] = [CODE, os.path.join(CODE, "cnn")]
import numpy as np  # noqa: E402

import common  # noqa: E402
import datasets  # noqa: E402

PROFILE = dict(epochs=2, n_train=128, n_test=128)
LEARN = dict(PROFILE, epochs=4, n_train=512)


def main(framework, profile=PROFILE):
    spec = common.ROWS[framework]
    for key, value in spec.get("vars", {}).items():
        os.environ[key] = value
    if not common.TF32:  # as the harness does
        os.environ.setdefault("NVIDIA_TF32_OVERRIDE", "0")
    datasets.prepare("synthetic")
    module = importlib.import_module(spec["module"])
    x_train, x_test, y_train, y_test = module.load_data("synthetic", profile)
    model = module.create_model()
    trainer = module.init_model(model)
    losses = [float(module.train_epoch(trainer, datasets.minibatches(x_train, y_train, epoch=e)))
              for e in range(profile["epochs"])]
    y_pred = np.asarray(module.predict(trainer, datasets.minibatches(x_test, None, shuffle=False)))
    y_true = np.asarray(y_test).argmax(1) if np.ndim(y_test) > 1 else np.asarray(y_test)
    print(json.dumps(dict(
        params=int(module.count_params(model)), losses=losses, x_shape=list(x_train.shape),
        y_shape=list(np.shape(y_train)), pred_shape=list(y_pred.shape), pred_kind=y_pred.dtype.kind,
        pred_min=int(y_pred.min()), pred_max=int(y_pred.max()),
        accuracy=float(np.mean(y_pred == y_true[:len(y_pred)])), info=module.runtime_info())))


if __name__ == "__main__":
    main(sys.argv[1], LEARN if "--learn" in sys.argv else PROFILE)
