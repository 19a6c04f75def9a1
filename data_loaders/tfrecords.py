"""Sharded TFRecord reader for celeba, lsun, lsun_realnvp, imagenet-oord and imagenet (spec §4.1, §4.3, §4.4).

Port of get_data.py. Records are the original's `tf.train.Example`s: `shape` int64[3] (H, W, C), `data` raw
uint8 HWC bytes, `label` int64[1], and an optional `attr` int64[40] that is not read (nor was it there).
Files are `<data_dir>/<split>/<split>-r<log2 res:02d>-s-<shard:04d>-of-<nshards:04d>.tfrecords`.

Differences from the original, each deliberate:
  * Files are listed without shuffling, sharded per rank, and only then shuffled, so the ranks' training
    shards partition the data (the original shuffled before `shard`, with per-rank seeds; spec §4.4).
    With fewer files than ranks, examples are sharded instead.
  * A missing shard of an `-of-N` set, a path with no files (issue #69), an image of the wrong size, a
    label out of range and an unparsable record are reported by file name (`DataError` before training
    for what a first-record check can see; an `InvalidArgumentError` naming the file inside the pipeline).
  * Random crops (lsun_realnvp) use stateless ops seeded per example, so a seed fixes the crops no matter
    how many parse calls run in parallel.
"""

from __future__ import annotations

import collections
import glob
import os
import re
from typing import Dict, List, Optional, Sequence

import tensorflow as tf

from glow_tf.hparams import DEFAULT_DATA_DIR, HParams

from data_loaders import common
from data_loaders.errors import DataError

SPLITS = ("train", "validation")
# Problems read from TFRecords. "tfrecords" is our extension: any directory in this format, at the
# --image_size the user gives (the original needed a code edit for a new dataset).
TFRECORD_PROBLEMS = ("celeba", "lsun", "lsun_realnvp", "imagenet-oord", "imagenet", "tfrecords")
# Original validation sizes (train.py; n_test=-1). LSUN's is per rank because its validation is unsharded.
DEFAULT_N_TEST = {"celeba": 3000, "imagenet-oord": 50000, "imagenet": 50000}
LSUN_N_TEST_PER_RANK = 300
SHARD_RE = re.compile(r"^(?P<split>[a-z]+)-r(?P<res>\d{2})-s-(?P<shard>\d{4})-of-(?P<n>\d{4})\.tfrecords$")


def shard_name(split: str, log2res: int, shard: int, n_shards: int) -> str:
    """File name of one shard in the original's naming scheme (spec §4.1)."""
    return f"{split}-r{log2res:02d}-s-{shard:04d}-of-{n_shards:04d}.tfrecords"


def log2_resolution(size: int, problem: str = "") -> int:
    """The `rXX` of a resolution; the original asserted a power of two (spec §1.1 GOTCHA on LSUN-96)."""
    log2res = size.bit_length() - 1
    if size < 1 or 2 ** log2res != size:
        raise DataError(f"image_size={size} for problem {problem!r}: TFRecord sets are stored per power-of-two "
                        f"resolution (files named -rXX- with XX = log2 of the size), so use e.g. "
                        f"{2 ** log2res} or {2 ** (log2res + 1)}")
    return log2res


def stored_log2_resolution(split_dir: str, split: str, resolution: int, problem: str = "") -> int:
    """The rXX set to read for `resolution`: that exact set when it exists, else the smallest larger one.

    A larger set is downscaled while reading (area averaging). This is what lets the original's LSUN
    96x96 and 128x128 commands run: its LSUN converter stored only 256x256 (r08), and 96 is not a power
    of two at all.
    """
    exact = resolution.bit_length() - 1 if resolution > 0 and resolution & (resolution - 1) == 0 else None
    available = sorted({int(m["res"]) for m in map(SHARD_RE.match, os.listdir(split_dir))
                        if m and m["split"] == split}) if os.path.isdir(split_dir) else []
    if exact in available:
        return exact
    larger = [r for r in available if 2 ** r > resolution]
    if larger:
        return larger[0]
    if exact is not None:
        return exact  # list_shards reports what is missing and what is there
    raise DataError(f"image_size={resolution} for problem {problem!r}: no {split} shard set in {split_dir} "
                    f"at a resolution of at least {resolution} to downscale from"
                    f"{_what_is_there(split_dir, split)}")


