"""What every tool shares: its argument parser, the checkpoint argument, loading the model, user images.

Every tool follows one convention: `python -m glow_tf.tools.<name> CHECKPOINT [flags]`, where CHECKPOINT
is a train.py logdir, its checkpoints/ or model_best_loss/ folder, or a checkpoint prefix; snake_case
flags like the original's; `--help` that stands alone; and one error path (glow_common.errors.run_cli): a
user error is one line `python -m glow_tf.tools.<name>: error: ...` with exit status 2, a bug keeps its
traceback.
"""

from __future__ import annotations

import argparse
import os
from typing import Optional, Sequence

import numpy as np

from glow_tf import flags
from glow_tf.errors import ConfigError


def parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """argparse whose description is the tool's module docstring."""
    return argparse.ArgumentParser(prog=prog, description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


# The tools that decode run the coupling networks in float32 unless told otherwise, and why.
FLOAT32_NETWORKS = ("float32", "whatever the model was trained in: float32 networks make decode the inverse of "
                    "encode to float32 round-off, while bfloat16 ones round the coupling's shift and scale to 8 "
                    "bits and the flow's round-off can move that rounding between encode and decode")

# The fields of a checkpoint's hparams that every model-loading tool lets the user override.
MODEL_OVERRIDES = ("nn_dtype",)


def add_checkpoint_args(p: argparse.ArgumentParser, nn_dtype: Optional[tuple] = FLOAT32_NETWORKS) -> None:
    """The checkpoint positional and the flags every model-loading tool shares: --ema, train.py's --seed
    (each rank draws from rank + size*seed) and --nn_dtype, an override of the checkpoint's precision
    whose default is `nn_dtype` (value, why), or the model's own when None (evaluate)."""
    p.add_argument("checkpoint", help="a train.py logdir, its checkpoints/ or model_best_loss/ folder, or a "
                                      "checkpoint prefix (the latest checkpoint is used, then the best)")
    p.add_argument("--ema", action="store_true",
                   help="use the Polyak-averaged weights (the original kept but never used them)")
    flags.add_flags(p, ("seed",))
    flags.add_flags(p, MODEL_OVERRIDES, overrides=True, defaults={"nn_dtype": nn_dtype} if nn_dtype else None)


def load(args, overrides: Sequence[str] = MODEL_OVERRIDES, rank: int = 0, size: int = 1):
    """(model, hps, checkpoint prefix) from the parsed checkpoint flags, with the `overrides` given applied
    to the checkpoint's hparams. Seeds TF, NumPy and Python first with this rank's seed, so that --seed
    fixes every draw."""
    import tensorflow as tf

    from data_loaders.common import rank_seed
    from glow_tf.training.checkpoints import load_model

    tf.keras.utils.set_random_seed(rank_seed(args.seed, rank, size))
    return load_model(args.checkpoint, ema=args.ema, **flags.overrides_of(args, overrides))


def check_label(hps, y: Optional[int]) -> Optional[int]:
    """--y, checked: a class of a ycond model, or None; refused for unconditional models."""
    if y is None:
        return None
    if not hps.ycond:
        raise ConfigError(f"--y {y}: this model is not class-conditional (ycond is off), so it takes no label")
    if not 0 <= y < hps.n_classes:
        raise ConfigError(f"--y {y} is out of range: the model has n_y = {hps.n_classes} classes "
                        f"(0 to {hps.n_classes - 1})")
    return y


def float_list(text: str) -> list:
    """'0,0.5,1' -> [0.0, 0.5, 1.0], for argparse."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


# ------------------------------------------------------------------------------------------------ images
def read_image(path: str, image_shape) -> np.ndarray:
    """A PNG/JPEG/... as uint8 [H, W, C] at the model's shape: centre square crop, then a Lanczos resize.

    Images smaller than the model's resolution are refused: upscaling would invent detail that the
    model would then faithfully encode, which is not what a user asking to edit their photo wants.
    """
    from PIL import Image, UnidentifiedImageError

    if not os.path.exists(path):
        raise ConfigError(f"image {path} does not exist")
    if not os.path.isfile(path):
        raise ConfigError(f"image {path} is not a file")
    try:
        with Image.open(path) as img:
            return fit_image(img, image_shape, path)
    except ConfigError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ConfigError(f"{path} is not a readable image ({err})") from None


def fit_image(img, image_shape, name: str) -> np.ndarray:
    """read_image's pixel work on an opened PIL image (`name` says which one in errors)."""
    from PIL import Image

    height, width, channels = image_shape
    mode = {1: "L", 3: "RGB"}.get(channels)
    if mode is None:
        raise ConfigError(f"the model has {channels} channels; only grey (1) or RGB (3) images can be read")
    img = img.convert(mode)  # decodes the whole file, so a truncated one fails here
    side = min(img.size)
    if side < max(height, width):
        raise ConfigError(f"{name} is {img.width}x{img.height}, smaller than the model's {width}x{height}; "
                          f"give an image whose shorter side is at least {max(height, width)} pixels")
    left, top = (img.width - side) // 2, (img.height - side) // 2
    img = img.crop((left, top, left + side, top + side))
    if side != height or side != width:
        img = img.resize((width, height), Image.LANCZOS)
    return np.asarray(img, np.uint8).reshape(height, width, channels)


def read_images(paths: Sequence[str], image_shape) -> np.ndarray:
    return np.stack([read_image(p, image_shape) for p in paths])
