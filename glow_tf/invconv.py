"""Channel permutations of a flow step (paper §3.2; openai/glow model.py, revnet2d_step and
invertible_1x1_conv).

--flow_permutation 0: ReversePermute, 1: ShufflePermute, 2: InvConv1x1, 3: InvConv1x1LU.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import tensorflow as tf

from glow_tf.base import FlowLayer, weight_work
from glow_tf.hparams import INVCONV, INVCONV_LU, REVERSE, SHUFFLE
from glow_tf.nn import pointwise


def random_rotation(channels: int, rng: np.random.Generator) -> np.ndarray:
    """The original's init: Q of the QR decomposition of a Gaussian matrix (det is +1 or -1)."""
    return np.linalg.qr(rng.standard_normal((channels, channels)))[0]


def _spatial_size(x):
    return tf.cast(x.shape[1] * x.shape[2], tf.float64)


@tf.custom_gradient
def log_abs_det(w):
    """log|det w| of a square matrix, as sum(log|diag R|) of w = QR (|det Q| = 1).

    QR rather than slogdet: XLA has kernels for QR and triangular solves but not for
    LogMatrixDeterminant, so a training step that uses this can be jit-compiled. The gradient,
    d log|det w| / dw = w^-T = Q R^-T, is one triangular solve with the factors already at hand,
    where differentiating through the QR decomposition costs about twenty operations.
    """
    q, r = tf.linalg.qr(w, full_matrices=False)
    value = tf.reduce_sum(tf.math.log(tf.abs(tf.linalg.diag_part(r))))

    def grad(upstream):
        # w^-1 = R^-1 Q^T, so w^-T = (R^-1 Q^T)^T.
        w_inv = tf.linalg.triangular_solve(r, tf.transpose(q), lower=False)
        return upstream * tf.transpose(w_inv)

    return value, grad


class ReversePermute(FlowLayer):
    """h[..., ::-1]; no parameters, log-determinant 0."""

    def call(self, x, logdet):
        return tf.reverse(x, axis=[-1]), logdet

    def reverse(self, z, logdet):
        return tf.reverse(z, axis=[-1]), logdet


class ShufflePermute(FlowLayer):
    """A fixed random channel permutation, stored with its inverse as non-trainable int32 weights.

    The original seeded NumPy with hash(scope name), which Python 3 randomises per process; it stayed
    consistent only through the rank-0 broadcast and the checkpoint. Here the permutation comes from
    the model's seeded generator, so it is reproducible as well as stored.
    """

    def __init__(self, channels: int, rng=None, **kwargs):
        super().__init__(**kwargs)
        perm = (rng if rng is not None else np.random.default_rng()).permutation(channels)
        self.indices = self.add_array("indices", perm, trainable=False, dtype="int32")
        self.indices_inverse = self.add_array("indices_inverse", np.argsort(perm), trainable=False,
                                              dtype="int32")

    def call(self, x, logdet):
        return tf.gather(x, self.indices, axis=-1), logdet

    def reverse(self, z, logdet):
        return tf.gather(z, self.indices_inverse, axis=-1), logdet


class InvConv1x1(FlowLayer):
    """Invertible 1x1 convolution with a free c x c matrix W (openai invertible_1x1_conv).

    log-det = H * W * log|det W|, computed in float64 as the original did. The reverse convolves with
    W^-1; we invert in float64 (the original used float32), which only makes decoding more exact.
    """

    def __init__(self, channels: int, rng=None, **kwargs):
        super().__init__(**kwargs)
        rng = rng if rng is not None else np.random.default_rng()
        self.W = self.add_array("W", random_rotation(channels, rng))

    def weight_matrix(self):
        """W in float64."""
        return tf.cast(self.W, tf.float64)

    def log_abs_det(self):
        """log|det W| in float64 (openai/glow model.py, invertible_1x1_conv: log|matrix_determinant|
        of W cast to float64)."""
        return log_abs_det(self.weight_matrix())

    def _dlogdet(self, x):
        return tf.cast(_spatial_size(x) * weight_work(self, "log_abs_det", self.log_abs_det), x.dtype)

    def call(self, x, logdet):
        w = weight_work(self, ("w", x.dtype), lambda: tf.cast(self.weight_matrix(), x.dtype))
        return pointwise(x, w), logdet + self._dlogdet(x)

    def reverse(self, z, logdet):
        w_inv = tf.cast(tf.linalg.inv(self.weight_matrix()), z.dtype)
        return pointwise(z, w_inv), logdet - self._dlogdet(z)


