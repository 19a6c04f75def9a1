"""Throughput of the training input pipeline (data_loaders.get_data), against what a training step consumes.

Builds small TFRecord sets from real photos (foolbox's ImageNet samples, centre-cropped and resized to
32, 64 and 256), replicated to a few hundred records in 8 shards, and times `splits.train` with the
original's per-GPU batch at each size (n_batch_train 64 at anchor 32: 64, 16 and 1 images). The in-memory
Fashion-MNIST pipeline (the default data, with the dal=1 shift augmentation) is timed too.

The reader must never be the bottleneck: give the training step's images/s per size with
`--train-ips 32=...,64=...,256=...` (from bench/model_step.py) and the table shows the ratio, which should
be at least 10.

    python bench/reader.py --seconds 3 --train-ips 32=450,64=120,256=2
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from data_loaders import get_data  # noqa: E402
from data_loaders.common import LOCAL_BATCH_TEST  # noqa: E402
from glow_tf.hparams import HParams  # noqa: E402
from tfrecords_tools import format as fmt  # noqa: E402
from tfrecords_tools.imaging import Spec, process  # noqa: E402

SIZES = (32, 64, 256)
RECORDS = {32: 2048, 64: 1024, 256: 256}
N_SHARDS = 8


def photos(size: int) -> list:
    spec = importlib.util.find_spec("foolbox")
    if spec is None:
        raise SystemExit("foolbox's sample images are needed (make install adds them)")
    folder = os.path.join(spec.submodule_search_locations[0], "data")
    out = []
    for name in sorted(os.listdir(folder)):
        if name.startswith("imagenet_"):
            with Image.open(os.path.join(folder, name)) as img:
                image = np.asarray(img.convert("RGB"))
            out.append(process(image, Spec("square", size)).pop(0))
    return out


def write_set(root: str, size: int) -> None:
    """RECORDS[size] records of real photos in N_SHARDS train shards and one validation shard."""
    images = photos(size)
    log2res = fmt.log2_floor(size)
    for split, n_records, n_shards in (("train", RECORDS[size], N_SHARDS), ("validation", 64, 1)):
        folder = os.path.join(root, split)
        os.makedirs(folder, exist_ok=True)
        for s in range(n_shards):
            with tf.io.TFRecordWriter(os.path.join(folder, fmt.shard_name(split, log2res, s, n_shards))) as w:
                for i in range(s, n_records, n_shards):
                    image = images[i % len(images)]
                    w.write(fmt.encode_example(image.shape, image.tobytes(), 0))


def images_per_second(dataset: tf.data.Dataset, seconds: float) -> float:
    iterator = iter(dataset)
    for _ in range(10):  # warm up: the first batches include tracing and filling buffers
        next(iterator)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        x, _ = next(iterator)
        count += int(x.shape[0])
    return count / (time.perf_counter() - start)


def parse_train_ips(value: str) -> dict:
    out = {}
    for part in filter(None, (value or "").split(",")):
        size, _, ips = part.partition("=")
        out[int(size)] = float(ips)
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=3.0, help="timing window per row (default 3)")
    p.add_argument("--train-ips", default="", help="training-step images/s per size: 32=...,64=...,256=...")
    p.add_argument("--fmap", type=int, default=1, help="files read in parallel (the original's --fmap)")
    p.add_argument("--pmap", type=int, default=16, help="parallel parse calls (the original's --pmap)")
    args = p.parse_args(argv)
    train_ips = parse_train_ips(args.train_ips)

    rows = []
    with tempfile.TemporaryDirectory() as root:
        for size in SIZES:
            write_set(os.path.join(root, str(size)), size)
            hps = HParams(problem="tfrecords", data_dir=os.path.join(root, str(size)), image_size=size,
                          n_levels=3, n_batch_train=64, n_test=50, fmap=args.fmap, pmap=args.pmap)
            batch = hps.local_batch_train()
            hps = dataclasses.replace(hps, n_test=LOCAL_BATCH_TEST[batch])  # one validation batch suffices
            splits = get_data(hps)
            rows.append(("TFRecords, ImageNet photos", size, batch, images_per_second(splits.train, args.seconds)))
    fashion = get_data(HParams(problem="fashion_mnist", n_batch_train=64, dal=1))
    rows.append(("Fashion-MNIST in memory, dal=1", 32, 64, images_per_second(fashion.train, args.seconds)))

    print(f"\nreader throughput, {os.cpu_count()} CPU cores, TF {tf.__version__} (fmap={args.fmap}, pmap={args.pmap})")
    print(f"{'pipeline':<32}{'size':>6}{'batch':>7}{'reader img/s':>14}{'train img/s':>13}{'ratio':>8}")
    for name, size, batch, ips in rows:
        consumed = train_ips.get(size)
        ratio = f"{ips / consumed:8.1f}" if consumed else f"{'-':>8}"
        train = f"{consumed:13.1f}" if consumed else f"{'-':>13}"
        print(f"{name:<32}{size:>6}{batch:>7}{ips:14.0f}{train}{ratio}")
    if not train_ips:
        print("(pass --train-ips 32=...,64=...,256=... to compare with what a training step consumes)")


if __name__ == "__main__":
    main()
