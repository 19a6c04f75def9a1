#!/usr/bin/env python
"""glow-tf's training step against a PyTorch port of Glow, side by side on one machine, interleaved.

    python bench/vs_pytorch.py --port_dir /path/to/glow-pytorch --torch_python /path/to/venv/bin/python

The port is rosinality/glow-pytorch: its `model.py` in a folder of your choosing (`--port_dir`, or
$GLOW_PORT_DIR), outside this repository, and a Python that imports torch (`--torch_python`, or
$TORCH_PYTHON; a virtualenv of its own: PyTorch is not a dependency of this project). Without either,
the benchmark says what is missing and exits 0.

Each contender is a long-lived worker process that builds its model, initialises it, runs `--warmup`
steps and then waits. Repetitions are interleaved: in each one every worker in turn runs `--steps`
timed steps while the others wait, the order rotating from one repetition to the next, so that a
contender's figures and the ratio between them come from the same minutes of a shared machine.
Printed per contender: images/s (median and range over the repetitions), the ratio to the port (the
median and range of the per-repetition ratios) and the worker's peak RSS.

Both sides run the same configuration (32x32x3, 3 levels x `--depth` steps, width `--width`, batch
`--batch`, affine coupling, a 1x1 convolution, 8-bit data) and a full training update per step, each
waiting for its loss as its own training loop does. What still differs is structural, and printed
with the table (STRUCTURAL_DIFFERENCES).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import shutil
import statistics
import subprocess
import sys
import time

from interleave import ROOT, interleave, serve
from step_setup import INTRAOP

PORT = "rosinality/glow-pytorch"
# glow-tf contenders: (nn_dtype, threads). "parallel": TF_NUM_INTRAOP_THREADS=1, so that every op runs on
# one thread and the encoder runs the batch as one sub-batch per inter-op thread, side by side
# (glow_tf.model.concurrent_batch_parts); "default": TensorFlow's own thread pools.
TF_CONTENDERS = {"float32": ("float32", "default"), "bfloat16": ("bfloat16", "default"),
                 "float32:parallel": ("float32", "parallel"), "bfloat16:parallel": ("bfloat16", "parallel")}

STRUCTURAL_DIFFERENCES = f"""\
Structural differences ({PORT}'s model.py and train.py, against glow-tf, which follows openai/glow):
  * coupling network: the port's is conv3x3 + bias -> ReLU -> conv1x1 + bias -> ReLU -> zero conv (a
    1-padded 3x3 conv); glow-tf's has an actnorm after each of the first two convolutions (folded into
    the kernel and a bias at run time) and the original's edge-bias padding (an extra border channel);
  * affine coupling: the port splits the network output into halves, glow-tf interleaves (the original);
  * 1x1 convolution: with plain W both take log|det W| in float64 (the port by slogdet, glow-tf by QR);
    the port's last level always uses its LU form, whatever --lu says;
  * optimizer: the port uses torch.optim.Adam; glow-tf the original's Adamax plus a Polyak average of
    every weight (one more pass over the weights per step);
  * init: both initialise every actnorm from the data before the first step; the port draws its
    weights with PyTorch's default initialisers, glow-tf with the original's (N(0, 0.05), zeros);
  * threads: PyTorch runs each op on {{torch}} OpenMP threads in turn; TensorFlow runs independent ops
    concurrently on its inter-op pool, each on its intra-op pool (TF defaults: one thread per core);
    glow-tf's "parallel threads" rows run every op on one thread and the batch as concurrent sub-batches,
    one per inter-op thread."""


# ------------------------------------------------------------------------------------------------ workers
def tf_worker(args) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    from step_setup import TrainStep, reference_hps

    from glow_tf.hparams import INVCONV, INVCONV_LU

    hps = reference_hps(depth=args.depth, width=args.width, n_batch_train=args.batch,
                        flow_permutation=INVCONV_LU if args.lu else INVCONV, nn_dtype=args.nn_dtype)
    step = TrainStep(hps)
    step.run(args.warmup)
    serve(step.run, step.images_per_step)


def load_port(port_dir: str):
    """The port's model.py as a module (it is never copied into, or imported from, this repository)."""
    spec = importlib.util.spec_from_file_location("glow_port_model", os.path.join(port_dir, "model.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def torch_worker(args) -> None:
    import torch

    port = load_port(args.port_dir)
    width = args.width

    class Coupling(port.AffineCoupling):
        # The port hard-codes its coupling width (filter_size=512 in AffineCoupling's signature).
        def __init__(self, in_channel, filter_size=width, affine=True):
            super().__init__(in_channel, filter_size, affine)

    port.AffineCoupling = Coupling
    torch.manual_seed(0)
    model = port.Glow(3, args.depth, 3, affine=True, conv_lu=args.lu)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    n_bins, n_pixel = 256.0, 32 * 32 * 3
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, 256, (args.batch, 3, 32, 32), generator=generator).float() / n_bins - 0.5
               for _ in range(2)]
    autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if args.port_autocast
                else torch.autocast("cpu", enabled=False))
    with torch.no_grad():  # the port's train.py: the first batch only initialises the actnorms
        model(batches[0] + torch.rand_like(batches[0]) / n_bins)
    counter = [0]

    def run_steps(n):
        for _ in range(n):
            image = batches[counter[0] % 2]
            counter[0] += 1
            with autocast:
                log_p, logdet, _ = model(image + torch.rand_like(image) / n_bins)
            # The port's calc_loss: bits per dimension of the 8-bit image.
            loss = -(-math.log(n_bins) * n_pixel + logdet.float().mean() + log_p.float()) / (math.log(2) * n_pixel)
            loss = loss.mean()
            model.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()

    run_steps(args.warmup)
    serve(run_steps, args.batch)


