"""The Glow model (openai/glow model.py, model): preprocessing, the multi-scale flow, priors,
encode/decode/sample.

Encoder, for L = n_levels and K = depth (openai/glow model.py, codec's encoder):
    x uint8 -> preprocess + U(0, 1/n_bins) noise -> squeeze2d          # [B, H/2, W/2, 4C]
    for level i: K x FlowStep; if i < L-1: Split2d (scores half, squeezes the rest)
    top prior scores z_top                                              # [B, H/2^L, W/2^L, ...]
`objective` starts at -log(n_bins) * D (the density is over bins of width 1/n_bins) and collects every
log-determinant and log-prior term; bits_x = -objective / (D ln 2), in bits per subpixel of the
n_bits_x-quantised image.
"""

from __future__ import annotations

import contextlib
import math
import os

import numpy as np
import tensorflow as tf

from glow_tf import ops
from glow_tf.actnorm import ActNorm, ddi, ddi_active
from glow_tf.base import FlowSequence, shared_weight_work
from glow_tf.errors import ConfigError
from glow_tf.hparams import HParams
from glow_tf.multiscale import Split2d
from glow_tf.priors import Classifier, TopPrior
from glow_tf.step import FlowStep

keras = tf.keras


def _threads_setting(name: str, env: str) -> int:
    """A TF thread-pool size: set through tf.config.threading, else through its environment variable
    (which TF reads, but tf.config.threading does not report), else 0 (TF's default)."""
    value = getattr(tf.config.threading, f"get_{name}_parallelism_threads")()
    if value:
        return value
    try:
        return max(0, int(os.environ.get(env, "0")))
    except ValueError:
        return 0


def concurrent_batch_parts() -> int:
    """Sub-batches the encoder runs side by side: one per inter-op thread when TF runs every op on one
    thread (an intra-op pool of 1, e.g. TF_NUM_INTRAOP_THREADS=1) on CPUs; 1 otherwise.

    The layers of a flow step depend on one another, so a batch offers little parallelism between
    operations, and the convolutions at these sizes spread poorly over several threads. Independent
    sub-batches give the inter-op threads independent work, one core each.
    """
    if tf.config.list_logical_devices("GPU") or _threads_setting("intra_op", "TF_NUM_INTRAOP_THREADS") != 1:
        return 1
    inter = _threads_setting("inter_op", "TF_NUM_INTEROP_THREADS")
    return inter or len(os.sched_getaffinity(0))


# cuDNN's bfloat16 convolutions need compute capability 8.0 (Ampere) or newer.
BFLOAT16_MIN_CAPABILITY = (8, 0)


def check_nn_dtype_on_gpus(nn_dtype: str) -> None:
    """A ConfigError when a visible GPU cannot run the coupling networks in `nn_dtype` (bfloat16 before
    Ampere), rather than a cuDNN failure inside the first step."""
    if nn_dtype != "bfloat16":
        return
    for gpu in tf.config.get_visible_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        capability = tuple(details.get("compute_capability") or ())
        if capability and capability < BFLOAT16_MIN_CAPABILITY:
            name = details.get("device_name", gpu.name)
            raise ConfigError(f"--nn_dtype bfloat16 needs a GPU of compute capability 8.0 (Ampere) or newer, and "
                              f"{name} is {capability[0]}.{capability[1]}; use --nn_dtype float16 or float32")


