"""A tiny Fashion-MNIST Glow trained by train.py for the demo's tests, made once per test session.

28x28x1 like `make train`'s model, 2 levels of 1 step of width 8, 4 steps of 16 images: seconds on a CPU.
Its validation split is the first 100 test images, so computing the class directions takes a second.
"""

from __future__ import annotations

import io
import os
import shutil
from typing import Optional

import numpy as np
from PIL import Image

TRAIN_ARGS = ["--problem", "fashion_mnist", "--image_size", "28", "--n_channels", "1", "--anchor_size", "28",
              "--n_levels", "2", "--depth", "1", "--width", "8", "--flow_coupling", "1", "--flow_permutation", "2",
              "--learntop", "--n_batch_train", "16", "--n_batch_init", "16", "--n_train", "64", "--n_test", "100",
              "--epochs", "2", "--epochs_warmup", "1", "--epochs_full_valid", "1", "--epochs_full_sample", "100",
              "--gradient_checkpointing", "0", "--dal", "0"]
_trained: Optional[str] = None


def tiny_logdir(tmp_path_factory) -> str:
    """The trained logdir (train.py's layout), trained on the first call of the session."""
    global _trained
    if _trained is None:
        import train

        logdir = str(tmp_path_factory.mktemp("demo_model") / "run")
        code = train.main(TRAIN_ARGS + ["--logdir", logdir])
        assert code == 0, f"train.py failed with status {code}"
        _trained = logdir
    return _trained


def fresh_copy(logdir: str, tmp_path_factory, name: str) -> str:
    """A copy of the logdir without a directions cache."""
    target = str(tmp_path_factory.mktemp(name) / "run")
    shutil.copytree(logdir, target, ignore=shutil.ignore_patterns("demo_directions*"))
    return target


def from_uri(uri: str) -> np.ndarray:
    """uint8 [H, W, C] from a PNG data URI, decoded independently of the demo's code."""
    import base64

    head, payload = uri.split(",", 1)
    assert head == "data:image/png;base64", head
    with Image.open(io.BytesIO(base64.b64decode(payload))) as img:
        pixels = np.asarray(img)
    return pixels[..., None] if pixels.ndim == 2 else pixels


def png_file(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels[..., 0] if pixels.ndim == 3 and pixels.shape[-1] == 1 else pixels).save(out, "PNG")
    return out.getvalue()


def foolbox_fashion(index: int = 0) -> str:
    from tests.data_fixtures import samples

    return samples("fashionMNIST")[index][0]


def debian_test_set():
    """(images [N, 28, 28], labels [N]) of Debian's Fashion-MNIST test split, read with plain gzip."""
    from tests.data_fixtures import FASHION_MNIST_DIR, read_idx_images, read_idx_labels

    return (read_idx_images(os.path.join(FASHION_MNIST_DIR, "t10k-images-idx3-ubyte.gz")),
            read_idx_labels(os.path.join(FASHION_MNIST_DIR, "t10k-labels-idx1-ubyte.gz")))
