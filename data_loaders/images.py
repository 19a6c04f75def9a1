"""Any picture as a problem's data: what the tools and the demo give a model in place of its own images.

Each reader prepares its problem's images in its own way, and a model has only ever seen them so:
data_loaders.in_memory zero-pads MNIST-like images from 28x28 to 32x32 (openai/glow get_mnist_cifar.py),
box-downsamples to a smaller image_size and copies their one grey channel to every channel of the model;
the converters of tfrecords_tools centre-crop and resize with Lanczos. `fit_image` does the same to an
arbitrary picture, from what the problem registry says of the data (`grey`, `native_size`,
`stored_size`): a colour photo given to a Fashion-MNIST model becomes a grey garment-sized square, copied
to the model's channels, rather than colours it never saw. Pictures smaller than what the model's data
was resized from are refused: upscaling would invent detail that the model would then encode faithfully.
"""

from __future__ import annotations

import os
from typing import Sequence, Tuple

import numpy as np

from data_loaders import problems
from data_loaders.errors import DataError


def layout(hps) -> Tuple[int, int, int]:
    """(content, pad, factor): a picture is resized to content x content, zero-padded by `pad` on every
    side and box-downsampled by `factor`, which gives the model's image_size, as the problem's reader does."""
    size = hps.image_shape[0]
    problem = problems.find(hps.problem)
    if problem is None or problem.source != problems.IN_MEMORY:
        return size, 0, 1
    stored = problem.stored_size(size)
    content = min(problem.native_size, stored)
    return content, (stored - content) // 2, stored // size


def fit_image(img, hps, name: str) -> np.ndarray:
    """uint8 [H, W, C] at the model's shape from an opened PIL image (`name` says which one in errors):
    the problem's colour (grey, or RGB), a centre square crop, a Lanczos resize, then the reader's
    padding, downsampling and channels."""
    from PIL import Image

    height, width, channels = hps.image_shape
    problem = problems.find(hps.problem)
    grey = channels == 1 or (problem is not None and problem.grey)
    if not grey and channels != 3:
        raise DataError(f"the model has {channels} channels; only grey (1) or RGB (3) pictures can be given to it")
    content, pad, factor = layout(hps)
    img = img.convert("L" if grey else "RGB")  # decodes the whole file, so a truncated one fails here
    side = min(img.size)
    if side < content:
        what = (f"the model's {content}x{content}" if content == height else
                f"the {content}x{content} images the model's {height}x{width} data is made from")
        raise DataError(f"{name} is {img.width}x{img.height}, smaller than {what}; give a picture whose shorter "
                        f"side is at least {content} pixels")
    left, top = (img.width - side) // 2, (img.height - side) // 2
    img = img.crop((left, top, left + side, top + side))
    if side != content:
        img = img.resize((content, content), Image.LANCZOS)
    x = np.asarray(img, np.uint8).reshape(content, content, -1)
    if pad:
        x = np.pad(x, [(pad, pad), (pad, pad), (0, 0)])
    if factor > 1:  # the mean of each block, floored: data_loaders.augment's box_downsample and to_uint8
        n = x.shape[0] // factor
        blocks = x.reshape(n, factor, n, factor, x.shape[2]).astype(np.float64)
        x = np.floor(blocks.mean(axis=(1, 3))).astype(np.uint8)
    if x.shape[2] != channels:
        x = np.repeat(x, channels, axis=2)  # grey copied to every channel, as the reader does
    return x.reshape(height, width, channels)


def read_image(path: str, hps) -> np.ndarray:
    """A PNG, JPEG, ... file as the model's data (fit_image); DataError naming the file if it cannot be."""
    from PIL import Image, UnidentifiedImageError

    if not os.path.exists(path):
        raise DataError(f"image {path} does not exist")
    if not os.path.isfile(path):
        raise DataError(f"image {path} is not a file")
    try:
        with Image.open(path) as img:
            return fit_image(img, hps, path)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{path} is not a readable image ({err})") from None


def read_images(paths: Sequence[str], hps) -> np.ndarray:
    return np.stack([read_image(p, hps) for p in paths])
