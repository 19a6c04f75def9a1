"""Writing shard sets: items in, the original's sharded TFRecords and our manifest out.

Port of the writing half of openai/glow data_loaders/generate_tfr (generate.py, lsun.py, imagenet_oord.py).
How a conversion runs (`convert`):
  1. A converter lists its inputs as `Item`s per split (tfrecords_tools.inputs).
  2. A seeded permutation assigns the items of a split to shards (the original shuffled too); the same
     assignment serves every level of detail, so one pass writes them all.
  3. Worker processes decode and resize the images (tfrecords_tools.imaging); the parent writes the
     records in shard order, so the output is the same for a seed whatever the number of workers.
  4. Each shard set is written under temporary names and renamed only when all of it is done, then its
     manifest is written: a failed run (an unreadable input with `strict`, every input unreadable, a
     full disk) leaves no temporary file and nothing that was there before is touched; existing shards
     are replaced only with `overwrite`, and only once the new ones are complete.
"""

from __future__ import annotations

import dataclasses
import glob
import multiprocessing
import os
import struct
import sys
import zlib
from typing import BinaryIO, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from glow_common.files import write_error, write_text
from tfrecords_tools import format as fmt
from tfrecords_tools.errors import ConversionError
from tfrecords_tools.imaging import Spec, process
from tfrecords_tools.inputs import Item, read_image


@dataclasses.dataclass
class SplitReport:
    """What one split produced: counts per resolution, skipped inputs with their reasons."""

    split: str
    n_input: int = 0
    n_shards: int = 0
    written: Dict[int, int] = dataclasses.field(default_factory=dict)
    skipped: List[str] = dataclasses.field(default_factory=list)
    files: List[str] = dataclasses.field(default_factory=list)


def existing_shards(output: str, split: str, resolutions: Iterable[int]) -> List[str]:
    found = []
    for res in resolutions:
        found += sorted(glob.glob(os.path.join(output, split, fmt.shard_glob(split, fmt.log2_floor(res)))))
    return found


def shard_assignment(n: int, n_shards: int, seed: int, split: str) -> List[np.ndarray]:
    """A seeded random permutation cut into n_shards nearly equal parts (sizes differ by at most one)."""
    rng = np.random.default_rng([seed, zlib.crc32(split.encode())])
    return np.array_split(rng.permutation(n), n_shards)


def _work(task: Tuple[Item, Spec]):
    """Worker: ('ok', (lods, attr)) or ('bad', message) for one item."""
    item, spec = task
    try:
        image, attr = read_image(item)
        return "ok", (process(image, spec), attr)
    except (OSError, ValueError, SyntaxError, struct.error) as err:  # PIL raises all three
        return "bad", f"{item.describe()}: {type(err).__name__}: {err}"


def _results(tasks: List[Tuple[Item, Spec]], workers: int):
    """Yield _work results in task order, in `workers` spawned processes (0 or 1: in this process)."""
    if workers <= 1 or len(tasks) < 2:
        yield from map(_work, tasks)
        return
    # spawn, not fork: the parent may hold TensorFlow's threads, which do not survive a fork.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(_work, tasks, chunksize=max(1, min(16, len(tasks) // (8 * workers))))


def write_split(items: Sequence[Item], output: str, split: str, spec: Spec, *, n_shards: int, seed: int,
                workers: int = 1, strict: bool = False, overwrite: bool = False,
                progress: bool = False) -> SplitReport:
    """Convert one split; all its shard sets appear at once (renamed from temporary names) or not at all."""
    from tqdm import tqdm

    report = SplitReport(split=split, n_input=len(items))
    if not items:
        raise ConversionError(f"no input images for split {split!r}")
    n_shards = max(1, min(n_shards, len(items)))  # never more shards than images
    report.n_shards = n_shards
    resolutions = spec.resolutions
    report.written = {res: 0 for res in resolutions}
    folder = os.path.join(output, split)
    final = {(res, s): os.path.join(folder, fmt.shard_name(split, fmt.log2_floor(res), s, n_shards))
             for res in resolutions for s in range(n_shards)}
    temp = {k: os.path.join(folder, f".{os.path.basename(p)}.tmp{os.getpid()}") for k, p in final.items()}
    records = {k: 0 for k in final}
    parts = shard_assignment(len(items), n_shards, seed, split)
    order = [int(i) for part in parts for i in part]
    shard_of = [s for s, part in enumerate(parts) for _ in part]
    writers: Dict[int, BinaryIO] = {}
    current, target = -1, folder
    try:
        os.makedirs(folder, exist_ok=True)
        bar = tqdm(total=len(order), desc=f"{split} {'/'.join(map(str, resolutions))}px", unit="img",
                   disable=not progress, file=sys.stderr)
        for position, (status, payload) in enumerate(_results([(items[i], spec) for i in order], workers)):
            shard = shard_of[position]
            if shard != current:
                for res, writer in writers.items():
                    target = temp[res, current]
                    writer.close()
                writers = {}
                for res in resolutions:
                    target = temp[res, shard]
                    writers[res] = open(target, "wb")
                current = shard
            bar.update(1)
            if status == "bad":
                if strict:
                    raise ConversionError(f"unreadable image {payload} (drop --strict to skip such images)")
                report.skipped.append(payload)
                bar.write(f"warning: skipping {payload}", file=sys.stderr)
                continue
            lods, attr = payload
            label = items[order[position]].label
            for res, image in zip(resolutions, lods):
                target = temp[res, shard]
                writers[res].write(fmt.frame(fmt.encode_example(image.shape, image.tobytes(), label, attr)))
                records[res, shard] += 1
                report.written[res] += 1
        bar.close()
        for res, writer in writers.items():
            target = temp[res, current]
            writer.close()
        writers = {}
        if report.written[resolutions[0]] == 0:
            raise ConversionError(f"none of the {len(items)} input images of split {split!r} could be read, "
                                  f"e.g. {report.skipped[0]}")
        sizes = {k: os.path.getsize(p) for k, p in temp.items()}
        target = folder
        _commit(folder, split, resolutions, final, temp, records, sizes, overwrite=overwrite)
        report.files = sorted(final.values())
    except OSError as err:
        _discard(writers, temp)  # first, so that the message gives the space a retry would have
        named = {temp[k]: p for k, p in final.items()}
        raise write_error(named.get(target, target), err) from None
    finally:
        _discard(writers, temp)
    return report


