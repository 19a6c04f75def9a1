"""The problem registry: every dataset `--problem` names, with what the rest of the code needs to know.

Adding a problem is one `Problem(...)` line in `REGISTRY` (plus a reader, for a new kind of source).
Sizes, class counts, validation sizes and folders are openai/glow's (train.py's -1 defaults,
get_data.py and get_mnist_cifar.py); `fashion_mnist` and `tfrecords` are our extensions, and
`tfds:NAME[/CONFIG]` stands for any TensorFlow Datasets image dataset.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional

IN_MEMORY = "in_memory"  # arrays in memory: data_loaders.in_memory
TFRECORDS = "tfrecords"  # sharded TFRecords in openai/glow's format: data_loaders.tfrecords
TFDS = "tfds"            # TensorFlow Datasets: data_loaders.tfds_source
TFDS_PREFIX = "tfds:"

# The original padded MNIST to the CIFAR size; augmentation runs there, before any downsampling.
PADDED_SIZE = 32


@dataclasses.dataclass(frozen=True)
class Problem:
    """One dataset.

    image_size: the default --image_size (None: the user must give it).
    n_classes: the original's n_y (1 for unlabelled data).
    n_test: default validation images (None: all the data has, or --n_test where the source cannot tell).
    shard_validation: False where every rank reads the whole validation set (LSUN in the original, whose
        n_test therefore counts n_test images per rank).
    data_dir: the default --data_dir.
    random_crop: take random image_size crops of larger stored images, in training and validation
        (lsun_realnvp).
    grey: the images have one channel of their own, which the reader copies to every channel of the
        model (MNIST-like; openai/glow get_mnist_cifar.py tiles MNIST to 3 channels).
    native_size, layout, keras_cache: in-memory problems only: the stored images' side, their file layout
        ('idx' for (Fashion-)MNIST, 'cifar10' for the python pickles) and the folder keras.datasets
        downloads them to under ~/.keras/datasets.
    """

    name: str
    source: str
    image_size: Optional[int] = None
    n_classes: int = 1
    n_test: Optional[int] = None
    shard_validation: bool = True
    data_dir: str = ""
    random_crop: bool = False
    grey: bool = False
    native_size: Optional[int] = None
    layout: str = ""
    keras_cache: str = ""

    def stored_size(self, image_size: int) -> int:
        """In-memory problems: the side the images are kept at before box-downsampling to image_size: 32,
        MNIST-like images zero-padded from 28 as in the original, or their native 28 unpadded."""
        native = self.native_size
        if native != PADDED_SIZE and PADDED_SIZE % image_size and native % image_size == 0:
            return native
        if PADDED_SIZE % image_size:
            from data_loaders.errors import DataError

            unpadded = native != PADDED_SIZE
            sizes = sorted({PADDED_SIZE // 2 ** k for k in range(6)} |
                           ({native >> k for k in range(3)} if unpadded else set()))
            raise DataError(f"image_size={image_size} for {self.name}: images are box-downsampled by an integer "
                            f"factor from {PADDED_SIZE}x{PADDED_SIZE}"
                            f"{f' (or {native}x{native} unpadded)' if unpadded else ''}; use one of {sizes}")
        return PADDED_SIZE

    def default_n_test(self, size: int) -> Optional[int]:
        """Validation images over `size` ranks when --n_test is not given (None: the source decides)."""
        if self.n_test is None or self.shard_validation:
            return self.n_test
        return self.n_test * size


REGISTRY: Dict[str, Problem] = {p.name: p for p in (
    Problem("mnist", IN_MEMORY, image_size=32, n_classes=10, grey=True, native_size=28, layout="idx",
            keras_cache="mnist"),
    Problem("fashion_mnist", IN_MEMORY, image_size=32, n_classes=10, grey=True, native_size=28, layout="idx",
            keras_cache="fashion-mnist", data_dir="/usr/share/datasets/fashion-mnist"),  # Debian's package
    Problem("cifar10", IN_MEMORY, image_size=32, n_classes=10, native_size=32, layout="cifar10",
            keras_cache="cifar-10-batches-py"),
    Problem("imagenet-oord", TFRECORDS, image_size=64, n_classes=1000, n_test=50000,
            data_dir="/mnt/host/imagenet-oord-tfr"),
    Problem("imagenet", TFRECORDS, image_size=256, n_classes=1000, n_test=50000, data_dir="/mnt/host/imagenet-tfr"),
    Problem("celeba", TFRECORDS, image_size=256, n_test=3000, data_dir="/mnt/host/celeba-reshard-tfr"),
    Problem("lsun_realnvp", TFRECORDS, image_size=64, n_test=300, shard_validation=False, random_crop=True,
            data_dir="/mnt/host/lsun_realnvp"),
    Problem("lsun", TFRECORDS, image_size=256, n_test=300, shard_validation=False, data_dir="/mnt/host/lsun"),
    # Any folder written by tfrecords_tools, at the --image_size the user gives.
    Problem("tfrecords", TFRECORDS),
)}


def find(name: str) -> Optional[Problem]:
    """The problem called `name` (a `tfds:` name gives a TFDS problem), or None."""
    if name.startswith(TFDS_PREFIX):
        return Problem(name, TFDS)
    return REGISTRY.get(name)


def names() -> List[str]:
    """Every valid --problem, for messages and help."""
    return list(REGISTRY) + [TFDS_PREFIX + "NAME[/CONFIG]"]


def with_default_size() -> List[str]:
    return [name for name, p in REGISTRY.items() if p.image_size is not None]
