"""Writing files without losing what was there: the one atomic write of the project.

A file is written under a temporary name beside its target and renamed over it only once complete, so
a reader (or a resumed run) sees the old file or the new one, never half of one, and a failed write
leaves no temporary behind. A failed write (a full disk, a missing permission) becomes one `WriteError`
naming the path and, for a full disk, the free space left; the previous version stays in place.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from typing import Iterator

from glow_common.errors import WriteError, first_line


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = "") -> Iterator[str]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on failure it is removed.

    `suffix` keeps an extension at the end of the temporary name, for writers that go by it (PIL, NumPy).
    A failed write or rename raises `write_error(path, ...)`.
    """
    folder = os.path.dirname(os.path.abspath(path))
    temp = os.path.join(folder, f".{os.path.basename(path)}.tmp{os.getpid()}{suffix}")
    try:
        try:
            os.makedirs(folder, exist_ok=True)
            yield temp
            os.replace(temp, path)
        except OSError as err:
            raise write_error(path, err) from None
    finally:
        with contextlib.suppress(OSError):
            os.remove(temp)


def write_bytes(path: str, data: bytes) -> None:
    """Write `path` through a temporary file, flushed to disk, and a rename."""
    with atomic_path(path) as temp, open(temp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: str, obj) -> None:
    write_text(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


def is_disk_full(err: BaseException) -> bool:
    """Whether a failed write failed for want of space (an OSError, or TensorFlow's error text)."""
    text = getattr(err, "message", None) or str(err)
    return (getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "No space left on device" in text
            or "Disk quota exceeded" in text)


def free_space(path: str) -> str:
    """Free space on the filesystem holding `path` (or its nearest existing parent), human-readable."""
    folder = os.path.abspath(path)
    while not os.path.exists(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    try:
        free = float(shutil.disk_usage(folder).free)
    except OSError:
        return "unknown"
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if free < 1024 or unit == "GiB":
            return f"{free:.0f} {unit}" if unit == "bytes" else f"{free:.1f} {unit}"
        free /= 1024


def write_error(path: str, err: BaseException) -> WriteError:
    """The one-line WriteError for a failed write of `path` (an OSError, or TensorFlow's error)."""
    if is_disk_full(err):
        return WriteError(f"cannot write {path}: no space left on device ({free_space(path)} free there); "
                          f"free some space and run the same command again (what was there before is intact)")
    reason = err.strerror if isinstance(err, OSError) and err.strerror else first_line(err)
    return WriteError(f"cannot write {path}: {reason}")
