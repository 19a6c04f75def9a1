"""Bits/dim of every image of a set under a trained Glow, an input-complexity score, and AUROCs between sets.

    python -m glow_tf.tools.score logs/fashion --data fashion_mnist --output fashion.csv
    python -m glow_tf.tools.score logs/fashion --reference fashion_mnist --data digits/ --data mnist:mnist.npz \\
        --complexity png --output rows.npz --histogram hist.png
    horovodrun -np 2 python -m glow_tf.tools.score logs/fashion --data fashion_mnist --output fashion.csv

Each --data (and --reference) is one of:
  * a problem of train.py's --problem (`fashion_mnist`, `mnist`, `cifar10`, `celeba`, ...), optionally with
    its --data_dir after a colon (`mnist:/data/mnist.npz`): its test split, read as evaluate reads it;
  * TFRecords written by tfrecords_tools: a folder (its <split>/ shards, or the *.tfrecords in it), a
    file or a glob pattern, at the model's resolution and channels;
  * a folder of pictures (PNG, JPEG, ...; the files directly inside it, in name order), each prepared as
    the model's data was (data_loaders.images: grey or colour, centre crop, resize, the reader's padding).

An image's bits/dim is glow_tf.tools.evaluate's estimate for it: the same dequantisation noise (from
--seed) and the same --draws, averaged over the draws; the mean over a set is evaluate's bits/dim of that
set when both read the same images in the same batches. With `--complexity png`, each image's PNG
bits/dim (8 * bytes of Pillow's PNG at compression level 9 / (H*W*C), of the uint8 image the model sees)
and the input-complexity score bits/dim - PNG bits/dim are added: Serra et al. (ICLR 2020) subtract the
compressed length from the model's code length, and the sign here makes a higher score mean more novel.

Output: one row per image (set, index, label or none, bits_x[, png_bits, score]) in --output (.csv or
.npz), one summary line per set, and with --reference, for every other set and every score, the AUROC
of telling it from the reference (higher score = out of distribution; ties count one half), and with
--histogram a PNG of the distributions. Under horovodrun each rank scores every size-th image of each set.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import glob
import io
import os
import sys
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np

from glow_common.errors import run_cli
from glow_common.files import atomic_path
from glow_tf.errors import ConfigError
from glow_tf.tools import common, evaluate

PROG = "python -m glow_tf.tools.score"

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
COMPLEXITIES = ("png",)
# The columns of every row, and the ones --complexity adds.
COLUMNS = ("set", "index", "label", "bits_x")
COMPLEXITY_COLUMNS = ("png_bits", "score")
NO_LABEL = -1


# ----------------------------------------------------------------------------------------------- complexity
def png_bits(image: np.ndarray) -> float:
    """8 * the bytes of `image` (uint8 [H, W, C], C 1 or 3) as a PNG at zlib level 9, per subpixel."""
    from PIL import Image

    height, width, channels = image.shape
    if channels not in (1, 3):
        raise ConfigError(f"--complexity png needs grey (1) or RGB (3) images; these have {channels} channels")
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if channels == 1 else image).save(buffer, format="PNG", compress_level=9)
    return 8.0 * buffer.tell() / (height * width * channels)


# ---------------------------------------------------------------------------------------------------- AUROC
def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """P(score of an `outside` image > score of an `inside` one) + P(equal) / 2, from the ranks of the
    pooled scores (the Mann-Whitney U statistic, ties given their average rank)."""
    inside, outside = np.asarray(inside, np.float64), np.asarray(outside, np.float64)
    if not len(inside) or not len(outside):
        raise ConfigError("an AUROC needs images in both the reference and the other set")
    pooled = np.concatenate([inside, outside])
    values, inverse, counts = np.unique(pooled, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # 0-based rank of each distinct value's first occurrence
    average_rank = first + (counts + 1) / 2.0  # 1-based average rank over its ties
    rank_sum = average_rank[inverse][len(inside):].sum()
    u = rank_sum - len(outside) * (len(outside) + 1) / 2.0
    return float(u / (len(inside) * len(outside)))


# ------------------------------------------------------------------------------------------------ the sets
@dataclasses.dataclass
class Source:
    """One set to score: (x, y) batches of this rank's images (every size-th, from image `rank`), the
    image count if known, and the TFRecord files read (for read_batch's messages)."""

    name: str
    batches: object
    n_images: Optional[int]
    files: Sequence[str] = ()


def _rank_batches(dataset, rank: int, size: int, batch: int, max_images: Optional[int]):
    """An unbatched tf.data stream of (x, y): the first max_images, every size-th from `rank`, batched."""
    import tensorflow as tf

    if max_images is not None:
        dataset = dataset.take(max_images)
    if size > 1:
        def mine(i, xy):
            return tf.equal(i % size, rank)

        def image(i, xy):
            return xy

        dataset = dataset.enumerate().filter(mine).map(image)
    return dataset.batch(batch)


def _problem_source(name: str, data_dir: str, hps, rank, size, batch, max_images) -> Source:
    from data_loaders import DataError, get_data

    # The model's own shape and classes, whatever the other problem's defaults.
    other = dataclasses.replace(hps, problem=name, data_dir=data_dir, category="", n_test=None,
                                image_size=hps.image_shape[0], n_y=hps.n_classes)
    try:
        splits = get_data(other)  # one rank's reading of the whole test split; each rank keeps its part below
    except DataError as err:
        raise DataError(f"--data {name}{':' + data_dir if data_dir else ''}: {err} (give the folder or file "
                        f"as --data {name}:DATA_DIR)") from None
    stream = splits.test.take(splits.test_its).unbatch()
    n = splits.n_test if max_images is None else min(splits.n_test, max_images)
    return Source(name if not data_dir else f"{name}:{data_dir}",
                  _rank_batches(stream, rank, size, batch or splits.local_batch_test, max_images), n,
                  splits.test_files)


def _tfrecord_source(spec: str, files: Sequence[str], hps, rank, size, batch, max_images) -> Source:
    from data_loaders.tfrecords import read_set

    # An unconditional model ignores labels, so any stored label is accepted; a ycond one needs its classes.
    n_classes = hps.n_classes if hps.ycond else 2 ** 31 - 1
    stream = read_set(files, hps.image_shape, batch=batch, n_classes=n_classes, max_images=max_images).unbatch()
    return Source(spec, _rank_batches(stream, rank, size, batch, None), max_images, files)


def _image_source(spec: str, paths: Sequence[str], hps, rank, size, batch, max_images) -> Source:
    from data_loaders.images import read_image

    if hps.ycond:
        raise ConfigError(f"--data {spec}: pictures carry no labels, and this model is class-conditional "
                          f"(ycond); give TFRecords or a problem with labels")
    paths = list(paths)[:max_images]
    mine = paths[rank::size]

    def batches() -> Iterator:
        for start in range(0, len(mine), batch):
            x = np.stack([read_image(p, hps) for p in mine[start:start + batch]])
            yield x, np.full([len(x)], NO_LABEL, np.int32)

    return Source(spec, batches(), len(paths))


def _pictures_in(folder: str) -> List[str]:
    return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                  if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, f)))


