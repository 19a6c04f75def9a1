"""Sharded TFRecord reader for the TFRecord problems of the registry (celeba, lsun, lsun_realnvp,
imagenet-oord, imagenet, tfrecords).

Port of openai/glow data_loaders/get_data.py (get_data, input_fn, parse_tfrecord_tf). The records and
file names are those of tfrecords_tools.format.

Differences from the original, each deliberate:
  * Files are listed without shuffling, sharded per rank, and only then shuffled, so the ranks' training
    shards partition the data (the original's list_files shuffled before `shard`, with per-rank seeds).
    With fewer files than ranks, examples are sharded instead.
  * A missing shard of an `-of-N` set, a path with no files (openai/glow#69), a file whose size disagrees
    with the set's manifest, an image of the wrong size, a label out of range and an unparsable record
    are reported by file name (`DataError` before training for what the manifest and a first-record
    check can see; an `InvalidArgumentError` naming the file inside the pipeline).
  * Damaged files are caught inside the pipeline: each file's records are read with its errors caught
    and the bytes read are checked against the file's size at its end, so a checksum failure or a
    truncated file (which TensorFlow's reader takes for a clean end if it ends inside a record header)
    stops the stream with an error naming the file, or, with `skip_corrupt_records`, the rest of that
    file is skipped and counted (training only: a validation figure over other images would not
    compare with the last one).
  * Random crops (lsun_realnvp) use stateless ops seeded per example, so a seed fixes the crops no matter
    how many parse calls run in parallel.

`get_data` reads these attributes of hps: problem, data_dir, category, image_shape, n_channels,
n_classes, n_test, n_batch_train, anchor_size, local_batch_train(), seed, fmap, pmap and, where present,
skip_corrupt_records.
"""

from __future__ import annotations

import collections
import glob
import os
import sys
from typing import Dict, List, Optional, Sequence

import tensorflow as tf

from data_loaders import common, problems
from data_loaders.damage import STOPPED, verify_command
from data_loaders.errors import DataError
from tfrecords_tools import format as fmt
from tfrecords_tools.errors import DamagedFile, FormatError

_DTYPES = {"int64": tf.int64, "bytes": tf.string}


def feature_spec(with_attr: bool = False) -> Dict[str, tf.io.FixedLenFeature]:
    """The tf.io parsing spec of the format's features (attr only when asked: the original never read it)."""
    features = fmt.REQUIRED + ((fmt.ATTR,) if with_attr else ())
    return {f.name: tf.io.FixedLenFeature(list(f.shape), _DTYPES[f.kind]) for f in features}


def stored_log2_resolution(split_dir: str, split: str, resolution: int, problem: str = "") -> int:
    """The rXX set to read for `resolution`: that exact set when it exists, else the smallest larger one.

    A larger set is downscaled while reading (area averaging). This is what lets the original's LSUN
    96x96 and 128x128 commands run: its LSUN converter stored only 256x256 (r08), and 96 is not a power
    of two at all.
    """
    exact = fmt.log2_floor(resolution) if resolution > 0 and resolution & (resolution - 1) == 0 else None
    available = sorted({n.log2res for n in map(fmt.parse_shard_name, _listdir(split_dir)) if n and n.split == split})
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


def _listdir(folder: str) -> List[str]:
    return os.listdir(folder) if os.path.isdir(folder) else []


def list_shards(split_dir: str, split: str, log2res: int) -> List[str]:
    """All files of one complete `-of-N` shard set, sorted; DataError if none match or any is missing."""
    pattern = os.path.join(split_dir, fmt.shard_glob(split, log2res))
    files = sorted(glob.glob(pattern))
    if not files:
        raise DataError(f"no TFRecord files match {pattern}{_what_is_there(split_dir, split)}")
    by_total: Dict[int, set] = collections.defaultdict(set)
    for path in files:
        name = fmt.parse_shard_name(os.path.basename(path))
        if name is None:
            raise DataError(f"{path}: file name does not follow {fmt.SHARD_PATTERN}")
        by_total[name.n_shards].add(name.shard)
    if len(by_total) > 1:
        raise DataError(f"{split_dir}: shard sets of different sizes mixed at r{log2res:02d} "
                        f"(-of-{', -of-'.join(f'{n:04d}' for n in sorted(by_total))}); keep one set")
    (total, present), = by_total.items()
    missing = sorted(set(range(total)) - present)
    if missing:
        first = os.path.join(split_dir, fmt.shard_name(split, log2res, missing[0], total))
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise DataError(f"missing shard {first}{more}: the set has {len(present)} of {total} files")
    return files


