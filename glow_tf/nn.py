"""Non-invertible layers used inside couplings and priors (openai/glow tfops.py: conv2d, conv2d_zeros,
linear_zeros).

Every 3x3 convolution uses the original's edge-bias padding (tfops.py, add_edge_padding): the
zero-padded input gets one extra channel that is 1 on the padded border and 0 inside, so the kernel has
C_in + 1 input channels (`W` keeps the original's shape [3, 3, C_in + 1, C_out], which the TF1
checkpoint converter relies on). A convolution is linear in its input channels, so for a wide input
this is computed as conv(x, W[:, :, :C_in]) + conv(border, W[:, :, C_in:]) (see `edge_term`).

Each layer computes in the dtype of its input (weights are cast to it), so a coupling network can run
in bfloat16 from its first layer to its last while its weights stay float32 (`CouplingNN`).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from glow_tf import ops
from glow_tf.actnorm import ActNorm, ddi_active
from glow_tf.base import Layer, weight_work
from glow_tf.hparams import LOGSCALE_FACTOR


def _rng(rng):
    return rng if rng is not None else np.random.default_rng()


def _edge_pad(x):
    """tfops.add_edge_padding for 3x3: zero-pad by 1 and append the border channel."""
    _, height, width, _ = x.shape
    border = ops.edge_indicator(height, width, x.dtype)
    padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    return tf.concat([padded, tf.broadcast_to(border, [tf.shape(x)[0], height + 2, width + 2, 1])], -1)


def _border_patches(height: int, width: int) -> np.ndarray:
    """[H*W, 9]: the 3x3 neighbourhood of every output position in the border channel (taps dy, dx)."""
    border = ops.edge_indicator_array(height, width)
    taps = [border[dy:dy + height, dx:dx + width] for dy in range(3) for dx in range(3)]
    return np.stack(taps, axis=-1).reshape(height * width, 9)


def edge_term(height: int, width: int, kernel_border):
    """conv(border channel, kernel_border) as [1, H, W, C_out], for a [3, 3, 1, C_out] kernel.

    The border channel is a constant, so its 3x3 neighbourhoods are too: the term is one small matmul
    (whose gradient is one more), where a convolution of the [1, H+2, W+2, 1] channel costs a
    convolution and its filter gradient, each dominated by fixed per-call costs at these sizes.
    """
    c_out = kernel_border.shape[-1]
    patches = tf.constant(_border_patches(height, width), kernel_border.dtype)
    return tf.reshape(tf.matmul(patches, tf.reshape(kernel_border, [9, c_out])), [1, height, width, c_out])


def pointwise(x, kernel):
    """1x1 convolution with a [C_in, C_out] matrix, as a matmul over all positions.

    Same values as tf.nn.conv2d with a [1, 1, C_in, C_out] kernel; a matmul's gradients are two more
    matmuls, where a 1x1 convolution's filter gradient is a slower general convolution kernel.
    """
    c_in, c_out = kernel.shape
    out = tf.matmul(tf.reshape(x, [-1, c_in]), kernel)
    return tf.reshape(out, [-1, *x.shape[1:-1], c_out])


class _EdgePaddedConv(Layer):
    """Shared kernel handling for the edge-padded convolutions.

    Subclasses build their kernels inside `with self.after(x)`. In a tf.function the graph executor runs
    an op as soon as its inputs exist, and the kernel work (the variable read, the actnorm folded in,
    the bf16 copy) has no input from the data: without the ordering every layer's copy is made when the
    graph starts and held until the layer runs, a second copy of all coupling weights in the forward pass
    and again in a checkpointed backward pass (bench/train_step.py measures the step's tensor memory).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, init_std, rng=None, **kwargs):
        # autocast=False: Keras would cast a bfloat16 input back to the layer's float32 before `call`.
        super().__init__(autocast=False, **kwargs)
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

    def convolve(self, x):
        """The edge-padded convolution of x with W, without bias, in the layer's dtype.

        The convolution itself runs in x's dtype (bfloat16 in a bfloat16 coupling network); the border
        term, which does not depend on x, is added in the layer's dtype.
        """
        if self.kernel_size == 1:
            kernel = weight_work(self, ("kernel", x.dtype), lambda: tf.reshape(
                tf.cast(self.W, x.dtype), [self.in_channels, self.out_channels]))
            return tf.cast(pointwise(x, kernel), self.compute_dtype)

        def kernels():
            # tf.split, not slicing: a slice's gradient is a StridedSliceGrad, the split's a cheap concat.
            kernel_x, kernel_border = tf.split(self.W, [self.in_channels, 1], axis=2)
            return tf.cast(kernel_x, x.dtype), edge_term(x.shape[1], x.shape[2], kernel_border)

        kernel_x, edge = weight_work(self, ("kernels", x.dtype, x.shape[1], x.shape[2]), kernels)
        return tf.cast(tf.nn.conv2d(x, kernel_x, strides=1, padding="SAME"), self.compute_dtype) + edge


class Conv2D(_EdgePaddedConv):
    """Port of tfops.conv2d with do_actnorm=True: W ~ N(0, 0.05), no bias, ActNorm (with DDI) instead.

    Computes in the dtype of its input; the output has that dtype too.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, rng=None, relu=False,
                 **kwargs):
        super().__init__(in_channels, out_channels, kernel_size, init_std=0.05, rng=rng, **kwargs)
        self.actnorm = ActNorm(out_channels, **self.sublayer_kwargs())
        self.relu = relu  # the ReLU that follows the actnorm in the coupling network

    def call(self, x):
        with self.after(x):
            return self._call(x)

    def _call(self, x):
        if ddi_active():  # DDI needs the raw convolution output, and its statistics in the layer's dtype
            out = self.actnorm.normalize(self.convolve(x))
            return tf.cast(tf.nn.relu(out) if self.relu else out, x.dtype)
        # (conv(x, W) + b) * s == conv(x, W * s) + b * s for the per-channel actnorm scale s: folding
        # the actnorm into the kernel and a bias spares two passes over the wide output (and two in the
        # backward pass), and the bias joins the convolution in one oneDNN kernel.
        kernel, bias = weight_work(self, ("folded", x.dtype), lambda: self._folded(x.dtype))
        if self.kernel_size == 3:
            # The input here is narrow (C/2 channels), so the padded copy with its border channel is
            # cheap, and one convolution with the whole kernel does the rest.
            out = tf.nn.conv2d(_edge_pad(x), kernel, strides=1, padding="VALID")
        else:
            out = pointwise(x, tf.reshape(kernel, [self.in_channels, self.out_channels]))
        out = tf.nn.bias_add(out, bias)
        return tf.nn.relu(out) if self.relu else out

    def _folded(self, dtype):
        """(kernel, bias) in `dtype` with the actnorm folded in: W * s and b * s."""
        scale = tf.reshape(tf.exp(self.actnorm.logs * self.actnorm.logscale_factor), [-1])
        kernel = tf.cast(tf.convert_to_tensor(self.W) * scale, dtype)
        return kernel, tf.cast(tf.reshape(self.actnorm.b, [-1]) * scale, dtype)


class Conv2DZeros(_EdgePaddedConv):
    """Port of tfops.conv2d_zeros: zero-initialised 3x3 conv, plus b, times exp(3 * logs).

    The convolution runs in the input's dtype; the bias and scale are applied in the layer's dtype,
    which is also the output's.
    """

    def __init__(self, in_channels: int, out_channels: int, logscale_factor: float = LOGSCALE_FACTOR,
                 **kwargs):
        super().__init__(in_channels, out_channels, 3, init_std=0, **kwargs)
        self.logscale_factor = logscale_factor
        self.b = self.add_array("b", np.zeros([1, 1, 1, out_channels]))
        self.logs = self.add_array("logs", np.zeros([1, out_channels]))

    def call(self, x):
        with self.after(x):
            scale = weight_work(self, "scale", lambda: tf.exp(self.logs * self.logscale_factor))
            return (self.convolve(x) + self.b) * scale

    def interleaved_halves(self, x):
        """(h[..., 0::2], h[..., 1::2]) for h = self(x): the original's interleaved split of the output.

        As an unstack of [..., C/2, 2] (whose gradient is a stack) rather than strided slices (whose
        gradient is a slow scatter); the values are identical.
        """
        h = self(x)
        pairs = tf.reshape(h, [-1, *h.shape[1:-1], self.out_channels // 2, 2])
        return tf.unstack(pairs, 2, axis=-1)


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