def open_source(spec: str, hps, split: str = "validation", batch: Optional[int] = None, rank: int = 0,
                size: int = 1, max_images: Optional[int] = None) -> Source:
    """The set that --data `spec` names (see the module's docstring), as this rank's batches of the model's
    data. `batch` None: the problem's validation batch (evaluate's), or the model's for other sets."""
    from data_loaders import common as data_common
    from data_loaders import problems
    from data_loaders.tfrecords import find_files

    default_batch = batch or data_common.local_batch_test(hps)
    args = (hps, rank, size, default_batch, max_images)
    if os.path.isdir(spec):
        if os.path.isdir(os.path.join(spec, split)) or glob.glob(os.path.join(spec, "*.tfrecords")):
            return _tfrecord_source(spec, find_files(spec, split, hps.image_shape[0]), *args)
        pictures = _pictures_in(spec)
        if not pictures:
            raise ConfigError(f"--data {spec}: a folder with no {split}/ shards, no *.tfrecords and no pictures "
                              f"({', '.join(IMAGE_EXTENSIONS)})")
        return _image_source(spec, pictures, *args)
    if os.path.isfile(spec):
        if spec.lower().endswith(IMAGE_EXTENSIONS):
            return _image_source(spec, [spec], *args)
        return _tfrecord_source(spec, [spec], *args)
    name, _, data_dir = spec.partition(":")
    if problems.find(name) is not None:
        return _problem_source(name, data_dir, hps, rank, size, batch, max_images)
    if glob.glob(spec):
        return _tfrecord_source(spec, find_files(spec, split, hps.image_shape[0]), *args)
    raise ConfigError(f"--data {spec}: no such file, folder or pattern, and not a problem (expected a folder of "
                      f"TFRecords or pictures, a file, a glob, or one of {', '.join(problems.names())}"
                      f"[:DATA_DIR])")


