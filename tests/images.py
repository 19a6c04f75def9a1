"""Real images that install offline: foolbox's bundled CIFAR-10 and ImageNet samples (pip install --no-deps foolbox)."""

import importlib.util
import pathlib

import numpy as np
import pytest
from PIL import Image


def foolbox_data_dir() -> pathlib.Path:
    spec = importlib.util.find_spec("foolbox")
    if spec is None:
        pytest.skip("foolbox's sample images are not installed (make install adds them)")
    return pathlib.Path(spec.submodule_search_locations[0]) / "data"


def cifar10_samples(n: int = 20) -> np.ndarray:
    """Up to 20 real CIFAR-10 test images, uint8 [n, 32, 32, 3]."""
    files = sorted(foolbox_data_dir().glob("cifar10_*.png"))[:n]
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])


def imagenet_samples(size: int, n: int = 20) -> np.ndarray:
    """Up to 20 real ImageNet photos, centre-cropped and resized to size x size, uint8."""
    out = []
    for f in sorted(foolbox_data_dir().glob("imagenet_*.jpg"))[:n]:
        im = Image.open(f).convert("RGB")
        side = min(im.size)
        left, top = (im.width - side) // 2, (im.height - side) // 2
        out.append(np.asarray(im.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)))
    return np.stack(out)