# ------------------------------------------------------------------------------------------- orchestrator
def missing(args) -> str | None:
    """Why the port cannot run here, or None."""
    if not args.port_dir:
        return f"no port folder: give --port_dir or $GLOW_PORT_DIR (a folder holding {PORT}'s model.py)"
    if not os.path.isfile(os.path.join(args.port_dir, "model.py")):
        return f"--port_dir {args.port_dir!r} holds no model.py (expected {PORT}'s)"
    if not args.torch_python:
        return "no PyTorch: give --torch_python or $TORCH_PYTHON (a Python that imports torch)"
    python = shutil.which(args.torch_python) or args.torch_python
    if not os.access(python, os.X_OK):
        return f"--torch_python {args.torch_python!r} is not an executable"
    probe = subprocess.run([python, "-c", "import torch, scipy; print(torch.__version__)"], capture_output=True,
                           text=True)
    if probe.returncode:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return f"{args.torch_python} cannot import torch and scipy (the port needs both): {last}"
    return None


def torch_version(python: str) -> tuple:
    out = subprocess.run([python, "-c", "import torch; print(torch.__version__, torch.get_num_threads())"],
                         capture_output=True, text=True).stdout.split()
    return out[0], out[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port_dir", default=os.environ.get("GLOW_PORT_DIR"),
                        help=f"folder with {PORT}'s model.py (default $GLOW_PORT_DIR)")
    parser.add_argument("--torch_python", default=os.environ.get("TORCH_PYTHON"),
                        help="Python executable with torch and scipy (default $TORCH_PYTHON)")
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions (at least 3)")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per repetition")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before the first repetition")
    parser.add_argument("--tf", action="append", choices=sorted(TF_CONTENDERS),
                        help="glow-tf contenders: --nn_dtype, with ':parallel' for single-threaded ops and "
                             "the batch in concurrent sub-batches, one per inter-op thread "
                             "(TF_NUM_INTRAOP_THREADS=1); default: all four")
    parser.add_argument("--baseline", metavar="DIR",
                        help="also time the step of another glow-tf checkout (one with glow_tf.training, e.g. "
                             "`git worktree add DIR main`), TF's default threads, each --tf dtype")
    parser.add_argument("--port_autocast", action="store_true",
                        help="add the port under torch.autocast(bfloat16) as a contender")
    parser.add_argument("--lu", action="store_true", help="the LU-decomposed 1x1 convolution on both sides")
    parser.add_argument("--depth", type=int, default=8, help="steps per level")
    parser.add_argument("--width", type=int, default=128, help="coupling network width")
    parser.add_argument("--batch", type=int, default=16, help="images per step")
    parser.add_argument("--worker", choices=["tf", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--nn_dtype", default="float32", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "tf":
        tf_worker(args)
        return 0
    if args.worker == "torch":
        torch_worker(args)
        return 0
    if args.reps < 3:
        parser.error(f"--reps {args.reps}: interleaved comparisons need at least 3 repetitions")

    reason = missing(args)
    if reason:
        print(f"bench/vs_pytorch.py: skipped: {reason}")
        return 0
    torch_python = shutil.which(args.torch_python) or args.torch_python
    version, threads = torch_version(torch_python)
    common = ["--depth", str(args.depth), "--width", str(args.width), "--batch", str(args.batch),
              "--warmup", str(args.warmup), "--port_dir", os.path.abspath(args.port_dir)]
    common += ["--lu"] if args.lu else []
    me = os.path.abspath(__file__)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    specs = []
    for contender in args.tf or sorted(TF_CONTENDERS):
        dtype, pools = TF_CONTENDERS[contender]
        worker_env = dict(env, TF_NUM_INTRAOP_THREADS=INTRAOP[pools])
        specs.append((f"glow-tf {dtype}" + (", parallel threads" if pools == "parallel" else ""),
                      [sys.executable, me, "--worker", "tf", "--nn_dtype", dtype] + common, worker_env))
    if args.baseline:
        baseline = os.path.abspath(args.baseline)
        if not os.path.isfile(os.path.join(baseline, "train.py")):
            parser.error(f"--baseline {args.baseline}: not a glow-tf checkout (no train.py)")
        for dtype in sorted({TF_CONTENDERS[c][0] for c in args.tf or TF_CONTENDERS}):
            specs.append((f"baseline {dtype}", [sys.executable, me, "--worker", "tf", "--nn_dtype", dtype] + common,
                          dict(env, GLOW_TF_ROOT=baseline, PYTHONPATH=baseline,
                               TF_NUM_INTRAOP_THREADS=INTRAOP["default"])))
    port_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    specs.append((f"{PORT} float32", [torch_python, me, "--worker", "torch"] + common, port_env))
    if args.port_autocast:
        specs.append((f"{PORT} autocast bf16", [torch_python, me, "--worker", "torch", "--port_autocast"] + common,
                      port_env))

    start, load_start = time.time(), os.getloadavg()[0]
    workers = interleave(specs, args.reps, args.steps)
    port = next(w for w in workers if w.name == f"{PORT} float32")
    print()
    print(f"Training step, 32x32x3, 3 levels x {args.depth} steps, width {args.width}, batch {args.batch}, affine, "
          f"{'LU ' if args.lu else ''}1x1 conv; {args.reps} interleaved repetitions of {args.steps} steps; "
          f"{os.cpu_count()} CPU cores, load average {load_start:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end; "
          f"PyTorch {version} ({threads} threads)")
    print()
    print("| contender | img/s, median (range) | / port, median (range of per-repetition ratios) | peak RSS MiB |")
    print("|---|---|---|---|")
    for worker in workers:
        ratios = [a / b for a, b in zip(worker.img_s, port.img_s)]
        print(f"| {worker.name} | {statistics.median(worker.img_s):.1f} "
              f"({min(worker.img_s):.1f}-{max(worker.img_s):.1f}) "
              f"| {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) "
              f"| {worker.rss_kib / 1024:.0f} |")
    print()
    print(STRUCTURAL_DIFFERENCES.format(torch=threads))
    print(f"(total {time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
