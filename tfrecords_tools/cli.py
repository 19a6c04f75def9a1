"""What the converters and verify share on the command line: the flags and the help layout.

Flags are snake_case like openai/glow train.py's; the kebab-case spellings of earlier versions
(`--image-list`, `--n-validation`, `--max-errors`, ...) still work and are left out of --help. Each
command runs through glow_common.errors.run_cli: a user error, from argparse or from the code (a
ToolError, or a WriteError for a failed write), is one line `<prog>: error: <message>` with exit status
2 (74 for a failed write); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
from typing import Dict, Optional, Sequence

from tfrecords_tools.errors import ConversionError
from tfrecords_tools.imaging import Spec
from tfrecords_tools.writer import convert, summary

# Where the original had no shard count (our `images` converter): shards of about this many images.
IMAGES_PER_SHARD = 1024


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, like every other user error of these commands."""

    def __init__(self, prog: str, description: str):
        super().__init__(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")

    def flag(self, name: str, **kwargs):
        """add_argument for a snake_case flag, with its kebab-case spelling as a hidden alias (a flag of
        its own, so that an error names the spelling the user typed)."""
        action = self.add_argument(name, **kwargs)
        if "_" in name:
            alias = dict(kwargs, help=argparse.SUPPRESS, default=argparse.SUPPRESS, dest=action.dest)
            alias.pop("required", None)
            self.add_argument(name.replace("_", "-"), **alias)
        return action


def parser(prog: str, description: str, *, resolution: Optional[int], lods: int,
           shards: Optional[Dict[str, int]], with_split: bool = False, split: Optional[str] = None,
           resolution_help: Optional[str] = None) -> Parser:
    """The flags every converter shares: input, output, resolution, lods, shards, seed, split
    (`with_split`, for inputs without splits of their own), workers, overwrite, strict, quiet. A None
    default leaves the choice to the converter, which says so in `resolution_help`."""
    p = Parser(prog, description)
    p.flag("--input", required=True, help="input folder or file (see above)")
    p.flag("--output", required=True, help="output folder (created if missing); shards go to <output>/<split>/")
    p.flag("--resolution", type=int, default=resolution,
           help=resolution_help or f"largest resolution written (default {resolution})")
    p.flag("--lods", type=int, default=lods,
           help=f"resolutions written, halving by 2x2 mean pooling; 0 = all down to 4x4 (default {lods})")
    default_shards = ",".join(f"{k}={v}" for k, v in shards.items()) if shards else None
    p.flag("--shards", default=default_shards,
           help=f"shards per split: N for every split or split=N,... (default "
                f"{default_shards or f'one per {IMAGES_PER_SHARD} images'})")
    p.flag("--seed", type=int, default=0, help="seed of the shard assignment (default 0)")
    if with_split:
        p.flag("--split", default=split, choices=("train", "validation"),
               help=f"split to write, for an input without splits of its own (default "
                    f"{split or 'validation if the input name has _val, else train'})")
    p.flag("--workers", type=int, default=os.cpu_count() or 1,
           help="decoding processes (default: one per CPU; 0 = in this process)")
    p.flag("--overwrite", action="store_true",
           help="replace shards that already exist (only once the new ones are complete)")
    p.flag("--strict", action="store_true",
           help="stop at the first unreadable image instead of skipping it with a warning")
    p.flag("--quiet", action="store_true", help="no progress bar")
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


def write(splits: Dict[str, Sequence], output: str, spec: Spec, shards: Dict[str, int], args: argparse.Namespace):
    """Convert with the flags every converter shares (--seed --workers --strict --overwrite --quiet),
    print the summary table and return the per-split reports."""
    reports = convert(splits, output, spec, shards=shards, seed=args.seed, workers=args.workers,
                      strict=args.strict, overwrite=args.overwrite, progress=not args.quiet)
    print(summary(reports, output))
    return reports
