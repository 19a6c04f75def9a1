"""Oord et al.'s downsampled ImageNet -> TFRecords for `--problem imagenet-oord` (port of openai/glow
data_loaders/generate_tfr/imagenet_oord.py).

`--input` holds the PNG folders of the official tarballs, `train_32x32/` and `valid_32x32/` (64 likewise;
`--resolution` picks them). Images must already be R x R (a wrong size is a bad image: skipped with a
warning, or an error with --strict). One resolution is written (r05 or r06), in 2000 train and 80
validation shards as the original, with label 0 unless `--labels` gives a file of `<png name> <label>`
lines. A folder of PNGs without those sub-folders is converted as one `--split`.

    python -m tfrecords_tools.imagenet_oord --input imagenet/ --resolution 64 --output imagenet-oord-tfr
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

from glow_common.errors import run_cli
from tfrecords_tools import cli
from tfrecords_tools.errors import ConversionError
from tfrecords_tools.imaging import Spec
from tfrecords_tools.inputs import Item, folder_images, require_folder

PROG = "python -m tfrecords_tools.imagenet_oord"

SHARDS = {"train": 2000, "validation": 80}
FOLDERS = {"train": "train_{r}x{r}", "validation": "valid_{r}x{r}"}


def read_labels(path: str) -> Dict[str, int]:
    if not os.path.isfile(path):
        raise ConversionError(f"labels file {path} does not exist")
    labels = {}
    with open(path) as f:
        for number, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or not fields[1].lstrip("-").isdigit() or int(fields[1]) < 0:
                raise ConversionError(f"{path}: line {number} must be `<png name> <label >= 0>`")
            labels[fields[0]] = int(fields[1])
    return labels


def folder_items(folder: str, labels: Optional[Dict[str, int]], labels_file: str = "") -> List[Item]:
    paths = folder_images(folder)
    if labels is None:
        return [Item("file", p) for p in paths]
    missing = [os.path.basename(p) for p in paths if os.path.basename(p) not in labels]
    if missing:
        raise ConversionError(f"{labels_file}: no label for {len(missing)} images, e.g. {missing[0]}")
    return [Item("file", p, label=labels[os.path.basename(p)]) for p in paths]


def main(argv: Optional[Sequence[str]] = None):
    p = cli.parser(PROG, __doc__, resolution=32, lods=1, shards=SHARDS, with_split=True, split="train")
    p.flag("--labels", help="text file of `<png name> <label>` lines (default: label 0)")
    args = p.parse_args(argv)
    require_folder(args.input)
    labels = read_labels(args.labels) if args.labels else None
    found = {split: os.path.join(args.input, name.format(r=args.resolution)) for split, name in FOLDERS.items()
             if os.path.isdir(os.path.join(args.input, name.format(r=args.resolution)))}
    if not found and any(os.path.isdir(os.path.join(args.input, n.format(r=r)))
                         for n in FOLDERS.values() for r in (32, 64)):
        raise ConversionError(f"{args.input} has no train/valid_{args.resolution}x{args.resolution} folder; "
                              f"check --resolution")
    sources = found or {args.split: args.input}
    splits = {split: folder_items(path, labels, args.labels or "") for split, path in sources.items()}
    return cli.write(splits, args.output, Spec("exact", args.resolution, args.lods),
                     cli.shard_counts(args.shards, list(splits), SHARDS), args)


if __name__ == "__main__":
    raise SystemExit(run_cli(PROG, main))
