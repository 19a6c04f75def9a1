"""The prior on the top-level z and the optional class head (openai model.py prior, and the classifier)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from glow_tf import ops
from glow_tf.base import Layer, weight_work
from glow_tf.nn import Conv2DZeros, LinearZeros


class TopPrior(Layer):
    """Diagonal Gaussian on z_top with h = [mean | logs] split into first and second half of channels.

    h starts at zeros (a standard normal). With `learntop`, h = conv2d_zeros(zeros): the input is all
    zeros, but the edge-pad channel makes border pixels differ, so this is a learned, border-aware mean
    and log-std (openai/glow issue #66). With `ycond`, a zero-initialised linear embedding of the one-hot
    label is added at every position. Note the halves here, unlike split2d's interleaving.
    """

    def __init__(self, top_shape, learntop: bool = False, ycond: bool = False, n_y: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.top_shape = tuple(top_shape)
        self.n_y = n_y
        n_z = self.top_shape[-1]
        sub = self.sublayer_kwargs()
        self.p = Conv2DZeros(2 * n_z, 2 * n_z, **sub) if learntop else None
        self.y_emb = LinearZeros(n_y, 2 * n_z, **sub) if ycond else None

    def mean_logs(self, y_onehot):
        """(mean, logs), each [B, H, W, C] (or broadcastable to it)."""
        height, width, n_z = self.top_shape
        h = tf.zeros([1, height, width, 2 * n_z], dtype=self.compute_dtype)
        if self.p is not None:
            # Depends on the weights only, so computed once and broadcast over the batch.
            h = weight_work(self, "learned_top", lambda: self.p(h))
        h = h + tf.zeros([tf.shape(y_onehot)[0], 1, 1, 1], dtype=h.dtype)
        if self.y_emb is not None:
            h = h + tf.reshape(self.y_emb(y_onehot), [-1, 1, 1, 2 * n_z])
        return h[..., :n_z], h[..., n_z:]

    def log_prob(self, z, y_onehot):
        """(log p(z) per example [B], eps = (z - mean) / exp(logs))."""
        mean, logs = self.mean_logs(y_onehot)
        return ops.flatten_sum(ops.gaussian_logp(z, mean, logs)), (z - mean) * tf.exp(-logs)

    def sample(self, y_onehot, eps=None, temperature=None):
        """mean + exp(logs) * eps, with eps given or N(0, 1) * temperature (per example)."""
        mean, logs = self.mean_logs(y_onehot)
        if eps is None:
            eps = tf.random.normal(tf.shape(mean), dtype=mean.dtype)
            if temperature is not None:
                eps = eps * ops.per_example(temperature, mean.dtype)
        return mean + tf.exp(logs) * eps


class Classifier(Layer):
    """Class head on the mean over positions of z_top (used when ycond and weight_y > 0).

    Returns bits_y = cross-entropy / ln 2 and the 0/1 prediction error, per example.
    """

    def __init__(self, n_z: int, n_y: int, **kwargs):
        super().__init__(**kwargs)
        self.n_y = n_y
        self.logits = LinearZeros(n_z, n_y, **self.sublayer_kwargs())

    def call(self, z, y):
        logits = self.logits(tf.reduce_mean(z, axis=[1, 2]))
        y_onehot = tf.one_hot(y, self.n_y, dtype=logits.dtype)
        bits_y = tf.nn.softmax_cross_entropy_with_logits(labels=y_onehot, logits=logits) / np.log(2.0)
        predicted = tf.argmax(logits, axis=1, output_type=tf.int32)
        error = 1.0 - tf.cast(tf.equal(predicted, tf.cast(y, tf.int32)), logits.dtype)
        return bits_y, error
