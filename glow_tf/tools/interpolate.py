"""Interpolate between images in latent space: the demo's `mix` and `mix_range` (openai/glow demo/model.py).

    python -m glow_tf.tools.interpolate logs/celeba a.jpg b.jpg --output mix.png --gif mix.gif --steps 8

Each image is centre-cropped to a square and resized to the model's resolution (images smaller than
that are refused), then encoded to its flat eps z (the standardised latents of every level, model.py encoder).
Between consecutive images the tool decodes mix(z1, z2, a) = z1 + a (z2 - z1) for `--steps` values of
a from 0 to 1, so the first and last frames reconstruct the two images. The strip PNG has one row per
consecutive pair; the GIF plays all frames in order (and back, unless --no_loop).
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

import numpy as np

from data_loaders.images import read_images
from glow_common.errors import run_cli
from glow_tf.errors import ConfigError
from glow_tf.images import save_gif, save_grid
from glow_tf.tools import common

PROG = "python -m glow_tf.tools.interpolate"


def mix(z1: np.ndarray, z2: np.ndarray, alphas: Sequence[float]) -> np.ndarray:
    """The demo's mix: z1 + a (z2 - z1) for each a -> [len(alphas), D]."""
    alphas = np.asarray(alphas, z1.dtype)[:, None]
    return z1[None] + alphas * (z2 - z1)[None]


def interpolate(model, images: np.ndarray, steps: int, y: int = 0) -> np.ndarray:
    """uint8 frames [n_images - 1, steps, H, W, C]: row i goes from images[i] to images[i + 1]."""
    labels = np.full([len(images)], y, np.int32)
    z = np.asarray(model.encode(images, labels))  # [n, D]: one dequantisation draw per image
    alphas = np.linspace(0.0, 1.0, steps)
    rows = [np.asarray(model.decode(mix(z[i], z[i + 1], alphas), np.full([steps], y, np.int32)))
            for i in range(len(images) - 1)]
    return np.stack(rows)


def main(argv: Optional[Sequence[str]] = None):
    p = common.parser(PROG, __doc__)
    common.add_checkpoint_args(p)
    p.add_argument("images", nargs="+", help="two or more images (PNG, JPEG, ...), in interpolation order")
    p.add_argument("--output", required=True, help="strip PNG to write: one row per consecutive pair")
    p.add_argument("--gif", help="also write the frames as an animated GIF here")
    p.add_argument("--steps", type=int, default=8,
                   help="frames per pair, end points included (default %(default)s)")
    p.add_argument("--y", type=int, default=None, help="class to encode and decode with, for ycond models "
                                                       "(default 0)")
    p.add_argument("--frame_ms", type=int, default=100, help="GIF frame duration (default %(default)s ms)")
    p.add_argument("--no_loop", action="store_true", help="GIF plays forwards only, not back and forth")
    args = p.parse_args(argv)
    if len(args.images) < 2:
        raise ConfigError(f"got {len(args.images)} image; interpolation needs at least two")
    if args.steps < 2:
        raise ConfigError(f"--steps {args.steps}: need at least 2 frames per pair (the two end points)")
    if args.frame_ms < 1:
        raise ConfigError(f"--frame_ms {args.frame_ms} must be positive")

    model, hps, _ = common.load(args)
    y = common.check_label(hps, args.y) or 0
    images = read_images(args.images, hps)
    frames = interpolate(model, images, args.steps, y)  # [pairs, steps, H, W, C]
    save_grid(frames.reshape(-1, *frames.shape[2:]), args.output, columns=args.steps)
    print(f"wrote {args.output}: {len(frames)} row(s) of {args.steps} frames")
    if args.gif:
        # Consecutive rows share an end point (the image between them); show it once.
        sequence = np.concatenate([frames[0]] + [row[1:] for row in frames[1:]])
        save_gif(sequence, args.gif, frame_ms=args.frame_ms, loop=not args.no_loop)
        print(f"wrote {args.gif}: {len(sequence)} frames")
    return frames


if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
