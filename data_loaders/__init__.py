"""Data for glow-tf: one entry point, `get_data`, over the original's problems (spec §4).

    from data_loaders import get_data, DataError
    splits = get_data(hps, rank=hvd.rank(), size=hvd.size())
    for x, y in splits.train: ...            # uint8 [B, H, W, C], int32 [B]; infinite, shuffled
    for x, y in splits.test.take(splits.test_its): ...   # one full validation pass of this rank

Sources:
  * TFRecord shards (data_loaders.tfrecords): celeba, lsun, lsun_realnvp, imagenet-oord, imagenet, and
    `tfrecords` for any folder written by tfrecords_tools (needs --image_size).
  * In memory (data_loaders.in_memory): mnist, fashion_mnist (the default data, from Debian), cifar10.
  * TensorFlow Datasets (data_loaders.tfds_source): `tfds:NAME[/CONFIG]` (needs --image_size).
"""

from __future__ import annotations

from glow_tf.hparams import HParams

from data_loaders import common, in_memory, tfds_source, tfrecords
from data_loaders.common import DataSplits
from data_loaders.errors import DataError

__all__ = ["get_data", "DataError", "DataSplits", "PROBLEMS"]

PROBLEMS = in_memory.PROBLEMS + tfrecords.TFRECORD_PROBLEMS + (tfds_source.PREFIX + "NAME[/CONFIG]",)


def get_data(hps: HParams, rank: int = 0, size: int = 1, allow_download: bool = False) -> DataSplits:
    """Per-rank training and validation pipelines for hps.problem (port of train.py's get_data, spec §4).

    rank/size: this process's Horovod rank and the number of ranks; the training data is split into
    disjoint per-rank shards that together cover the dataset. allow_download: only MNIST/CIFAR-10 (Keras)
    and tfds problems can download, and only when this is True. Raises DataError for any bad input.
    """
    common.check_rank(rank, size)
    problem = hps.problem
    if problem in in_memory.PROBLEMS:
        return in_memory.get_data(hps, rank, size, allow_download=allow_download)
    if problem in tfrecords.TFRECORD_PROBLEMS:
        return tfrecords.get_data(hps, rank, size)
    if problem.startswith(tfds_source.PREFIX):
        return tfds_source.get_data(hps, rank, size, allow_download=allow_download)
    raise DataError(f"unknown problem {problem!r}; expected one of {', '.join(PROBLEMS)}")