def list_shards(split_dir: str, split: str, log2res: int) -> List[str]:
    """All files of one complete `-of-N` shard set, sorted; DataError if none match or any is missing."""
    pattern = os.path.join(split_dir, f"{split}-r{log2res:02d}-s-*-of-*.tfrecords")
    files = sorted(glob.glob(pattern))
    if not files:
        raise DataError(f"no TFRecord files match {pattern}{_what_is_there(split_dir, split)}")
    by_total: Dict[int, set] = collections.defaultdict(set)
    for path in files:
        match = SHARD_RE.match(os.path.basename(path))
        if match is None:
            raise DataError(f"{path}: file name does not follow <split>-rXX-s-SSSS-of-NNNN.tfrecords")
        by_total[int(match["n"])].add(int(match["shard"]))
    if len(by_total) > 1:
        raise DataError(f"{split_dir}: shard sets of different sizes mixed at r{log2res:02d} "
                        f"(-of-{', -of-'.join(f'{n:04d}' for n in sorted(by_total))}); keep one set")
    (total, present), = by_total.items()
    missing = sorted(set(range(total)) - present)
    if missing:
        first = os.path.join(split_dir, shard_name(split, log2res, missing[0], total))
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise DataError(f"missing shard {first}{more}: the set has {len(present)} of {total} files")
    return files


def _what_is_there(split_dir: str, split: str) -> str:
    """A hint for issue #69: which resolutions or folders exist where the files were expected."""
    if not os.path.isdir(split_dir):
        parent = os.path.dirname(split_dir.rstrip("/")) or "."
        folders = sorted(d for d in os.listdir(parent) if os.path.isdir(os.path.join(parent, d))) \
            if os.path.isdir(parent) else []
        where = f"; {parent} holds {folders}" if folders else f"; {parent} does not exist"
        return f" ({split_dir} is not a directory{where}; check --data_dir and --category)"
    found = sorted({m["res"] for m in map(SHARD_RE.match, os.listdir(split_dir)) if m and m["split"] == split})
    if found:
        return f" (that folder holds resolutions {', '.join('r' + r for r in found)}; check --image_size)"
    return " (that folder holds no shards)"


FEATURES = {
    "shape": tf.io.FixedLenFeature([3], tf.int64),
    "data": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([1], tf.int64),
}


def parse_example(serialized, filename, resolution: int, n_channels: int, n_classes: int,
                  crop_seed=None, stored_resolution: Optional[int] = None):
    """One record -> (x uint8 [res, res, C], y int32 []), port of get_data.parse_tfrecord_tf (spec §4.3).

    Every check names `filename`. With `crop_seed` (a [2] int tensor) the stored image may be larger and a
    random res x res crop is taken (lsun_realnvp); otherwise it must be exactly stored_resolution square
    (default: res), and is area-downscaled to res when that is larger.
    """
    stored = stored_resolution or resolution
    features = tf.io.parse_single_example(serialized, FEATURES)
    shape = features["shape"]
    data = tf.io.decode_raw(features["data"], tf.uint8)
    label = tf.cast(features["label"][0], tf.int32)
    size_ok = tf.equal(tf.size(data, out_type=tf.int64), tf.reduce_prod(shape))
    if crop_seed is None:
        shape_ok = tf.reduce_all(tf.equal(shape, [stored, stored, n_channels]))
        expected = f"{stored}x{stored}x{n_channels}"
    else:
        shape_ok = tf.reduce_all(shape[:2] >= resolution) & tf.equal(shape[2], n_channels)
        expected = f"at least {resolution}x{resolution}x{n_channels} for the random crop"
    checks = [
        _check(size_ok, filename, "data holds a different number of bytes than H*W*C of shape", shape),
        _check(shape_ok, filename, f"image of the wrong size (expected {expected}); shape", shape),
        _check((label >= 0) & (label < n_classes), filename,
               f"label out of range (expected 0 <= label < n_y = {n_classes}; set --n_y); label", label),
    ]
    with tf.control_dependencies(checks):
        image = tf.reshape(data, tf.cast(shape, tf.int32))
    if crop_seed is None:
        image = tf.ensure_shape(image, [stored, stored, n_channels])
        if stored != resolution:
            image = tf.image.resize(image, [resolution, resolution], method="area")
            image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    else:
        image = tf.image.stateless_random_crop(image, [resolution, resolution, n_channels], seed=crop_seed)
    return image, label


