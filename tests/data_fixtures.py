"""Real-image fixtures for the data tests, built offline from installed packages.

foolbox ships 20 real images each of CIFAR-10 (32x32 PNG), MNIST and Fashion-MNIST (28x28 PNG) and
ImageNet (JPEG, 512 px and more), named `<dataset>_<index>_<label>`; Debian ships the full Fashion-MNIST.
Helpers here lay those images out the way each real dataset comes: a CelebA folder with its attribute
file, LSUN lmdbs, Oord's PNG folders, CIFAR-10 pickles, a Keras .npz.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import pickle
import shutil
from typing import Dict, List, Tuple

import numpy as np
import pytest
from PIL import Image

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
# For tests that read the full Fashion-MNIST (make install installs it; a bare machine skips them).
needs_fashion = pytest.mark.skipif(
    not os.path.exists(os.path.join(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz")),
    reason="needs Debian's dataset-fashion-mnist")


def foolbox_dir() -> str:
    """foolbox's sample images, found without importing foolbox (it needs eagerpy, not installed)."""
    spec = importlib.util.find_spec("foolbox")
    if spec is None:
        raise RuntimeError("foolbox is not installed (make install adds it with --no-deps)")
    return os.path.join(spec.submodule_search_locations[0], "data")


def samples(dataset: str) -> List[Tuple[str, int]]:
    """[(path, label)] of foolbox's samples of one dataset ('cifar10', 'mnist', 'fashionMNIST', 'imagenet')."""
    out = []
    for name in sorted(os.listdir(foolbox_dir())):
        stem, _ = os.path.splitext(name)
        parts = stem.split("_")
        if parts[0] == dataset:
            out.append((os.path.join(foolbox_dir(), name), int(parts[2])))
    if not out:
        raise RuntimeError(f"no foolbox samples for {dataset}")
    return out


def pixels(path: str) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB") if img.mode not in ("L", "RGB") else img)


def centre_resize(path: str, size: int) -> np.ndarray:
    """Independent reference for the converters' 'square' mode: centre crop, Lanczos resize."""
    with Image.open(path) as img:
        img = img.convert("RGB")
        w, h = img.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
        if side != size:
            img = img.resize((size, size), Image.LANCZOS)
        return np.asarray(img)


