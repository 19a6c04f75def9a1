"""Multi-scale architecture (paper §3, Fig. 2b): squeeze and split with a learned prior (openai split2d)."""

from __future__ import annotations

import tensorflow as tf

from glow_tf import ops
from glow_tf.base import Layer
from glow_tf.nn import Conv2DZeros


class Split2d(Layer):
    """Factor out half the channels, score them under a Gaussian conditioned on the kept half.

    `call(z, objective) -> (squeeze2d(z1), objective + log p(z2 | z1), eps)`: this is the one place a
    log-probability rather than a log-determinant enters the running total, which the original calls
    `objective`. `eps = (z2 - mean) / exp(logs)` is the standardised latent that encode returns.
    The prior is a zero-initialised edge-padded 3x3 conv of z1 whose output interleaves mean (even
    channels) and log-std (odd channels), as the original's split2d_prior.
    """

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        if channels % 2:
            raise ValueError(f"split2d halves the channels; got an odd channel count {channels}")
        self.channels = channels
        self.conv = Conv2DZeros(channels // 2, channels, **self.sublayer_kwargs())

    def prior(self, z1):
        """(mean, logs) of z2 given z1."""
        return self.conv.interleaved_halves(z1)

    def call(self, z, objective):
        z1, z2 = ops.split_channels(z)
        mean, logs = self.prior(z1)
        objective = objective + ops.flatten_sum(ops.gaussian_logp(z2, mean, logs))
        eps = (z2 - mean) * tf.exp(-logs)
        return ops.squeeze2d(z1), objective, eps  # [B, H/2, W/2, 2C], [B], [B, H, W, C/2]

    def reverse(self, z1, eps=None, temperature=None):
        """z2 = mean + exp(logs) * eps, with eps given (decode) or N(0, 1) * temperature (sampling)."""
        z1 = ops.unsqueeze2d(z1)  # [B, H, W, C/2]
        mean, logs = self.prior(z1)
        if eps is None:
            eps = tf.random.normal(tf.shape(mean), dtype=mean.dtype)
            if temperature is not None:
                eps = eps * ops.per_example(temperature, mean.dtype)
        return tf.concat([z1, mean + tf.exp(logs) * eps], axis=-1)

