"""Check converted TFRecords: complete shard sets, every record's framing and checksums, and its content.

Finds every `<split>-rXX-s-SSSS-of-NNNN.tfrecords` under the folder (recursively). For each shard set it
checks that all N shards exist and agree with the set's manifest where the converter wrote one (record
count and size of each file), then reads every record of every shard: a record cut short (also at the
end of a file, which TensorFlow's reader takes for a clean end), a header or data checksum that fails,
a record that is not a tf.train.Example, `data` whose length is not H*W*C, a shape other than 2^XX x
2^XX (with --realnvp: a shorter side below 2^XX), a negative or missing label, or an `attr` that is not
40 values is reported by file, record index and byte offset. Exit status 0 if all is well, 1 if
anything is wrong, 2 for a bad command line.

    python -m tfrecords_tools.verify celeba-tfr
    python -m tfrecords_tools.verify --realnvp lsun_realnvp
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import os
from typing import Dict, List, Optional, Sequence, Tuple

from glow_common.errors import run_cli
from tfrecords_tools import cli
from tfrecords_tools import format as fmt
from tfrecords_tools.errors import DamagedFile, FormatError, ToolError

PROG = "python -m tfrecords_tools.verify"


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
    manifest: bool = False
    errors: List[str] = dataclasses.field(default_factory=list)

    @property
    def n_records(self) -> int:
        return sum(self.counts.values())


def find_sets(root: str) -> Dict[Tuple[str, str, int, int], List[str]]:
    """{(folder, split, log2res, n_shards): sorted files} for every shard file under root."""
    sets: Dict[Tuple[str, str, int, int], List[str]] = collections.defaultdict(list)
    for path in sorted(glob.glob(os.path.join(root, "**", "*.tfrecords"), recursive=True)):
        name = fmt.parse_shard_name(os.path.basename(path))
        if name:
            sets[os.path.dirname(path), name.split, name.log2res, name.n_shards].append(path)
    return dict(sets)


def read_file(path: str) -> Tuple[List[bytes], Optional[str]]:
    """(every record before the first damaged one, what is wrong there or None); both checksums of
    every record are checked. OSError if unreadable."""
    records: List[bytes] = []
    try:
        for _, data in fmt.read_records(path):
            records.append(data)
    except DamagedFile as err:
        return records, f"record {err.index} at byte {err.offset}: {err.reason}; the rest of the file is unreadable"
    return records, None


def verify_set(folder: str, split: str, log2res: int, n_shards: int, files: Sequence[str],
               realnvp: bool = False) -> SetReport:
    report = SetReport(folder, split, log2res, n_shards)
    present = {fmt.parse_shard_name(os.path.basename(f)).shard for f in files}
    for missing in sorted(set(range(n_shards)) - present):
        report.errors.append(f"missing shard {fmt.shard_name(split, log2res, missing, n_shards)}")
    try:
        manifest = fmt.read_manifest(folder, split, log2res)
    except FormatError as err:
        manifest = None
        report.errors.append(str(err))
    if manifest is not None:
        report.manifest = True
        if len(manifest.files) != n_shards:
            report.errors.append(f"{fmt.manifest_name(split, log2res)} lists {len(manifest.files)} files, the set "
                                 f"has -of-{n_shards:04d}")
        mismatch = fmt.manifest_mismatch(folder, manifest, [os.path.basename(f) for f in files])
        if mismatch:
            report.errors.append(mismatch)
    side = 2 ** log2res
    low, high = None, None
    for path in files:
        try:
            records, damage = read_file(path)
        except OSError as err:
            report.errors.append(f"{path}: unreadable ({err.strerror or err})")
            continue
        if damage:
            report.errors.append(f"{path}: {damage}")
        for index, serialized in enumerate(records):
            try:
                features = fmt.decode_example(serialized)
            except FormatError as err:
                report.errors.append(f"{path}: record {index}: not a tf.train.Example ({err})")
                continue
            error = fmt.check_example(features, side=None if realnvp else side, min_side=side if realnvp else None)
            if error:
                report.errors.append(f"{path}: record {index}: {error}")
                continue
            report.shapes[tuple(features[fmt.SHAPE.name])] += 1
            report.with_attr += bool(features.get(fmt.ATTR.name))
            label = features[fmt.LABEL.name][0]
            low = label if low is None else min(low, label)
            high = label if high is None else max(high, label)
        report.counts[path] = len(records)
        expected = manifest.files.get(os.path.basename(path)) if manifest else None
        if expected is not None and expected[0] != len(records) and not damage:
            report.errors.append(f"{path}: {len(records)} records, {fmt.manifest_name(split, log2res)} says "
                                 f"{expected[0]}")
        if not records and not damage and expected is None:
            report.errors.append(f"{path}: shard holds no records")
    report.labels = (low or 0, high or 0)
    return report


def verify(root: str, realnvp: bool = False) -> List[SetReport]:
    """Check every shard set under root; see the module docstring."""
    if not os.path.isdir(root):
        raise ToolError(f"{root} is not a folder")
    return [verify_set(folder, split, log2res, n_shards, files, realnvp)
            for (folder, split, log2res, n_shards), files in find_sets(root).items()]


def format_report(reports: Sequence[SetReport], root: str, max_errors: int = 20) -> str:
    if not reports:
        return f"{root}: no {fmt.SHARD_PATTERN} files found"
    lines = []
    for r in reports:
        shapes = ", ".join(f"{'x'.join(map(str, s))} ({n})" for s, n in r.shapes.most_common(3))
        more = f" and {len(r.shapes) - 3} more shapes" if len(r.shapes) > 3 else ""
        counts = sorted(r.counts.values())
        per_shard = f"{counts[0]}-{counts[-1]}" if counts else "0"
        lines.append(f"{os.path.relpath(r.folder, root)}: {r.split} r{r.log2res:02d} {len(r.counts)}/{r.n_shards} "
                     f"shards, {r.n_records} records ({per_shard} per shard), shapes {shapes or '-'}{more}, labels "
                     f"{r.labels[0]}..{r.labels[1]}, attr in {r.with_attr}, "
                     f"{'manifest' if r.manifest else 'no manifest'}: "
                     f"{'OK' if not r.errors else f'{len(r.errors)} errors'}")
        lines += [f"  error: {e}" for e in r.errors[:max_errors]]
        if len(r.errors) > max_errors:
            lines.append(f"  ... {len(r.errors) - max_errors} more errors")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = cli.Parser(PROG, __doc__)
    p.add_argument("folder", nargs="?", help="folder to search for shard sets (recursively)")
    p.flag("--input", help="the same folder, as a flag")
    p.flag("--realnvp", action="store_true",
           help="LSUN RealNVP sets: images of any shape whose shorter side is at least 2^XX")
    p.flag("--max_errors", type=int, default=20, help="errors listed per set (default 20)")
    args = p.parse_args(argv)
    if args.folder and args.input and os.path.abspath(args.folder) != os.path.abspath(args.input):
        p.error(f"two folders given ({args.folder} and --input {args.input}); give one")
    root = args.folder or args.input
    if not root:
        p.error("give the folder to check: verify FOLDER")
    reports = verify(root, realnvp=args.realnvp)
    print(format_report(reports, root, args.max_errors))
    return 1 if not reports or any(r.errors for r in reports) else 0


if __name__ == "__main__":
    raise SystemExit(run_cli(PROG, main))
