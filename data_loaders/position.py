"""Where a rank's training stream stands, saved beside the checkpoints so that a resume continues it.

Every training pipeline here is deterministic for a given configuration (seeded shuffles, stateless
augmentation and crops), so the stream after n batches can always be rebuilt by reading and dropping n
batches. That costs one pass over everything read since the start of the run: minutes to hours late
in a long run. So each rank also saves its tf.data iterator state (positions, shuffle and prefetch
buffers; a few MiB) at every checkpoint, and a resume restores it when one exists for the same step and
the same data configuration; otherwise it falls back to skipping.

Files: `<folder>/<key>-<step>.index|.data-*`, where `key` names the data configuration and the rank
(see `position_key`), so a different batch size, seed, rank count or dataset never restores a state
written for another stream. The newest `keep` per key are kept.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
from typing import Callable, Iterator, Optional

import tensorflow as tf

from data_loaders.errors import DataError
from glow_common.errors import first_line

# Bump when a pipeline's structure changes, so that states written by older code are not restored:
# tf.data restores a state into a pipeline of another structure without an error, giving a wrong stream.
FORMAT = 3  # 2: the in-memory training order is a stateless shuffle per pass; 3: TFRecord files are read
#             through the end-of-file check of data_loaders.tfrecords


def position_key(rank: int, size: int, **config) -> str:
    """A file-name key for rank `rank` of `size` reading the stream that `config` (JSON values) defines."""
    config = dict(config, format=FORMAT)
    digest = hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"data-{digest}-rank{rank}of{size}"


def _prefix(folder: str, key: str, step: int) -> str:
    return os.path.join(folder, f"{key}-{step}")


def _saved_steps(folder: str, key: str) -> list[int]:
    pattern = re.compile(re.escape(key) + r"-(\d+)\.index$")
    steps = [pattern.search(os.path.basename(p)) for p in glob.glob(os.path.join(folder, f"{key}-*.index"))]
    return sorted(int(m.group(1)) for m in steps if m)


def save_position(iterator, folder: str, key: str, step: int, keep: int = 3) -> str:
    """Write the iterator's state for `step` (the writer renames into place, so no half-written state),
    then remove this key's states older than the newest `keep`. Returns the prefix written."""
    os.makedirs(folder, exist_ok=True)
    prefix = tf.train.Checkpoint(iterator=iterator).write(_prefix(folder, key, step))
    for old in _saved_steps(folder, key)[:-keep]:
        for path in glob.glob(_prefix(folder, key, old) + ".*"):
            os.remove(path)
    return prefix


def _readable(prefix: str) -> None:
    """Read every tensor of a saved state (checksums included) without touching any pipeline; raises."""
    dtypes = tf.train.load_checkpoint(prefix).get_variable_to_dtype_map()
    names = sorted(dtypes)
    tf.raw_ops.RestoreV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                         dtypes=[dtypes[n] for n in names])


def resume_position(dataset: tf.data.Dataset, folder: str, key: str, step: int, batches: int,
                    rebuild: Optional[Callable[[], tf.data.Dataset]] = None) -> tuple[Iterator, str]:
    """An iterator over `dataset` that continues where the stream stood after `batches` batches.

    Restores the state saved for `step` under `key` when there is one; otherwise (none saved, e.g. a
    checkpoint written before this existed, or an unreadable file) reads and drops `batches` batches.
    `dataset` must not have been iterated yet: each new iterator over a dataset with a reshuffling
    shuffle draws a new order. For the same reason a state that reads back but does not fit the
    pipeline (tf.data refuses it only while restoring) falls back to skipping only over a new copy of
    the dataset, from `rebuild`; without one, it raises DataError. Returns the iterator and how it got
    there, for the log.
    """
    if batches <= 0:
        return iter(dataset), "from the start"
    prefix = _prefix(folder, key, step)
    if not os.path.exists(prefix + ".index"):
        reason = f"no saved state for step {step}"
    else:
        try:
            _readable(prefix)  # checked first: after a failed restore the dataset could not be reused
        except Exception as err:  # whatever the reason, skipping still gives the right stream
            reason = f"the saved state {prefix} is unreadable ({_why(err)})"
        else:
            iterator = iter(dataset)
            try:
                tf.train.Checkpoint(iterator=iterator).read(prefix).assert_consumed()
                return iterator, f"restored from {prefix}"
            except Exception as err:
                reason = f"the saved state {prefix} does not fit this stream ({_why(err)})"
                if rebuild is None:
                    raise DataError(f"{reason}; remove it to resume by skipping {batches} batches") from None
                dataset = rebuild()
    return iter(dataset.skip(batches)), f"{reason}: skipped {batches} batches"


def _why(err: Exception) -> str:
    return f"{type(err).__name__}: {first_line(str(err))}"
