#!/usr/bin/env python
"""The bfloat16-versus-float32 quality table of the README, from `scripts/fashion_experiments.sh bf16`.

    python scripts/bf16_table.py logs/experiments [--seeds 0 1 2]

Reads, for each seed and precision, the run `fashion_small_<dtype>_s<seed>` (train.txt) and its three
evaluations on the 10,000 test images (eval_raw.json: the final weights in the run's own precision;
eval_ema.json: the Polyak average; eval_other.json: the final weights with the coupling networks in the
other precision). Prints one row per run, then bfloat16 - float32 differences: of two runs with the same seed (which
fixes the initial weights, the data order and the noise, so the difference is what training in
bfloat16 did), and of one run's weights evaluated both ways (what evaluating in bfloat16 does).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

DTYPES = ("float32", "bfloat16")
MEASURES = (  # (column, how to read it from a run)
    ("last epoch's training bits/dim", lambda run: run["train"]),
    ("test bits/dim, final weights", lambda run: run["raw"]["bits_x"]),
    ("test bits/dim, Polyak average", lambda run: run["ema"]["bits_x"]),
    ("test bits/dim, final weights in the other precision", lambda run: run["other"]["bits_x"]),
)


def fail(message: str):
    print(f"bf16_table.py: error: {message}", file=sys.stderr)
    sys.exit(2)


def read_run(folder: str) -> dict:
    def text(name):
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            fail(f"{path} is missing; run scripts/fashion_experiments.sh bf16 first")
        with open(path) as f:
            return f.read()

    epochs = [line for line in map(json.loads, filter(str.strip, text("train.txt").splitlines())) if "bits_x" in line]
    if not epochs:
        fail(f"{folder}/train.txt holds no finished epoch; let the run finish first")
    return {"train": float(epochs[-1]["bits_x"]), "raw": json.loads(text("eval_raw.json")),
            "ema": json.loads(text("eval_ema.json")), "other": json.loads(text("eval_other.json"))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", help="where scripts/fashion_experiments.sh bf16 wrote its runs")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = p.parse_args(argv)
    runs = {(dtype, seed): read_run(os.path.join(args.folder, f"fashion_small_{dtype}_s{seed}"))
            for seed in args.seeds for dtype in DTYPES}

    names = [name for name, _ in MEASURES]
    print("| seed | trained in | " + " | ".join(names) + " | changed subpixels after decode(encode(x)) |")
    print("|---" * (len(names) + 3) + "|")
    for seed in args.seeds:
        for dtype in DTYPES:
            run = runs[dtype, seed]
            cells = [f"{read(run):.3f}" for _, read in MEASURES]
            changed = 100 * run["raw"]["recon_changed_fraction"]
            print(f"| {seed} | {dtype} | " + " | ".join(cells) + f" | {changed:.4f}% |")

    bits = {key: lambda run, key=key: run[key]["bits_x"] for key in ("raw", "ema", "other")}
    rows = [(f"trained in bfloat16: {name}", lambda s, read=read: read(runs["bfloat16", s]) - read(runs["float32", s]),
             [read(runs["float32", s]) for s in args.seeds]) for name, read in MEASURES[:3]]
    rows += [("float32-trained weights evaluated in bfloat16",
              lambda s: bits["other"](runs["float32", s]) - bits["raw"](runs["float32", s]), None),
             ("bfloat16-trained weights evaluated in bfloat16 rather than float32",
              lambda s: bits["raw"](runs["bfloat16", s]) - bits["other"](runs["bfloat16", s]), None)]
    print("\n| bfloat16 - float32 | " + " | ".join(f"seed {s}" for s in args.seeds)
          + " | mean | float32 runs' spread over seeds (max - min) |")
    print("|---" * (len(args.seeds) + 3) + "|")
    for name, diff, spread in rows:
        diffs = [diff(s) for s in args.seeds]
        spread_cell = f"{max(spread) - min(spread):.3f}" if spread else ""
        print(f"| {name} | " + " | ".join(f"{d:+.3f}" for d in diffs)
              + f" | {statistics.mean(diffs):+.3f} | {spread_cell} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
