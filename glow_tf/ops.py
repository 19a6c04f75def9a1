"""Stateless tensor helpers ported from openai/glow's tfops.py. No variables live here."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

LOG_2PI = math.log(2.0 * math.pi)


def squeeze2d(x, factor: int = 2):
    """Port of tfops.squeeze2d: [B, H, W, C] -> [B, H/f, W/f, C*f*f], channel-major.

    The output channel index is c*f*f + dy*f + dx. `tf.nn.space_to_depth` orders channels as
    (dy*f + dx)*C + c instead: a valid but different model, incompatible with the original's weights.
    """
    if factor == 1:
        return x
    _, h, w, c = x.shape
    if h % factor or w % factor:
        raise ValueError(f"squeeze2d needs H and W divisible by {factor}, got {h}x{w}")
    x = tf.reshape(x, [-1, h // factor, factor, w // factor, factor, c])
    x = tf.transpose(x, [0, 1, 3, 5, 2, 4])  # [B, H/f, W/f, C, f(dy), f(dx)]
    return tf.reshape(x, [-1, h // factor, w // factor, c * factor * factor])


def unsqueeze2d(x, factor: int = 2):
    """Port of tfops.unsqueeze2d, the exact inverse of squeeze2d."""
    if factor == 1:
        return x
    _, h, w, c = x.shape
    if c % (factor * factor):
        raise ValueError(f"unsqueeze2d needs C divisible by {factor * factor}, got {c}")
    x = tf.reshape(x, [-1, h, w, c // factor ** 2, factor, factor])
    x = tf.transpose(x, [0, 1, 4, 2, 5, 3])  # [B, H, f(dy), W, f(dx), C/f^2]
    return tf.reshape(x, [-1, h * factor, w * factor, c // factor ** 2])


def flatten_sum(x):
    """Sum over every axis but the batch axis: [B, ...] -> [B]."""
    return tf.reduce_sum(x, axis=list(range(1, len(x.shape))))


def gaussian_logp(x, mean, logs):
    """Elementwise log N(x; mean, exp(logs)^2), as tfops.gaussian_diag(...).logps."""
    return -0.5 * (LOG_2PI + 2.0 * logs + tf.square(x - mean) * tf.exp(-2.0 * logs))


def split_channels(h):
    """First and second half of the channel axis (z1 conditions z2 in coupling and split2d).

    tf.split rather than slicing: its gradient is a concat, where a strided slice's is a scatter.
    """
    return tf.split(h, 2, axis=-1)


def per_example(value, dtype):
    """A scalar, or a [B] vector as [B, 1, 1, 1], to scale [B, H, W, C] tensors per example."""
    value = tf.cast(value, dtype)
    return tf.reshape(value, [-1, 1, 1, 1]) if value.shape.rank == 1 else value


def edge_indicator(height: int, width: int, dtype) -> tf.Tensor:
    """The extra input channel of tfops' edge-bias padding: [1, H+2, W+2, 1], 1 on the border, 0 inside.

    The original concatenates it to the zero-padded input of every 3x3 convolution (nn._edge_pad does so
    for narrow inputs); for wide ones nn.edge_term computes the border channel's contribution apart.
    """
    return tf.constant(edge_indicator_array(height, width)[None, :, :, None], dtype=dtype)


def edge_indicator_array(height: int, width: int) -> np.ndarray:
    """edge_indicator as a NumPy [H+2, W+2] array."""
    indicator = np.ones([height + 2, width + 2], dtype=np.float32)
    indicator[1:-1, 1:-1] = 0.0
    return indicator


def preprocess(x, n_bits_x: int):
    """uint8 image -> float32 in [-0.5, 0.5 - 1/n_bins] (model.py preprocess), without noise."""
    x = tf.cast(x, tf.float32)
    if n_bits_x < 8:
        x = tf.floor(x / 2 ** (8 - n_bits_x))
    return x / 2 ** n_bits_x - 0.5


def postprocess(x, n_bits_x: int):
    """Float image -> uint8 (model.py postprocess): floor to n_bits_x levels, scaled back to [0, 255]."""
    n_bins = 2 ** n_bits_x
    x = tf.floor((x + 0.5) * n_bins) * (256.0 / n_bins)
    return tf.cast(tf.clip_by_value(x, 0.0, 255.0), tf.uint8)
