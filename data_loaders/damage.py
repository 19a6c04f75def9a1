"""Turning an error raised while reading TFRecords into one line that names the file and the fix.

The readers of data_loaders.tfrecords already name the file in their errors. TensorFlow's own reader
does not ("corrupted record at 5052", with no file, from any pipeline over several files), so for
those the files are searched here: their framing is walked up to that offset (12 bytes read per
record) and the record found there has its checksums checked.
"""

from __future__ import annotations

import os
import re
import shlex
from typing import Optional, Sequence, Tuple

from data_loaders.errors import DataError
from glow_common.errors import first_line
from tfrecords_tools import format as fmt
from tfrecords_tools.errors import DamagedFile

# How data_loaders.tfrecords's end-of-file check words a file that stopped early: "in <path>: <STOPPED>
# <records read> at byte <bytes read> of <size> ...".
STOPPED = "reading stopped after record"

_OURS = re.compile(r"(?:^|\[)in (?P<path>[^\[\]]+?\.tfrecords): " + re.escape(STOPPED)
                   + r" (?P<index>\d+) at byte (?P<offset>\d+)")
_NAMED = re.compile(r"(?:^|\[)in (?P<path>[^\[\]]+?\.tfrecords): (?P<what>.*)")
_TF_OFFSET = re.compile(r"(?:corrupted|truncated) record at (?P<offset>\d+)")


def verify_command(data_dir: str) -> str:
    """The command that lists every damaged record under data_dir, quoted to run as written."""
    return f"python -m tfrecords_tools.verify {shlex.quote(data_dir)}"


def _fix(path: str, skip_flag: Optional[str]) -> str:
    folder = os.path.dirname(os.path.dirname(os.path.abspath(path)))
    skip = f", or pass {skip_flag} to skip damaged records" if skip_flag else ""
    return f"run `{verify_command(folder)}` to list every damaged record and re-convert the set{skip}"


def _diagnose(path: str, index: int, offset: int) -> str:
    """What is wrong at record `index` (byte `offset`) of `path`, looked at again."""
    if not os.path.exists(path):
        return f"record {index} at byte {offset}: the file no longer exists"
    try:
        for at, _ in fmt.walk_records(path):
            if at >= offset:
                fmt.read_record(path, at, check=True)
                break
    except DamagedFile as err:
        return f"record {err.index if err.index >= 0 else index} at byte {err.offset}: {err.reason}"
    except OSError as err:
        return f"record {index} at byte {offset}: unreadable ({err.strerror or err})"
    return f"record {index} at byte {offset}: could not be read (it reads intact now: a passing I/O error?)"


def _search(files: Sequence[str], offset: int) -> Optional[Tuple[str, str]]:
    """(path, what is wrong) of the first file whose record at `offset` (or whose data at `offset`) is
    damaged, or None."""
    for path in files:
        index = 0
        try:
            for index, (at, _) in enumerate(fmt.walk_records(path)):
                if at > offset:
                    break
                if at in (offset, offset - fmt.HEADER_BYTES):
                    fmt.read_record(path, at, check=True)
                    break
        except DamagedFile as err:
            if err.offset <= offset:
                return path, f"record {err.index if err.index >= 0 else index} at byte {err.offset}: {err.reason}"
        except OSError:
            continue
    return None


def locate_damage(files: Sequence[str], error: BaseException, *,
                  skip_flag: Optional[str] = "--skip_corrupt_records") -> Optional[str]:
    """One line naming the damaged file and record and the fix, for an error raised by next() on a
    pipeline over `files` (DataSplits.train_files or test_files), or None when the error is not about
    one of those files (then it is not a data problem: re-raise it).

    `skip_flag`: the option that skips damaged records, mentioned in the fix (None where there is none).
    """
    text = first_line(error)
    ours = _OURS.search(text)
    if ours:
        path = ours["path"]
        what = _diagnose(path, int(ours["index"]), int(ours["offset"]))
        return f"{path}: {what}; the rest of the file cannot be read: {_fix(path, skip_flag)}"
    named = _NAMED.search(text)
    if named and named["path"] in files:
        # A record that reads intact but does not fit (data_loaders.tfrecords.parse_example's checks).
        what = re.sub(r"\]\s*\[", " ", named["what"]).rstrip("]").strip()
        return f"{named['path']}: {what}"
    tf_offset = _TF_OFFSET.search(text)
    if tf_offset:
        found = _search(files, int(tf_offset["offset"]))
        if found:
            path, what = found
            return f"{path}: {what}; {_fix(path, skip_flag)}"
        where = os.path.commonpath([os.path.abspath(f) for f in files]) if files else "the data"
        return (f"a TFRecord file under {where} is damaged ({text}), but none shows it when read again: "
                f"{_fix(files[0], skip_flag) if files else 'run tfrecords_tools.verify on the data folder'}")
    named_files = [path for path in files if path in text]  # e.g. a file deleted while training
    return f"cannot read {named_files[0]}: {text}" if named_files else None


def read_batch(iterator, files: Sequence[str], where: str,
               skip_flag: Optional[str] = "--skip_corrupt_records"):
    """next(iterator), with a failure to read the data turned into one DataError naming the file, the
    damaged record and the fix (locate_damage); an error that is not about the data keeps its traceback.

    `where` completes "reading the data ..." (e.g. "at step 12"), `skip_flag` as for locate_damage.
    """
    import tensorflow as tf

    try:
        return next(iterator)
    except tf.errors.OpError as err:
        line = locate_damage(files, err, skip_flag=skip_flag)
        if line is None:
            raise
        raise DataError(f"reading the data {where}: {line}") from None
