"""Writing files without losing what was there: the one atomic write of the project, and disk-full facts.

This is the lowest package, so every other one (data_loaders, glow_tf) writes through these helpers:
a file is written under a temporary name beside its target and renamed over it only once complete,
so a reader (or a resumed run) sees the old file or the new one, never half of one; a failed write
leaves no temporary behind. glow_tf.files turns the OSError of a failed write into its one-line error.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = "") -> Iterator[str]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on failure it is removed.

    `suffix` keeps an extension at the end of the temporary name, for writers that go by it (PIL, NumPy).
    """
    folder = os.path.dirname(os.path.abspath(path))
    temp = os.path.join(folder, f".{os.path.basename(path)}.tmp{os.getpid()}{suffix}")
    try:
        os.makedirs(folder, exist_ok=True)
        yield temp
        os.replace(temp, path)
    finally:
        with contextlib.suppress(OSError):
            os.remove(temp)


def write_atomic(path: str, data: bytes) -> None:
    """Write `path` through a temporary file, flushed to disk, and a rename."""
    with atomic_path(path) as temp, open(temp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


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
