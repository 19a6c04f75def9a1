#!/usr/bin/env python
"""Which thread layout trains fastest on CPUs, at 1 and 2 cores, for each configuration of bench/.

    python bench/cpu_layout.py                       # reference, fashion_small and paper; ~15 min on 2 cores
    python bench/cpu_layout.py --only reference --reps 5

Two layouts of train.py's training step (bench/step_setup.py, as bench/train_step.py times it):
  default   TF_NUM_INTRAOP_THREADS=0: TensorFlow's own pools, each op spread over one thread per core;
  parallel  TF_NUM_INTRAOP_THREADS=1: every op on one thread, the batch encoded as one sub-batch per
            inter-op thread, side by side (glow_tf.model.concurrent_batch_parts).
Each runs pinned to one core (`taskset -c 0`) and to two (`taskset -c 0,1`). For each configuration the
four workers are long-lived processes timed in interleaved repetitions (bench/interleave.py); the
table gives each one's img/s (median and range) and, per core count, the per-repetition ratio
parallel / default. Only the ratios within one run mean much on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time

from interleave import ROOT, interleave, serve
from step_setup import INTRAOP
from train_step import CONFIGS

CORES = {1: "0", 2: "0,1"}  # taskset's CPU list


def worker(args) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from step_setup import TrainStep, reference_hps

    fields = {k: v for k, v in CONFIGS[args.config].items() if k != "batch"}
    step = TrainStep(reference_hps(**fields, n_batch_train=args.batch))
    step.run(args.warmup)
    serve(step.run, step.images_per_step)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(CONFIGS), action="append",
                        help="configurations to run (default: all of bench/train_step.py's)")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions (at least 3)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per repetition (paper: a fifth)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (tracing)")
    parser.add_argument("--paper_batch", type=int, default=4, help="batch of the paper configuration")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config", choices=sorted(CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return 0
    if args.reps < 3:
        parser.error(f"--reps {args.reps}: interleaved comparisons need at least 3 repetitions")
    if not shutil.which("taskset"):
        print("bench/cpu_layout.py: skipped: taskset (util-linux) is missing")
        return 0
    available = len(os.sched_getaffinity(0))
    if available < 2:
        print(f"bench/cpu_layout.py: skipped: this process may use {available} core; the comparison needs 2")
        return 0

    start, load_start = time.time(), os.getloadavg()[0]
    rows = []
    for name in args.only or list(CONFIGS):
        batch = args.paper_batch if name == "paper" else CONFIGS[name]["batch"]
        steps = max(1, args.steps // 5) if name == "paper" else args.steps
        specs = []
        for cores, cpus in CORES.items():
            for layout, intra in INTRAOP.items():
                cmd = ["taskset", "-c", cpus, sys.executable, os.path.abspath(__file__), "--worker",
                       "--config", name, "--batch", str(batch), "--warmup", str(args.warmup)]
                env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT, TF_NUM_INTRAOP_THREADS=intra)
                env.pop("TF_NUM_INTEROP_THREADS", None)
                specs.append((f"{name} {cores} core{'s' if cores > 1 else ''} {layout}", cmd, env))
        print(f"{name}: batch {batch}, {args.reps} repetitions of {steps} steps", flush=True)
        workers = dict(zip([(cores, layout) for cores in CORES for layout in INTRAOP],
                           interleave(specs, args.reps, steps)))
        for cores in CORES:
            default, parallel = workers[cores, "default"], workers[cores, "parallel"]
            ratios = [p / d for p, d in zip(parallel.img_s, default.img_s)]
            rows.append((name, batch, cores, default, parallel, ratios))

    print()
    print(f"Training step (forward, backward, Adamax, Polyak average), float32; {args.reps} interleaved "
          f"repetitions; load average {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print()
    print("| configuration | batch | cores | default threads, img/s | parallel threads, img/s "
          "| parallel / default, median (range) | peak RSS MiB (default, parallel) |")
    print("|---|---|---|---|---|---|---|")

    def cell(w):
        return f"{statistics.median(w.img_s):.1f} ({min(w.img_s):.1f}-{max(w.img_s):.1f})"

    for name, batch, cores, default, parallel, ratios in rows:
        print(f"| {name} | {batch} | {cores} | {cell(default)} | {cell(parallel)} "
              f"| {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) "
              f"| {default.rss_kib / 1024:.0f}, {parallel.rss_kib / 1024:.0f} |")
    print(f"(total {time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