def pool2x(image: np.ndarray) -> np.ndarray:
    h, w, c = image.shape
    return (image.reshape(h // 2, 2, w // 2, 2, c).astype(np.int64).sum(axis=(1, 3)) // 4).astype(np.uint8)


def class_folders(root: str, dataset: str = "cifar10", count: int = 20) -> Dict[str, Tuple[np.ndarray, int]]:
    """<root>/<label>/<name>.png copies of foolbox images; returns {name: (pixels, label index)}.

    Class folders are named c<label> so that their sorted order gives back the original label numbers
    among the labels present."""
    chosen = samples(dataset)[:count]
    present = sorted({label for _, label in chosen})
    out = {}
    for path, label in chosen:
        folder = os.path.join(root, f"c{label}")
        os.makedirs(folder, exist_ok=True)
        shutil.copy(path, folder)
        out[os.path.basename(path)] = (pixels(path), present.index(label))
    return out


def celeba_folder(root: str, count: int = 10) -> Tuple[str, str, Dict[str, Tuple[int, ...]]]:
    """A CelebA-like folder (ImageNet JPEGs named 000001.jpg, ...) and a list_attr_celeba.txt for it."""
    folder = os.path.join(root, "img_celeba")
    os.makedirs(folder)
    rng = np.random.default_rng(7)
    names = [f"{i:06d}.jpg" for i in range(1, count + 1)]
    attrs = {}
    for name, (path, _) in zip(names, samples("imagenet")):
        shutil.copy(path, os.path.join(folder, name))
        attrs[name] = tuple(int(v) for v in rng.choice([-1, 1], size=40))
    attr_file = os.path.join(root, "list_attr_celeba.txt")
    write_attr_file(attr_file, attrs)
    return folder, attr_file, attrs


def write_attr_file(path: str, attrs: Dict[str, Tuple[int, ...]], count: int = None, n_names: int = 40):
    names = " ".join(f"Attr_{i}" for i in range(n_names))
    with open(path, "w") as f:
        f.write(f"{len(attrs) if count is None else count}\n{names}\n")
        for name, values in attrs.items():
            f.write(name + " " + " ".join(f"{v:2d}" for v in values) + "\n")


def lsun_lmdb(path: str, image_paths: List[str]) -> Dict[bytes, bytes]:
    """An lmdb in the official LSUN export's layout: key = 40-hex SHA-1 id, value = the encoded image."""
    import lmdb

    entries = {}
    for p in image_paths:
        with open(p, "rb") as f:
            data = f.read()
        entries[hashlib.sha1(data).hexdigest().encode()] = data
    env = lmdb.open(path, map_size=1 << 28)
    with env.begin(write=True) as txn:
        for key, value in entries.items():
            txn.put(key, value)
    env.close()
    return entries


def cifar10_pickles(folder: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """cifar-10-batches-py from foolbox's 20 CIFAR-10 images: batches 1..5 hold 3 each, test_batch 5."""
    chosen = samples("cifar10")
    x = np.stack([pixels(p) for p, _ in chosen])
    y = np.array([label for _, label in chosen])
    os.makedirs(folder)

    def dump(name, xs, ys):
        rows = xs.transpose(0, 3, 1, 2).reshape(len(xs), -1)  # CHW rows, as the real pickles
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump({b"data": rows, b"labels": [int(v) for v in ys]}, f)

    for i in range(5):
        dump(f"data_batch_{i + 1}", x[3 * i:3 * i + 3], y[3 * i:3 * i + 3])
    dump("test_batch", x[15:], y[15:])
    return x[:15], y[:15], x[15:], y[15:]


def mnist_npz(path: str, dataset: str = "mnist") -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A Keras-style mnist.npz from foolbox's 20 MNIST digits (16 train, 4 test)."""
    chosen = samples(dataset)
    x = np.stack([pixels(p) for p, _ in chosen]).astype(np.uint8)
    y = np.array([label for _, label in chosen], np.uint8)
    np.savez(path, x_train=x[:16], y_train=y[:16], x_test=x[16:], y_test=y[16:])
    return x[:16], y[:16], x[16:], y[16:]


def read_idx_images(path: str) -> np.ndarray:
    """Independent idx reader for checking the loader: 16-byte header, then 28x28 bytes per image."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    return np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)


def read_idx_labels(path: str) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=8)


def write_records(path: str, examples) -> None:
    """A TFRecord file of (image HWC uint8, label[, attr]) examples, or raw bytes records, written with
    tfrecords_tools.format (whose framing and encoding test_tfrecords_tools checks against TensorFlow)."""
    from tfrecords_tools import format as fmt

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as f:
        for ex in examples:
            if not isinstance(ex, bytes):
                image, label, *attr = ex
                ex = fmt.encode_example(image.shape, image.tobytes(), label, attr[0] if attr else None)
            f.write(fmt.frame(ex))


def cifar_tfrecords(root: str, validation_shards: int = 2) -> Tuple[str, Dict[str, Dict[bytes, int]]]:
    """foolbox's 20 CIFAR-10 images converted with tfrecords_tools.images into <root>/tfr: 17 train in 3
    shards, 3 validation in `validation_shards`. Returns (data_dir, {image bytes: label} per split)."""
    from tfrecords_tools import images as images_tool

    truth = {}
    for split, chosen in (("train", samples("cifar10")[:17]), ("validation", samples("cifar10")[17:])):
        folder = os.path.join(root, f"in_{split}")
        os.makedirs(folder)
        for path, _ in chosen:
            shutil.copy(path, folder)
        shards = "3" if split == "train" else str(validation_shards)
        images_tool.main(["--input", folder, "--output", os.path.join(root, "tfr"), "--resolution", "32",
                          "--split", split, "--shards", shards, "--workers", "0", "--quiet"])
        truth[split] = {pixels(p).tobytes(): 0 for p, _ in chosen}
    return os.path.join(root, "tfr"), truth