def _what_is_there(split_dir: str, split: str) -> str:
    """A hint for openai/glow#69: which resolutions or folders exist where the files were expected."""
    if not os.path.isdir(split_dir):
        parent = os.path.dirname(split_dir.rstrip("/")) or "."
        folders = sorted(d for d in os.listdir(parent) if os.path.isdir(os.path.join(parent, d))) \
            if os.path.isdir(parent) else []
        where = f"; {parent} holds {folders}" if folders else f"; {parent} does not exist"
        return f" ({split_dir} is not a directory{where}; check --data_dir and --category)"
    found = sorted({n.log2res for n in map(fmt.parse_shard_name, os.listdir(split_dir)) if n and n.split == split})
    if found:
        return f" (that folder holds resolutions {', '.join(f'r{r:02d}' for r in found)}; check --image_size)"
    return " (that folder holds no shards)"


def expected_records(split_dir: str, split: str, log2res: int, files: Sequence[str], data_dir: str) -> List[int]:
    """Records per file from the set's manifest (-1 for all when there is none), after checking every
    file's size against it: one stat per file. DataError naming the file on any difference."""
    try:
        manifest = fmt.read_manifest(split_dir, split, log2res)
    except FormatError as err:
        raise DataError(str(err)) from None
    if manifest is None:
        return [-1] * len(files)
    mismatch = fmt.manifest_mismatch(split_dir, manifest, [os.path.basename(f) for f in files])
    if mismatch:
        raise DataError(f"{mismatch}: re-convert the set with tfrecords_tools (`{verify_command(data_dir)}` "
                        f"lists what else is damaged)")
    return [manifest.files[os.path.basename(f)][0] for f in files]


def parse_example(serialized, filename, resolution: int, n_channels: int, n_classes: int,
                  crop_seed=None, stored_resolution: Optional[int] = None, with_attr: bool = False):
    """One record -> (x uint8 [res, res, C], y int32 []), port of get_data.py's parse_tfrecord_tf; with
    `with_attr`, (x, y, attr int64 [40]) (CelebA's attributes, which the original's reader never read).

    Every check names `filename`. With `crop_seed` (a [2] int tensor) the stored image may be larger and a
    random res x res crop is taken (lsun_realnvp); otherwise it must be exactly stored_resolution square
    (default: res), and is area-downscaled to res when that is larger.
    """
    stored = stored_resolution or resolution
    features = tf.io.parse_single_example(serialized, feature_spec(with_attr))
    shape = features[fmt.SHAPE.name]
    data = tf.io.decode_raw(features[fmt.DATA.name], tf.uint8)
    label = tf.cast(features[fmt.LABEL.name][0], tf.int32)
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
    return (image, label, features[fmt.ATTR.name]) if with_attr else (image, label)


def _check(condition, filename, message, value):
    """An in-graph assertion whose error reads `in <file>: <message> <value>`."""
    return tf.debugging.Assert(condition, [tf.strings.join(["in ", filename, ": ", message]), value])


# Framing around each record: length, its checksum, and the data's checksum (tfrecords_tools.format).
_FRAMING_BYTES = fmt.HEADER_BYTES + fmt.FOOTER_BYTES
_CHECK_BATCH = 32


class SkipCount:
    """What the training stream skipped with skip_corrupt_records, over every pass so far: the damaged
    file reads cut short, the records lost (known where the set has a manifest) and the bytes."""

    def __init__(self):
        self.counts = tf.Variable([0, 0, 0], dtype=tf.int64, trainable=False, name="skipped_records")

    def note(self, records_lost, bytes_lost):
        return self.counts.assign_add(tf.stack([tf.constant(1, tf.int64), records_lost, bytes_lost]))

    def summary(self) -> Optional[str]:
        reads, records, n_bytes = (int(v) for v in self.counts.numpy())
        if not reads:
            return None
        what = f"{records} records ({n_bytes} bytes)" if records else f"{n_bytes} bytes"
        return (f"data: skipped {what} of damaged TFRecord files in {reads} reads so far "
                f"(--skip_corrupt_records; the 'data: skipped' lines name the files)")


