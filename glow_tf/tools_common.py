"""Shared pieces of the qualitative tools (sample, interpolate, manipulate, export, convert_tf1).

Command-line handling (a checkpoint argument, --ema, --seed, one-line errors), reading a user's image at
the model's resolution, and writing PNG grids, strips and GIFs. The original's counterparts are
graphics.py (the PNG grid writer) and the image handling of demo/ (spec §5).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from typing import Callable, Optional, Sequence

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class ToolError(ValueError):
    """A user error: a bad path, image, flag value or checkpoint. The CLIs print it on one line."""


def run(prog: str, main: Callable[[Optional[Sequence[str]]], object],
        argv: Optional[Sequence[str]] = None) -> int:
    """Call main(argv); report a user error as `prog: error: message` on stderr with exit status 2."""
    from glow_tf.checkpoints import CheckpointError

    try:
        main(argv)
    except (ToolError, CheckpointError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    return 0


def parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """argparse whose description is the tool's module docstring."""
    return argparse.ArgumentParser(prog=f"python -m {prog}", description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_checkpoint_args(p: argparse.ArgumentParser) -> None:
    """The checkpoint positional and the flags every model-loading tool shares."""
    p.add_argument("checkpoint", help="a train.py logdir, its checkpoints/ or model_best_loss/ folder, or a "
                                      "checkpoint prefix (the latest checkpoint is used, then the best)")
    p.add_argument("--ema", action="store_true",
                   help="use the Polyak-averaged weights (the original kept but never used them)")
    p.add_argument("--seed", type=int, default=0, help="seed of TF's random draws (default 0)")


def load(args):
    """(model, hps) from the parsed checkpoint flags; seeds TF first, so a seed fixes every draw."""
    import tensorflow as tf

    from glow_tf.checkpoints import load_model, resolve

    tf.keras.utils.set_random_seed(args.seed)
    if args.ema:
        # Said here, because load_model would report the missing average as a configuration mismatch.
        prefix = resolve(args.checkpoint)
        if not any(name.startswith("ema/") for name, _ in tf.train.list_variables(prefix)):
            raise ToolError(f"--ema: {prefix} holds no Polyak average (model-only checkpoints, such as "
                            f"convert_tf1's without --ema, have none); leave out --ema")
    model, hps, _ = load_model(args.checkpoint, ema=args.ema)
    return model, hps


def check_label(hps, y: Optional[int]) -> Optional[int]:
    """--y, checked: a class of a ycond model, or None; refused for unconditional models."""
    if y is None:
        return None
    if not hps.ycond:
        raise ToolError(f"--y {y}: this model is not class-conditional (ycond is off), so it takes no label")
    if not 0 <= y < hps.n_classes:
        raise ToolError(f"--y {y} is out of range: the model has n_y = {hps.n_classes} classes "
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
        raise ToolError(f"image {path} does not exist")
    if not os.path.isfile(path):
        raise ToolError(f"image {path} is not a file")
    try:
        with Image.open(path) as img:
            return fit_image(img, image_shape, path)
    except ToolError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ToolError(f"{path} is not a readable image ({err})") from None


def fit_image(img, image_shape, name: str) -> np.ndarray:
    """read_image's pixel work on an opened PIL image (`name` says which one in errors)."""
    from PIL import Image

    height, width, channels = image_shape
    mode = {1: "L", 3: "RGB"}.get(channels)
    if mode is None:
        raise ToolError(f"the model has {channels} channels; only grey (1) or RGB (3) images can be read")
    img = img.convert(mode)  # decodes the whole file, so a truncated one fails here
    side = min(img.size)
    if side < max(height, width):
        raise ToolError(f"{name} is {img.width}x{img.height}, smaller than the model's {width}x{height}; "
                        f"give an image whose shorter side is at least {max(height, width)} pixels")
    left, top = (img.width - side) // 2, (img.height - side) // 2
    img = img.crop((left, top, left + side, top + side))
    if side != height or side != width:
        img = img.resize((width, height), Image.LANCZOS)
    return np.asarray(img, np.uint8).reshape(height, width, channels)


def read_images(paths: Sequence[str], image_shape) -> np.ndarray:
    return np.stack([read_image(p, image_shape) for p in paths])


def grid(images: np.ndarray, columns: Optional[int] = None) -> np.ndarray:
    """NHWC uint8 -> one HWC mosaic, `columns` wide (default ceil(sqrt(n)), as graphics.py), row by row."""
    n, h, w, c = images.shape
    columns = columns or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / columns))
    out = np.zeros((rows * h, columns * w, c), np.uint8)
    for i, image in enumerate(images):
        row, col = divmod(i, columns)
        out[row * h:(row + 1) * h, col * w:(col + 1) * w] = image
    return out


def _pil(image: np.ndarray):
    from PIL import Image

    image = np.asarray(image, np.uint8)
    return Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)


def _prepare(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise ToolError(f"cannot create the output folder {folder} ({err.strerror})") from None


@contextlib.contextmanager
def _writing(path: str):
    """Report an unwritable output (permissions, a folder in the way, a full disk) as a user error."""
    try:
        yield
    except OSError as err:
        raise ToolError(f"cannot write {path} ({err.strerror or err})") from None


def save_png(image: np.ndarray, path: str) -> str:
    """Write one HWC uint8 image as PNG (through a temporary name, so a reader never sees half a file)."""
    _prepare(path)
    tmp = f"{path}.tmp{os.getpid()}.png"
    with _writing(path):
        _pil(image).save(tmp, format="PNG")
        os.replace(tmp, path)
    return path


def save_gif(frames: np.ndarray, path: str, frame_ms: int = 100, loop: bool = True) -> str:
    """Write NHWC uint8 frames as an animated GIF (played forwards then backwards when `loop`)."""
    _prepare(path)
    frames = list(frames) + (list(frames[-2:0:-1]) if loop and len(frames) > 2 else [])
    images = [_pil(f) for f in frames]
    tmp = f"{path}.tmp{os.getpid()}.gif"
    with _writing(path):
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
        os.replace(tmp, path)
    return path
