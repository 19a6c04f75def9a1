#!/usr/bin/env python
"""What an elastic job's in-memory commit costs (glow_tf.training.elastic.TrainingState.commit's copy).

For each configuration: the size of the state a commit copies (weights, Adamax slots, Polyak shadows,
counters), the median time of one commit's copy and of one restore, the median training step at the
configuration's per-rank batch on this CPU, and what a commit every N steps adds to the training time
(commit / (N * step)). The default --elastic_commit_steps is chosen from the CIFAR-10 row.

    python bench/elastic_commit.py [--configs cifar10 reference] [--reps 5] [--steps 3]

One process, no Horovod collective: the copy is the commit's whole cost when the hosts did not change
(Horovod's host check adds one small broadcast).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import step_setup  # noqa: F401 (puts this checkout first on sys.path)

EVERY = (10, 50, 100, 500)


def configs():
    from glow_tf import presets

    return {
        # The paper's CIFAR-10 model (3 levels x 32 steps, width 512) at a per-rank batch of 4: the batch
        # changes the step's time, not the state's size, and 64 takes minutes per step on a CPU.
        "cifar10": dataclasses.replace(presets.cifar10(), n_batch_train=4),
        "reference": step_setup.reference_hps(),
    }


def measure(name, hps, reps, steps):
    import numpy as np

    from glow_tf.training.elastic import TrainingState
    from glow_tf.training.state import TrainState

    step = step_setup.TrainStep(hps)
    counters = TrainState()
    variables = step.model.variables + step.optimizer.variables + step.ema.variables + counters.all
    state = TrainingState(variables, size=lambda: 1, rank=lambda: 0, broadcast_variables=lambda v: None,
                          broadcast_object=lambda o: o)
    mib = sum(np.asarray(v.numpy()).nbytes for v in state.variables) / 2 ** 20
    step.run(2)  # traced and warm
    step_times, save_times, restore_times = [], [], []
    for _ in range(reps):
        t = time.perf_counter()
        step.run(steps)
        step_times.append((time.perf_counter() - t) / steps)
        t = time.perf_counter()
        state.save()
        save_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        state.restore()
        restore_times.append(time.perf_counter() - t)
    commit, restore, per_step = (statistics.median(x) for x in (save_times, restore_times, step_times))
    overhead = " | ".join(f"{100 * commit / (n * per_step):.1f}%" for n in EVERY)
    return f"| {name} | {len(state.variables)} | {mib:.0f} | {commit:.3f} | {restore:.3f} | {per_step:.3f} | {overhead} |"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["cifar10", "reference"], choices=list(configs()))
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="training steps timed between commits")
    args = parser.parse_args()
    print("| configuration | variables | state (MiB) | commit (s) | restore (s) | step (s) | "
          + " | ".join(f"commit every {n}" for n in EVERY) + " |")
    print("|---|---:|---:|---:|---:|---:|" + "---:|" * len(EVERY))
    for name in args.configs:
        print(measure(name, configs()[name], args.reps, args.steps), flush=True)


if __name__ == "__main__":
    main()
