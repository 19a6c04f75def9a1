"""MNIST, Fashion-MNIST and CIFAR-10 held in memory (port of openai/glow data_loaders/get_mnist_cifar.py).

As in the original: MNIST-like images are zero-padded from 28x28 to 32x32 and tiled to 3 channels, each
rank takes a contiguous slice of the data before any shuffling, training batches get the `--dal`
augmentation (data_loaders.augment) and then a box downsampling to image_size if it is below 32, and the
floats are floored and clipped to uint8. Validation batches are neither augmented nor shuffled.

Where the original called `keras.datasets.*.load_data()` (a download), this reads local files first:
Keras' own `.npz` files, the CIFAR-10 python pickles (`cifar-10-batches-py`) and the idx `.gz` files of
(Fashion-)MNIST. Fashion-MNIST defaults to Debian's `dataset-fashion-mnist` folder, the project's default
training data. Keras downloads only with `allow_download=True`. Each problem's stored size, file layout
and folders are its entry in data_loaders.problems.

Extensions: `fashion_mnist`; `image_size=28` keeps MNIST-like data unpadded; `n_channels=1` keeps them
grayscale; the per-rank slices need not divide evenly (they differ by at most one image).

`get_data` reads these attributes of hps: problem, data_dir, dal, image_shape, n_channels, n_test,
n_batch_train, anchor_size, local_batch_train() and seed.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from typing import Callable, List, Tuple

import numpy as np
import tensorflow as tf

from data_loaders import augment, common, problems
from data_loaders.errors import DataError

Arrays = Tuple[Tuple[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]


# ---------------------------------------------------------------------------------------------------------
# File readers. Each returns ((x_train, y_train), (x_test, y_test)) like keras.datasets.*.load_data().

def read_npz(path: str) -> Arrays:
    """A Keras dataset `.npz` (mnist.npz layout: x_train, y_train, x_test, y_test)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = {"x_train", "y_train", "x_test", "y_test"} - set(f.files)
            if missing:
                raise DataError(f"{path}: .npz lacks arrays {sorted(missing)} (expected x_train, y_train, "
                                f"x_test, y_test as in Keras' mnist.npz)")
            return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
    except (OSError, ValueError) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"{path}: not a readable .npz file ({err})") from None


def _read_idx(path: str, magic: int, ndim: int) -> np.ndarray:
    """One idx file (gzipped or not): big-endian magic, ndim sizes, then uint8 data."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise DataError(f"{path}: cannot read idx file ({err})") from None
    header = 4 + 4 * ndim
    if len(raw) < header or struct.unpack(">i", raw[:4])[0] != magic:
        raise DataError(f"{path}: not an idx file with magic number {magic} ({ndim}-d uint8)")
    shape = struct.unpack(f">{ndim}i", raw[4:header])
    data = np.frombuffer(raw, np.uint8, offset=header)
    if data.size != np.prod(shape):
        raise DataError(f"{path}: truncated idx file: header says {shape} = {int(np.prod(shape))} bytes, "
                        f"found {data.size}")
    return data.reshape(shape)


def read_idx_dir(folder: str) -> Arrays:
    """(Fashion-)MNIST's four idx files, `.gz` or not: {train,t10k}-{images-idx3,labels-idx1}-ubyte."""
    arrays = []
    for prefix in ("train", "t10k"):
        images = _find(folder, f"{prefix}-images-idx3-ubyte")
        labels = _find(folder, f"{prefix}-labels-idx1-ubyte")
        x, y = _read_idx(images, 2051, 3), _read_idx(labels, 2049, 1)
        if len(x) != len(y):
            raise DataError(f"{images} holds {len(x)} images but {labels} holds {len(y)} labels")
        arrays.append((x, y))
    return tuple(arrays)


def _find(folder: str, stem: str) -> str:
    for name in (stem + ".gz", stem):
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    raise DataError(f"{folder}: missing {stem}.gz (expected the four idx files of (Fashion-)MNIST)")


def read_cifar10_dir(folder: str) -> Arrays:
    """The CIFAR-10 python pickles: data_batch_1..5 and test_batch (rows of 3072 bytes, CHW)."""
    if os.path.isdir(os.path.join(folder, "cifar-10-batches-py")):
        folder = os.path.join(folder, "cifar-10-batches-py")
    names = [f"data_batch_{i}" for i in range(1, 6)]
    train = [_read_cifar_batch(os.path.join(folder, n)) for n in names]
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return (x_train, y_train), _read_cifar_batch(os.path.join(folder, "test_batch"))


