"""Drive one of part IV's modules against the NumPy reference and print what it computed, until part
IV's parity table exists (then lab.parity does this):

    python tests/attention_check.py MODULE      (KERAS_BACKEND chooses a Keras module's backend)

Dropout off (the reference has none): each framework's layer made the identity, and PyTorch's attention
dropout, which its MultiheadAttention applies as a function, set to 0."""
import json
import os
import sys

CODE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "code")
sys.path[:0] = [CODE, os.path.join(CODE, "attention")]
import numpy as np  # noqa: E402

import attention_reference as ref  # noqa: E402
import attention_weights as aw  # noqa: E402


def batch(seed, n=6):
    rng = np.random.RandomState(seed)
    ids = np.zeros((n, aw.MAXLEN), np.int32)
    for i, words in enumerate(rng.randint(1, aw.MAXLEN + 1, n)):
        ids[i, :words] = rng.randint(1, aw.VOCAB, words)
    return ids, rng.randint(0, 2, n)


def partial_no_dropout(call):
    """Flax's attention draws its dropout inside dot_product_attention: asked for none."""
    def without(self, *args, **kwargs):
        return call(self, *args, **dict(kwargs, deterministic=True))
    return without


def logits_of(name, model, x):
    if name == "attention_pytorch":
        import torch
        model.eval()
        with torch.no_grad():
            return model(torch.from_numpy(x).long()).numpy()
    if name == "attention_jax":
        model.eval()
        return np.asarray(model(x))
    if name == "attention_tensorflow":
        return model(x).numpy()
    return np.asarray(model.predict_on_batch(x))


def main(name):
    if name == "attention_keras":
        import keras
        keras.layers.Dropout.call = lambda self, inputs, training=None: inputs
    if name == "attention_tensorflow":
        import tensorflow as tf
        tf.nn.dropout = lambda x, *args, **kwargs: x
    if name == "attention_jax":
        from flax import nnx
        nnx.Dropout.__call__ = lambda self, x, **kw: x
        nnx.MultiHeadAttention.__call__ = partial_no_dropout(nnx.MultiHeadAttention.__call__)
    module = __import__(name)
    model = module.create_model()
    if name == "attention_pytorch":
        import torch
        torch.nn.Dropout.forward = lambda self, x: x
        for layer in model.modules():
            if isinstance(layer, torch.nn.MultiheadAttention):
                layer.dropout = 0.0
    own = module.get_weights(model)
    weights = aw.random_weights(7)
    trainer = module.init_model(model)
    module.set_weights(model, weights)
    back = module.get_weights(model)
    batches = [batch(s) for s in range(3)]
    logits = logits_of(name, trainer if name == "attention_keras" else model, batches[0][0])
    losses = [module.train_epoch(trainer, [b]) for b in batches]
    trained = module.get_weights(model)
    out = dict(params=int(module.count_params(model)), info=module.runtime_info(),
               own_limits=[float(np.abs(a).max()) for a in own[1][2:10:2]],
               round_trip=all(np.array_equal(a, b) for g, h in zip(weights, back) for a, b in zip(g, h)),
               logits=float(np.max(np.abs(logits - ref.forward(weights, batches[0][0])[0]))), forms={})
    for form, kw in ref.OPTIMIZER_FORMS.items():
        ref_losses, ref_weights = ref.train(weights, batches, **kw)
        update, key_bias = 0.0, []
        for g, (got, want, start) in enumerate(zip(trained, ref_weights, weights)):
            for i, (a, b, w) in enumerate(zip(got, want, start)):
                if 0 < g <= aw.BLOCKS and aw.BLOCK[i] == "key_bias":
                    key_bias.append([float(np.max(np.abs(b - w))), float(np.max(np.abs(a - w)))])
                else:
                    update = max(update, float(np.linalg.norm((a - w) - (b - w)) / np.linalg.norm(b - w)))
        out["forms"][form] = dict(losses=float(np.max(np.abs(np.array(losses) - ref_losses))), update=update,
                                  key_bias=key_bias)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
