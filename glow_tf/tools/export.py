"""Export a trained Glow as a TensorFlow SavedModel that plain TensorFlow can run without glow_tf.

    python -m glow_tf.tools.export logs/cifar10 --output exported/cifar10
    python -c "import tensorflow as tf; m = tf.saved_model.load('exported/cifar10'); \\
               x = m.sample(tf.fill([4], 0.7), tf.zeros([4], tf.int32))"

This replaces the demo's frozen graphs (graph_optimized.pb / graph_unoptimized.pb of openai/glow demo/), which need
TF1 and, for the optimised one, the blocksparse custom ops. The SavedModel holds the weights and these
tf.functions (also serving signatures of the same names, with outputs "z" and "x"):

  encode(x uint8 [B, H, W, C], y int32 [B]) -> z float32 [B, D]
      flat standardised eps [eps_0, ..., eps_top], with fresh dequantisation noise (as the original);
  encode_with_noise(x, y, noise float32 [B, H, W, C]) -> z
      the same with the noise given, as a fraction of one bin in [0, 1): deterministic, for testing;
  decode(z float32 [B, D], y int32 [B]) -> x uint8 [B, H, W, C]        decode(encode(x)) == x;
  sample(temperature float32 [B], y int32 [B]) -> x uint8 [B, H, W, C]  per-example temperature.

y is the class for ycond models; unconditional models ignore it (pass zeros). The variables
`image_shape`, `n_bits_x`, `n_classes` and `eps_shapes` describe the model.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Optional, Sequence

import numpy as np

from glow_common.errors import run_cli
from glow_tf.errors import ConfigError
from glow_tf.tools import common

PROG = "python -m glow_tf.tools.export"


def _module_class():
    import tensorflow as tf

    from glow_tf import ops

    class GlowModule(tf.Module):
        """The exported object: a Glow's variables and its encode/decode/sample as tf.functions."""

        def __init__(self, model):
            super().__init__(name="glow")
            hps = model.hps
            height, width, channels = hps.image_shape
            # The functions close over the Keras model, but only its variables are attributes: Keras
            # objects stay out of the SavedModel, so loading it needs TensorFlow alone.
            self.model_variables = list(model.variables)
            self.image_shape = tf.Variable(hps.image_shape, trainable=False, dtype=tf.int32)
            self.n_bits_x = tf.Variable(hps.n_bits_x, trainable=False, dtype=tf.int32)
            self.n_classes = tf.Variable(hps.n_classes, trainable=False, dtype=tf.int32)
            self.eps_shapes = tf.Variable(np.asarray(model.eps_shapes), trainable=False, dtype=tf.int32)

            def encode_with_noise(x, y, noise):
                # The model's own dequantisation, with U(0, 1/n_bins) given as noise / n_bins.
                z = tf.cast(ops.preprocess(x, hps.n_bits_x), tf.float32) + noise / hps.n_bins
                return model.flatten_eps(model.encoder(z, y)[2])

            def encode(x, y):
                return encode_with_noise(x, y, tf.random.uniform(tf.shape(x), 0.0, 1.0))

            def decode(z, y):
                return ops.postprocess(model.decoder(y, eps=model.unflatten_eps(z)), hps.n_bits_x)

            def sample(temperature, y):
                return ops.postprocess(model.decoder(y, temperature=temperature), hps.n_bits_x)

            x = tf.TensorSpec([None, height, width, channels], tf.uint8, name="x")
            y = tf.TensorSpec([None], tf.int32, name="y")
            noise = tf.TensorSpec([None, height, width, channels], tf.float32, name="noise")
            z = tf.TensorSpec([None, model.n_dims], tf.float32, name="z")
            temperature = tf.TensorSpec([None], tf.float32, name="temperature")
            self.encode = tf.function(encode, input_signature=[x, y])
            self.encode_with_noise = tf.function(encode_with_noise, input_signature=[x, y, noise])
            self.decode = tf.function(decode, input_signature=[z, y])
            self.sample = tf.function(sample, input_signature=[temperature, y])

        def signatures(self) -> dict:
            """Serving signatures with named outputs, for tools that read signatures (e.g. TF Serving)."""
            def named(fn, key):
                return tf.function(lambda *args: {key: fn(*args)},
                                   input_signature=fn.input_signature).get_concrete_function()

            return {"encode": named(self.encode, "z"), "encode_with_noise": named(self.encode_with_noise, "z"),
                    "decode": named(self.decode, "x"), "sample": named(self.sample, "x")}

    return GlowModule


def export(model, path: str):
    """Write `model` as a SavedModel at `path`; returns the exported module."""
    import tensorflow as tf

    module = _module_class()(model)
    tf.saved_model.save(module, path, signatures=module.signatures())
    return module


def check_export(model, path: str, seed: int = 0) -> None:
    """Reload the SavedModel and compare decode and temperature-0 sampling with the Keras model."""
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    rng = np.random.default_rng(seed)
    n = 2
    y = tf.zeros([n], tf.int32)
    z = tf.constant(rng.standard_normal([n, model.n_dims]) * 0.5, tf.float32)
    pairs = {"decode": (loaded.decode(z, y), model.decode(z, y)),
             "sample at temperature 0": (loaded.sample(tf.zeros([n]), y), model.sample(n, 0.0, y))}
    for what, (ours, theirs) in pairs.items():
        if not np.array_equal(np.asarray(ours), np.asarray(theirs)):
            raise ConfigError(f"the reloaded SavedModel's {what} differs from the model's; the export is broken")


def main(argv: Optional[Sequence[str]] = None):
    p = common.parser(PROG, __doc__)
    common.add_checkpoint_args(p)
    p.add_argument("--output", required=True, help="SavedModel folder to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing, non-empty --output")
    p.add_argument("--no_check", action="store_true",
                   help="skip reloading the export and comparing its decode and sample with the model")
    args = p.parse_args(argv)
    if os.path.exists(args.output) and not (os.path.isdir(args.output) and not os.listdir(args.output)):
        if not args.overwrite:
            raise ConfigError(f"--output {args.output} exists and is not empty; pass --overwrite to replace it")
        if not os.path.isdir(args.output):
            raise ConfigError(f"--output {args.output} is a file, not a folder")
    model, _, _ = common.load(args)
    tmp = args.output.rstrip("/") + f".tmp{os.getpid()}"
    try:
        export(model, tmp)
        if not args.no_check:
            check_export(model, tmp, args.seed)
        if os.path.exists(args.output):
            shutil.rmtree(args.output)
        os.replace(tmp, args.output)  # a reader never sees half an export
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote SavedModel {args.output} (encode, encode_with_noise, decode, sample)")
    return args.output


if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