def _check(condition, filename, message, value):
    """An in-graph assertion whose error reads `in <file>: <message> <value>`."""
    return tf.debugging.Assert(condition, [tf.strings.join(["in ", filename, ": ", message]), value])


def make_dataset(files: Sequence[str], *, resolution: int, batch: int, rank: int, size: int, train: bool,
                 shard: bool = True, rnd_crop: bool = False, n_channels: int = 3, n_classes: int = 1,
                 seed: int = 0, fmap: int = 1, pmap: int = 16, n_take: Optional[int] = None,
                 shuffle_batches: int = 4, stored_resolution: Optional[int] = None) -> tf.data.Dataset:
    """The original's pipeline with its sharding fixed (spec §4.4 and style guide E "Reader pipeline").

    list files (sorted) -> shard(size, rank) -> [train] shuffle files -> interleave(fmap) -> [train] shuffle
    examples (buffer shuffle_batches * batch, the original's 4 * batch) -> repeat -> parse (pmap calls) ->
    batch(drop_remainder) -> prefetch. With fewer files than ranks, examples are sharded after the
    interleave instead. `shard=False` gives every rank all files (LSUN validation). `n_take` keeps the
    first n examples of this rank before repeating, so each validation pass reads the same images.
    """
    files = list(files)
    ds = tf.data.Dataset.from_tensor_slices(files)
    shard_files = shard and size > 1 and len(files) >= size
    if shard_files:
        ds = ds.shard(size, rank)
    if train:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    # Each record travels with its file name so that parse errors can name the file.
    ds = ds.interleave(lambda f: tf.data.TFRecordDataset(f).map(lambda r: (f, r)),
                       cycle_length=max(1, fmap), num_parallel_calls=tf.data.AUTOTUNE)
    if shard and size > 1 and not shard_files:
        ds = ds.shard(size, rank)
    if n_take is not None:
        ds = ds.take(n_take)
    if train:
        ds = ds.shuffle(max(1, shuffle_batches * batch), seed=seed, reshuffle_each_iteration=True)
    ds = ds.repeat()
    if rnd_crop:
        # One independent stateless seed per example: reproducible whatever the map parallelism.
        crop_seeds = tf.data.Dataset.random(seed=seed).batch(2)
        ds = tf.data.Dataset.zip((ds, crop_seeds)).map(
            lambda fr, s: parse_example(fr[1], fr[0], resolution, n_channels, n_classes, crop_seed=s),
            num_parallel_calls=pmap)
    else:
        ds = ds.map(lambda f, r: parse_example(r, f, resolution, n_channels, n_classes,
                                               stored_resolution=stored_resolution), num_parallel_calls=pmap)
    return ds.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def check_first_record(path: str, resolution: int, n_channels: int, rnd_crop: bool) -> None:
    """Read one record eagerly so that the common mistakes fail before training, naming the file."""
    try:
        serialized = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as err:
        raise DataError(f"{path}: corrupt TFRecord file ({err.message.splitlines()[0]}); "
                        f"run `python -m tfrecords_tools.verify` on the folder") from None
    if serialized is None:
        raise DataError(f"{path}: shard holds no records")
    try:
        features = tf.io.parse_single_example(serialized, FEATURES)
    except tf.errors.InvalidArgumentError:
        raise DataError(f"{path}: first record is not a tf.train.Example with shape int64[3], data bytes and "
                        f"label int64[1] (the format of tfrecords_tools)") from None
    h, w, c = (int(v) for v in features["shape"].numpy())
    if c != n_channels:
        raise DataError(f"{path}: images have {c} channels, expected n_channels={n_channels}")
    if rnd_crop and min(h, w) < resolution:
        raise DataError(f"{path}: image {h}x{w} is smaller than the {resolution}x{resolution} random crop")
    if not rnd_crop and (h, w) != (resolution, resolution):
        raise DataError(f"{path}: image of the wrong size {h}x{w}, expected {resolution}x{resolution}")


