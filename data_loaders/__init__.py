"""Data for glow-tf: one entry point, `get_data`, over the problems of the registry (data_loaders.problems).

    from data_loaders import get_data, DataError
    splits = get_data(hps, rank=hvd.rank(), size=hvd.size())
    for x, y in splits.train: ...            # uint8 [B, H, W, C], int32 [B]; infinite, shuffled
    for x, y in splits.test.take(splits.test_its): ...   # one full validation pass of this rank

Sources:
  * TFRecord shards (data_loaders.tfrecords): celeba, lsun, lsun_realnvp, imagenet-oord, imagenet, and
    `tfrecords` for any folder written by tfrecords_tools (needs --image_size).
  * In memory (data_loaders.in_memory): mnist, fashion_mnist (the default data, from Debian), cifar10.
  * TensorFlow Datasets (data_loaders.tfds_source): `tfds:NAME[/CONFIG]` (needs --image_size).

When next() on a TFRecord pipeline raises, `locate_damage(splits.train_files, err)` gives the one line to
print. This package never imports glow_tf: the hyperparameters are taken duck-typed, and importing it
(or its registry) does not import TensorFlow.
"""

from __future__ import annotations

from data_loaders import common, problems
from data_loaders.common import DataSplits
from data_loaders.damage import locate_damage
from data_loaders.errors import DataError

__all__ = ["get_data", "locate_damage", "DataError", "DataSplits"]


def get_data(hps, rank: int = 0, size: int = 1, allow_download: bool = False) -> DataSplits:
    """Per-rank training and validation pipelines for hps.problem (port of openai/glow train.py, get_data).

    rank/size: this process's Horovod rank and the number of ranks; the training data is split into
    disjoint per-rank shards that together cover the dataset. allow_download: only MNIST/CIFAR-10 (Keras)
    and tfds problems can download, and only when this is True. Raises DataError for any bad input.
    """
    common.check_rank(rank, size)
    problem = problems.find(hps.problem)
    if problem is None:
        raise DataError(f"unknown problem {hps.problem!r}; expected one of {', '.join(problems.names())}")
    if problem.source == problems.IN_MEMORY:
        from data_loaders import in_memory
        return in_memory.get_data(hps, rank, size, allow_download=allow_download)
    if problem.source == problems.TFRECORDS:
        from data_loaders import tfrecords
        return tfrecords.get_data(hps, rank, size)
    from data_loaders import tfds_source
    return tfds_source.get_data(hps, rank, size, allow_download=allow_download)
