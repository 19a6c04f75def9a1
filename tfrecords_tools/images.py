"""Any folder of images -> TFRecords in the original's format (an extension; read with
`--problem tfrecords --data_dir <output> --image_size <resolution>`).

Images directly in `--input` get label 0. With class sub-folders (`<input>/<class>/*.png`), the classes
sorted by name get labels 0..K-1, listed in `<output>/classes.txt`; mixing loose images and class
folders is refused. A second run into the same output (another split) reuses that list, so a class
keeps its label in every split; a class folder the list does not name is refused, and the list is never
rewritten (delete it to start a new one). Every image is centre-cropped to a square and resized to
`--resolution` (Lanczos), with `--lods` lower levels by 2x2 mean pooling. One split per run (`--split`,
default train).

    python -m tfrecords_tools.images --input photos/ --resolution 64 --output photos-tfr
    python -m tfrecords_tools.images --input photos_val/ --resolution 64 --split validation --output photos-tfr
"""

from __future__ import annotations

import math
import os
from typing import List, Optional, Sequence, Tuple

from glow_common.errors import run_cli
from tfrecords_tools import cli
from tfrecords_tools.errors import ConversionError
from tfrecords_tools.imaging import Spec
from tfrecords_tools.inputs import Item, list_images, require_folder
from tfrecords_tools.writer import classes_file, read_classes, write_classes

PROG = "python -m tfrecords_tools.images"


def class_folders(folder: str) -> Tuple[List[str], List[str]]:
    """(loose images, names of the sub-folders that hold images) of an input folder."""
    require_folder(folder)
    loose = list_images(folder)
    classes = sorted(d for d in os.listdir(folder)
                     if os.path.isdir(os.path.join(folder, d)) and list_images(os.path.join(folder, d)))
    if loose and classes:
        raise ConversionError(f"{folder} holds both images ({os.path.basename(loose[0])}, ...) and class "
                              f"folders ({classes[0]}, ...); keep one layout")
    if not loose and not classes:
        raise ConversionError(f"input folder {folder} holds no images")
    return loose, classes


def labels_for(folder: str, classes: List[str], known: Optional[List[str]], output: str) -> List[str]:
    """The label list to use: `known` (an existing classes.txt) when it names every class folder."""
    if known is None:
        return classes
    if not classes:
        raise ConversionError(f"{classes_file(output)} lists {len(known)} classes but {folder} has no class "
                              f"folders; convert this input into another --output")
    unknown = [name for name in classes if name not in known]
    if unknown:
        raise ConversionError(f"{folder} has class folder {unknown[0]!r}, which {classes_file(output)} does not "
                              f"list (it has {', '.join(known[:5])}{', ...' if len(known) > 5 else ''}); every "
                              f"split needs the same classes: convert into another --output, or delete "
                              f"classes.txt and re-convert every split")
    return known


def folder_items(folder: str, labels: List[str]) -> List[Item]:
    loose, classes = class_folders(folder)
    if not classes:
        return [Item("file", p) for p in loose]
    return [Item("file", p, label=labels.index(name)) for name in classes
            for p in list_images(os.path.join(folder, name))]


def main(argv: Optional[Sequence[str]] = None):
    p = cli.parser(PROG, __doc__, resolution=None, lods=1, shards=None, with_split=True,
                   split="train", resolution_help="side of the square images written (required)")
    args = p.parse_args(argv)
    if args.resolution is None:
        raise ConversionError("--resolution is required (side of the square images written)")
    _, classes = class_folders(args.input)
    known = read_classes(args.output) if os.path.isdir(args.output) else None
    labels = labels_for(args.input, classes, known, args.output)
    items = folder_items(args.input, labels)
    default = {args.split: max(1, math.ceil(len(items) / cli.IMAGES_PER_SHARD))}
    shards = cli.shard_counts(args.shards, [args.split], default)
    reports = cli.write({args.split: items}, args.output, Spec("square", args.resolution, args.lods), shards,
                        args)
    if classes and known is None:
        write_classes(args.output, labels)
    return reports


if __name__ == "__main__":
    raise SystemExit(run_cli(PROG, main))
