"""What the converters make of each image: a square crop, a resize and the lower levels of detail."""

from __future__ import annotations

import dataclasses
import math
from typing import List

import numpy as np

from tfrecords_tools.errors import ConversionError
from tfrecords_tools.format import log2_floor

MIN_LOD_RESOLUTION = 4


@dataclasses.dataclass(frozen=True)
class Spec:
    """What to make of each image.

    mode: 'square' centre-crops to a square and resizes (Lanczos, the original's PIL ANTIALIAS) to
    `resolution`; 'exact' requires resolution x resolution already (Oord's PNGs); 'short_side' resizes the
    shorter side to `resolution`, uncropped (LSUN RealNVP, openai/glow lsun.py with realnvp). n_lods:
    resolutions written, halving each time by 2x2 mean pooling (the original's levels of detail; 0 = all
    down to 4x4).
    """

    mode: str
    resolution: int
    n_lods: int = 1

    @property
    def resolutions(self) -> List[int]:
        if self.mode == "short_side":
            return [self.resolution]
        n_all = log2_floor(self.resolution) - log2_floor(MIN_LOD_RESOLUTION) + 1
        n = n_all if self.n_lods == 0 else self.n_lods
        return [self.resolution >> i for i in range(n)]

    def check(self) -> None:
        if self.mode not in ("square", "exact", "short_side"):
            raise ConversionError(f"unknown mode {self.mode!r}")
        if self.resolution < 1:
            raise ConversionError(f"--resolution {self.resolution} must be positive")
        if self.mode == "short_side":
            if self.n_lods not in (0, 1):
                raise ConversionError("--lods applies to square images only")
            return
        if 2 ** log2_floor(self.resolution) != self.resolution:
            raise ConversionError(f"--resolution {self.resolution} is not a power of two; the reader finds "
                                  f"shards by rXX = log2(resolution)")
        n_all = log2_floor(self.resolution) - log2_floor(MIN_LOD_RESOLUTION) + 1
        if self.n_lods < 0 or self.n_lods > max(1, n_all):
            raise ConversionError(f"--lods {self.n_lods}: {self.resolution}x{self.resolution} has at most "
                                  f"{max(1, n_all)} levels down to {MIN_LOD_RESOLUTION}x{MIN_LOD_RESOLUTION} "
                                  f"(0 = all)")


def centre_crop(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return image[top:top + side, left:left + side]


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    from PIL import Image

    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.LANCZOS))


def downsample2x(image: np.ndarray) -> np.ndarray:
    """One level of detail down: mean of 2x2 blocks, floored (openai/glow generate.py's pooling)."""
    h, w, c = image.shape
    blocks = image.reshape(h // 2, 2, w // 2, 2, c).astype(np.uint16)
    return (blocks.sum(axis=(1, 3)) // 4).astype(np.uint8)


def process(image: np.ndarray, spec: Spec) -> List[np.ndarray]:
    """Input image -> one uint8 HWC array per resolution in spec.resolutions (largest first)."""
    res = spec.resolution
    if spec.mode == "exact":
        if image.shape[:2] != (res, res):
            raise ValueError(f"image is {image.shape[0]}x{image.shape[1]}, expected {res}x{res}")
        top = image
    elif spec.mode == "square":
        top = _resize(centre_crop(image), res, res)
    else:
        h, w = image.shape[:2]
        factor = min(h, w) / res
        # Shorter side exactly `res`; the other rounded up, like skimage's pyramid_reduce output shape.
        top = _resize(image, math.ceil(w / factor - 1e-9), math.ceil(h / factor - 1e-9))
    lods = [np.ascontiguousarray(top)]
    for _ in spec.resolutions[1:]:
        lods.append(downsample2x(lods[-1]))
    return lods
