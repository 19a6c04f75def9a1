"""Command-line pieces shared by the converters: the common flags and one-line error reporting."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Dict, Optional, Sequence

from tfrecords_tools.shards import ConversionError, Spec, convert, summary

# Where the original had no shard count (our `images` converter): shards of about this many images.
IMAGES_PER_SHARD = 1024


def parser(description: str, *, resolution: Optional[int], lods: int, shards: Optional[Dict[str, int]],
           with_split: bool = False, split: Optional[str] = None,
           resolution_help: Optional[str] = None) -> argparse.ArgumentParser:
    """argparse with the flags every converter shares (issue 3): input, output, resolution, lods,
    shards, seed, split (`with_split`, for inputs without splits of their own), workers, overwrite,
    strict. A None default leaves the choice to the converter, which says so in `resolution_help`."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, help="input folder or file (see above)")
    p.add_argument("--output", required=True, help="output folder; shards go to <output>/<split>/")
    p.add_argument("--resolution", type=int, default=resolution,
                   help=resolution_help or f"largest resolution written (default {resolution})")
    p.add_argument("--lods", type=int, default=lods,
                   help=f"resolutions written, halving by 2x2 mean pooling; 0 = all down to 4x4 (default {lods})")
    default_shards = ",".join(f"{k}={v}" for k, v in shards.items()) if shards else None
    p.add_argument("--shards", default=default_shards,
                   help=f"shards per split: N for every split or split=N,... (default "
                        f"{default_shards or f'one per {IMAGES_PER_SHARD} images'})")
    p.add_argument("--seed", type=int, default=0, help="seed of the shard assignment (default 0)")
    if with_split:
        p.add_argument("--split", default=split, choices=("train", "validation"),
                       help=f"split to write, for an input without splits of its own (default "
                            f"{split or 'validation if the input name has _val, else train'})")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="decoding processes (default: one per CPU; 0 = in this process)")
    p.add_argument("--overwrite", action="store_true", help="replace shards that already exist")
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable image instead of "
                                                         "skipping it with a warning")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def shard_counts(value: Optional[str], splits: Sequence[str], defaults: Dict[str, int]) -> Dict[str, int]:
    """'--shards 8' or '--shards train=120,validation=40' -> {split: count}; None -> defaults."""
    counts = dict(defaults)
    try:
        if value is None:
            pass
        elif "=" not in value:
            counts = {split: int(value) for split in splits}
        else:
            for part in value.split(","):
                name, _, number = part.partition("=")
                counts[name.strip()] = int(number)
    except ValueError:
        raise ConversionError(f"--shards {value!r}: expected N or split=N,...") from None
    for split in splits:
        if counts.get(split, 0) < 1:
            raise ConversionError(f"--shards {value!r}: need at least one shard for split {split!r}")
    return counts


def run(main: Callable[[Optional[Sequence[str]]], object], argv: Optional[Sequence[str]] = None) -> int:
    """Call main(argv); print a ConversionError as one line on stderr and return exit status 2."""
    try:
        main(argv)
    except ConversionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def write(splits: Dict[str, Sequence], output: str, spec: Spec, shards: Dict[str, int], args: argparse.Namespace):
    """Convert with the flags every converter shares (--seed --workers --strict --overwrite --quiet),
    print the summary table and return the per-split reports."""
    reports = convert(splits, output, spec, shards=shards, seed=args.seed, workers=args.workers,
                      strict=args.strict, overwrite=args.overwrite, progress=not args.quiet)
    print(summary(reports, output))
    return reports