# ------------------------------------------------------------------------------------------------- scoring
def score_set(model, source: Source, draws: int = 4, complexity: Optional[str] = None, dist=None,
              progress: bool = False) -> Dict[str, np.ndarray]:
    """Columns index, label, bits_x (and png_bits, score with `complexity`) of every image of `source`,
    gathered over the ranks and in the set's order, and `summary`: evaluate's result over the set."""
    rank, size = (dist.rank, dist.size) if dist is not None else (0, 1)
    parts: List[np.ndarray] = []

    def on_batch(x, y, bits):
        columns = [np.asarray(y, np.float64), np.asarray(bits, np.float64)]
        if complexity:
            png = np.array([png_bits(image) for image in x])
            columns += [png, bits - png]
        parts.append(np.stack(columns, axis=1))

    if source.n_images == 0:
        raise ConfigError(f"--data {source.name} holds no images")
    with np.errstate(invalid="ignore", divide="ignore"):  # an empty set is refused below, not divided by
        summary = evaluate.evaluate(model, source.batches, None, draws=draws, dist=dist, reconstruct=False,
                                    progress=progress, files=source.files, per_image=on_batch, unit="image",
                                    total=None if source.n_images is None else -(-source.n_images // size))
    if summary["n_images"] == 0:
        raise ConfigError(f"--data {source.name} holds no images")
    width = 4 if complexity else 2
    local = np.concatenate(parts) if parts else np.zeros([0, width])
    local = np.concatenate([(rank + size * np.arange(len(local)))[:, None].astype(np.float64), local], axis=1)
    rows = dist.allgather(local) if dist is not None else local
    rows = rows[np.argsort(rows[:, 0], kind="stable")]
    out = {"index": rows[:, 0].astype(np.int64), "label": rows[:, 1].astype(np.int64), "bits_x": rows[:, 2]}
    if complexity:
        out.update(png_bits=rows[:, 3], score=rows[:, 4])
    out["summary"] = summary
    return out


def summary_line(name: str, columns: Dict[str, np.ndarray]) -> str:
    s = columns["summary"]
    line = f"{name}: {s['n_images']} images, {s['bits_x']:.4f} bits/dim ± {s['se_images']:.4f} (images)"
    if "png_bits" in columns:
        line += f", PNG {columns['png_bits'].mean():.4f} bits/dim, score {columns['score'].mean():+.4f}"
    return line


def score_names(complexity: Optional[str]) -> List[str]:
    return ["bits_x"] + (["png_bits", "score"] if complexity else [])


# ------------------------------------------------------------------------------------------------- writing
def write_rows(path: str, sets: Dict[str, Dict[str, np.ndarray]], complexity: Optional[str]) -> str:
    """One row per image of every set: CSV (an empty label where there is none) or .npz columns."""
    names = list(COLUMNS) + (list(COMPLEXITY_COLUMNS) if complexity else [])
    values = [c for c in names if c not in ("set",)]
    if path.endswith(".npz"):
        merged = {c: np.concatenate([cols[c] for cols in sets.values()]) for c in values}
        merged["set"] = np.concatenate([np.full(len(cols["index"]), name) for name, cols in sets.items()])
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, **merged)
        return path
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        for name, cols in sets.items():
            for i in range(len(cols["index"])):
                label = int(cols["label"][i])
                writer.writerow([name, int(cols["index"][i]), "" if label == NO_LABEL else label]
                                + [repr(float(cols[c][i])) for c in values[2:]])
    return path


def write_histogram(path: str, sets: Dict[str, Dict[str, np.ndarray]], complexity: Optional[str],
                    reference: Optional[str]) -> str:
    """One panel per score, one histogram (as a density) per set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {"bits_x": "bits/dim", "png_bits": "PNG bits/dim", "score": "bits/dim - PNG bits/dim"}
    panels = score_names(complexity)
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, key in zip(axes[0], panels):
        everything = np.concatenate([cols[key] for cols in sets.values()])
        edges = np.histogram_bin_edges(everything[np.isfinite(everything)], bins=60)
        for name, cols in sets.items():
            ax.hist(cols[key], bins=edges, density=True, histtype="stepfilled" if name == reference else "step",
                    alpha=0.4 if name == reference else 1.0, linewidth=1.5,
                    label=_short(name) + (" (reference)" if name == reference else ""))
        ax.set_xlabel(labels[key])
        ax.set_ylabel("density")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def _short(name: str) -> str:
    """A set's name for a legend: a folder or file by its base name."""
    return os.path.basename(os.path.normpath(name)) if os.path.exists(name) else name


# ----------------------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = common.parser(PROG, __doc__)
    common.add_checkpoint_args(p, nn_dtype=None)  # the model's own precision, as evaluate
    p.add_argument("--data", action="append", required=True, metavar="SET",
                   help="a set to score (repeat for several): a problem[:DATA_DIR], a TFRecord folder, file or "
                        "glob, or a folder of pictures")
    p.add_argument("--reference", metavar="SET",
                   help="the in-distribution set (same forms as --data): prints the AUROC of every --data "
                        "against it, for every score")
    p.add_argument("--complexity", choices=COMPLEXITIES,
                   help="add each image's PNG bits/dim and the score bits/dim - PNG bits/dim")
    p.add_argument("--draws", type=int, default=4, help="dequantisation draws per image (default: 4, evaluate's)")
    p.add_argument("--output", help="write one row per image to this .csv or .npz file")
    p.add_argument("--histogram", help="write a PNG of the scores' distributions per set to this file")
    p.add_argument("--split", default="validation",
                   help="the split folder of a TFRecord folder (default: %(default)s)")
    p.add_argument("--max_images", type=int, help="score at most this many images of each set (default: all)")
    p.add_argument("--batch", type=int, help="images per batch (default: the validation batch of the model's "
                                             "training, so that the noise is evaluate's)")
    return p


def _check_args(args) -> None:
    if args.draws < 1:
        raise ConfigError(f"--draws {args.draws} must be at least 1")
    if args.batch is not None and args.batch < 1:
        raise ConfigError(f"--batch {args.batch} must be at least 1")
    if args.max_images is not None and args.max_images < 1:
        raise ConfigError(f"--max_images {args.max_images} must be at least 1")
    if args.output and not args.output.endswith((".csv", ".npz")):
        raise ConfigError(f"--output {args.output}: expected a .csv or .npz file name")
    if args.histogram and not args.histogram.endswith(".png"):
        raise ConfigError(f"--histogram {args.histogram}: expected a .png file name")
    names = ([args.reference] if args.reference else []) + args.data
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"--data {repeated[0]} is given twice (or is also the --reference)")
    for path in (args.output, args.histogram):
        folder = os.path.dirname(path or "") or "."
        if path and not os.path.isdir(folder):
            raise ConfigError(f"{path}: folder {folder} does not exist")


