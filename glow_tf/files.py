"""Writing files so that nothing already written is lost (tfrecords_tools.files: a temporary name, then
a rename), with a failed write (a full disk, a missing permission) as one `WriteError` that names the
path and, for a full disk, the free space left; the previous version stays in place.
"""

from __future__ import annotations

import contextlib
import json
from typing import Iterator

from glow_tf.errors import WriteError
from tfrecords_tools import files
from tfrecords_tools.files import free_space, is_disk_full


def write_error(path: str, err: BaseException) -> WriteError:
    """A one-line WriteError for a failed write of `path`."""
    if is_disk_full(err):
        return WriteError(f"cannot write {path}: no space left on device ({free_space(path)} free there); "
                          f"free some space and run the same command again")
    reason = err.strerror if isinstance(err, OSError) and err.strerror else (str(err).strip() or type(err).__name__)
    return WriteError(f"cannot write {path}: {reason.splitlines()[0]}")


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = "") -> Iterator[str]:
    """tfrecords_tools.files.atomic_path, with a failure reported as one WriteError."""
    try:
        with files.atomic_path(path, suffix) as temp:
            yield temp
    except OSError as err:
        raise write_error(path, err) from None


def write_text(path: str, text: str) -> None:
    try:
        files.write_atomic(path, text.encode())
    except OSError as err:
        raise write_error(path, err) from None


def write_json(path: str, obj) -> None:
    write_text(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")
