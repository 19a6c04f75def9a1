#!/usr/bin/env python
"""Throughput and peak memory of train.py's training step.

    python bench/train_step.py                 # every configuration below, a few minutes on 2 CPU cores
    python bench/train_step.py --only reference --steps 20

Times `glow_tf.training.steps.make_steps`' step, the one train.py runs: forward, backward, the original's Adamax update
(gradients averaged over ranks) and the Polyak average. Configurations, each with gradient checkpointing
off and on, in one process and under `horovodrun -np 2`:

* reference: 32x32x3, n_levels 3, depth 8, width 128, batch 16, affine coupling, 1x1 conv;
* paper: the CIFAR-10 model's flow (depth 32, width 512), batch 16: about 5 s a step on 2 CPU cores,
  plus one to two minutes of tracing per run, so it runs in one process only unless --np says otherwise
  (--paper_batch 4 for a quicker look);
* fashion_small: `make train`'s model (28x28x1, n_levels 2, depth 8, width 64, batch 32, affine, 1x1
  conv), in one process unless --np says otherwise.

Each configuration runs in its own process (with TF_CPU_ALLOCATOR_USE_BFC=true, so that TensorFlow
reports its tensors' memory on the CPU as it does on GPUs). `--threads parallel` (train.py's CPU default) runs it
with TF_NUM_INTRAOP_THREADS=1: single-threaded ops, the batch encoded as one sub-batch per inter-op thread
(glow_tf.model.concurrent_batch_parts). Columns:
  parts             the sub-batches each rank's encoder runs side by side;
  img/s, s/step     timed steps after the warmup; img/s counts all ranks' images;
  warmup s          the untimed first steps: tracing and graph optimisation (once per run in train.py);
  peak RSS MiB      from `os.wait4` on the process (for horovodrun: the largest of its ranks);
  tensor peak MiB   TensorFlow's allocator peak during the timed steps (rank 0): weights, optimizer
                    slots and Polyak shadows, plus what a step allocates;
  step tensors MiB  that peak minus what stays allocated between steps: the activations and gradients
                    alive at once, which gradient checkpointing is meant to cut. (In one process each
                    gradient is applied as soon as it exists, so they are not all alive together;
                    under horovodrun the allreduce holds them.)
Images are random uint8 (throughput does not depend on content).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from step_setup import INTRAOP

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Each configuration: HParams fields over the reference configuration (step_setup.reference_hps), and
# its batch (n_batch_train).
CONFIGS = {"reference": dict(batch=16), "paper": dict(depth=32, width=512, batch=16),
           "fashion_small": dict(image_size=28, n_channels=1, n_levels=2, depth=8, width=64, batch=32)}


def child(args) -> None:
    """One configuration, in this process (one rank of it under horovodrun)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import numpy as np
    import tensorflow as tf
    from step_setup import TrainStep, reference_hps

    fields = {k: v for k, v in CONFIGS[args.config].items() if k != "batch"}
    hps = reference_hps(**fields, n_batch_train=args.batch, gradient_checkpointing=args.gc, jit_compile=args.jit,
                        nn_dtype=args.nn_dtype)
    t0 = time.time()
    step = TrainStep(hps)
    t_setup = time.time() - t0
    rss_setup = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    device = "GPU:0" if tf.config.list_logical_devices("GPU") else "CPU:0"
    t = time.time()
    step.run(args.warmup)  # tracing, and the allocator's first growth
    first = time.time() - t
    tf.config.experimental.reset_memory_stats(device)
    resident = tf.config.experimental.get_memory_info(device)["current"]
    t = time.time()
    step.run(args.steps)  # every step waits for its statistics, as train.py does
    step_s = (time.time() - t) / args.steps
    tensor_peak = tf.config.experimental.get_memory_info(device)["peak"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if step.dist.rank == 0:
        print("RESULT " + json.dumps(dict(step_s=step_s, img_s=step.images_per_step / step_s,
                                          warmup_s=first, setup_s=t_setup, tensor_peak_b=tensor_peak,
                                          tensor_step_b=tensor_peak - resident, rss_setup_kib=rss_setup,
                                          rss_peak_kib=peak, batch_parts=getattr(step.model, "batch_parts", 1),
                                          params=int(sum(np.prod(v.shape) for v in step.model.trainable_variables)))),
              flush=True)


def measure(name, cfg, gc, np_, args):
    """Run one configuration in a subprocess; returns its result dict with peak RSS from wait4."""
    batch = args.paper_batch if name == "paper" and args.paper_batch else cfg["batch"]
    steps = max(1, args.steps // 4) if name == "paper" else args.steps
    warmup = warmup_steps(name, args)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--config", name,
           "--batch", str(batch), "--gc", str(gc), "--steps", str(steps),
           "--warmup", str(warmup), "--nn_dtype", args.nn_dtype] + (["--jit"] if args.jit else [])
    if np_ > 1:
        horovodrun = os.path.join(os.path.dirname(sys.executable), "horovodrun")
        cmd = [horovodrun, "-np", str(np_), "-H", f"localhost:{np_}"] + cmd
    # The BFC allocator on the CPU, so that TF can report its tensors' peak (as it does on GPUs).
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_CPU_ALLOCATOR_USE_BFC="true")
    env.pop("HOROVOD_RANK", None)
    env["TF_NUM_INTRAOP_THREADS"] = INTRAOP[args.threads]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = [line.split("RESULT ", 1)[1] for line in out.splitlines() if "RESULT " in line]
    if proc.returncode != 0 or not lines:
        return dict(error=out.strip().splitlines()[-1] if out.strip() else f"exit {proc.returncode}",
                    batch=batch)
    result = json.loads(lines[0])
    result.update(batch=batch, rss_peak_kib=max(result["rss_peak_kib"], usage.ru_maxrss))
    return result


