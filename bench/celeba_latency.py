#!/usr/bin/env python
"""Batch-1 sampling and encoding latency of the paper's CelebA-HQ model, next to the paper's figure.

    python bench/celeba_latency.py              # 256x256, 6 levels x 32 steps, width 512, additive, 5 bits
    python bench/celeba_latency.py --reps 5

The paper (Kingma & Dhariwal 2018, section 6) reports about 130 ms to sample one 256x256 image on an
NVIDIA GTX 1080 Ti. This times the same model (the `celeba256` preset: 1x1 convolutions, learned top
prior) doing the same work, one image per call:
  * sample: `Glow.sample(1, temperature=0.7)`, the decoder from the priors to a uint8 image;
  * encode: `Glow.encode(x)`, a uint8 image to its latents (dequantisation included);
  * decode: `Glow.decode(z)`, latents back to the image.
Each is a tf.function; its first call (tracing and graph optimisation) is reported apart, then the median
and range of `--reps` timed calls. The weights are random (a trained model costs the same: no work
depends on their values), with the actnorms at their initial values. On a GPU this runs on the GPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

PAPER_SAMPLE_MS = 130  # 256x256, one NVIDIA GTX 1080 Ti (the paper, section 6)


def forward_gflop(hps) -> float:
    """Multiply-adds x 2 of one encoder pass per image: the coupling networks' convolutions, the 1x1
    convolutions and the split priors (everything else is elementwise)."""
    height, width, channels = hps.image_shape
    h, w, c = height // 2, width // 2, 4 * channels
    flop = 0
    for level in range(hps.n_levels):
        pixels = h * w
        half = c // 2
        out = c if hps.flow_coupling else half
        per_step = (9 * (half + 1) * hps.width + hps.width * hps.width + 9 * (hps.width + 1) * out + c * c)
        flop += 2 * pixels * per_step * hps.depth
        if level < hps.n_levels - 1:
            flop += 2 * pixels * 9 * (half + 1) * c  # split prior
            h, w, c = h // 2, w // 2, 2 * c
    return flop / 1e9


def timed(fn, reps: int):
    """(first-call seconds, [seconds of each later call])."""
    t = time.perf_counter()
    fn()
    first = time.perf_counter() - t
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return first, times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3, help="timed calls of each (default 3)")
    parser.add_argument("--depth", type=int, default=None, help="steps per level (default: the preset's 32)")
    args = parser.parse_args()
    if args.reps < 1:
        parser.error(f"--reps {args.reps}: need at least one timed call")

    import dataclasses

    import numpy as np
    import tensorflow as tf

    from glow_tf import Glow
    from glow_tf.hparams import COUPLINGS
    from glow_tf.presets import celeba256

    hps = celeba256()
    if args.depth:
        hps = dataclasses.replace(hps, depth=args.depth)
    t = time.perf_counter()
    model = Glow(hps)
    build_s = time.perf_counter() - t
    params = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    x = tf.constant(np.random.default_rng(0).integers(0, 256, (1, *hps.image_shape), dtype=np.uint8))
    latents = []
    rows = []
    for name, fn in (("encode", lambda: latents.append(model.encode(x).numpy())),
                     ("decode", lambda: model.decode(latents[0]).numpy()),
                     ("sample", lambda: model.sample(1, temperature=0.7).numpy())):
        first, times = timed(fn, args.reps)
        rows.append((name, first, times))
        print(f"{name}: first call {first:.1f} s, then {', '.join(f'{s * 1e3:.0f}' for s in times)} ms", flush=True)

    gpus = tf.config.list_logical_devices("GPU")
    device = f"GPU ({len(gpus)} visible)" if gpus else f"CPU, {os.cpu_count()} cores"
    print()
    print(f"CelebA-HQ model: {hps.image_shape[0]}x{hps.image_shape[1]}, {hps.n_levels} levels x {hps.depth} steps, "
          f"width {hps.width}, {COUPLINGS[hps.flow_coupling]}, {hps.n_bits_x} bits; {params / 1e6:.0f}M parameters, "
          f"about {forward_gflop(hps):.0f} GFLOP per pass; batch 1 on {device}; model built in {build_s:.0f} s")
    print()
    print("| batch 1 | median ms (range) | first call s | paper, GTX 1080 Ti |")
    print("|---|---|---|---|")
    for name, first, times in sorted(rows, key=lambda row: row[0] != "sample"):
        paper = f"about {PAPER_SAMPLE_MS} ms" if name == "sample" else "-"
        print(f"| {name} | {statistics.median(times) * 1e3:.0f} ({min(times) * 1e3:.0f}-{max(times) * 1e3:.0f}) "
              f"| {first:.0f} | {paper} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
