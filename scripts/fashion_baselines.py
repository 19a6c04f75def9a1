#!/usr/bin/env python
"""The reference figures of the README's Fashion-MNIST results: bits/dim of two simple codes of the
10,000 test images (28x28 grey, 8 bits), from Debian's dataset-fashion-mnist.

    python scripts/fashion_baselines.py

  * per-pixel categorical: each of the 784 pixels an independent 256-way categorical distribution,
    fitted on the 60,000 training images with add-one smoothing; the test images' mean -log2 p / 784.
  * PNG: each test image saved as an 8-bit grey PNG by Pillow with optimize=True; mean file bits / 784.
A density model worth its name is below both.
"""

import gzip
import io
import os
import sys

import numpy as np
from PIL import Image

FOLDER = "/usr/share/datasets/fashion-mnist"


def images(name: str) -> np.ndarray:
    path = os.path.join(FOLDER, name)
    if not os.path.exists(path):
        sys.exit(f"fashion_baselines.py: error: {path} is missing (apt-get install dataset-fashion-mnist)")
    with gzip.open(path) as f:
        return np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28 * 28)


def categorical_bits(train: np.ndarray, test: np.ndarray, alpha: float = 1.0) -> float:
    pixels = np.arange(train.shape[1])
    counts = np.zeros((train.shape[1], 256))
    np.add.at(counts, (np.broadcast_to(pixels, train.shape), train), 1)
    p = (counts + alpha) / (counts.sum(axis=1, keepdims=True) + 256 * alpha)
    return float(-np.log2(p[pixels, test]).sum(axis=1).mean() / train.shape[1])


def png_bits(test: np.ndarray) -> float:
    sizes = []
    for image in test:
        buffer = io.BytesIO()
        Image.fromarray(image.reshape(28, 28)).save(buffer, format="PNG", optimize=True)
        sizes.append(len(buffer.getvalue()))
    return 8 * float(np.mean(sizes)) / test.shape[1]


def main() -> None:
    train, test = images("train-images-idx3-ubyte.gz"), images("t10k-images-idx3-ubyte.gz")
    print("| code | test bits/dim |\n|---|---|")
    print(f"| PNG files (Pillow, optimize=True) | {png_bits(test):.3f} |")
    print(f"| per-pixel independent categorical (add-one smoothing) | {categorical_bits(train, test):.3f} |")


if __name__ == "__main__":
    main()