def warmup_steps(name, args):
    return 1 if name == "paper" else args.warmup


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(CONFIGS), action="append",
                        help="configurations to run (default: all)")
    parser.add_argument("--np", type=int, action="append", help="process counts (default: 1 and 2)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps (the paper config runs a quarter)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (tracing)")
    parser.add_argument("--paper_batch", type=int, default=None, help="batch of the paper configuration")
    parser.add_argument("--jit", action="store_true", help="--jit_compile the forward/backward pass")
    parser.add_argument("--nn_dtype", default="float32", help="--nn_dtype of the model (default: float32)")
    parser.add_argument("--threads", default="default", choices=["default", "parallel"],
                        help="TF's default thread pools, or single-threaded ops (TF_NUM_INTRAOP_THREADS=1)")
    # The child's own arguments.
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config", choices=sorted(CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--gc", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    start = time.time()
    header = (f"{'config':<13} {'np':>2} {'gc':>2} {'batch':>5} {'parts':>5} {'params':>10} {'img/s':>7} {'s/step':>7} "
              f"{'warmup s':>10} {'peak RSS MiB':>12} {'tensor peak MiB':>15} {'step tensors MiB':>16}")
    print(header)
    print("-" * len(header), flush=True)
    for name in args.only or list(CONFIGS):
        # Only the reference configuration runs under horovodrun by default (the paper one takes minutes).
        for np_ in args.np or ([1, 2] if name == "reference" else [1]):
            for gc in (0, 1):
                r = measure(name, CONFIGS[name], gc, np_, args)
                if "error" in r:
                    print(f"{name:<13} {np_:>2} {gc:>2} {r['batch']:>5} failed: {r['error']}", flush=True)
                    continue
                print(f"{name:<13} {np_:>2} {gc:>2} {r['batch']:>5} {r['batch_parts']:>5} {r['params']:>10,} "
                      f"{r['img_s']:>7.1f} "
                      f"{r['step_s']:>7.3f} {r['warmup_s']:>10.1f} "
                      f"{r['rss_peak_kib'] / 1024:>12.0f} {r['tensor_peak_b'] / 2**20:>15.0f} "
                      f"{r['tensor_step_b'] / 2**20:>16.0f}", flush=True)
    print(f"(total {time.time() - start:.0f} s; {os.cpu_count()} CPU cores; img/s counts all ranks; "
          f"nn_dtype {args.nn_dtype}; threads {args.threads}{', XLA' if args.jit else ''}; load average "
          f"{os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
