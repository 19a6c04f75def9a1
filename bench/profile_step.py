#!/usr/bin/env python
"""Where the training step's time goes: TensorFlow's profiler on train.py's step, summarised as tables.

    python bench/profile_step.py                          # reference configuration, TF's default threads
    python bench/profile_step.py --threads parallel       # single-threaded ops, the batch in one sub-batch per inter-op thread
    python bench/profile_step.py --nn_dtype bfloat16 --top 25

Traces `--steps` training steps (after `--warmup` untraced ones) of the reference configuration
(bench/step_setup.py) and reads the trace (the XPlane protobuf the profiler writes) directly. Every op
that TensorFlow's executor ran has an event on an inter-op thread with its name and type; its duration
is the op's kernel time, including the time its kernel waited for the intra-op pool. Printed:
  * wall time per step while tracing (the profiler adds a little), ops per step, and the executor's
    own time: what `ExecutorState::Process` took beyond the ops it ran (scheduling, bookkeeping);
  * op time by kind (convolution forward, input gradient, filter gradient, matmul, elementwise and
    reductions, data movement, casts, the float64 log-determinant, variable reads, optimizer and Polyak
    updates) and phase (backward = the gradient tape's ops; update = Adamax, the Polyak average and
    their variable reads; forward = the rest: the model and its loss);
  * the `--top` op types by time.
With two inter-op threads the op times of a step add up to more than its wall time.
`--threads parallel` sets TF_NUM_INTRAOP_THREADS=1 (see glow_tf.model.concurrent_batch_parts).
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import re
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

KINDS = [  # (kind, regular expression on the op type); the first match wins
    ("conv forward", r"Conv2D$|FusedConv2D$|Conv2DWithBias"),
    ("conv input gradient", r"Conv2DBackpropInput"),
    ("conv filter gradient", r"Conv2DBackpropFilter"),
    ("matmul", r"MatMul"),
    ("float64 log-det",
     r"^(Qr|MatrixTriangularSolve|MatrixInverse|LogMatrixDeterminant|MatrixDiag\w*|MatrixBandPart)$"),
    ("optimizer, Polyak", r"^ResourceApply|^Assign\w*VariableOp$"),
    ("variable reads", r"^ReadVariableOp$"),
    ("casts", r"^Cast$"),
    ("data movement", r"Transpose|Concat|Split|Slice|^Pad|^Pack$|^Unpack$|^Tile$|^Identity|^Reverse|Gather"),
    ("elementwise, reductions", r"."),
]
# The update's ops sit at the top level: Adamax's fused kernels, the Polyak average (sub, mul,
# assign_sub) and the reads of the variables they update.
UPDATE = re.compile(r"^(ResourceApply\w*|Assign\w*VariableOp|sub|mul|IdentityN)(_\d+)?(/|$)")


def kind_of(op_type: str) -> str:
    return next(kind for kind, pattern in KINDS if re.search(pattern, op_type))


def phase_of(op_name: str) -> str:
    if op_name.startswith("gradient_tape/"):
        return "backward"
    return "update" if UPDATE.match(op_name) else "forward"


def read_trace(logdir: str):
    """(per-op (name, type, seconds) events, executor seconds, [seconds of each traced step])."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    path = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))[-1]
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    host = next(p for p in space.planes if p.name == "/host:CPU")
    ops, executor, steps = [], 0.0, []
    for line in host.lines:
        for event in line.events:
            name = host.event_metadata[event.metadata_id].name
            seconds = event.duration_ps * 1e-12
            if name == "train_step" and not line.name.startswith("tf_"):  # the Python thread (python, python3, ...)
                steps.append(seconds)
            elif line.name.startswith("tf_Compute"):
                if name == "ExecutorState::Process":
                    executor += seconds
                elif ":" in name and not name.startswith("Threadpool"):
                    op_name, op_type = name.rsplit(":", 1)
                    ops.append((op_name, op_type, seconds))
    return ops, executor, steps


def summarise(ops, executor, steps, top: int) -> None:
    n = len(steps)
    if not n:
        sys.exit("bench/profile_step.py: the trace holds no train_step event; nothing to summarise")
    op_total = sum(s for _, _, s in ops)
    print(f"wall {1e3 * sum(steps) / n:.1f} ms per step while tracing ({n} steps); {len(ops) / n:.0f} ops per step "
          f"({len({t for _, t, _ in ops})} types); op time {1e3 * op_total / n:.1f} ms per step; executor's own "
          f"time {1e3 * max(0.0, executor - op_total) / n:.1f} ms per step")
    print()
    table = collections.defaultdict(lambda: collections.defaultdict(float))
    counts = collections.Counter()
    for name, op_type, seconds in ops:
        kind = kind_of(op_type)
        table[kind][phase_of(name)] += seconds
        counts[kind] += 1
    print("| kind | ops/step | forward ms | backward ms | update ms | total ms | share |")
    print("|---|---|---|---|---|---|---|")
    for kind, _ in KINDS:
        row = table[kind]
        total = sum(row.values())
        print(f"| {kind} | {counts[kind] / n:.0f} | " + " | ".join(f"{1e3 * row[p] / n:.1f}" for p in
                                                             ("forward", "backward", "update"))
              + f" | {1e3 * total / n:.1f} | {100 * total / op_total:.0f}% |")
    print()
    by_type = collections.defaultdict(lambda: [0, 0.0])
    for _, op_type, seconds in ops:
        by_type[op_type][0] += 1
        by_type[op_type][1] += seconds
    print(f"| op type (top {top}) | ops/step | ms/step | share |")
    print("|---|---|---|---|")
    for op_type, (count, seconds) in sorted(by_type.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"| {op_type} | {count / n:.0f} | {1e3 * seconds / n:.2f} | {100 * seconds / op_total:.1f}% |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nn_dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--threads", default="default", choices=["default", "parallel"],
                        help="TF's default thread pools, or single-threaded ops (TF_NUM_INTRAOP_THREADS=1)")
    parser.add_argument("--steps", type=int, default=5, help="traced steps")
    parser.add_argument("--warmup", type=int, default=3, help="untraced steps first")
    parser.add_argument("--top", type=int, default=15, help="op types listed")
    parser.add_argument("--logdir", default=None, help="keep the trace here (default: a temporary folder)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    from step_setup import INTRAOP, TrainStep, reference_hps

    os.environ["TF_NUM_INTRAOP_THREADS"] = INTRAOP[args.threads]  # before TensorFlow starts its pools
    import tensorflow as tf

    step = TrainStep(reference_hps(nn_dtype=args.nn_dtype))
    step.run(args.warmup)
    t = time.perf_counter()
    step.run(args.steps)
    untraced = (time.perf_counter() - t) / args.steps
    with tempfile.TemporaryDirectory() as tmp:
        logdir = args.logdir or tmp
        tf.profiler.experimental.start(logdir)
        step.run(args.steps)
        tf.profiler.experimental.stop()
        ops, executor, steps = read_trace(logdir)
    print(f"Training step, reference configuration, nn_dtype {args.nn_dtype}, threads {args.threads} "
          f"(batch parts {getattr(step.model, 'batch_parts', 1)}); {os.cpu_count()} CPU cores, load average "
          f"{os.getloadavg()[0]:.1f}; untraced {1e3 * untraced:.1f} ms per step "
          f"({step.images_per_step / untraced:.0f} img/s)")
    summarise(ops, executor, steps, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
