"""The peer beside part III's rows: ONNX Runtime running the file the PyTorch row exports, on the same
images and weights, timed as the rows are (lab/features.py). What a user would pick to serve the
features; run once per run by the bench's process (lab/modes.py), in the main environment."""
import os
import tempfile
import time

import numpy as np
import onnxruntime as ort

import resnet_pytorch
from images import images_for_library, per_1000
from resnet_reference import flops
from resnet_weights import random_weights


def baseline(dataset, profile):
    """ONNX Runtime's first batch and seconds per 1,000 images, as a result the page reads."""
    batches = images_for_library(dataset, profile, channel_first=True)
    model = resnet_pytorch.create_model()
    resnet_pytorch.set_weights(model, random_weights(0))
    with tempfile.TemporaryDirectory(prefix="rosetta-resnet-ort-") as folder:
        path = os.path.join(folder, "resnet50.onnx")
        resnet_pytorch.export_onnx(model, path)
        run = ort.InferenceSession(path, providers=ort.get_available_providers())
        name = run.get_inputs()[0].name
        start = time.perf_counter()
        first = run.run(None, {name: batches[0]})[0]
        first_seconds = time.perf_counter() - start
        steady = []
        for batch in batches[1:]:
            start = time.perf_counter()
            run.run(None, {name: batch})
            steady.append(time.perf_counter() - start)
    want = resnet_pytorch.features(model, batches[:1])
    return dict(framework="onnxruntime", label="ONNX Runtime (PyTorch's file)", version=ort.__version__,
                providers=run.get_providers(), first_batch_seconds=first_seconds, batch_seconds=steady,
                seconds_per_1000=per_1000(steady), n_images=len(batches) * len(batches[0]),
                flops_per_image=flops("v1.5"), difference=float(np.max(np.abs(first - want)) / np.max(np.abs(want))))