def _read_cifar_batch(path: str) -> Tuple[np.ndarray, np.ndarray]:
    if not os.path.isfile(path):
        raise DataError(f"missing CIFAR-10 file {path} (expected data_batch_1..5 and test_batch from "
                        f"cifar-10-python.tar.gz)")
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], np.uint8)
        labels = np.asarray(batch[b"labels"], np.int64)
    except Exception as err:  # a pickle of the wrong thing can fail in many ways
        raise DataError(f"{path}: not a CIFAR-10 python batch ({type(err).__name__}: {err})") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DataError(f"{path}: expected data [N, 3072] and N labels, found data {data.shape} and "
                        f"{len(labels)} labels")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


# ---------------------------------------------------------------------------------------------------------
# Finding the files.

def _keras_datasets_dir() -> str:
    return os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "datasets")


def _candidates(problem: problems.Problem, data_dir: str) -> List[Tuple[str, Callable[[str], Arrays]]]:
    """Places to look, in order: --data_dir (a file or a folder), then the default locations."""
    npz_name = f"{problem.name}.npz"  # what keras.datasets.<name> keeps
    keras = _keras_datasets_dir()
    folder_reader = read_cifar10_dir if problem.layout == "cifar10" else read_idx_dir
    defaults = ([problem.data_dir] if problem.data_dir else []) + [os.path.join(keras, problem.keras_cache)]
    if data_dir:
        if data_dir.endswith(".npz"):
            return [(data_dir, read_npz)]
        return [(os.path.join(data_dir, npz_name), read_npz), (data_dir, folder_reader)]
    return [(path, folder_reader) for path in defaults] + [(os.path.join(keras, npz_name), read_npz)]


def _present(path: str, reader) -> bool:
    if reader is read_npz:
        return os.path.isfile(path)
    if reader is read_cifar10_dir:
        return any(os.path.isfile(os.path.join(path, sub, "test_batch")) for sub in ("", "cifar-10-batches-py"))
    return any(os.path.isfile(os.path.join(path, "t10k-labels-idx1-ubyte" + ext)) for ext in (".gz", ""))


def load_arrays(problem: problems.Problem, data_dir: str = "", allow_download: bool = False) -> Arrays:
    """Read the problem's train and test arrays from local files, or from Keras if downloads are allowed."""
    candidates = _candidates(problem, data_dir)
    for path, reader in candidates:
        if _present(path, reader):
            return _validated(problem, path, reader(path))
    if data_dir and os.path.isfile(data_dir):
        raise DataError(f"--data_dir {data_dir} is a file; give a folder or a Keras .npz file")
    if allow_download:
        return _validated(problem, f"keras.datasets.{problem.name}",
                          getattr(tf.keras.datasets, problem.name).load_data())
    looked = ", ".join(path for path, _ in candidates)
    raise DataError(f"no {problem.name} data found (looked in {looked}); pass --data_dir with Keras' .npz, the "
                    f"CIFAR-10 python pickles or the idx .gz files, or allow downloading through Keras")


def _validated(problem: problems.Problem, source: str, arrays: Arrays) -> Arrays:
    native, n_classes = problem.native_size, problem.n_classes
    shape = (native, native) if problem.grey else (native, native, 3)
    out = []
    for split, (x, y) in zip(("train", "test"), arrays):
        x, y = np.asarray(x), np.asarray(y).reshape(-1)
        if x.dtype != np.uint8 or x.shape[1:] != shape:
            raise DataError(f"{source}: {split} images are {x.dtype} {x.shape[1:]}, expected uint8 {shape} "
                            f"for {problem.name}")
        if len(x) != len(y):
            raise DataError(f"{source}: {len(x)} {split} images but {len(y)} labels")
        if len(y) and (y.min() < 0 or y.max() >= n_classes):
            raise DataError(f"{source}: {split} label {int(y.max() if y.max() >= n_classes else y.min())} out "
                            f"of range, expected 0..{n_classes - 1}")
        out.append((x, y.astype(np.int32)))
    return tuple(out)


# ---------------------------------------------------------------------------------------------------------
# Shapes and the tf.data pipeline.

