"""LSUN -> TFRecords for `--problem lsun` and `--problem lsun_realnvp` (port of openai/glow
data_loaders/generate_tfr/lsun.py).

Inputs (`--input`):
  * an lmdb of the official export (a folder with data.mdb; keys are image ids, values JPEG/WebP bytes);
  * a folder holding `<category>_train_lmdb` and `<category>_val_lmdb` (or the image folders
    `<category>_train/` and `<category>_val/` that fyu/lsun's `data.py export --flat` writes, which the
    original read): both splits are converted;
  * a plain folder of images: one split, `--split` (default: validation if the name has `_val`, else train).
Modes:
  * default: centre crop, resize to --resolution (256) with Lanczos (the original's PIL ANTIALIAS), r08;
  * `--realnvp`: shorter side resized to --resolution (96), not cropped, stored with its own shape as r06
    (int(log2(96))); the reader takes random 64x64 crops. The original used skimage's pyramid_reduce and
    truncated to uint8; Lanczos via Pillow gives slightly different pixels (scikit-image is not needed).
With `--category`, shards go to `<output>/<category>/{train,validation}`, where `--data_dir <output>
--category <category>` finds them. Shards: 2560 train, 1 validation (the original's 300 images).

    python -m tfrecords_tools.lsun --input lsun/ --category bedroom --realnvp --output lsun_realnvp
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

from glow_common.errors import run_cli
from tfrecords_tools import cli
from tfrecords_tools.errors import ConversionError
from tfrecords_tools.imaging import Spec
from tfrecords_tools.inputs import Item, folder_images, list_images, open_lmdb

PROG = "python -m tfrecords_tools.lsun"

SHARDS = {"train": 2560, "validation": 1}
SPLIT_SUFFIX = {"train": "train", "validation": "val"}


def is_lmdb(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "data.mdb"))


def lmdb_items(path: str) -> List[Item]:
    """One item per key, sorted by key so the output does not depend on the lmdb's page order."""
    with open_lmdb(path).begin() as txn:
        keys = sorted(bytes(k) for k in txn.cursor().iternext(keys=True, values=False))
    if not keys:
        raise ConversionError(f"lmdb {path} holds no images")
    return [Item("lmdb", path, key=k, name=k.decode(errors="replace")) for k in keys]


def source_items(path: str) -> List[Item]:
    """Items of one lmdb or image folder."""
    if is_lmdb(path):
        return lmdb_items(path)
    return [Item("file", p) for p in folder_images(path, missing_hint=" and no lmdb (data.mdb)")]


def find_splits(folder: str, category: Optional[str]) -> Dict[str, str]:
    """`<category>_train[_lmdb]` and `<category>_val[_lmdb]` inside `folder`, if present."""
    found = {}
    for split, suffix in SPLIT_SUFFIX.items():
        for name in (f"{category}_{suffix}_lmdb", f"{category}_{suffix}"):
            if category and os.path.isdir(os.path.join(folder, name)):
                found[split] = os.path.join(folder, name)
                break
    return found


def main(argv: Optional[Sequence[str]] = None):
    p = cli.parser(PROG, __doc__, resolution=None, lods=1, shards=SHARDS, with_split=True,
                   resolution_help="side of the crop (default 256), or with --realnvp the shorter side (96)")
    p.flag("--category", default="", help="LSUN category (bedroom, church_outdoor, tower, ...)")
    p.flag("--realnvp", action="store_true", help="RealNVP mode: shorter side 96, uncropped")
    args = p.parse_args(argv)
    resolution = args.resolution or (96 if args.realnvp else 256)
    if not os.path.exists(args.input):
        raise ConversionError(f"input {args.input} does not exist")
    pairs = {} if is_lmdb(args.input) else find_splits(args.input, args.category)
    if pairs:
        splits = {split: source_items(path) for split, path in pairs.items()}
    else:
        if os.path.isdir(args.input) and not is_lmdb(args.input) and not list_images(args.input) and \
                any(n.endswith(("_lmdb", "_train", "_val")) for n in os.listdir(args.input)):
            raise ConversionError(f"{args.input} holds per-category folders; pass --category "
                                  f"(found {sorted(os.listdir(args.input))})")
        name = os.path.basename(os.path.normpath(args.input))
        split = args.split or ("validation" if "_val" in name else "train")
        splits = {split: source_items(args.input)}
    spec = Spec("short_side" if args.realnvp else "square", resolution, args.lods)
    output = os.path.join(args.output, args.category) if args.category else args.output
    return cli.write(splits, output, spec, cli.shard_counts(args.shards, list(splits), SHARDS), args)


if __name__ == "__main__":
    raise SystemExit(run_cli(PROG, main))
