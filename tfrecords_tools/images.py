"""Any folder of images -> TFRecords in the original's format (an extension; read with
`--problem tfrecords --data_dir <output> --image_size <resolution>`).

Images directly in `--input` get label 0. With class sub-folders (`<input>/<class>/*.png`), the classes
sorted by name get labels 0..K-1, listed in `<output>/classes.txt`; mixing loose images and class
folders is refused. Every image is centre-cropped to a square and resized to `--resolution` (Lanczos),
with `--lods` lower levels by 2x2 mean pooling. One split per run (`--split`, default train).

    python -m tfrecords_tools.images --input photos/ --resolution 64 --output photos-tfr
    python -m tfrecords_tools.images --input photos_val/ --resolution 64 --split validation --output photos-tfr
"""

from __future__ import annotations

import math
import os
from typing import List, Optional, Sequence, Tuple

from tfrecords_tools import cli
from tfrecords_tools.shards import ConversionError, Item, Spec, list_images, require_folder


def folder_items(folder: str) -> Tuple[List[Item], List[str]]:
    """Items and class names (empty without class folders)."""
    require_folder(folder)
    loose = list_images(folder)
    classes = sorted(d for d in os.listdir(folder)
                     if os.path.isdir(os.path.join(folder, d)) and list_images(os.path.join(folder, d)))
    if loose and classes:
        raise ConversionError(f"{folder} holds both images ({os.path.basename(loose[0])}, ...) and class "
                              f"folders ({classes[0]}, ...); keep one layout")
    if classes:
        items = [Item("file", p, label=label) for label, name in enumerate(classes)
                 for p in list_images(os.path.join(folder, name))]
        return items, classes
    if not loose:
        raise ConversionError(f"input folder {folder} holds no images")
    return [Item("file", p) for p in loose], []


def main(argv: Optional[Sequence[str]] = None):
    p = cli.parser(__doc__, resolution=None, lods=1, shards=None, with_split=True,
                   split="train", resolution_help="side of the square images written (required)")
    args = p.parse_args(argv)
    if args.resolution is None:
        raise ConversionError("--resolution is required (side of the square images written)")
    items, classes = folder_items(args.input)
    default = {args.split: max(1, math.ceil(len(items) / cli.IMAGES_PER_SHARD))}
    shards = cli.shard_counts(args.shards, [args.split], default)
    reports = cli.write({args.split: items}, args.output, Spec("square", args.resolution, args.lods), shards,
                        args)
    if classes:
        with open(os.path.join(args.output, "classes.txt"), "w") as f:
            f.write("".join(f"{label} {name}\n" for label, name in enumerate(classes)))
    return reports


if __name__ == "__main__":
    raise SystemExit(cli.run(main))