def _file_records(path, size, expected, skipped: Optional[SkipCount]) -> tf.data.Dataset:
    """(path, record) for every intact record of one file, in order.

    TensorFlow stops reading a file at its first damaged record (and moves on to the next file, which
    is what lets ignore_errors drop the rest of this one); an empty batch marks the file's end, where
    the bytes read (record lengths plus framing) must equal the file's size. If not, the file is
    damaged: an error naming it, or, with `skipped`, a line on stderr and the count. The records are
    counted in batches of _CHECK_BATCH: one function call per record cost up to half the throughput.
    """
    batches = tf.data.TFRecordDataset(path).ignore_errors().batch(_CHECK_BATCH)
    marked = batches.concatenate(tf.data.Dataset.from_tensors(tf.zeros([0], tf.string)))

    def count(state, records):
        n, used = state
        lengths = tf.cast(tf.strings.length(records), tf.int64) + _FRAMING_BYTES
        state = (n + tf.size(records, out_type=tf.int64), used + tf.reduce_sum(lengths))
        return state, (records,) + state

    def keep(records, n, used):
        end = tf.equal(tf.size(records), 0)
        damaged = end & (used < size)
        if skipped is None:
            message = tf.strings.join(["in ", path, f": {STOPPED} ", tf.strings.as_string(n), " at byte ",
                                       tf.strings.as_string(used), " of ", tf.strings.as_string(size),
                                       " (a damaged or truncated record)"])
            with tf.control_dependencies([tf.debugging.Assert(tf.logical_not(damaged), [message])]):
                return tf.logical_not(end)

        def note():
            lost = tf.maximum(expected - n, 0)
            line = tf.strings.join(["data: skipped the rest of ", path, " after record ", tf.strings.as_string(n),
                                    " (byte ", tf.strings.as_string(used), " of ", tf.strings.as_string(size),
                                    "): a damaged or truncated record"])
            with tf.control_dependencies([skipped.note(lost, size - used)]):
                printed = tf.print(line, output_stream=sys.stderr)
            with tf.control_dependencies([printed]):
                return tf.constant(False)

        return tf.cond(damaged, note, lambda: tf.logical_not(end))

    zero = tf.constant(0, tf.int64)
    return (marked.scan((zero, zero), count).filter(keep)
            .map(lambda records, n, used: (tf.fill(tf.shape(records), path), records)).unbatch())


def make_dataset(files: Sequence[str], *, resolution: int, batch: int, rank: int, size: int, train: bool,
                 shard: bool = True, rnd_crop: bool = False, n_channels: int = 3, n_classes: int = 1,
                 seed: int = 0, fmap: int = 1, pmap: int = 16, n_take: Optional[int] = None,
                 shuffle_batches: int = 4, stored_resolution: Optional[int] = None,
                 expected: Optional[Sequence[int]] = None, skipped: Optional[SkipCount] = None,
                 once: bool = False, with_attr: bool = False) -> tf.data.Dataset:
    """The original's pipeline (get_data.py, input_fn) with its sharding fixed.

    list files (sorted) -> shard(size, rank) -> [train] shuffle files -> interleave(fmap) -> [train] shuffle
    examples (buffer shuffle_batches * batch, the original's 4 * batch) -> repeat -> parse (pmap calls) ->
    batch(drop_remainder) -> prefetch. With fewer files than ranks, examples are sharded after the
    interleave instead. `shard=False` gives every rank all files (LSUN validation). `n_take` keeps the
    first n examples of this rank before repeating, so each validation pass reads the same images.
    `expected`: records per file from the manifest (-1: unknown), for the count of `skipped` records;
    with `skipped`, damaged files are cut short and counted instead of stopping the stream. `once`: every
    record once, the last batch possibly short, for a tool that reads a whole set (`read_set`);
    `with_attr`: batches of (x, y, attr).
    """
    files = list(files)
    sizes = [os.path.getsize(f) for f in files]  # the end-of-file check; one stat per file
    expected = list(expected) if expected is not None else [-1] * len(files)
    ds = tf.data.Dataset.from_tensor_slices((files, tf.constant(sizes, tf.int64), tf.constant(expected, tf.int64)))
    shard_files = shard and size > 1 and len(files) >= size
    if shard_files:
        ds = ds.shard(size, rank)
    if train:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    # Each record travels with its file name so that parse errors can name the file.
    ds = ds.interleave(lambda f, n, e: _file_records(f, n, e, skipped), cycle_length=max(1, fmap),
                       num_parallel_calls=tf.data.AUTOTUNE)
    if shard and size > 1 and not shard_files:
        ds = ds.shard(size, rank)
    if n_take is not None:
        ds = ds.take(n_take)
    if train:
        ds = ds.shuffle(max(1, shuffle_batches * batch), seed=seed, reshuffle_each_iteration=True)
    if not once:
        ds = ds.repeat()
    if rnd_crop:
        # One independent stateless seed per example: reproducible whatever the map parallelism.
        crop_seeds = tf.data.Dataset.random(seed=seed).batch(2)
        ds = tf.data.Dataset.zip((ds, crop_seeds)).map(
            lambda fr, s: parse_example(fr[1], fr[0], resolution, n_channels, n_classes, crop_seed=s),
            num_parallel_calls=pmap)
    else:
        ds = ds.map(lambda f, r: parse_example(r, f, resolution, n_channels, n_classes,
                                               stored_resolution=stored_resolution, with_attr=with_attr),
                    num_parallel_calls=pmap)
    ds = ds.batch(batch, drop_remainder=not once).prefetch(tf.data.AUTOTUNE)
    if skipped is not None:
        # The count and the stderr line are the only state outside the pipeline; a saved iterator
        # position (data_loaders.position) leaves them out, which is what we want.
        options = tf.data.Options()
        options.experimental_external_state_policy = tf.data.experimental.ExternalStatePolicy.IGNORE
        ds = ds.with_options(options)
    return ds


