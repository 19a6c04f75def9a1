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

from glow_tf.errors import ConfigError
from glow_tf.hparams import NN_DTYPES


def parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """argparse whose description is the tool's module docstring."""
    return argparse.ArgumentParser(prog=prog, description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_checkpoint_args(p: argparse.ArgumentParser, seed_help: str = "seed of TF's random draws (default 0)",
                        nn_dtype: Optional[str] = "float32") -> None:
    """The checkpoint positional and the flags every model-loading tool shares.

    `nn_dtype` is the default precision of the coupling networks while the tool runs (None: the one the
    model was trained with). The weights are float32 whatever the training precision, and float32
    networks make decode the inverse of encode to float32 round-off; bfloat16 networks round the
    coupling's shift and scale to 8 bits, and the flow's round-off upstream of a network can move that
    rounding between encode and decode, which moves a reconstructed subpixel by a level now and then.
    """
    p.add_argument("checkpoint", help="a train.py logdir, its checkpoints/ or model_best_loss/ folder, or a "
                                      "checkpoint prefix (the latest checkpoint is used, then the best)")
    p.add_argument("--ema", action="store_true",
                   help="use the Polyak-averaged weights (the original kept but never used them)")
    p.add_argument("--seed", type=int, default=0, help=seed_help)
    p.add_argument("--nn_dtype", choices=NN_DTYPES, default=nn_dtype,
                   help="precision of the coupling networks here (default: "
                        + (f"{nn_dtype}, whatever the model was trained in, so that decode inverts encode)"
                           if nn_dtype else "the model's, as in training)"))


def load(args):
    """(model, hps, checkpoint prefix) from the parsed checkpoint flags; seeds TF first, so that a seed
    fixes every draw."""
    import tensorflow as tf

    from glow_tf.training.checkpoints import load_model

    tf.keras.utils.set_random_seed(args.seed)
    return load_model(args.checkpoint, ema=args.ema, **({"nn_dtype": args.nn_dtype} if args.nn_dtype else {}))


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
