"""Writing files so that nothing already written is lost: through a temporary name, then a rename.

A reader (or a resumed run) never sees half a file, and a write that fails (a full disk, a missing
permission) leaves the previous version in place and no temporary behind. The failure becomes one
`WriteError` that names the path and, for a full disk, the free space left.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from typing import Iterator

from glow_tf.errors import WriteError


def free_space(path: str) -> str:
    """Free space on the filesystem holding `path` (or its nearest existing parent), human-readable."""
    folder = os.path.abspath(path)
    while not os.path.exists(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "unknown"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if free < 1024 or unit == "GiB":
            return f"{free:.0f} {unit}" if unit == "B" else f"{free:.1f} {unit}"
        free /= 1024
    return f"{free:.1f} TiB"


def write_error(path: str, err: BaseException) -> WriteError:
    """A one-line WriteError for a failed write of `path`."""
    full = isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)
    if full or "No space left on device" in str(err) or "Disk quota exceeded" in str(err):
        return WriteError(f"cannot write {path}: no space left on device ({free_space(path)} free there); "
                          f"free some space and run the same command again")
    reason = err.strerror if isinstance(err, OSError) and err.strerror else (str(err).strip() or type(err).__name__)
    reason = reason.splitlines()[0]
    return WriteError(f"cannot write {path}: {reason}")


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = "") -> Iterator[str]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on failure it is removed.

    `suffix` keeps an extension at the end of the temporary name for writers that go by it (PIL).
    """
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp{os.getpid()}{suffix}")
    try:
        os.makedirs(folder, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        raise write_error(path, err) from None
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)


def write_text(path: str, text: str) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def write_json(path: str, obj) -> None:
    write_text(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")
