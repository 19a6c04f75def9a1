#!/usr/bin/env python
"""Plot train and test bits/dim curves from the train.txt / test.txt of one or more runs.

    python scripts/plot_logs.py logs/run_a logs/run_b --output curves.png [--x n_images|n_processed|epoch]

Reads the JSON-lines logs that train.py writes and that the original openai/glow wrote (its published
logs, e.g. the ablation tarballs, have the same fields with numbers stored as "%.4f" strings). The first
line of each file holds the hyperparameters and is skipped. Each run is labelled by its folder name
unless `--labels` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

X_FIELDS = ("n_images", "n_processed", "epoch")


def read_log(path: str) -> list[dict]:
    """The result lines of a train.txt/test.txt (hps line dropped), with numeric strings as floats."""
    rows = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{number}: not a JSON line ({err.msg})") from None
            if "bits_x" not in record:
                continue  # the hyperparameter line
            rows.append({k: _number(v) for k, v in record.items()})
    return rows


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def load_run(logdir: str) -> dict:
    if not os.path.isdir(logdir):
        raise ValueError(f"{logdir}: not a folder")
    curves = {}
    for split in ("train", "test"):
        path = os.path.join(logdir, f"{split}.txt")
        if os.path.isfile(path):
            curves[split] = read_log(path)
    if not any(curves.values()):
        raise ValueError(f"{logdir}: no train.txt or test.txt with bits_x lines")
    return curves


def plot(runs: dict, output: str, x_field: str, title: str | None = None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, curves) in enumerate(runs.items()):
        color = colors[i % len(colors)]
        for split, style in (("train", ":"), ("test", "-")):
            rows = [r for r in curves.get(split, []) if x_field in r]
            if rows:
                ax.plot([r[x_field] for r in rows], [r["bits_x"] for r in rows], style, color=color,
                        marker="o" if split == "test" and len(rows) < 30 else None, markersize=3,
                        label=f"{label} ({split})")
    ax.set_xlabel({"n_images": "images processed", "n_processed": "anchor-size images processed",
                   "epoch": "epoch"}[x_field])
    ax.set_ylabel("bits/dim")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("logdirs", nargs="+", help="run folders holding train.txt and/or test.txt")
    parser.add_argument("--output", default="curves.png", help="PNG to write (default: curves.png)")
    parser.add_argument("--x", choices=X_FIELDS, default="n_images", help="x axis (default: n_images)")
    parser.add_argument("--labels", nargs="+", help="one label per logdir (default: folder names)")
    parser.add_argument("--title", help="plot title")
    args = parser.parse_args(argv)
    if args.labels and len(args.labels) != len(args.logdirs):
        parser.error(f"{len(args.labels)} labels for {len(args.logdirs)} logdirs")
    labels = args.labels or [os.path.basename(os.path.normpath(d)) for d in args.logdirs]
    try:
        runs = {label: load_run(d) for label, d in zip(labels, args.logdirs)}
        plot(runs, args.output, args.x, args.title)
    except (OSError, ValueError) as err:
        print(f"plot_logs: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