def _discard(writers: Dict, temp: Dict) -> None:
    for writer in writers.values():
        try:
            writer.close()
        except OSError:
            pass  # the write that failed is being reported
    writers.clear()
    for path in temp.values():
        if os.path.exists(path):
            os.remove(path)


def _commit(folder: str, split: str, resolutions: Sequence[int], final: Dict, temp: Dict, records: Dict,
            sizes: Dict, *, overwrite: bool) -> None:
    """Put complete temporary shards in place and describe them in a manifest per resolution. An old
    set's manifest goes first, so no manifest ever describes files it did not list."""
    for res in resolutions:
        path = os.path.join(folder, fmt.manifest_name(split, fmt.log2_floor(res)))
        if os.path.exists(path):
            os.remove(path)
    if overwrite:
        for path in existing_shards(os.path.dirname(folder), split, resolutions):
            os.remove(path)
    for key, path in final.items():
        os.replace(temp[key], path)
    for res in resolutions:
        files = {os.path.basename(p): (records[k], sizes[k]) for k, p in final.items() if k[0] == res}
        fmt.write_manifest(folder, fmt.Manifest(split, fmt.log2_floor(res), files))


def _refuse_file(path: str, message: str) -> None:
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConversionError(message)


def convert(splits: Dict[str, Sequence[Item]], output: str, spec: Spec, *, shards: Dict[str, int], seed: int = 0,
            workers: int = 1, strict: bool = False, overwrite: bool = False,
            progress: bool = False) -> List[SplitReport]:
    """Write every split; refuses up front if any target shard set exists and `overwrite` is off."""
    spec.check()
    _refuse_file(output, f"--output {output} is a file; give a folder (it is created if missing)")
    for split, items in splits.items():
        if not items:
            raise ConversionError(f"no input images for split {split!r}")
        _refuse_file(os.path.join(output, split), f"{os.path.join(output, split)} is a file; the shards of "
                                                  f"split {split!r} go in a folder of that name")
        clash = existing_shards(output, split, spec.resolutions)
        if clash and not overwrite:
            raise ConversionError(f"{clash[0]} already exists ({len(clash)} shard files for split {split!r}); "
                                  f"pass --overwrite to replace them")
    return [write_split(items, output, split, spec, n_shards=shards[split], seed=seed, workers=workers,
                        strict=strict, overwrite=overwrite, progress=progress)
            for split, items in splits.items()]


def summary(reports: Sequence[SplitReport], output: str) -> str:
    """The final table: images written per split and resolution, shards, skipped inputs."""
    lines = [f"wrote {output}:", f"  {'split':<12}{'resolution':>11}{'images':>10}{'shards':>8}{'skipped':>9}"]
    for r in reports:
        for res, count in r.written.items():
            lines.append(f"  {r.split:<12}{str(res) + 'px':>11}{count:>10}{r.n_shards:>8}{len(r.skipped):>9}")
    return "\n".join(lines)


def classes_file(output: str) -> str:
    return os.path.join(output, "classes.txt")


def read_classes(output: str) -> Optional[List[str]]:
    """The class names of `<output>/classes.txt` in label order, or None when there is none."""
    path = classes_file(output)
    if not os.path.exists(path):
        return None
    names = []
    with open(path) as f:
        for number, line in enumerate(f, start=1):
            label, _, name = line.rstrip("\n").partition(" ")
            if not line.strip():
                continue
            if label != str(len(names)) or not name:
                raise ConversionError(f"{path}: line {number} must be `{len(names)} <class name>`; fix or delete "
                                      f"the file")
            names.append(name)
    return names


def write_classes(output: str, names: Sequence[str]) -> None:
    path = classes_file(output)
    write_text(path, "".join(f"{label} {name}\n" for label, name in enumerate(names)))
