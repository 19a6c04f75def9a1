"""Non-invertible layers used inside couplings and priors (tfops.conv2d, conv2d_zeros, linear_zeros).

Every 3x3 convolution uses the original's edge-bias padding: the zero-padded input gets one extra
channel that is 1 on the padded border and 0 inside, so the kernel has C_in + 1 input channels
(`W` keeps the original's shape [3, 3, C_in + 1, C_out], which the TF1 checkpoint converter relies on).
It is computed as conv(x, W[:, :, :C_in]) + conv(border, W[:, :, C_in:]); see ops.edge_indicator.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from glow_tf import ops
from glow_tf.actnorm import ActNorm, ddi_active
from glow_tf.base import Layer
from glow_tf.hparams import LOGSCALE_FACTOR


def _rng(rng):
    return rng if rng is not None else np.random.default_rng()


def _edge_pad(x):
    """The original's add_edge_padding for 3x3: zero-pad by 1 and append the border channel."""
    _, height, width, _ = x.shape
    border = ops.edge_indicator(height, width, x.dtype)
    padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    return tf.concat([padded, tf.broadcast_to(border, [tf.shape(x)[0], height + 2, width + 2, 1])], -1)


class _EdgePaddedConv(Layer):
    """Shared kernel handling for the edge-padded convolutions.

    Subclasses build their kernels inside `with self.after(x)`. In a tf.function the graph executor runs
    an op as soon as its inputs exist, and the kernel work (the variable read, the actnorm folded in,
    the regrouped or bf16 copy) has no input from the data: without the ordering every layer's copy is
    made when the graph starts and held until the layer runs. For the CIFAR-10 model that is a second
    copy of all coupling weights (170 MiB) in the forward pass and again in a checkpointed backward
    pass, where it cancelled most of what gradient checkpointing saves (bench/train_step.py).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, init_std, rng=None,
                 conv_dtype=None, **kwargs):
        super().__init__(**kwargs)
        # Precision of the convolution itself; weights, biases and outputs keep the layer's dtype.
        self.conv_dtype = tf.as_dtype(conv_dtype) if conv_dtype else None
        if kernel_size not in (1, 3):
            raise ValueError(f"kernel_size={kernel_size}: only the original's 1x1 and 3x3 are supported")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        # 3x3 kernels see the extra border channel; 1x1 kernels have no padding and so no border channel.
        shape = [kernel_size, kernel_size, in_channels + (kernel_size == 3), out_channels]
        init = np.zeros(shape) if init_std == 0 else _rng(rng).normal(0.0, init_std, size=shape)
        self.W = self.add_array("W", init)

    @staticmethod
    def after(x):
        """A context in which new ops wait for x (a no-op when executing eagerly)."""
        return tf.control_dependencies([x])

    def _conv(self, x, kernel, padding):
        """tf.nn.conv2d, run in conv_dtype when one is set; the result has x's dtype."""
        if self.conv_dtype is None or self.conv_dtype == x.dtype:
            return tf.nn.conv2d(x, kernel, strides=1, padding=padding)
        out = tf.nn.conv2d(tf.cast(x, self.conv_dtype), tf.cast(kernel, self.conv_dtype), strides=1,
                           padding=padding)
        return tf.cast(out, x.dtype)

    def convolve(self, x, kernel=None):
        kernel = tf.convert_to_tensor(self.W) if kernel is None else kernel
        if self.kernel_size == 1:
            return self._conv(x, kernel, "VALID")
        # tf.split, not slicing: a slice's gradient is a StridedSliceGrad, the split's a cheap concat.
        kernel_x, kernel_border = tf.split(kernel, [self.in_channels, 1], axis=2)
        out = self._conv(x, kernel_x, "SAME")
        border = ops.edge_indicator(x.shape[1], x.shape[2], x.dtype)
        return out + tf.nn.conv2d(border, kernel_border, strides=1, padding="VALID")


