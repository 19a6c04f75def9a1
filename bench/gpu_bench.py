#!/usr/bin/env python
"""The GPU numbers of `make gpu-check` (bench/gpu_check.sh), each measured in a process of its own.

    python bench/gpu_bench.py                    # everything below, on the GPUs this machine has
    python bench/gpu_bench.py --only train --steps 10

  train     train.py's step at the CIFAR-10 configuration (the `cifar10` preset: 32x32, 3 levels x 32
            steps, width 512, affine, 1x1 conv, 64 images per GPU), one GPU, gradient checkpointing off
            and on: img/s per GPU;
  batch     the largest per-GPU batch whose training step runs at 256x256 (the `celeba256` preset:
            6 levels x 32 steps, width 512, additive, 5 bits), checkpointing off and on: powers of two
            up to --max_batch, then bisection between the last that ran and the first that did not;
  sample    256x256 batch-1 sampling and encoding latency (bench/celeba_latency.py);
  scaling   the CIFAR-10 step under `horovodrun -np <all GPUs>`: total img/s, and its ratio to the
            one-GPU figure times the number of GPUs.
Without a GPU it says so and exits 0. A run that fails prints its last error line instead of a number.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.abspath(__file__)


def child(args) -> None:
    """One measurement, in this process (one rank of it under horovodrun)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import dataclasses

    from step_setup import TrainStep

    from glow_tf import presets

    hps = presets.PRESETS[args.preset]()
    hps = dataclasses.replace(hps, gradient_checkpointing=args.gc, n_batch_train=args.batch)  # TrainStep's batch
    step = TrainStep(hps)
    t = time.time()
    step.run(args.warmup)
    warmup = time.time() - t
    t = time.time()
    step.run(args.steps)
    seconds = (time.time() - t) / args.steps
    if step.dist.rank == 0:
        print("RESULT " + json.dumps(dict(img_s=step.images_per_step / seconds, step_s=seconds, warmup_s=warmup,
                                          ranks=step.dist.size)), flush=True)


def run_child(preset: str, batch: int, gc: int, steps: int, warmup: int, ranks: int = 1) -> dict:
    cmd = [sys.executable, HERE, "--child", "--preset", preset, "--batch", str(batch), "--gc", str(gc),
           "--steps", str(steps), "--warmup", str(warmup)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    if ranks > 1:
        horovodrun = os.path.join(os.path.dirname(sys.executable), "horovodrun")
        cmd = [horovodrun, "-np", str(ranks), "-H", f"localhost:{ranks}"] + cmd
    else:
        env["CUDA_VISIBLE_DEVICES"] = env.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    lines = [line.split("RESULT ", 1)[1] for line in proc.stdout.splitlines() if "RESULT " in line]
    if proc.returncode or not lines:
        text = (proc.stderr + proc.stdout).strip().splitlines()
        error = next((line for line in reversed(text) if "Error" in line or "error" in line), text[-1] if text else "")
        return dict(error=error.strip()[:200] or f"exit {proc.returncode}")
    return json.loads(lines[0])


def fits(preset: str, batch: int, gc: int) -> bool:
    return "error" not in run_child(preset, batch, gc, steps=1, warmup=1)


def largest_batch(preset: str, gc: int, max_batch: int):
    """(largest batch that ran, smallest that did not or None), by doubling then bisection."""
    good, bad = 0, None
    batch = 1
    while batch <= max_batch:
        if not fits(preset, batch, gc):
            bad = batch
            break
        good = batch
        print(f"    {preset} gc={gc}: batch {batch} runs", flush=True)
        batch = max_batch if batch < max_batch < 2 * batch else 2 * batch  # max_batch itself is tried too
    while bad is not None and bad - good > 1:
        middle = (good + bad) // 2
        if fits(preset, middle, gc):
            good = middle
        else:
            bad = middle
        print(f"    {preset} gc={gc}: batch {middle} {'runs' if good == middle else 'does not'}", flush=True)
    return good, bad


def gpu_count() -> int:
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return 0
    return sum(line.startswith("GPU ") for line in out.splitlines())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=["train", "batch", "sample", "scaling"],
                        help="measurements to run (default: all)")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--max_batch", type=int, default=64, help="largest per-GPU batch tried at 256x256")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--preset", default="cifar10", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=64, help=argparse.SUPPRESS)
    parser.add_argument("--gc", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    gpus = gpu_count()
    if not gpus:
        print("bench/gpu_bench.py: no NVIDIA GPU here (nvidia-smi lists none); nothing to measure.")
        return 0
    todo = args.only or ["train", "batch", "sample", "scaling"]
    print(f"{gpus} GPU(s); " + subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                                             capture_output=True, text=True).stdout.strip().replace("\n", "; "))
    single = {}
    if "train" in todo or "scaling" in todo:
        print("\n| CIFAR-10 configuration, 64 images per GPU | img/s per GPU | s/step | first steps s |")
        print("|---|---|---|---|")
        for gc in (0, 1):
            r = run_child("cifar10", 64, gc, args.steps, args.warmup)
            single[gc] = r
            label = f"one GPU, gradient checkpointing {'on' if gc else 'off'}"
            print(f"| {label} | " + (f"failed: {r['error']}" if "error" in r else
                                     f"{r['img_s']:.1f} | {r['step_s']:.3f} | {r['warmup_s']:.0f}") + " |", flush=True)
    if "batch" in todo:
        print(f"\nLargest per-GPU batch at 256x256 (celeba256 preset; tried up to {args.max_batch}):")
        rows = [(gc, *largest_batch("celeba256", gc, args.max_batch)) for gc in (0, 1)]
        print("\n| 256x256, 6 levels x 32 steps, width 512 | largest batch that runs | smallest that does not |")
        print("|---|---|---|")
        for gc, good, bad in rows:
            print(f"| gradient checkpointing {'on' if gc else 'off'} | {good or 'none'} | "
                  f"{bad if bad is not None else f'none up to {args.max_batch}'} |")
    if "sample" in todo:
        print(flush=True)
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "celeba_latency.py")], cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=ROOT, CUDA_VISIBLE_DEVICES="0"))
    if "scaling" in todo:
        print(f"\n| horovodrun -np {gpus}, CIFAR-10 configuration, 64 images per GPU | total img/s | "
              f"per GPU | vs {gpus} x one GPU |")
        print("|---|---|---|---|")
        for gc in (0, 1):
            r = run_child("cifar10", 64, gc, args.steps, args.warmup, ranks=gpus)
            base = single.get(gc, {}).get("img_s")
            label = f"gradient checkpointing {'on' if gc else 'off'}"
            if "error" in r:
                print(f"| {label} | failed: {r['error']} | | |")
            else:
                ratio = f"{r['img_s'] / (gpus * base):.2f}" if base else "-"
                print(f"| {label} | {r['img_s']:.1f} | {r['img_s'] / gpus:.1f} | {ratio} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
