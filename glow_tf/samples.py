"""Random samples in grids: the original's draw_samples (openai/glow train.py), for train.py and the tools."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

# The temperatures of the original's sample grids: 0 gives the prior means, 0.7 the demo's samples.
TEMPERATURES = (0.0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def grid_size(hps) -> int:
    """The original's grid: 100 images up to 64x64, 16 above."""
    return 100 if hps.image_shape[0] <= 64 else 16


def grid_labels(hps, n: int, y: Optional[int] = None) -> np.ndarray:
    """int32 [n]: the class `y` for every image, or (class-conditional models) each image's grid column
    mod n_y, as the original; 0 for unconditional models."""
    if y is not None or not hps.ycond:
        return np.full([n], y or 0, np.int32)
    columns = int(math.ceil(math.sqrt(n)))
    return (np.arange(n) % columns % hps.n_classes).astype(np.int32)


def draw(model, temperature: float, labels: np.ndarray, batch: int) -> np.ndarray:
    """uint8 samples [len(labels), H, W, C] at one temperature, drawn `batch` at a time."""
    parts = [model.sample(len(labels[i:i + batch]), temperature=temperature, y=labels[i:i + batch])
             for i in range(0, len(labels), batch)]
    return np.concatenate([np.asarray(p) for p in parts])