def check_first_record(path: str, resolution: int, n_channels: int, rnd_crop: bool = False, data_dir: str = "",
                       need_attr: bool = False) -> None:
    """Read one record (without TensorFlow) so that the common mistakes fail before any work, naming the file.

    `need_attr`: the records must carry CelebA's 40 attributes (for attribute directions).
    """
    try:
        frame = next(fmt.walk_records(path), None)
        if frame is None:
            raise DataError(f"{path}: shard holds no records")
        features = fmt.decode_example(fmt.read_record(path, frame[0]))
    except DamagedFile as err:
        raise DataError(f"{path}: corrupt TFRecord file (record {max(err.index, 0)} at byte {err.offset}: {err.reason}); "
                        f"run `{verify_command(data_dir or os.path.dirname(os.path.dirname(path)))}` and "
                        f"re-convert the set") from None
    except FormatError:
        features = {}
    except OSError as err:
        raise DataError(f"{path}: unreadable ({err.strerror or err})") from None
    if fmt.check_example(features) is not None:
        raise DataError(f"{path}: first record is not a tf.train.Example with shape int64[3], data bytes and "
                        f"label int64[1] (the format of tfrecords_tools)")
    h, w, c = features[fmt.SHAPE.name]
    if c != n_channels:
        raise DataError(f"{path}: images have {c} channels, expected n_channels={n_channels}")
    if rnd_crop and min(h, w) < resolution:
        raise DataError(f"{path}: image {h}x{w} is smaller than the {resolution}x{resolution} random crop")
    if not rnd_crop and (h, w) != (resolution, resolution):
        raise DataError(f"{path}: image of the wrong size {h}x{w}, expected {resolution}x{resolution}")
    if need_attr and fmt.check_example(features, need_attr=True):
        raise DataError(f"{path}: records have no `{fmt.ATTR.name}` int64[{fmt.N_ATTR}] (the downloadable "
                        f"celeba-tfr lacks it, openai/glow issue #112); convert CelebA with "
                        f"`python -m tfrecords_tools.celeba --attr list_attr_celeba.txt`")


# ---------------------------------------------------------------------------------------------------------
# A whole set, once: what the tools read (directions, scores).