class Glow(keras.Model):
    """Glow for images of hps.image_shape. Layers and weights are created in the constructor."""

    def __init__(self, hps: HParams, **kwargs):
        check_nn_dtype_on_gpus(hps.nn_dtype)
        super().__init__(**kwargs)
        self.hps = hps
        rng = np.random.default_rng(hps.seed)
        sub = {"dtype": self.dtype_policy}  # float64 models serve the numerical tests
        conv_dtype = None if hps.nn_dtype == "float32" else hps.nn_dtype
        height, width, channels = hps.image_shape
        shape = (height // 2, width // 2, 4 * channels)  # after the squeeze before level 0
        self.levels, self.splits, self.eps_shapes = [], [], []
        for i in range(hps.n_levels):
            steps = [FlowStep(shape[2], hps.width, hps.flow_permutation, hps.flow_coupling, rng=rng,
                              conv_dtype=conv_dtype, name=f"level{i}_step{j}", **sub) for j in range(hps.depth)]
            self.levels.append(FlowSequence(steps, name=f"level{i}", **sub))
            setattr(self, f"level{i}", self.levels[-1])  # attributes, for tf.train.Checkpoint
            if i < hps.n_levels - 1:
                self.splits.append(Split2d(shape[2], name=f"pool{i}", **sub))
                setattr(self, f"pool{i}", self.splits[-1])
                self.eps_shapes.append((shape[0], shape[1], shape[2] // 2))
                shape = (shape[0] // 2, shape[1] // 2, shape[2] * 2)
        self.top_shape = shape
        self.eps_shapes.append(shape)
        self.prior = TopPrior(shape, learntop=hps.learntop, ycond=hps.ycond, n_y=hps.n_classes,
                              name="prior", **sub)
        self.classifier = (Classifier(shape[2], hps.n_classes, name="classifier", **sub)
                           if hps.ycond and hps.weight_y > 0 else None)
        self.n_dims = height * width * channels
        self.batch_parts = concurrent_batch_parts()
        self.built = True
        self._sample_fn = tf.function(self._sample, reduce_retracing=True)
        self._encode_fn = tf.function(self._encode_flat, reduce_retracing=True)
        self._decode_fn = tf.function(self._decode_flat, reduce_retracing=True)
        self._bits_fn = tf.function(self._bits_x, reduce_retracing=True)

    # ----------------------------------------------------------------------------------------- inputs
    def _check_images(self, x):
        if x.dtype != tf.uint8:
            raise ValueError(f"images must be uint8 in [0, 255], got dtype {x.dtype.name}; "
                             f"the model quantises to n_bits_x={self.hps.n_bits_x} itself")
        if tuple(x.shape[1:]) != tuple(self.hps.image_shape):
            raise ValueError(f"images of shape {tuple(x.shape[1:])} do not match the model's "
                             f"(H, W, C) = {tuple(self.hps.image_shape)}")

    def _labels(self, y, batch):
        if y is None:
            return tf.zeros([batch], tf.int32)
        return tf.cast(tf.convert_to_tensor(y), tf.int32)

    def dequantize(self, x, seed=None):
        """Preprocess and add U(0, 1/n_bins) noise, drawn afresh on every pass as in the original.

        With `seed`, a shape [2] integer tensor, the noise is a pure function of it
        (tf.random.stateless_uniform): train.py seeds each step with (rank seed, step), so that a resumed
        run draws the noise the uninterrupted run would have drawn.
        """
        z = tf.cast(ops.preprocess(x, self.hps.n_bits_x), self.compute_dtype)
        bounds = dict(minval=0.0, maxval=1.0 / self.hps.n_bins, dtype=z.dtype)
        if seed is None:
            return z + tf.random.uniform(tf.shape(z), **bounds)
        return z + tf.random.stateless_uniform(tf.shape(z), seed, **bounds)

    # ---------------------------------------------------------------------------------------- encoder
    def encoder(self, x, y, checkpoint: bool = False):
        """Continuous x in [-0.5, 0.5) -> (z_top, objective [B], [eps_0, ..., eps_top]).

        With `checkpoint`, each flow step runs under tf.recompute_grad: only the step's inputs are kept
        for the backward pass, like the original's 'checkpoints' collection (openai/glow model.py,
        revnet2d, which registers every step's input for memory_saving_gradients.py).

        When `batch_parts` > 1 (see concurrent_batch_parts) and the batch size is known, the batch is
        encoded as that many independent sub-batches, whose results are concatenated: every example's
        values are those of the whole batch (each is computed on its own), up to float32 round-off.
        Data-dependent init always sees the whole batch.
        """
        batch = x.shape[0]
        parts = min(self.batch_parts, batch or 1)
        if parts <= 1 or ddi_active():
            return self._encode_batch(x, y, checkpoint)
        sizes = [batch // parts + (i < batch % parts) for i in range(parts)]
        # The sub-batches share the work on the weights, except under recompute_grad (see base).
        with contextlib.nullcontext() if checkpoint else shared_weight_work():
            results = [self._encode_batch(xi, yi, checkpoint)
                       for xi, yi in zip(tf.split(x, sizes), tf.split(y, sizes))]
        z, objective, eps = zip(*results)
        return (tf.concat(z, 0), tf.concat(objective, 0),
                [tf.concat(level, 0) for level in zip(*eps)])

    def _encode_batch(self, x, y, checkpoint):
        y_onehot = tf.one_hot(y, self.hps.n_classes, dtype=x.dtype)
        objective = tf.fill([tf.shape(x)[0]], tf.constant(-math.log(self.hps.n_bins) * self.n_dims,
                                                          x.dtype))
        z = ops.squeeze2d(x)  # [B, H/2, W/2, 4C]
        eps = []
        for i, level in enumerate(self.levels):
            for step in level.flows:
                z, objective = tf.recompute_grad(step)(z, objective) if checkpoint else step(z, objective)
            if i < len(self.splits):
                z, objective, eps_i = self.splits[i](z, objective)
                eps.append(eps_i)
        logp, eps_top = self.prior.log_prob(z, y_onehot)
        return z, objective + logp, eps + [eps_top]

    def objective_terms(self, x, y=None, training: bool = True, noise_seed=None):
        """Per-example [B] tensors 'loss', 'bits_x', 'bits_y', 'pred_loss' for uint8 images x.

        loss = bits_x + weight_y * bits_y, the original's local_loss. Gradient checkpointing is used
        when hps.gradient_checkpointing and `training`. `noise_seed` seeds the dequantisation noise
        (see `dequantize`); without it the noise comes from TF's global random state.
        """
        self._check_images(x)
        y = self._labels(y, tf.shape(x)[0])
        checkpoint = bool(self.hps.gradient_checkpointing) and training
        z, objective, _ = self.encoder(self.dequantize(x, noise_seed), y, checkpoint=checkpoint)
        bits_x = -objective / (math.log(2.0) * self.n_dims)
        if self.classifier is not None:
            bits_y, pred_loss = self.classifier(z, y)
        else:
            bits_y, pred_loss = tf.zeros_like(bits_x), tf.ones_like(bits_x)
        return {"loss": bits_x + self.hps.weight_y * bits_y, "bits_x": bits_x, "bits_y": bits_y,
                "pred_loss": pred_loss}

    def call(self, x, y=None, training=False):
        return self.objective_terms(x, y, training=bool(training))

    def _bits_x(self, x, y):
        return self.objective_terms(x, y, training=False)["bits_x"]

    def bits_x(self, x, y=None):
        """Bits per subpixel [B] of uint8 images, including the -log(n_bins) * D term (one noise draw)."""
        x = tf.convert_to_tensor(x)
        self._check_images(x)
        return self._bits_fn(x, self._labels(y, x.shape[0]))

    # ------------------------------------------------------------------------------------------- init
    @property
    def initialized(self) -> bool:
        """True once every ActNorm has had its data-dependent init (or was restored)."""
        flags = [layer.initialized for layer in self._flatten_layers() if isinstance(layer, ActNorm)]
        return all(bool(f.numpy()) for f in flags)

    def initialize(self, x, y=None):
        """Data-dependent init from a batch of uint8 images (the original's init=True pass), eagerly.

        Each ActNorm that is not yet initialised sets itself from the statistics of its input, in one
        forward pass through the whole network. Already initialised layers are left alone.
        """
        x = tf.convert_to_tensor(x)
        self._check_images(x)
        with ddi():
            self.encoder(self.dequantize(x), self._labels(y, x.shape[0]))

    # ---------------------------------------------------------------------------------------- decoder
    def decoder(self, y, eps=None, temperature=None):
        """eps list (or None entries to sample at `temperature`) -> continuous x [B, H, W, C]."""
        y_onehot = tf.one_hot(y, self.hps.n_classes, dtype=self.compute_dtype)
        eps = eps if eps is not None else [None] * len(self.eps_shapes)
        z = self.prior.sample(y_onehot, eps=eps[-1], temperature=temperature)
        zero = tf.zeros([tf.shape(y)[0]], self.compute_dtype)
        for i in reversed(range(len(self.levels))):
            if i < len(self.splits):
                z = self.splits[i].reverse(z, eps=eps[i], temperature=temperature)
            z, _ = self.levels[i].reverse(z, zero)
        return ops.unsqueeze2d(z)

    # ------------------------------------------------------------------------------------- public API
    def flatten_eps(self, eps):
        return tf.concat([tf.reshape(e, [tf.shape(e)[0], -1]) for e in eps], axis=1)

    def unflatten_eps(self, flat):
        sizes = [int(np.prod(s)) for s in self.eps_shapes]
        parts = tf.split(flat, sizes, axis=1)
        return [tf.reshape(p, [-1, *s]) for p, s in zip(parts, self.eps_shapes)]

    def _encode_flat(self, x, y, seed=None):
        _, _, eps = self.encoder(self.dequantize(x, seed), y)
        return self.flatten_eps(eps)

    def _decode_flat(self, flat, y):
        """(uint8 images, finite [B]): whether each image's continuous decode is finite, since a trained
        affine flow can overflow on the way back for inputs far from its data (openai/glow issues #40,
        #82), and postprocess turns a non-finite value into a black subpixel without a word."""
        x = self.decoder(y, eps=self.unflatten_eps(flat))
        return ops.postprocess(x, self.hps.n_bits_x), tf.reduce_all(tf.math.is_finite(x), axis=[1, 2, 3])

    def _sample(self, y, temperature):
        return ops.postprocess(self.decoder(y, temperature=temperature), self.hps.n_bits_x)

    def encode(self, x, y=None, seed=None):
        """uint8 images -> [B, D] flat standardised eps [eps_0, ..., eps_top]; the dequantisation noise is
        fresh, or a pure function of `seed` (a [2] integer tensor, see dequantize)."""
        x = tf.convert_to_tensor(x)
        self._check_images(x)
        labels = self._labels(y, x.shape[0])
        return self._encode_fn(x, labels) if seed is None else self._encode_fn(x, labels, seed)

    def decode(self, z, y=None, with_finite: bool = False):
        """[B, D] flat eps (as from `encode`) -> uint8 images; decode(encode(x)) == x. With `with_finite`,
        (images, finite [B] bool): False where the decode overflowed (those images are not meaningful)."""
        z = tf.cast(z, self.compute_dtype)
        if z.shape.rank != 2 or z.shape[1] != self.n_dims:
            raise ValueError(f"decode expects flat eps of shape [B, {self.n_dims}], got {z.shape}")
        images, finite = self._decode_fn(z, self._labels(y, z.shape[0]))
        return (images, finite) if with_finite else images

    def sample(self, n: int, temperature=0.7, y=None):
        """n uint8 samples; temperature is a scalar or a per-example [n] vector (0 gives the prior means)."""
        temperature = tf.broadcast_to(tf.cast(temperature, self.compute_dtype), [n])
        return self._sample_fn(self._labels(y, n), temperature)
