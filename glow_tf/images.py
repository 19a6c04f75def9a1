"""Image grids and image files: the original's graphics.py (save_raster) and the tools' PNG/GIF output."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from glow_common.files import atomic_path


def grid(images: np.ndarray, columns: Optional[int] = None) -> np.ndarray:
    """NHWC uint8 -> one HWC mosaic, `columns` wide (default ceil(sqrt(n)), as graphics.py), row by row."""
    images = np.clip(np.asarray(images), 0, 255).astype(np.uint8)
    n, h, w, c = images.shape
    columns = columns or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / columns))
    out = np.zeros((rows * h, columns * w, c), np.uint8)
    for i, image in enumerate(images):
        row, col = divmod(i, columns)
        out[row * h:(row + 1) * h, col * w:(col + 1) * w] = image
    return out


def to_pil(image: np.ndarray):
    """An HWC uint8 array (C = 1 or 3) as a PIL image."""
    from PIL import Image

    image = np.asarray(image, np.uint8)
    return Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)


def save_png(image: np.ndarray, path: str) -> str:
    """Write one HWC uint8 image as PNG, atomically; returns the path."""
    with atomic_path(path, suffix=".png") as tmp:
        to_pil(image).save(tmp, format="PNG")
    return path


def save_grid(images: np.ndarray, path: str, columns: Optional[int] = None) -> str:
    """NHWC uint8 images as one PNG mosaic (graphics.save_raster)."""
    return save_png(grid(images, columns), path)


def save_gif(frames: np.ndarray, path: str, frame_ms: int = 100, loop: bool = True) -> str:
    """Write NHWC uint8 frames as an animated GIF (played forwards then backwards when `loop`)."""
    frames = list(frames) + (list(frames[-2:0:-1]) if loop and len(frames) > 2 else [])
    images = [to_pil(f) for f in frames]
    with atomic_path(path, suffix=".gif") as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
    return path
