"""Semantic manipulation along attribute directions: the demo's get_manipulators.py and manipulate
(openai/glow demo/).

    python -m glow_tf.tools.manipulate directions logs/celeba --data celeba-tfr/ --output directions.npz
    python -m glow_tf.tools.manipulate apply logs/celeba face.png --directions directions.npz \\
        --attributes Smiling,Young --alphas -1,-0.5,0,0.5,1 --output edits/

`directions` encodes a labelled TFRecord set (the `attr` int64[40] that tfrecords_tools.celeba writes
from CelebA's list_attr_celeba.txt) and, for each of the 40 CelebA attributes, takes
    delta = scale * (mean eps of the images with the attribute - mean eps of those without),
with eps the flat standardised latents of `encode` (model.py, encoder). An attribute counts as present where
its value is positive (CelebA writes +1 and -1). The demo used scale 1.6 (--scale 1.6) and, when
loading, flipped the signs of No_Beard and Young and scaled Narrow_Eyes by 1.2; here the default
scale is 1 and nothing is flipped, so +alpha always means "more of the attribute as labelled" (use a
negative alpha for a beard or for looking older). The result is an .npz with `names`, `directions`
[K, D] and the per-attribute counts, tied to the model's configuration.

`apply` encodes one image (centre-cropped and resized; smaller images are refused) to z and decodes
z + alpha * delta for each alpha, writing one strip `<image>_<attribute>.png` per attribute. alpha = 0 is
the reconstruction of the image; the demo's manipulate_range sweeps alpha from -1 to 1.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Iterable, Optional, Sequence, Tuple

import numpy as np

from data_loaders.images import read_image
from glow_common.errors import run_cli
from glow_common.files import atomic_path
from glow_tf.errors import ConfigError
from glow_tf.hparams import model_signature
from glow_tf.images import save_grid
from glow_tf.tools import common
from tfrecords_tools.format import CELEBA_ATTRIBUTES

PROG = "python -m glow_tf.tools.manipulate"

DEMO_SCALE = 1.6  # get_manipulators.py
def select_attributes(requested: Optional[str], available: Sequence[str]) -> list:
    """Names from a comma-separated --attributes (all of `available` when None), checked against it."""
    if requested is None:
        return list(available)
    names = [n.strip() for n in requested.split(",") if n.strip()]
    unknown = [n for n in names if n not in available]
    if unknown or not names:
        raise ConfigError(f"unknown attribute {unknown[0] if unknown else repr(requested)}; valid names: "
                        f"{', '.join(available)}")
    return names


# ---------------------------------------------------------------------------------------- reading attr
def attr_batches(files: Sequence[str], image_shape, batch: int, max_images: Optional[int] = None,
                 n_classes: int = 1) -> Iterable[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(x uint8 [B, H, W, C], y int32 [B], attr int64 [B, 40]) from TFRecords in the original format, read
    by data_loaders.tfrecords (read_set), a damaged or unfitting record named with its file."""
    from data_loaders.damage import read_batch
    from data_loaders.tfrecords import read_set

    batches = iter(read_set(files, image_shape, batch=batch, n_classes=n_classes, with_attr=True,
                            max_images=max_images))
    while True:
        try:
            x, y, attr = read_batch(batches, files, "for the directions", skip_flag=None)
        except StopIteration:
            return
        yield x.numpy(), y.numpy(), attr.numpy()


