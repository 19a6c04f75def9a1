#!/usr/bin/env python
"""The README's ablation table over seeds, from `scripts/fashion_experiments.sh ablation`.

    python scripts/ablation_table.py logs/experiments/fashion_ablation_*_s*/

Runs are grouped as scripts/plot_logs.py --seeds groups them (folder names ending in _s<seed>). For each
group it prints, as a Markdown table row:
  * the test bits/dim of the final weights on the whole test set (the `<run>_eval.json` that
    glow_tf.tools.evaluate wrote beside the run folder): mean ± sample standard deviation over the seeds,
    and each seed's value;
  * the test set's standard error (glow_tf.tools.evaluate's se_images, averaged over the seeds);
  * the mean of the run's last three validations (test.txt, the validation subset the run was trained
    with), mean ± standard deviation over the seeds: less sensitive than one final value to a single
    bad last epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

import plot_logs

LAST_VALIDATIONS = 3


def eval_json(logdir: str) -> dict:
    path = os.path.normpath(logdir) + "_eval.json"
    if not os.path.isfile(path):
        raise ValueError(f"{path} is missing: evaluate the run first "
                         f"(python -m glow_tf.tools.evaluate {logdir} --output {path})")
    with open(path) as f:
        return json.load(f)


def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{statistics.fmean(values):.3f} ± {sd:.3f}"


def summarise(seeds: dict[int, str]) -> dict:
    """The numbers of one group's row, from its runs keyed by seed."""
    evals = {seed: eval_json(d) for seed, d in sorted(seeds.items())}
    late = []
    for seed, logdir in sorted(seeds.items()):
        test = plot_logs.load_run(logdir).get("test", [])
        if len(test) < LAST_VALIDATIONS:
            raise ValueError(f"{logdir}/test.txt has {len(test)} validations; the table needs {LAST_VALIDATIONS}")
        late.append(statistics.fmean(r["bits_x"] for r in test[-LAST_VALIDATIONS:]))
    return {"final": {seed: e["bits_x"] for seed, e in evals.items()},
            "se": statistics.fmean(e["se_images"] for e in evals.values()),
            "n_images": {e["n_images"] for e in evals.values()}, "late": late}


def table(groups: dict[str, dict[int, str]]) -> str:
    rows = {name: summarise(seeds) for name, seeds in groups.items()}
    n_images = set().union(*(row["n_images"] for row in rows.values()))
    lines = [f"| run | test bits/dim ({'/'.join(map(str, sorted(n_images)))} images): mean ± sd | each seed "
             f"| test-set standard error | last {LAST_VALIDATIONS} validations: mean ± sd |",
             "|---|---|---|---|---|"]
    for name, row in rows.items():
        each = ", ".join(f"{value:.3f} (s{seed})" for seed, value in row["final"].items())
        lines.append(f"| {name} | {mean_sd(list(row['final'].values()))} | {each} | {row['se']:.4f} "
                     f"| {mean_sd(row['late'])} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("logdirs", nargs="+", help="run folders named <name>_s<seed>")
    args = parser.parse_args(argv)
    try:
        print(table(plot_logs.group_seeds(args.logdirs)))
    except (OSError, ValueError) as err:
        print(f"ablation_table.py: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
