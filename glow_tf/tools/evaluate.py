"""Test-set bits/dim of a trained Glow, with its Monte Carlo error and the model's invertibility error.

    python -m glow_tf.tools.evaluate logs/cifar10 [--draws 4] [--ema]
    horovodrun -np 8 python -m glow_tf.tools.evaluate logs/celeba --problem celeba

The original reported one pass over the validation set with one dequantisation draw per image (train.py).
Bits/dim of a dequantised flow is a Monte Carlo estimate: each draw of the uniform noise gives another
value. This evaluator averages `--draws` draws per image and reports two standard errors:
  * se_draws: of the estimate, from the spread of the per-draw dataset means (shrinks as 1/sqrt(draws));
  * se_images: the test-set sampling error, std over images / sqrt(N), which more draws cannot reduce.
It also reports the reconstruction error of decode(encode(x)) on the same dequantised images: mean and
max |x - x'| on the continuous scale and the fraction of subpixels whose quantised value changes, over the
images whose reconstruction is finite, and how many images decode to inf/NaN (the numerical
non-invertibility of openai/glow issues #40 and #82).
Under horovodrun each rank evaluates its shard and the sums are combined.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from data_loaders.damage import read_batch
from glow_common.errors import run_cli
from glow_common.files import write_json
from glow_tf import flags, ops
from glow_tf.errors import ConfigError
from glow_tf.tools import common
from glow_tf.training.distributed import configure_devices, init_distributed

PROG = "python -m glow_tf.tools.evaluate"

# train.py's flags that say where the validation data is, when it is not where the checkpoint's run read it.
DATA_OVERRIDES = ("problem", "data_dir", "category", "n_test")


def make_eval_fns(model):
    """Traced (bits [B], reconstruction stats) for one batch and one dequantisation draw."""

    @tf.function(reduce_retracing=True)
    def bits(x, y):
        return model.objective_terms(x, y, training=False)["bits_x"]

    @tf.function(reduce_retracing=True)
    def reconstruction(x, y):
        """(sum of per-image mean |x - x'|, max |x - x'|, changed subpixels, images) over the images
        whose reconstruction is finite, and the count of images whose reconstruction is not."""
        xc = model.dequantize(x)
        back = model.decoder(y, eps=model.encoder(xc, y)[2])
        err = tf.abs(back - xc)
        finite = tf.reduce_all(tf.math.is_finite(err), axis=[1, 2, 3])  # [B]
        err = tf.boolean_mask(err, finite)
        quantised = tf.boolean_mask(
            ops.postprocess(back, model.hps.n_bits_x) != ops.postprocess(xc, model.hps.n_bits_x), finite)
        max_err = tf.reduce_max(tf.concat([tf.reshape(err, [-1]), [0.0]], 0))
        return (tf.reduce_sum(tf.reduce_mean(err, axis=[1, 2, 3])), max_err,
                tf.reduce_sum(tf.cast(quantised, tf.float32)), tf.reduce_sum(tf.cast(~finite, tf.float32)))

    return bits, reconstruction


def evaluate(model, dataset, n_batches: Optional[int], draws: int = 1, dist=None, reconstruct: bool = True,
             progress: bool = False, files=(), per_image: Optional[Callable] = None, unit: str = "batch",
             total: Optional[int] = None) -> dict:
    """Bits/dim over `n_batches` batches of `dataset` (None: until it ends), `draws` dequantisation draws
    per image.

    `files`: the TFRecord files `dataset` reads, so that a damaged one is named (data_loaders.read_batch).
    `per_image`: called with every batch's (x, y, bits [B] averaged over the draws) as NumPy arrays, so
    that glow_tf.tools.score gives each image the noise and draws that this function gives it. `unit`:
    what the progress bar counts ("batch", or "image" to count the images of each batch), and `total` how
    many there are if not n_batches.
    """
    if draws < 1:
        raise ValueError(f"draws={draws} must be at least 1")
    bits_fn, recon_fn = make_eval_fns(model)
    draw_sums = np.zeros(draws)
    n_images = sq_sum = recon_sum = recon_max = changed = nonfinite = 0.0
    batches = iter(dataset)
    bar = _progress(n_batches if total is None else total, progress, unit)
    for _ in itertools.count() if n_batches is None else range(n_batches):
        try:
            x, y = read_batch(batches, files, "for evaluation", skip_flag=None)
        except StopIteration:
            if n_batches is None:
                break
            raise
        per_draw = np.stack([bits_fn(x, y).numpy() for _ in range(draws)])  # [draws, B]
        if per_image is not None:
            per_image(np.asarray(x), np.asarray(y), per_draw.mean(axis=0))
        draw_sums += per_draw.sum(axis=1)
        sq_sum += float(np.sum(per_draw.mean(axis=0) ** 2))
        n_images += per_draw.shape[1]
        if reconstruct:
            mean_err, max_err, n_changed, n_bad = (float(t.numpy()) for t in recon_fn(x, y))
            recon_sum, recon_max = recon_sum + mean_err, max(recon_max, max_err)
            changed, nonfinite = changed + n_changed, nonfinite + n_bad
        bar.update(per_draw.shape[1] if unit == "image" else 1)
    bar.close()
    totals = np.concatenate([draw_sums, [n_images, sq_sum, recon_sum, changed, nonfinite]])
    if dist is not None:
        totals = dist.allreduce_sum(totals)
        recon_max = float(np.max(dist.allgather(np.array([recon_max]))))
    draw_sums, (n_images, sq_sum, recon_sum, changed, nonfinite) = totals[:draws], totals[draws:]
    draw_means = draw_sums / n_images
    bits = float(draw_means.mean())
    var_images = max(sq_sum / n_images - bits ** 2, 0.0) * n_images / max(n_images - 1, 1)
    result = {
        "bits_x": bits,
        "se_draws": float(draw_means.std(ddof=1) / math.sqrt(draws)) if draws > 1 else None,
        "se_images": math.sqrt(var_images / n_images),
        "draws": draws, "n_images": int(n_images), "per_draw": [float(v) for v in draw_means],
    }
    if reconstruct:
        n_finite = n_images - nonfinite
        n_sub = max(n_finite, 1) * int(np.prod(model.hps.image_shape))
        result.update(recon_mean_abs=float(recon_sum / max(n_finite, 1)), recon_max_abs=float(recon_max),
                      recon_changed_fraction=float(changed / n_sub), recon_nonfinite_images=int(nonfinite))
    return result


def _progress(total, enabled, unit="batch"):
    if enabled and sys.stderr.isatty():
        from tqdm import tqdm
        return tqdm(total=total, desc="evaluate" if unit == "batch" else "score", unit=unit)

    class Silent:
        def update(self, n):
            pass

        def close(self):
            pass

    return Silent()


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(PROG, __doc__)
    common.add_checkpoint_args(p, nn_dtype=None)  # the model's own precision, so that it reproduces test.txt
    flags.add_flags(p.add_argument_group("data flags (train.py's)"), DATA_OVERRIDES, overrides=True)
    p.add_argument("--draws", type=int, default=4, help="dequantisation draws per image (default: 4)")
    p.add_argument("--no_reconstruction", action="store_true", help="skip the decode(encode(x)) check")
    p.add_argument("--output", help="also write the results as JSON to this file")
    return p


def main(argv=None) -> dict:
    from data_loaders import get_data

    args = build_parser().parse_args(argv)
    if args.draws < 1:
        raise ConfigError(f"--draws {args.draws} must be at least 1")
    dist = init_distributed()
    configure_devices(dist)
    model, hps, prefix = common.load(args, common.MODEL_OVERRIDES + DATA_OVERRIDES, dist.rank, dist.size)
    splits = get_data(hps, rank=dist.rank, size=dist.size)
    result = evaluate(model, splits.test, splits.test_its, draws=args.draws, dist=dist,
                      reconstruct=not args.no_reconstruction, progress=dist.rank == 0, files=splits.test_files)
    result.update(checkpoint=prefix, problem=hps.problem, weights="polyak" if args.ema else "raw",
                  nn_dtype=hps.nn_dtype, n_ranks=dist.size)
    if dist.rank == 0:
        se = f" ± {result['se_draws']:.1e} (draws)" if result["se_draws"] is not None else ""
        print(f"{prefix}: {result['bits_x']:.4f} bits/dim{se} ± {result['se_images']:.4f} (images), "
              f"{result['n_images']} images x {args.draws} draws, {result['weights']} weights, {hps.nn_dtype} networks")
        if "recon_mean_abs" in result:
            print(f"reconstruction: mean |x - x'| {result['recon_mean_abs']:.2e}, max {result['recon_max_abs']:.2e}, "
                  f"changed subpixels {100 * result['recon_changed_fraction']:.4f}%, "
                  f"non-finite reconstructions: {result['recon_nonfinite_images']} of {result['n_images']} images")
        if args.output:
            write_json(args.output, result)
    return result


if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