# ----------------------------------------------------------------------------------------- directions
def compute_directions(model, batches, n_classes: int, attr_indices: Sequence[int]):
    """(delta [K, D] float64 without scale, n_pos [K], n_neg [K]) over all batches of (x, y, attr)."""
    k = len(attr_indices)
    pos_sum = neg_sum = None
    n_pos, n_neg = np.zeros(k, np.int64), np.zeros(k, np.int64)
    for x, y, attr in batches:
        bad = y[(y < 0) | (y >= n_classes)]
        if bad.size:
            raise ConfigError(f"label {bad[0]} in the data is outside the model's n_y = {n_classes} classes")
        z = np.asarray(model.encode(x, y), np.float64)  # [B, D]
        present = attr[:, attr_indices] > 0  # [B, K]
        if pos_sum is None:
            pos_sum, neg_sum = np.zeros([k, z.shape[1]]), np.zeros([k, z.shape[1]])
        # Sums over the batch for every attribute at once: [K, B] @ [B, D].
        pos_sum += present.T.astype(np.float64) @ z
        neg_sum += (~present).T.astype(np.float64) @ z
        n_pos += present.sum(axis=0)
        n_neg += (~present).sum(axis=0)
    if pos_sum is None:
        raise ConfigError("the data holds no images")
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = pos_sum / n_pos[:, None] - neg_sum / n_neg[:, None]
    return delta, n_pos, n_neg


def save_directions(path: str, names: Sequence[str], delta: np.ndarray, n_pos, n_neg, scale: float,
                    hps, extra: Optional[dict] = None) -> str:
    """An .npz of `names` [K], `directions` [K, D] float32 (scaled), counts, scale and model config
    (plus the arrays of `extra`, e.g. what a cache needs to know it is still valid)."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, names=np.asarray(names, dtype=str), directions=(scale * delta).astype(np.float32),
                 n_pos=np.asarray(n_pos), n_neg=np.asarray(n_neg), scale=np.float64(scale),
                 config=np.asarray(json.dumps(model_signature(hps), sort_keys=True)),
                 **{key: np.asarray(value) for key, value in (extra or {}).items()})
    return path


def load_directions(path: str, hps) -> Tuple[list, np.ndarray]:
    """(names, directions [K, D]) from `directions`, refused unless written for this model's configuration."""
    if not os.path.isfile(path):
        raise ConfigError(f"--directions {path} does not exist (make it with `{PROG} directions`)")
    try:
        with np.load(path, allow_pickle=False) as f:
            names, directions = [str(n) for n in f["names"]], f["directions"]
            config = json.loads(str(f["config"]))
    except (OSError, ValueError, KeyError) as err:
        raise ConfigError(f"--directions {path} is not a directions file of `{PROG} directions` ({err})") \
            from None
    ours = model_signature(hps)
    diffs = [f"{k}: directions {config.get(k)!r}, model {ours[k]!r}" for k in ours if config.get(k) != ours[k]]
    if diffs:
        raise ConfigError(f"--directions {path} was computed with a model of another configuration ("
                        + "; ".join(diffs) + ")")
    return names, directions


def manipulate(model, image: np.ndarray, directions: np.ndarray, alphas: Sequence[float],
               y: int = 0) -> np.ndarray:
    """uint8 [K, len(alphas), H, W, C]: decode(z + alpha * delta_k) for one image's z (one noise draw)."""
    z = np.asarray(model.encode(image[None], np.asarray([y], np.int32)))[0]  # [D]
    alphas = np.asarray(alphas, np.float32)[:, None]
    labels = np.full([len(alphas)], y, np.int32)
    return np.stack([np.asarray(model.decode(z[None] + alphas * delta[None], labels)) for delta in directions])


# ----------------------------------------------------------------------------------------------- CLI
def _directions(args) -> str:
    if args.scale <= 0:
        raise ConfigError(f"--scale {args.scale} must be positive (negative alphas reverse a direction)")
    if args.batch < 1:
        raise ConfigError(f"--batch {args.batch} must be at least 1")
    if args.max_images is not None and args.max_images < 1:
        raise ConfigError(f"--max_images {args.max_images} must be at least 1")
    from data_loaders.tfrecords import find_files

    names = select_attributes(args.attributes, CELEBA_ATTRIBUTES)
    model, hps, _ = common.load(args)
    files = find_files(args.data, args.split, hps.image_shape[0])
    batches = attr_batches(files, hps.image_shape, args.batch, args.max_images, hps.n_classes)
    delta, n_pos, n_neg = compute_directions(model, batches, hps.n_classes,
                                             [CELEBA_ATTRIBUTES.index(n) for n in names])
    # A direction needs images on both sides; say which attributes had none rather than store NaNs.
    keep = (n_pos > 0) & (n_neg > 0)
    for name, p, n in zip(names, n_pos, n_neg):
        if not (p and n):
            print(f"warning: skipping {name}: {p} images with it and {n} without", file=sys.stderr)
    if not keep.any():
        raise ConfigError("no attribute has images both with and without it; nothing to save")
    save_directions(args.output, [n for n, k in zip(names, keep) if k], delta[keep], n_pos[keep], n_neg[keep],
                    args.scale, hps)
    print(f"wrote {args.output}: {int(keep.sum())} directions from {int(n_pos[0] + n_neg[0])} images")
    return args.output


