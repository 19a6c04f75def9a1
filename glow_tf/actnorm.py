"""Activation normalisation with data-dependent initialisation (paper §3.1; tfops.actnorm).

Forward: x -> (x + b) * exp(logs), i.e. the original's actnorm_center followed by actnorm_scale.
`logs` is stored divided by `logscale_factor` (3), as in the original: the effective log-scale is
3 * weight, which triples its step size under Adam/Adamax and so matters for training dynamics.

Data-dependent init (DDI) is explicit: inside `with ddi():`, every ActNorm that is not yet initialised
sets b = -mean(x) and then, on the centred x, logs = log(1 / (sqrt(mean(x^2)) + 1e-6)) / 3, and computes
its output from the values just assigned. One forward pass therefore initialises the whole network
layer by layer, each layer seeing the already-normalised output of the layers below it, as the
original's `arg_scope(init=True)` pass did. An `initialized` weight records this in checkpoints.
"""

from __future__ import annotations

import contextlib
import contextvars

import numpy as np
import tensorflow as tf

from glow_tf.base import FlowLayer, weight_work
from glow_tf.hparams import LOGSCALE_FACTOR

_DDI_ACTIVE = contextvars.ContextVar("glow_tf_ddi_active", default=False)


@contextlib.contextmanager
def ddi():
    """Within this context, uninitialised ActNorm layers initialise themselves from their input."""
    token = _DDI_ACTIVE.set(True)
    try:
        yield
    finally:
        _DDI_ACTIVE.reset(token)


def ddi_active() -> bool:
    """Whether the code runs inside `with ddi():`."""
    return _DDI_ACTIVE.get()


class ActNorm(FlowLayer):
    """Per-channel affine map with DDI; port of tfops.actnorm (4-D inputs, logdet factor H*W)."""

    def __init__(self, channels: int, logscale_factor: float = LOGSCALE_FACTOR, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.logscale_factor = logscale_factor
        self.b = self.add_array("b", np.zeros([1, 1, 1, channels]))
        self.logs = self.add_array("logs", np.zeros([1, 1, 1, channels]))
        self.initialized = self.add_array("initialized", False, trainable=False, dtype="bool")

    def _maybe_initialize(self, x):
        if not _DDI_ACTIVE.get():
            return
        if not tf.executing_eagerly():
            raise RuntimeError("data-dependent init must run eagerly (call Glow.initialize outside tf.function)")
        if bool(self.initialized.numpy()):
            return
        mean = tf.reduce_mean(x, axis=[0, 1, 2], keepdims=True)
        self.b.assign(-mean)
        var = tf.reduce_mean(tf.square(x - mean), axis=[0, 1, 2], keepdims=True)
        self.logs.assign(tf.math.log(1.0 / (tf.sqrt(var) + 1e-6)) / self.logscale_factor)
        self.initialized.assign(True)

    def _scaled_logs(self):
        return self.logs * self.logscale_factor

    def _dlogdet(self, x):
        logs_sum = weight_work(self, "logs_sum", lambda: tf.reduce_sum(self._scaled_logs()))
        return tf.cast(x.shape[1] * x.shape[2], x.dtype) * logs_sum

    def normalize(self, x):
        """Forward map without log-determinant, for the actnorms inside the coupling network."""
        self._maybe_initialize(x)
        return (x + self.b) * weight_work(self, "scale", lambda: tf.exp(self._scaled_logs()))

    def call(self, x, logdet):
        return self.normalize(x), logdet + self._dlogdet(x)

    def reverse(self, z, logdet):
        return z * tf.exp(-self._scaled_logs()) - self.b, logdet - self._dlogdet(z)