def prepare_images(problem: problems.Problem, x: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad MNIST-like images to `size` (the original: 32) and give them a channel axis.

    The tiling to n_channels happens per batch in the pipeline, so memory holds one channel.
    """
    if not problem.grey:
        return x
    pad = (size - x.shape[1]) // 2
    # The original used np.pad mode 'minimum', which is 0 for these images; zeros say what is meant.
    return np.pad(x, [(0, 0), (pad, pad), (pad, pad)])[..., None]


def rank_slice(n: int, rank: int, size: int) -> slice:
    """Contiguous, disjoint slices covering all n items; sizes differ by at most one."""
    bounds = np.linspace(0, n, size + 1).round().astype(int) if size > 1 else [0, n]
    return slice(int(bounds[rank]), int(bounds[rank + 1]))


def _batches(x: np.ndarray, y: np.ndarray, batch: int, *, train: bool, seed: int, dal: int, extra: bool,
             factor: int, n_channels: int) -> tf.data.Dataset:
    """Batches of (uint8 images, int32 labels), gathered by index so the data is held once."""
    images, labels = tf.constant(x), tf.constant(y)
    n = len(x)
    if train:
        # Pass p over the images takes them in the order that stateless_shuffle draws for (seed, p): a
        # full reshuffle every pass, whose iterator state (data_loaders.position) is a pass and an
        # offset, where a 60,000-entry shuffle buffer was 14 MiB to save and over a second to restore.
        def one_pass(p):
            order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64),
                                                             seed=tf.stack([tf.constant(seed, tf.int64), p]))
            return tf.data.Dataset.from_tensor_slices(order)

        indices = tf.data.Dataset.counter().flat_map(one_pass)
    else:
        indices = tf.data.Dataset.range(n).repeat()
    indices = indices.batch(batch, drop_remainder=True)
    augmented = train and dal > 0
    seeds = tf.data.Dataset.random(seed=seed).batch(2)

    def load(index, aug_seed):
        xb = tf.gather(images, index)
        if augmented or factor > 1:
            xf = tf.cast(xb, tf.float32)
            if augmented:
                xf = augment.random_affine(xf, aug_seed, extra=extra)
            xb = augment.to_uint8(augment.box_downsample(xf, factor))
        if xb.shape[-1] != n_channels:
            xb = tf.tile(xb, [1, 1, 1, n_channels])  # MNIST-like: grey copied to every channel
        return xb, tf.gather(labels, index)

    return (tf.data.Dataset.zip((indices, seeds))
            .map(load, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def get_data(hps, rank: int, size: int, allow_download: bool = False) -> common.DataSplits:
    """Port of get_mnist_cifar.py's get_data, returning per-rank tf.data pipelines."""
    problem = problems.find(hps.problem)
    if hps.dal not in (0, 1, 2):
        raise DataError(f"dal={hps.dal}: expected 0 (no augmentation), 1 (shifts) or 2 (shifts and more)")
    image_size = hps.image_shape[0]
    base = problem.stored_size(image_size)
    batch_train = common.local_batch_train(hps)
    if not problem.grey and hps.n_channels != 3:
        raise DataError(f"n_channels={hps.n_channels} for {problem.name}: its images are RGB, use 3")
    (x_train, y_train), (x_test, y_test) = load_arrays(problem, hps.data_dir, allow_download)
    n_test = hps.n_test if hps.n_test is not None else len(x_test)
    batch_test = common.local_batch_test(hps, n_test, size)
    if n_test > len(x_test):
        raise DataError(f"n_test={n_test} exceeds the {len(x_test)} {problem.name} test images")
    test_its = common.full_test_its(n_test, batch_test, size)
    train_part = rank_slice(len(x_train), rank, size)
    if train_part.stop - train_part.start < batch_train:
        raise DataError(f"rank {rank} of {size} holds {train_part.stop - train_part.start} training images, "
                        f"fewer than one batch of {batch_train}")
    # Validation uses the first n_test images, n_test / size per rank, so a pass reads each once.
    per_rank = n_test // size
    test_part = slice(rank * per_rank, (rank + 1) * per_rank)
    seed = common.rank_seed(hps.seed, rank, size)
    # dal=2's extras were CIFAR-only in the original; MNIST-like data keeps the shifts.
    kwargs = dict(factor=base // image_size, dal=hps.dal, extra=hps.dal == 2 and not problem.grey,
                  n_channels=hps.n_channels)
    train = _batches(prepare_images(problem, x_train[train_part], base), y_train[train_part],
                     batch_train, train=True, seed=seed, **kwargs)
    test = _batches(prepare_images(problem, x_test[test_part], base), y_test[test_part],
                    batch_test, train=False, seed=seed, **kwargs)
    return common.DataSplits(train=train, test=test, local_batch_train=batch_train,
                             local_batch_test=batch_test, test_its=test_its, n_test=n_test)