def _apply(args) -> list:
    if args.steps is not None and args.steps < 2:
        raise ConfigError(f"--steps {args.steps}: need at least 2")
    model, hps, _ = common.load(args)
    y = common.check_label(hps, args.y) or 0
    available, directions = load_directions(args.directions, hps)
    names = select_attributes(args.attributes, available)
    image = read_image(args.image, hps)
    alphas = args.alphas if args.steps is None else \
        list(np.linspace(-args.alpha_max, args.alpha_max, args.steps))
    strips = manipulate(model, image, directions[[available.index(n) for n in names]], alphas, y)
    stem = os.path.splitext(os.path.basename(args.image))[0]
    written = [save_grid(strip, os.path.join(args.output, f"{stem}_{name}.png"), columns=len(alphas))
               for name, strip in zip(names, strips)]
    print(f"wrote {len(written)} strips of alpha = {', '.join(f'{a:g}' for a in alphas)} to {args.output}")
    return written


def main(argv: Optional[Sequence[str]] = None):
    p = common.parser(PROG, __doc__)
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("directions", help="compute attribute directions from TFRecords with `attr`",
                       description="Compute delta = scale * (mean eps with the attribute - mean eps without).")
    common.add_checkpoint_args(d)
    d.add_argument("--data", required=True,
                   help="TFRecords with `attr`: a folder (its <split>/ shards at the model's resolution, or "
                        "the *.tfrecords in it), a file or a glob pattern")
    d.add_argument("--split", default="train", help="split folder under --data (default %(default)s)")
    d.add_argument("--output", required=True, help=".npz file to write")
    d.add_argument("--attributes", help="comma-separated CelebA attribute names (default: all 40)")
    d.add_argument("--scale", type=float, default=1.0,
                   help=f"factor on every direction (default %(default)s; the demo used {DEMO_SCALE})")
    d.add_argument("--max_images", type=int, help="use at most this many images (default: all)")
    d.add_argument("--batch", type=int, default=64, help="images encoded per call (default %(default)s)")
    d.set_defaults(run=_directions)

    a = sub.add_parser("apply", help="edit an image along saved directions, one strip per attribute",
                       description="Decode z + alpha * delta over a range of alpha for one image.")
    common.add_checkpoint_args(a)
    a.add_argument("image", help="the image to edit (PNG, JPEG, ...)")
    a.add_argument("--directions", required=True, help=".npz written by the `directions` command")
    a.add_argument("--output", required=True, help="folder for the strips <image>_<attribute>.png")
    a.add_argument("--attributes", help="comma-separated attribute names (default: all in the file)")
    a.add_argument("--alphas", type=common.float_list, default=[-1.0, -0.5, 0.0, 0.5, 1.0],
                   help="comma-separated alphas, one column each (default -1,-0.5,0,0.5,1)")
    a.add_argument("--steps", type=int, help="instead of --alphas: this many alphas evenly from -alpha_max "
                                             "to alpha_max (the demo's manipulate_range)")
    a.add_argument("--alpha_max", type=float, default=1.0, help="range of --steps (default %(default)s)")
    a.add_argument("--y", type=int, default=None, help="class for ycond models (default 0)")
    a.set_defaults(run=_apply)

    args = p.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
