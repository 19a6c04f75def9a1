#!/usr/bin/env python
"""Forward+backward throughput and peak memory of the Glow model, as a table.

Each configuration runs in its own subprocess so that its peak RSS is its own. The step is the model's
loss and gradients in one tf.function (no optimizer: bench/train_step.py measures the full training
step). Rows: the reference configuration (32x32x3, n_levels 3, depth 8, width 128, batch 16, affine,
1x1 conv) with gradient checkpointing off and on, optionally XLA-compiled, and the paper's CIFAR-10
width and depth (depth 32, width 512).

    python bench/model_step.py              # all rows
    python bench/model_step.py --quick      # reference rows only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = dict(image_size=32, n_levels=3, depth=8, width=128, batch=16)
PAPER_CIFAR = dict(image_size=32, n_levels=3, depth=32, width=512, batch=16)


def child(cfg: dict) -> dict:
    """Runs in the subprocess: build, init, time `steps` fwd+bwd steps, report img/s and peak RSS."""
    import resource

    import numpy as np
    import tensorflow as tf

    from glow_tf import Glow, HParams

    hps = HParams(image_size=cfg["image_size"], n_levels=cfg["n_levels"], depth=cfg["depth"],
                  width=cfg["width"], flow_permutation=2, flow_coupling=1, learntop=True,
                  gradient_checkpointing=cfg["gc"], nn_dtype=cfg.get("nn_dtype", "float32"))
    model = Glow(hps)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.integers(0, 256, (cfg["batch"], *hps.image_shape)), tf.uint8)
    model.initialize(x)

    @tf.function(jit_compile=cfg["jit"])
    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model.objective_terms(x, training=True)["loss"])
        return loss, tape.gradient(loss, model.trainable_variables)

    t0 = time.perf_counter()
    float(step(x)[0])
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(cfg["steps"]):
        t0 = time.perf_counter()
        float(step(x)[0])
        times.append(time.perf_counter() - t0)
    best = sorted(times)[len(times) // 2]  # median: the machine is shared and noisy
    return {"img_s": cfg["batch"] / best, "step_ms": 1e3 * best, "compile_s": compile_s,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run(cfg: dict) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(cfg)], env=env,
                         capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"benchmark child failed for {cfg}:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only the reference configuration")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per reference row")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    rows = [("reference", REFERENCE, gc, jit, dtype, args.steps)
            for gc, jit, dtype in ((0, False, "float32"), (1, False, "float32"), (0, True, "float32"),
                                   (0, False, "bfloat16"), (1, False, "bfloat16"))]
    if not args.quick:
        rows += [("depth 32, width 512", PAPER_CIFAR, gc, False, "float32", 3) for gc in (0, 1)]
    print(f"Glow forward+backward, 32x32x3, affine, 1x1 conv, batch 16, {os.cpu_count()} CPU cores, "
          f"TF threads default")
    header = (f"| {'configuration':22s} | grad ckpt | XLA | nn_dtype | img/s  | step ms | peak RSS MB "
              f"| first step s |")
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for name, cfg, gc, jit, dtype, steps in rows:
        r = run(dict(cfg, gc=gc, jit=jit, nn_dtype=dtype, steps=steps))
        print(f"| {name:22s} | {'on ' if gc else 'off'}       | {'on ' if jit else 'off'} | {dtype:8s} "
              f"| {r['img_s']:6.1f} "
              f"| {r['step_ms']:7.1f} | {r['peak_rss_mb']:11.0f} | {r['compile_s']:12.1f} |", flush=True)


if __name__ == "__main__":
    main()
