"""What every data source returns, and the batch arithmetic shared by all of them.

`DataSplits` replaces openai/glow's `(train_iterator, test_iterator, data_init)` triple plus the values
its train.py derived next to it (`local_batch_test`, `full_test_its`). The initialisation batch is not
here: the original took it from the training iterator, and the training loop does the same with
`splits.train`.

Every function takes the hyperparameters duck-typed (glow_tf.hparams.HParams in practice) and reads only
these attributes: `image_shape`, `n_batch_train`, `anchor_size`, `local_batch_train()` and `seed`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Optional, Tuple

from data_loaders.errors import DataError

if TYPE_CHECKING:  # TensorFlow is not needed to import this module
    import tensorflow as tf

    from data_loaders.tfrecords import SkipCount

# openai/glow train.py's test-batch lookup, keyed by the per-GPU training batch.
LOCAL_BATCH_TEST = {64: 50, 32: 25, 16: 10, 8: 5, 4: 2, 2: 2, 1: 1}


@dataclasses.dataclass(frozen=True)
class DataSplits:
    """Per-rank training and validation streams.

    train: infinite, shuffled batches of (x uint8 [B, H, W, C], y int32 [B]) with B = local_batch_train.
    test: repeating, unshuffled batches of local_batch_test; the first `test_its` batches are one full
        validation pass of this rank (the original's `full_test_its`), and every pass sees the same images.
    n_test: validation images over all ranks, counting LSUN's unsharded copies (the original's hps.n_test).
    train_files, test_files: the TFRecord files each stream reads (empty for in-memory and TFDS data),
        for `data_loaders.locate_damage`.
    skipped: with skip_corrupt_records, what the training stream skipped so far (see skipped_summary).
    """

    train: "tf.data.Dataset"
    test: "tf.data.Dataset"
    local_batch_train: int
    local_batch_test: int
    test_its: int
    n_test: int
    train_files: Tuple[str, ...] = ()
    test_files: Tuple[str, ...] = ()
    skipped: Optional["SkipCount"] = None

    def skipped_summary(self) -> Optional[str]:
        """One line on the damaged records this rank's training stream skipped, or None if none."""
        return self.skipped.summary() if self.skipped is not None else None


def local_batch_train(hps) -> int:
    """hps.local_batch_train(), with a clear error where the original silently built an empty batch."""
    batch = hps.local_batch_train()
    if batch < 1:
        size = hps.image_shape[0]
        raise DataError(
            f"n_batch_train={hps.n_batch_train} at anchor_size={hps.anchor_size} gives a per-GPU batch of "
            f"{hps.n_batch_train} * {hps.anchor_size}^2 // {size}^2 = 0 images at image_size={size}; "
            f"use n_batch_train >= {_min_batch_for(1, hps)}")
    return batch


def _min_batch_for(local: int, hps) -> int:
    """Smallest n_batch_train whose area-scaled per-GPU batch is `local` (openai/glow train.py scales the
    batch by (anchor_size / image_size)^2)."""
    size = hps.image_shape[0]
    return -(-local * size ** 2 // hps.anchor_size ** 2)


def local_batch_test(hps, n_test: Optional[int] = None, size: int = 1) -> int:
    """openai/glow train.py's test batch table, keyed by the per-GPU training batch.

    The original raised KeyError for per-GPU batches outside the table: `KeyError: 0` for an empty batch
    (openai/glow#48; local_batch_train refuses that clearly) and `KeyError: 7` for LSUN at 96x96, whose
    README command therefore never ran. Outside the table we take the largest batch, up to the training
    batch, that splits n_test evenly over the ranks (6 for LSUN-96's 300 images per rank).
    """
    batch = local_batch_train(hps)
    if batch in LOCAL_BATCH_TEST:
        return LOCAL_BATCH_TEST[batch]
    for candidate in range(batch, 0, -1):
        if not n_test or n_test % (candidate * size) == 0:
            return candidate
    return batch


def full_test_its(n_test: int, batch_test: int, size: int) -> int:
    """Batches per rank in one validation pass: n_test / (local_batch_test * size), exactly (openai/glow
    train.py, full_test_its).

    The original asserted divisibility. Rounding either way would silently count some images twice or
    skip some, so a non-divisible n_test is refused with the nearest sizes that work.
    """
    per_step = batch_test * size
    if n_test < per_step:
        raise DataError(f"n_test={n_test} is smaller than one validation step of local_batch_test="
                        f"{batch_test} x {size} ranks = {per_step} images")
    if n_test % per_step:
        lower = n_test // per_step * per_step
        raise DataError(
            f"n_test={n_test} is not divisible by local_batch_test * ranks = {batch_test} * {size} = "
            f"{per_step}, so the ranks cannot run the same number of validation batches; pass "
            f"--n_test {lower} ({lower // per_step} batches per rank) or run on a number of ranks that "
            f"divides it")
    return n_test // per_step


def rank_seed(seed: int, rank: int, size: int) -> int:
    """openai/glow train.py's per-rank seed, rank + size * seed."""
    return rank + size * seed


def check_rank(rank: int, size: int) -> None:
    if size < 1 or not 0 <= rank < size:
        raise DataError(f"rank={rank} and size={size}: expected size >= 1 and 0 <= rank < size")