def find_files(data: str, split: str, resolution: int) -> List[str]:
    """The TFRecord files a tool's --data names: a file, a glob pattern, or a folder (its <split>/ shard set
    at `resolution`, or else the *.tfrecords directly inside it). DataError if there are none."""
    if os.path.isfile(data):
        return [data]
    if os.path.isdir(data):
        split_dir = os.path.join(data, split)
        if os.path.isdir(split_dir):
            return list_shards(split_dir, split, fmt.log2_floor(resolution))
        files = sorted(glob.glob(os.path.join(data, "*.tfrecords")))
        if not files:
            raise DataError(f"--data {data}: no {split}/ folder and no *.tfrecords files in it")
        return files
    files = sorted(glob.glob(data))
    if not files:
        raise DataError(f"--data {data}: no such file or folder, and no files match it as a pattern")
    return files


def read_set(files: Sequence[str], image_shape, *, batch: int, n_classes: int = 1, with_attr: bool = False,
             max_images: Optional[int] = None) -> tf.data.Dataset:
    """Every record of `files` once, in order, in batches of (x, y) or (x, y, attr); the first record is
    checked before anything is read (check_first_record), the others as the pipeline reaches them, each
    error naming its file (read the batches with data_loaders.damage.read_batch)."""
    resolution, _, n_channels = image_shape
    files = list(files)
    check_first_record(files[0], resolution, n_channels, need_attr=with_attr)
    return make_dataset(files, resolution=resolution, batch=batch, rank=0, size=1, train=False, shard=False,
                        n_channels=n_channels, n_classes=n_classes, n_take=max_images, once=True,
                        with_attr=with_attr, pmap=tf.data.AUTOTUNE)


def data_dir_for(hps, problem: problems.Problem) -> str:
    """--data_dir, or the problem's default folder, with --category appended (openai/glow train.py)."""
    data_dir = hps.data_dir or problem.data_dir
    if not data_dir:
        raise DataError(f"problem {hps.problem!r} needs --data_dir (a folder with train/ and validation/ shards)")
    if hps.category:
        data_dir = os.path.join(data_dir, hps.category)
    return data_dir


def get_data(hps, rank: int, size: int) -> common.DataSplits:
    """Port of get_data.py's get_data for the TFRecord problems."""
    problem = problems.find(hps.problem)
    resolution = hps.image_shape[0]
    rnd_crop = problem.random_crop
    batch_train = common.local_batch_train(hps)
    n_test = hps.n_test if hps.n_test is not None else problem.default_n_test(size)
    if n_test is None:
        raise DataError(f"problem {hps.problem!r} has no default validation size; pass --n_test")
    batch_test = common.local_batch_test(hps, n_test, size)
    test_its = common.full_test_its(n_test, batch_test, size)
    data_dir = data_dir_for(hps, problem)
    seed = common.rank_seed(hps.seed, rank, size)
    kwargs = dict(resolution=resolution, rank=rank, size=size, rnd_crop=rnd_crop, n_channels=hps.n_channels,
                  n_classes=hps.n_classes, seed=seed, fmap=hps.fmap, pmap=hps.pmap)

    files, stored, expected = {}, {}, {}
    for split in fmt.SPLITS:
        split_dir = os.path.join(data_dir, split)
        log2res = stored_log2_resolution(split_dir, split, resolution, hps.problem)
        files[split] = list_shards(split_dir, split, log2res)
        expected[split] = expected_records(split_dir, split, log2res, files[split], data_dir)
        stored[split] = resolution if rnd_crop else 2 ** log2res
        first = next((f for f in files[split] if os.path.getsize(f) > 0), files[split][0])
        check_first_record(first, stored[split], hps.n_channels, rnd_crop, data_dir)
        if stored[split] != resolution and rank == 0:
            print(f"data: no {resolution}x{resolution} {split} shards in {data_dir}; reading "
                  f"{stored[split]}x{stored[split]} (r{log2res:02d}) and downscaling while reading", flush=True)
    skipped = SkipCount() if getattr(hps, "skip_corrupt_records", False) else None
    train = make_dataset(files["train"], batch=batch_train, train=True, stored_resolution=stored["train"],
                         expected=expected["train"], skipped=skipped, **kwargs)
    test = make_dataset(files["validation"], batch=batch_test, train=False, shard=problem.shard_validation,
                        n_take=test_its * batch_test, stored_resolution=stored["validation"],
                        expected=expected["validation"], **kwargs)
    return common.DataSplits(train=train, test=test, local_batch_train=batch_train,
                             local_batch_test=batch_test, test_its=test_its, n_test=n_test,
                             train_files=tuple(files["train"]), test_files=tuple(files["validation"]),
                             skipped=skipped)
