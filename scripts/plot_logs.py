#!/usr/bin/env python
"""Plot train and test bits/dim curves from the train.txt / test.txt of one or more runs.

    python scripts/plot_logs.py logs/run_a logs/run_b --output curves.png [--x n_images|n_processed|epoch]
    python scripts/plot_logs.py --seeds logs/abl_*_s*/ --panels additive affine --output ablation.png

Reads the JSON-lines logs that train.py writes and that the original openai/glow wrote (its published
logs, e.g. the ablation tarballs, have the same fields with numbers stored as "%.4f" strings). The first
line of each file holds the hyperparameters and is skipped. Each run is labelled by its folder name
unless `--labels` is given.

With `--seeds`, runs whose folder names end in `_s<seed>` are grouped by the rest of the name and each
group is drawn as the mean test curve over its seeds, with a band from the lowest to the highest seed
(with three seeds a standard deviation says little more than the range). `--panels` puts the groups
whose names contain each word in a panel of their own, as the paper's Figure 3 has one panel per coupling.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

X_FIELDS = ("n_images", "n_processed", "epoch")
AXIS_LABELS = {"n_images": "images processed", "n_processed": "anchor-size images processed", "epoch": "epoch"}


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


def group_seeds(logdirs: list[str]) -> dict[str, dict[int, str]]:
    """{group name: {seed: logdir}} for folders named <group>_s<seed>; anything else is an error."""
    groups: dict[str, dict[int, str]] = {}
    for logdir in logdirs:
        name = os.path.basename(os.path.normpath(logdir))
        match = re.fullmatch(r"(.+)_s(\d+)", name)
        if not match:
            raise ValueError(f"{logdir}: with --seeds every folder name must end in _s<seed>, like run_s0")
        groups.setdefault(match.group(1), {})[int(match.group(2))] = logdir
    return dict(sorted(groups.items()))


def seed_band(curves: list[list[dict]], x_field: str):
    """Mean, lowest and highest bits/dim over the seeds at the x values every seed reached."""
    common = sorted(set.intersection(*({r[x_field] for r in rows if x_field in r} for rows in curves)))
    if not common:
        raise ValueError(f"the seeds share no {x_field} value to average at")
    per_seed = [{r[x_field]: r["bits_x"] for r in rows if x_field in r} for rows in curves]
    columns = [[run[x] for run in per_seed] for x in common]
    return (common, [sum(c) / len(c) for c in columns], [min(c) for c in columns], [max(c) for c in columns])


def plot_seeds(groups: dict[str, dict[int, str]], output: str, x_field: str, panels: list[str] | None,
               title: str | None = None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = panels or [""]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.5), sharey=True, squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, word in zip(axes[0], panels):
        names = [name for name in groups if word in name]
        if not names:
            raise ValueError(f"--panels {word!r}: no run group has it in its name ({', '.join(groups)})")
        for i, name in enumerate(names):
            tests = [load_run(d).get("test", []) for d in groups[name].values()]
            if not all(tests):
                raise ValueError(f"{name}: every seed needs a test.txt with bits_x lines")
            x, mean, low, high = seed_band(tests, x_field)
            color = colors[i % len(colors)]
            ax.plot(x, mean, "-o", color=color, markersize=3, label=f"{name} ({len(tests)} seeds)")
            ax.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0)
        ax.set_xlabel(AXIS_LABELS[x_field])
        ax.set_title(word or None)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("test bits/dim (mean; band: lowest to highest seed)")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    plt.close(fig)


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
    ax.set_xlabel(AXIS_LABELS[x_field])
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
    parser.add_argument("--seeds", action="store_true",
                        help="group runs named <name>_s<seed>: mean test curve and a band over the seeds")
    parser.add_argument("--panels", nargs="+", metavar="WORD",
                        help="with --seeds, one panel per word, holding the groups whose names contain it")
    args = parser.parse_args(argv)
    if args.panels and not args.seeds:
        parser.error("--panels needs --seeds")
    if args.seeds and args.labels:
        parser.error("--labels and --seeds do not go together: groups are labelled by their names")
    if args.labels and len(args.labels) != len(args.logdirs):
        parser.error(f"{len(args.labels)} labels for {len(args.logdirs)} logdirs")
    labels = args.labels or [os.path.basename(os.path.normpath(d)) for d in args.logdirs]
    try:
        if args.seeds:
            plot_seeds(group_seeds(args.logdirs), args.output, args.x, args.panels, args.title)
        else:
            runs = {label: load_run(d) for label, d in zip(labels, args.logdirs)}
            plot(runs, args.output, args.x, args.title)
    except (OSError, ValueError) as err:
        print(f"plot_logs: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