class Conv2D(_EdgePaddedConv):
    """Port of tfops.conv2d with do_actnorm=True: W ~ N(0, 0.05), no bias, ActNorm (with DDI) instead."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, rng=None, relu=False,
                 **kwargs):
        super().__init__(in_channels, out_channels, kernel_size, init_std=0.05, rng=rng, **kwargs)
        self.actnorm = ActNorm(out_channels, **self.sublayer_kwargs())
        self.relu = relu  # the ReLU that follows the actnorm in the coupling network

    def call(self, x):
        with self.after(x):
            return self._call(x)

    def _call(self, x):
        if ddi_active():  # DDI needs the raw convolution output
            out = self.actnorm.normalize(self.convolve(x))
            return tf.nn.relu(out) if self.relu else out
        # (conv(x, W) + b) * s == conv(x, W * s) + b * s for the per-channel actnorm scale s: folding
        # the actnorm into the kernel and a bias lets the conv, the bias and the ReLU after it run as
        # one fused oneDNN kernel instead of four passes over the wide output.
        scale = tf.reshape(tf.exp(self.actnorm.logs * self.actnorm.logscale_factor), [-1])
        kernel = tf.convert_to_tensor(self.W) * scale
        bias = tf.reshape(self.actnorm.b, [-1]) * scale
        if self.kernel_size == 3:
            x = _edge_pad(x)  # the input here is narrow (C/2 + 1 channels), so the copy is cheap
        dtype = x.dtype
        if self.conv_dtype is not None and self.conv_dtype != dtype:
            x, kernel, bias = (tf.cast(t, self.conv_dtype) for t in (x, kernel, bias))
        out = tf.nn.bias_add(tf.nn.conv2d(x, kernel, strides=1, padding="VALID"), bias)
        return tf.cast(tf.nn.relu(out) if self.relu else out, dtype)


class Conv2DZeros(_EdgePaddedConv):
    """Port of tfops.conv2d_zeros: zero-initialised 3x3 conv, plus b, times exp(3 * logs)."""

    def __init__(self, in_channels: int, out_channels: int, logscale_factor: float = LOGSCALE_FACTOR,
                 **kwargs):
        super().__init__(in_channels, out_channels, 3, init_std=0, **kwargs)
        self.logscale_factor = logscale_factor
        self.b = self.add_array("b", np.zeros([1, 1, 1, out_channels]))
        self.logs = self.add_array("logs", np.zeros([1, out_channels]))

    def call(self, x):
        with self.after(x):
            return (self.convolve(x) + self.b) * tf.exp(self.logs * self.logscale_factor)

    def interleaved_halves(self, x):
        """(h[..., 0::2], h[..., 1::2]) for h = self(x): the original's interleaved split of the output.

        The output channels are regrouped (evens, then odds) in the small weights instead of slicing
        the large output with stride 2, whose gradient is a slow scatter; the values are identical.
        """
        with self.after(x):
            kernel, b, logs = (_evens_then_odds(t) for t in (self.W, self.b, self.logs))
            h = (self.convolve(x, kernel) + b) * tf.exp(logs * self.logscale_factor)
        return tf.split(h, 2, axis=-1)


def _evens_then_odds(t):
    """t[..., 0::2] then t[..., 1::2] along the last axis, as a reshape and transpose (whose gradient is
    a transpose; a gather's is a transposed segment sum, a strided slice's a StridedSliceGrad)."""
    t = tf.convert_to_tensor(t)
    *lead, n = t.shape
    pairs = tf.reshape(t, [*lead, n // 2, 2])
    axes = list(range(len(lead)))
    return tf.reshape(tf.transpose(pairs, axes + [len(lead) + 1, len(lead)]), [*lead, n])


class LinearZeros(Layer):
    """Port of tfops.linear_zeros: zero-initialised dense layer, plus b, times exp(3 * logs)."""

    def __init__(self, in_features: int, out_features: int, logscale_factor: float = LOGSCALE_FACTOR,
                 **kwargs):
        super().__init__(**kwargs)
        self.logscale_factor = logscale_factor
        self.W = self.add_array("W", np.zeros([in_features, out_features]))
        self.b = self.add_array("b", np.zeros([1, out_features]))
        self.logs = self.add_array("logs", np.zeros([1, out_features]))

    def call(self, x):
        return (tf.matmul(x, self.W) + self.b) * tf.exp(self.logs * self.logscale_factor)
