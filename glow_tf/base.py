"""The flow-layer contract and a sequence of flow layers.

Direction convention (the original's): `call` maps data towards the latent side (encode), `reverse`
maps the latent side back to data (decode). `logdet` is a float tensor of shape [B]; `call` adds
log|det dz/dx| to it and `reverse` subtracts the same amount, so `reverse(*call(x, 0)) == (x, 0)`.

Every layer here creates its weights in `__init__` from shapes it is given, instead of deferring to
Keras' build-on-first-call. A flow must be able to run `reverse` first (sampling from a restored
checkpoint), and `reverse` does not go through Keras' `__call__`.
"""

from __future__ import annotations

import contextlib
import contextvars

import numpy as np
import tensorflow as tf

keras = tf.keras

_SHARED = contextvars.ContextVar("glow_tf_shared_weight_work", default=None)


@contextlib.contextmanager
def shared_weight_work():
    """Within this context, each layer derives each of its weight tensors (a kernel with the actnorm
    folded in, a log-determinant, ...) once per graph and reuses it on later calls.

    For the encoder's concurrent sub-batches: the same weights serve every sub-batch, so the graph
    holds one copy of the work on them (and of its gradient) instead of one per sub-batch. Gradients
    stay exact: the derived tensors are part of the same differentiated computation. Not for
    tf.recompute_grad, whose recomputation must derive its own tensors under its own tape.
    """
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def weight_work(layer, key, compute):
    """compute(), or the tensor it gave for (layer, key) earlier in this graph under shared_weight_work."""
    cache = _SHARED.get()
    if cache is None:
        return compute()
    index = (id(layer), key, id(tf.compat.v1.get_default_graph()))
    if index not in cache:
        cache[index] = compute()
    return cache[index]


class Layer(keras.layers.Layer):
    """Keras layer whose weights are created eagerly from NumPy initial values."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.built = True  # weights are created in __init__; nothing for Keras to build

    def sublayer_kwargs(self) -> dict:
        """Keyword arguments that make a child layer share this layer's dtype."""
        return {"dtype": self.dtype_policy}

    def add_array(self, name: str, value, trainable: bool = True, dtype=None):
        """A weight initialised to a NumPy array (the original initialised most of its variables so)."""
        value = np.asarray(value)
        dtype = dtype or self.variable_dtype
        return self.add_weight(
            name=name, shape=value.shape, trainable=trainable, dtype=dtype,
            initializer=lambda shape, dtype: tf.constant(value, dtype=dtype))


class FlowLayer(Layer):
    """Invertible map. `call(x, logdet)` encodes, `reverse(z, logdet)` decodes; both return (out, logdet)."""

    def call(self, x, logdet):
        raise NotImplementedError

    def reverse(self, z, logdet):
        raise NotImplementedError


class FlowSequence(FlowLayer):
    """Flow layers applied in order by `call` and in reverse order by `reverse` (openai's revnet2d)."""

    def __init__(self, layers, **kwargs):
        super().__init__(**kwargs)
        self.flows = list(layers)
        # tf.train.Checkpoint does not follow Keras 3's tracked lists; attributes it does follow.
        for i, flow in enumerate(self.flows):
            setattr(self, f"flow{i}", flow)

    def call(self, x, logdet):
        for flow in self.flows:
            x, logdet = flow(x, logdet)
        return x, logdet

    def reverse(self, z, logdet):
        for flow in reversed(self.flows):
            z, logdet = flow.reverse(z, logdet)
        return z, logdet
