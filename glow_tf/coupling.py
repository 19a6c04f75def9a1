"""Additive and affine coupling layers (paper §3.3; openai model.py revnet2d_step, f).

The first half of the channels, z1, passes through unchanged and conditions the second half, z2.
(The paper's Table 1 writes it the other way round; the code, which we follow, does this.)
"""

from __future__ import annotations

import tensorflow as tf

from glow_tf import ops
from glow_tf.base import FlowLayer, Layer
from glow_tf.nn import Conv2D, Conv2DZeros


class CouplingNN(Layer):
    """The original's f(): 3x3 conv -> actnorm -> ReLU -> 1x1 conv -> actnorm -> ReLU -> 3x3 zero conv.

    With `conv_dtype` (e.g. bfloat16) the input is cast once and the three convolutions and the wide
    activations between them stay in that precision; the zero conv's bias and scale, and so the output,
    are in the layer's dtype.
    """

    def __init__(self, in_channels: int, out_channels: int, width: int, rng=None, conv_dtype=None, **kwargs):
        super().__init__(**kwargs)
        self.conv_dtype = tf.as_dtype(conv_dtype) if conv_dtype else None
        sub = self.sublayer_kwargs()
        self.l_1 = Conv2D(in_channels, width, 3, rng=rng, relu=True, **sub)
        self.l_2 = Conv2D(width, width, 1, rng=rng, relu=True, **sub)
        self.l_last = Conv2DZeros(width, out_channels, **sub)

    def hidden(self, x):
        if self.conv_dtype is not None:
            x = tf.cast(x, self.conv_dtype)
        return self.l_2(self.l_1(x))

    def call(self, x):
        return self.l_last(self.hidden(x))

    def interleaved_halves(self, x):
        """(h[..., 0::2], h[..., 1::2]) of h = self(x)."""
        return self.l_last.interleaved_halves(self.hidden(x))


class _Coupling(FlowLayer):
    def __init__(self, channels: int, width: int, nn_out: int, rng=None, conv_dtype=None, **kwargs):
        super().__init__(**kwargs)
        if channels % 2:
            raise ValueError(f"a coupling layer splits channels in half; got an odd channel count {channels}")
        self.channels = channels
        # The network may compute in lower precision (conv_dtype): both directions evaluate it on the
        # same z1, so the coupling stays exactly invertible and its log-det consistent.
        self.nn = CouplingNN(channels // 2, nn_out, width, rng=rng, conv_dtype=conv_dtype,
                             **self.sublayer_kwargs())


class AdditiveCoupling(_Coupling):
    """--flow_coupling 0: z2 += f(z1); log-determinant 0."""

    def __init__(self, channels: int, width: int, rng=None, **kwargs):
        super().__init__(channels, width, channels // 2, rng=rng, **kwargs)

    def call(self, x, logdet):
        z1, z2 = ops.split_channels(x)
        return tf.concat([z1, z2 + self.nn(z1)], axis=-1), logdet

    def reverse(self, z, logdet):
        z1, z2 = ops.split_channels(z)
        return tf.concat([z1, z2 - self.nn(z1)], axis=-1), logdet


class AffineCoupling(_Coupling):
    """--flow_coupling 1: z2 = (z2 + shift) * sigmoid(h + 2), shift and h interleaved in f's output.

    The paper writes exp(log s) and s*x + t; the code uses sigmoid(. + 2) (bounded, starts near 0.88;
    openai/glow issue #62) and adds the shift before scaling. We follow the code.
    """

    def __init__(self, channels: int, width: int, rng=None, **kwargs):
        super().__init__(channels, width, channels, rng=rng, **kwargs)

    def _shift_and_scale(self, z1):
        shift, h = self.nn.interleaved_halves(z1)
        return shift, tf.nn.sigmoid(h + 2.0)

    def _dlogdet(self, scale):
        return ops.flatten_sum(tf.math.log(scale))

    def call(self, x, logdet):
        z1, z2 = ops.split_channels(x)
        shift, scale = self._shift_and_scale(z1)
        z2 = (z2 + shift) * scale
        return tf.concat([z1, z2], axis=-1), logdet + self._dlogdet(scale)

    def reverse(self, z, logdet):
        z1, z2 = ops.split_channels(z)
        shift, scale = self._shift_and_scale(z1)
        z2 = z2 / scale - shift
        return tf.concat([z1, z2], axis=-1), logdet - self._dlogdet(scale)