def main(argv: Optional[Sequence[str]] = None) -> dict:
    from glow_tf.training.distributed import configure_devices, init_distributed

    args = build_parser().parse_args(argv)
    _check_args(args)
    dist = init_distributed()
    configure_devices(dist)
    model, hps, prefix = common.load(args, common.MODEL_OVERRIDES, dist.rank, dist.size)
    names = ([args.reference] if args.reference else []) + args.data
    # Every set is opened (and so checked) before any is scored.
    sources = [open_source(n, hps, args.split, args.batch, dist.rank, dist.size, args.max_images) for n in names]
    sets = {}
    for name, source in zip(names, sources):
        sets[name] = score_set(model, source, args.draws, args.complexity, dist, progress=dist.rank == 0)
    result = {"checkpoint": prefix, "sets": {n: c["summary"] for n, c in sets.items()}, "auroc": {}}
    if dist.rank != 0:
        return result
    for name, cols in sets.items():
        print(summary_line(name, cols))
    if args.reference:
        for name in args.data:
            result["auroc"][name] = {key: auroc(sets[args.reference][key], sets[name][key])
                                     for key in score_names(args.complexity)}
            print(f"AUROC {name} vs {args.reference}: "
                    + ", ".join(f"{key} {value:.4f}" for key, value in result["auroc"][name].items()))
    if args.output:
        print(f"wrote {write_rows(args.output, sets, args.complexity)}")
    if args.histogram:
        print(f"wrote {write_histogram(args.histogram, sets, args.complexity, args.reference)}")
    result["rows"] = sets
    return result


if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
