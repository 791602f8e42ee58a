"""The defaults chapter: the init classifier, the introspection run, and the table."""
import os

import numpy as np
import pytest

import common
from lab import envs, introspect
from pages import base, results as results_page
from pages import defaults as report_defaults

RNG = np.random.RandomState(0)
SHAPE = (introspect.C_OUT, introspect.C_IN, 3, 3)


def truncated_normal(std):
    x = RNG.normal(size=SHAPE)
    while (np.abs(x) > 2).any():
        x[np.abs(x) > 2] = RNG.normal(size=(np.abs(x) > 2).sum())
    return x / x.std() * std


@pytest.mark.parametrize("name, weights", [
    ("Glorot-uniform", RNG.uniform(-1, 1, SHAPE) * np.sqrt(6.0 / (introspect.FAN_IN + introspect.FAN_OUT))),
    ("Kaiming-uniform with a=sqrt(5), i.e. U(±1/sqrt(fan_in))", RNG.uniform(-1, 1, SHAPE) / np.sqrt(introspect.FAN_IN)),
    ("LeCun-normal (truncated)", truncated_normal(np.sqrt(1.0 / introspect.FAN_IN))),
    ("He-normal (truncated)", truncated_normal(np.sqrt(2.0 / introspect.FAN_IN))),
    ("LeCun-normal", RNG.normal(size=SHAPE) / np.sqrt(introspect.FAN_IN)),
    # MXNet's default: within 5% of Glorot's std for these fans, and still not Glorot.
    ("Uniform(±0.07), whatever the layer's size", RNG.uniform(-0.07, 0.07, SHAPE)),
])
def test_init_rules_are_recognised_from_the_weights(name, weights):
    assert introspect.classify_weights(weights) == name


def test_unusual_weights_are_not_forced_into_a_rule():
    assert "no common rule" in introspect.classify_weights(RNG.uniform(-1, 1, SHAPE))
    assert introspect.classify_bias(np.zeros(10)) == "zeros"
    assert introspect.classify_bias(RNG.uniform(-0.01, 0.01, 10)).startswith("uniform within")


def test_pytorch_defaults_are_read_from_the_installed_torch():
    rows = {r["topic"]: r for r in introspect.pytorch()}
    assert rows["weight init"]["value"].startswith("Kaiming-uniform") and rows["weight init"]["how"] == "measured"
    assert rows["conv padding"]["value"] == "padding=0 (valid)"
    assert rows["SGD momentum"]["value"].startswith("momentum=0,")


def test_defaults_table_escapes_and_reports_missing_environments():
    found = {"pytorch": [introspect.row("weight init", "<b>bold</b>", "measured")],
             "jax": "no environment for jax: <create it>"}
    page = report_defaults.defaults_table(found)
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold" not in page
    assert "no environment for jax: &lt;create it&gt;" in page


@pytest.fixture(scope="module")
def found():
    return report_defaults.read_defaults()[0]


def rows_of(found, tab):
    """{topic: row} as the framework's introspection read it here: a skip only where this machine has no
    environment for it (the page shows the reference's reading then, which proves nothing here); an
    introspection that failed fails the test."""
    name = next(n for n in common.implemented_frameworks() if common.tab(n) == tab)
    if envs.python_for(name)[0] is None:
        pytest.skip(envs.python_for(name)[1])
    assert isinstance(found[tab], list), found[tab]
    return {r["topic"]: r for r in found[tab]}


def test_read_defaults_runs_each_framework_in_its_environment(found):
    assert {"weight init", "bias init", "data layout", "TF32"} <= set(rows_of(found, "pytorch"))


@pytest.mark.parametrize("tab", sorted({common.tab(n) for n in common.implemented_frameworks()}))
def test_every_frameworks_introspection_runs_where_its_environment_is(found, tab):
    assert rows_of(found, tab)


@pytest.mark.parametrize("tab, size", [("pytorch", "3x3"), ("keras", "3x3"), ("jax", "6x6"), ("mxnet", "3x3"),
                                       ("chainer", "4x4"), ("cntk", "6x6"), ("keras2", "3x3"), ("caffe2", "6x6")])
def test_pooling_without_a_stride_is_measured_in_each_framework(found, tab, size):
    row = rows_of(found, tab)["max pooling, stride left out"]
    assert row["value"].endswith("a 7x7 input gives " + size) and row["how"] == "measured", row


def test_caffe2_threads_and_nesterov_default_are_read_not_stated(found):
    rows = rows_of(found, "caffe2")
    assert rows["CPU threads"]["how"] == "read" and rows["CPU threads"]["value"].startswith("OpenMP's ")
    assert "nesterov=True" in rows["SGD momentum"]["value"]


def test_measured_cores_join_the_defaults_table(results_dir):
    from lab import results
    run = os.path.join(results_dir, "runs", "r1")
    results.write_json(os.path.join(run, "pytorch.json"), results.new_result(
        "pytorch", "smoke", "synthetic", status="ok", cpu_busy=1.87, device="cpu"))
    results.set_latest(run)
    found = report_defaults.measured_threads({"pytorch": [introspect.row("weight init", "x", "measured")]}, results_dir)
    assert {"topic": "CPU cores busy in training", "value": "pytorch: 1.87",
            "how": "measured: run r1 on cpu"} in found["pytorch"]


def test_legacy_frameworks_read_tf32_from_the_nvidia_override(monkeypatch):
    monkeypatch.setenv("NVIDIA_TF32_OVERRIDE", "0")
    assert common.nvidia_tf32() is False
    monkeypatch.delenv("NVIDIA_TF32_OVERRIDE")
    assert common.nvidia_tf32() is True


def test_seed_note_names_every_framework_whose_dropout_was_wrong():
    note = base.load_seed()["note"]
    for name in ("TensorFlow", "PyTorch", "Caffe2", "Theano"):
        assert name in note


def test_2017_comparison_uses_the_published_seconds_and_our_measured_rates():
    seed = base.load_seed()
    rows = results_page.comparison_rows([], seed)
    pytorch_p100 = [r for r in rows if r["framework"] == "pytorch" and r["source"].startswith("P100")]
    assert len(pytorch_p100) == 1 and abs(pytorch_p100[0]["images_per_second"] - 499840 / 51) < 1e-6
    assert "dropout bugs" in seed["note"] and "ilkarman/DeepLearningFrameworks" in seed["source"]
    page = results_page.comparison_html([])
    assert "vegaEmbed" in page and "78% (PyTorch 0.3)" in page


def test_tensorflows_onednn_switch_is_read_with_the_cpu_features_that_decide_it(found):
    from tensorflow.python.util import _pywrap_util_port
    row = rows_of(found, "tensorflow")["oneDNN on the CPU"]
    assert row["how"] == "read: IsMklEnabled()"
    assert row["value"].startswith("on here" if _pywrap_util_port.IsMklEnabled() else "off here"), row


def test_mxnets_thread_default_names_its_source(found):
    row = rows_of(found, "mxnet")["CPU threads"]
    assert "half the logical CPUs on x86" in row["value"] and row["how"] == "stated: MXNet's source, src/engine/openmp.cc"
