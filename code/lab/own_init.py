"""What the default initialisation costs: run a module with its framework's own weight init.

The modules set Glorot-uniform weights and zero biases everywhere, so that the frameworks train
the same model. `bench.py --init own` runs the frameworks whose own default differs once more
with that override taken out, here, in the benchmark's process only: the code in the book's tabs
stays the Glorot version. Python 3.6 compatible.
"""
import inspect

# The frameworks whose default differs from Glorot-uniform, and why the others are not run again.
FRAMEWORKS = ["pytorch", "jax", "mxnet", "chainer", "caffe2"]
SAME = {
    "tensorflow": "tf.nn has no initializer of its own: the code creates every variable",
    "keras-tensorflow": "Keras' own default is Glorot-uniform",
    "keras-jax": "Keras' own default is Glorot-uniform",
    "keras-torch": "Keras' own default is Glorot-uniform",
    "cntk": "CNTK's own default is Glorot-uniform",
    "keras-cntk": "Keras 2's own default is Glorot-uniform",
}


def apply(framework, module):
    """Take the module's Glorot override out, before create_model runs."""
    if framework == "pytorch":
        import torch.nn as nn
        nn.init.xavier_uniform_ = nn.init.zeros_ = lambda tensor, *a, **kw: tensor
    elif framework == "jax":
        from flax import nnx
        own = inspect.signature(nnx.Conv.__init__).parameters["kernel_init"].default  # Linear's too
        nnx.initializers.glorot_uniform = lambda *a, **kw: own
    elif framework == "mxnet":
        import mxnet as mx
        own = inspect.signature(mx.gluon.Block.initialize).parameters["init"].default
        mx.init.Xavier = lambda *a, **kw: own
    elif framework == "chainer":
        import chainer
        chainer.initializers.GlorotUniform = lambda *a, **kw: None  # None: the link's own default
    elif framework == "caffe2":
        module.glorot = lambda fan_in, fan_out: {}  # brew's own weight_init and bias_init
    else:
        raise ValueError("{} has no own init to restore: {}".format(framework, SAME.get(framework, "unknown")))