def data_dir_for(hps: HParams) -> str:
    """--data_dir, or the original's per-problem default, with --category appended (spec §1)."""
    data_dir = hps.data_dir or DEFAULT_DATA_DIR.get(hps.problem, "")
    if not data_dir:
        raise DataError(f"problem {hps.problem!r} needs --data_dir (a folder with train/ and validation/ shards)")
    if hps.category:
        data_dir = os.path.join(data_dir, hps.category)
    return data_dir


def default_n_test(hps: HParams, size: int) -> Optional[int]:
    if hps.problem in ("lsun", "lsun_realnvp"):
        return LSUN_N_TEST_PER_RANK * size
    return DEFAULT_N_TEST.get(hps.problem)


def get_data(hps: HParams, rank: int, size: int) -> common.DataSplits:
    """Port of get_data.get_data for the TFRecord problems (spec §4)."""
    resolution = hps.image_shape[0]
    lsun = hps.problem in ("lsun", "lsun_realnvp")
    rnd_crop = hps.problem == "lsun_realnvp"
    batch_train = common.local_batch_train(hps)
    n_test = hps.n_test if hps.n_test is not None else default_n_test(hps, size)
    if n_test is None:
        raise DataError(f"problem {hps.problem!r} has no default validation size; pass --n_test")
    batch_test = common.local_batch_test(hps, n_test, size)
    test_its = common.full_test_its(n_test, batch_test, size)
    data_dir = data_dir_for(hps)
    seed = common.rank_seed(hps, rank, size)
    kwargs = dict(resolution=resolution, rank=rank, size=size, rnd_crop=rnd_crop, n_channels=hps.n_channels,
                  n_classes=hps.n_classes, seed=seed, fmap=hps.fmap, pmap=hps.pmap)

    files, stored = {}, {}
    for split in SPLITS:
        split_dir = os.path.join(data_dir, split)
        log2res = stored_log2_resolution(split_dir, split, resolution, hps.problem)
        files[split] = list_shards(split_dir, split, log2res)
        stored[split] = resolution if rnd_crop else 2 ** log2res
        check_first_record(files[split][0], stored[split], hps.n_channels, rnd_crop)
        if stored[split] != resolution and rank == 0:
            print(f"data: no {resolution}x{resolution} {split} shards in {data_dir}; reading "
                  f"{stored[split]}x{stored[split]} (r{log2res:02d}) and downscaling while reading", flush=True)
    train = make_dataset(files["train"], batch=batch_train, train=True, stored_resolution=stored["train"],
                         **kwargs)
    # LSUN validation is read whole by every rank, as in the original (hence n_test = 300 * size).
    test = make_dataset(files["validation"], batch=batch_test, train=False, shard=not lsun,
                        n_take=test_its * batch_test, stored_resolution=stored["validation"], **kwargs)
    return common.DataSplits(train=train, test=test, local_batch_train=batch_train,
                             local_batch_test=batch_test, test_its=test_its, n_test=n_test)
