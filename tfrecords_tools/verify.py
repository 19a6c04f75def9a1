"""Check converted TFRecords: complete shard sets, record counts, shapes, and every corrupt record.

Finds every `<split>-rXX-s-SSSS-of-NNNN.tfrecords` under `--input` (recursively), and for each set checks
that all N shards exist, then reads every record of every shard: a record that fails its checksum or
does not parse, `data` whose length is not H*W*C, a shape other than 2^XX x 2^XX (with `--realnvp`: a
shorter side below 2^XX), a negative or missing label, or an `attr` that is not 40 values is reported
by file and record index. Exit status 1 if anything is wrong.

    python -m tfrecords_tools.verify --input celeba-tfr
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import glob
import os
import re
import sys
from typing import Dict, List, Optional, Sequence, Tuple

SHARD_RE = re.compile(r"^(?P<split>[a-z]+)-r(?P<res>\d{2})-s-(?P<shard>\d{4})-of-(?P<n>\d{4})\.tfrecords$")
N_ATTR = 40


@dataclasses.dataclass
class SetReport:
    """One shard set: where, how many records per shard, what shapes and labels, and what is wrong."""

    folder: str
    split: str
    log2res: int
    n_shards: int
    counts: Dict[str, int] = dataclasses.field(default_factory=dict)
    shapes: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    labels: Tuple[int, int] = (0, 0)
    with_attr: int = 0
    errors: List[str] = dataclasses.field(default_factory=list)

    @property
    def n_records(self) -> int:
        return sum(self.counts.values())


def find_sets(root: str) -> Dict[Tuple[str, str, int, int], List[str]]:
    """{(folder, split, log2res, n_shards): sorted files} for every shard file under root."""
    sets: Dict[Tuple[str, str, int, int], List[str]] = collections.defaultdict(list)
    for path in sorted(glob.glob(os.path.join(root, "**", "*.tfrecords"), recursive=True)):
        match = SHARD_RE.match(os.path.basename(path))
        if match:
            key = (os.path.dirname(path), match["split"], int(match["res"]), int(match["n"]))
            sets[key].append(path)
    return dict(sets)


def check_record(serialized: bytes, log2res: int, realnvp: bool) -> Tuple[Optional[str], tuple, int, bool]:
    """(error or None, shape, label, has attr) of one serialized record."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    try:
        example = tf.train.Example.FromString(serialized)
    except DecodeError:
        return "not a tf.train.Example", (), 0, False
    feature = example.features.feature
    if "shape" not in feature or "data" not in feature or "label" not in feature:
        return f"missing features (has {sorted(feature.keys())}, needs shape, data, label)", (), 0, False
    shape = tuple(feature["shape"].int64_list.value)
    data = feature["data"].bytes_list.value
    labels = feature["label"].int64_list.value
    if len(shape) != 3 or min(shape) < 1:
        return f"shape {list(shape)} is not [H, W, C]", shape, 0, False
    h, w, c = shape
    if len(data) != 1 or len(data[0]) != h * w * c:
        size = len(data[0]) if len(data) == 1 else "no"
        return f"data holds {size} bytes, shape {list(shape)} needs {h * w * c}", shape, 0, False
    side = 2 ** log2res
    if realnvp and min(h, w) < side:
        return f"shape {list(shape)} has a side below {side} (r{log2res:02d})", shape, 0, False
    if not realnvp and (h, w) != (side, side):
        return f"shape {list(shape)} is not {side}x{side} as r{log2res:02d} says", shape, 0, False
    if len(labels) != 1 or labels[0] < 0:
        return f"label {list(labels)} is not one value >= 0", shape, 0, False
    attr = feature["attr"].int64_list.value if "attr" in feature else None
    if attr is not None and len(attr) not in (0, N_ATTR):  # the original wrote [] for ImageNet
        return f"attr holds {len(attr)} values, expected {N_ATTR}", shape, labels[0], False
    return None, shape, labels[0], bool(attr)


def verify(root: str, realnvp: bool = False) -> List[SetReport]:
    """Check every shard set under root; see the module docstring."""
    import tensorflow as tf

    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root} is not a folder")
    reports = []
    for (folder, split, log2res, n_shards), files in find_sets(root).items():
        report = SetReport(folder, split, log2res, n_shards)
        present = {int(SHARD_RE.match(os.path.basename(f))["shard"]) for f in files}
        for missing in sorted(set(range(n_shards)) - present):
            report.errors.append(f"missing shard {split}-r{log2res:02d}-s-{missing:04d}-of-{n_shards:04d}"
                                 f".tfrecords")
        low, high = None, None
        for path in files:
            count = 0
            iterator = iter(tf.data.TFRecordDataset(path))
            while True:
                try:
                    serialized = next(iterator)
                except StopIteration:
                    break
                except (tf.errors.DataLossError, tf.errors.InvalidArgumentError, tf.errors.OutOfRangeError) as err:
                    report.errors.append(f"{path}: record {count} is corrupt ({err.message.splitlines()[0]}); "
                                         f"the rest of the file is unreadable")
                    break
                error, shape, label, has_attr = check_record(serialized.numpy(), log2res, realnvp)
                if error:
                    report.errors.append(f"{path}: record {count}: {error}")
                else:
                    report.shapes[shape] += 1
                    report.with_attr += has_attr
                    low = label if low is None else min(low, label)
                    high = label if high is None else max(high, label)
                count += 1
            report.counts[path] = count
            if count == 0 and not any(e.startswith(path) for e in report.errors):
                report.errors.append(f"{path}: shard holds no records")
        report.labels = (low or 0, high or 0)
        reports.append(report)
    return reports


def format_report(reports: Sequence[SetReport], root: str, max_errors: int = 20) -> str:
    if not reports:
        return f"{root}: no <split>-rXX-s-SSSS-of-NNNN.tfrecords files found"
    lines = []
    for r in reports:
        shapes = ", ".join(f"{'x'.join(map(str, s))} ({n})" for s, n in r.shapes.most_common(3))
        more = f" and {len(r.shapes) - 3} more shapes" if len(r.shapes) > 3 else ""
        counts = sorted(r.counts.values())
        per_shard = f"{counts[0]}-{counts[-1]}" if counts else "0"
        lines.append(f"{os.path.relpath(r.folder, root)}: {r.split} r{r.log2res:02d} {len(r.counts)}/{r.n_shards} "
                     f"shards, {r.n_records} records ({per_shard} per shard), shapes {shapes or '-'}{more}, labels "
                     f"{r.labels[0]}..{r.labels[1]}, attr in {r.with_attr}: "
                     f"{'OK' if not r.errors else f'{len(r.errors)} errors'}")
        lines += [f"  error: {e}" for e in r.errors[:max_errors]]
        if len(r.errors) > max_errors:
            lines.append(f"  ... {len(r.errors) - max_errors} more errors")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, help="folder to search for shard sets (recursively)")
    p.add_argument("--realnvp", action="store_true",
                   help="LSUN RealNVP sets: images of any shape whose shorter side is at least 2^XX")
    p.add_argument("--max-errors", type=int, default=20, help="errors listed per set (default 20)")
    args = p.parse_args(argv)
    if not os.path.isdir(args.input):
        print(f"error: {args.input} is not a folder", file=sys.stderr)
        return 2
    reports = verify(args.input, realnvp=args.realnvp)
    print(format_report(reports, args.input, args.max_errors))
    return 1 if not reports or any(r.errors for r in reports) else 0


if __name__ == "__main__":
    raise SystemExit(main())