class InvConv1x1LU(InvConv1x1):
    """The LU-decomposed 1x1 convolution of paper §3.2: W = P L (U + diag(sign_s * exp(log_s))).

    The original implemented it but disabled it with a hard-coded `if True:`; here it is
    `--flow_permutation 3`. P and sign_s are fixed; L (unit lower), U (strictly upper) and log_s are
    trained, so log|det W| = sum(log_s) costs O(c) instead of O(c^3). Names follow the original
    (P, L, U, sign_S, log_S), so its checkpoints are not interchangeable with InvConv1x1's W.
    """

    def __init__(self, channels: int, rng=None, **kwargs):
        FlowLayer.__init__(self, **kwargs)  # not InvConv1x1's: this parameterisation has no free W
        rng = rng if rng is not None else np.random.default_rng()
        p, lower, upper, sign_s, log_s = self.decompose(random_rotation(channels, rng))
        self.P = self.add_array("P", p, trainable=False)
        self.L = self.add_array("L", lower)
        self.U = self.add_array("U", upper)
        self.sign_S = self.add_array("sign_S", sign_s, trainable=False)
        self.log_S = self.add_array("log_S", log_s)
        self._lower_mask = np.tril(np.ones([channels, channels]), -1)

    @staticmethod
    def decompose(w: np.ndarray):
        """(P, L, U_strict, sign_s, log_s) with W = P @ (L*mask + I) @ (U_strict + diag(sign_s*exp(log_s)))."""
        p, lower, upper = scipy.linalg.lu(np.asarray(w, np.float64))
        s = np.diag(upper)
        return p, lower, np.triu(upper, k=1), np.sign(s), np.log(np.abs(s))

    def set_from_matrix(self, w: np.ndarray):
        """Load an invertible matrix W (e.g. an InvConv1x1's) into this parameterisation."""
        for var, value in zip((self.P, self.L, self.U, self.sign_S, self.log_S), self.decompose(w)):
            var.assign(value)

    def weight_matrix(self):
        mask = tf.constant(self._lower_mask, tf.float64)
        lower = tf.cast(self.L, tf.float64) * mask + tf.eye(mask.shape[0], dtype=tf.float64)
        log_s = tf.cast(self.log_S, tf.float64)
        upper = (tf.cast(self.U, tf.float64) * tf.transpose(mask)
                 + tf.linalg.diag(tf.cast(self.sign_S, tf.float64) * tf.exp(log_s)))
        return tf.cast(self.P, tf.float64) @ lower @ upper

    def log_abs_det(self):
        return tf.reduce_sum(tf.cast(self.log_S, tf.float64))


def make_permutation(code: int, channels: int, rng=None, **kwargs) -> FlowLayer:
    """The permutation layer for a --flow_permutation code."""
    if code == REVERSE:
        return ReversePermute(**kwargs)
    if code == SHUFFLE:
        return ShufflePermute(channels, rng=rng, **kwargs)
    if code == INVCONV:
        return InvConv1x1(channels, rng=rng, **kwargs)
    if code == INVCONV_LU:
        return InvConv1x1LU(channels, rng=rng, **kwargs)
    raise ValueError(f"flow_permutation={code!r} is not one of 0 (reverse), 1 (shuffle), 2 (1x1 conv), "
                     f"3 (1x1 conv, LU)")
