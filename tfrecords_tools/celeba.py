"""CelebA-HQ -> TFRecords for `--problem celeba` (port of openai/glow data_loaders/generate_tfr/generate.py,
dump_celebahq).

Two inputs:
  * a folder of images (e.g. CelebA-HQ's 30,000 faces), sorted by name, with CelebA's attribute file
    (`--attr list_attr_celeba.txt`: 40 attributes of +-1 per image -> `attr` int64[40]). Images are
    matched to attribute rows by file name, by name without extension, or through CelebA-HQ's
    `--image_list image_list.txt` (its idx -> orig_file columns) when the HQ files are numbered;
  * a PGGAN-style TFRecord (`--input celebahq-r08.tfrecords`): records of `shape` CHW, `data`, `attr`[40],
    transposed to HWC here.
As the original: the first 3,000 images become validation and the next 27,000 train; every level of
detail from --resolution down to 4x4 is written (2x2 mean pooling); 120 train and 40 validation shards;
label 0. Without an attribute source no `attr` is written (like the downloadable celeba-tfr,
openai/glow#112).

    python -m tfrecords_tools.celeba --input celeba_hq_256/ --attr list_attr_celeba.txt \\
        --image_list image_list.txt --output celeba-tfr
"""

from __future__ import annotations

import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

from glow_common.errors import run_cli
from tfrecords_tools import cli
from tfrecords_tools import format as fmt
from tfrecords_tools.errors import ConversionError, DamagedFile
from tfrecords_tools.imaging import Spec
from tfrecords_tools.inputs import Item, folder_images

PROG = "python -m tfrecords_tools.celeba"

SHARDS = {"train": 120, "validation": 40}
N_VALIDATION = 3000
N_TRAIN = 27000


def parse_attr_file(path: str) -> Dict[str, Tuple[int, ...]]:
    """CelebA's list_attr_celeba.txt: count, 40 names, then `name v1..v40` with values 1 or -1.

    Returns {image name: 40 ints}; any deviation is a ConversionError naming the line.
    """
    if not os.path.isfile(path):
        raise ConversionError(f"attribute file {path} does not exist")
    with open(path) as f:
        lines = [line.split() for line in f if line.strip()]
    if len(lines) < 2 or not lines[0] or not lines[0][0].isdigit():
        raise ConversionError(f"{path}: line 1 must be the image count (CelebA's list_attr_celeba.txt format)")
    count = int(lines[0][0])
    if len(lines[1]) != fmt.N_ATTR:
        raise ConversionError(f"{path}: line 2 must name {fmt.N_ATTR} attributes, found {len(lines[1])}")
    attrs = {}
    for number, fields in enumerate(lines[2:], start=3):
        values = fields[1:]
        if len(values) != fmt.N_ATTR or any(v not in ("1", "-1") for v in values):
            raise ConversionError(f"{path}: line {number} must be a name and {fmt.N_ATTR} values of 1 or -1")
        attrs[fields[0]] = tuple(int(v) for v in values)
    if len(attrs) != count:
        raise ConversionError(f"{path}: line 1 says {count} images, the file lists {len(attrs)}")
    return attrs


def parse_image_list(path: str) -> Dict[int, str]:
    """CelebA-HQ's image_list.txt: header, then `idx orig_idx orig_file proc_md5 final_md5` -> {idx: orig_file}."""
    if not os.path.isfile(path):
        raise ConversionError(f"image list {path} does not exist")
    mapping = {}
    with open(path) as f:
        lines = [line.split() for line in f if line.strip()]
    for number, fields in enumerate(lines[1:], start=2):
        if len(fields) < 3 or not fields[0].isdigit():
            raise ConversionError(f"{path}: line {number} must start with `idx orig_idx orig_file`")
        mapping[int(fields[0])] = fields[2]
    return mapping


def _attr_for(path: str, attrs: Dict[str, Tuple[int, ...]], by_stem: Dict[str, str],
              image_list: Optional[Dict[int, str]]) -> Optional[Tuple[int, ...]]:
    name = os.path.basename(path)
    stem = os.path.splitext(name)[0]
    if image_list is not None:
        digits = re.findall(r"\d+", stem)
        original = image_list.get(int(digits[-1])) if digits else None
        return attrs.get(original) if original else None
    if name in attrs:
        return attrs[name]
    return attrs.get(by_stem.get(stem, ""))


def folder_items(folder: str, attr_file: Optional[str], image_list_file: Optional[str]) -> List[Item]:
    paths = folder_images(folder)
    if attr_file is None:
        return [Item("file", p) for p in paths]
    attrs = parse_attr_file(attr_file)
    by_stem = {os.path.splitext(name)[0]: name for name in attrs}
    image_list = parse_image_list(image_list_file) if image_list_file else None
    items, missing = [], []
    for p in paths:
        attr = _attr_for(p, attrs, by_stem, image_list)
        if attr is None:
            missing.append(os.path.basename(p))
        items.append(Item("file", p, attr=attr))
    if missing:
        how = "through --image_list" if image_list is not None else "by file name"
        raise ConversionError(f"{attr_file}: no attributes for {len(missing)} images matched {how}, e.g. "
                              f"{missing[0]} (is it the right attribute file?)")
    return items


def record_items(path: str) -> List[Item]:
    """One item per record of a PGGAN-style TFRecord file; ConversionError if its framing is damaged."""
    try:
        offsets = fmt.index_records(path)
    except DamagedFile as err:
        raise ConversionError(f"{err} (a damaged or truncated input file)") from None
    return [Item("tfrecord", path, key=offset, name=f"record {i}") for i, offset in enumerate(offsets)]


def split_items(items: Sequence[Item], n_validation: int, n_train: Optional[int]) -> Dict[str, List[Item]]:
    """The original's split: the first n_validation items, then up to n_train more."""
    if len(items) <= n_validation:
        raise ConversionError(f"{len(items)} input images leave none for training after {n_validation} "
                              f"validation images; lower --n_validation")
    end = len(items) if n_train is None else n_validation + n_train
    return {"train": list(items[n_validation:end]), "validation": list(items[:n_validation])}


def main(argv: Optional[Sequence[str]] = None):
    p = cli.parser(PROG, __doc__, resolution=256, lods=0, shards=SHARDS)
    p.flag("--attr", help="CelebA list_attr_celeba.txt (folder input)")
    p.flag("--image_list", help="CelebA-HQ image_list.txt, to find the attributes of numbered HQ files")
    p.flag("--n_validation", type=int, default=N_VALIDATION, help="first N images (default 3000)")
    p.flag("--n_train", type=int, default=N_TRAIN, help="next N images (default 27000; 0 = all the rest)")
    args = p.parse_args(argv)
    if os.path.isfile(args.input):
        if args.attr or args.image_list:
            raise ConversionError("--attr/--image_list apply to a folder input; a PGGAN record holds its attr")
        items = record_items(args.input)
    else:
        items = folder_items(args.input, args.attr, args.image_list)
    splits = split_items(items, args.n_validation, args.n_train or None)
    return cli.write(splits, args.output, Spec("square", args.resolution, args.lods),
                     cli.shard_counts(args.shards, list(splits), SHARDS), args)


if __name__ == "__main__":
    raise SystemExit(run_cli(PROG, main))
