"""data_loaders: real images read back bit for bit, disjoint and complete rank shards, one error per bad input."""

from __future__ import annotations

import gzip
import os
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from data_loaders import DataError, DataSplits, get_data, in_memory, locate_damage, problems, tfrecords
from glow_tf.hparams import HParams
from tests import data_fixtures as fx
from tfrecords_tools import format as fmt
from tfrecords_tools import verify


def hp(**kw) -> HParams:
    kw.setdefault("n_levels", 2)
    return HParams(**kw)


def take_batches(ds, n):
    xs, ys = [], []
    for x, y in ds.take(n):
        xs.append(x.numpy())
        ys.append(y.numpy())
    return np.concatenate(xs), np.concatenate(ys)


def keys(images) -> list:
    return [img.tobytes() for img in images]


write_records = fx.write_records


@pytest.fixture(scope="module")
def cifar_tfr(tmp_path_factory):
    """foolbox's 20 CIFAR-10 images converted with tfrecords_tools.images: 17 train in 3 shards, 3 validation
    in 2. Returns (data_dir, {image bytes: label} per split)."""
    return fx.cifar_tfrecords(str(tmp_path_factory.mktemp("cifar_tfr")))


# ------------------------------------------------------------------------------------------------------
# In-memory problems.

@fx.needs_fashion
def test_fashion_mnist_reads_debian_files_bit_for_bit():
    splits = get_data(hp(problem="fashion_mnist", n_batch_train=64, dal=1))
    assert isinstance(splits, DataSplits)
    assert (splits.local_batch_train, splits.local_batch_test) == (64, 50)
    assert (splits.n_test, splits.test_its) == (10000, 200)
    assert splits.train_files == splits.test_files == () and splits.skipped_summary() is None
    x, y = take_batches(splits.test, 2)
    raw = fx.read_idx_images(os.path.join(fx.FASHION_MNIST_DIR, "t10k-images-idx3-ubyte.gz"))
    labels = fx.read_idx_labels(os.path.join(fx.FASHION_MNIST_DIR, "t10k-labels-idx1-ubyte.gz"))
    assert x.shape == (100, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int32
    # Padded with 2 zero pixels per side and tiled to 3 channels, as the original did with MNIST.
    np.testing.assert_array_equal(x[:, 2:30, 2:30, 0], raw[:100])
    np.testing.assert_array_equal(x[..., 1], x[..., 0])
    np.testing.assert_array_equal(x[..., 2], x[..., 0])
    assert not x[:, :2].any() and not x[:, 30:].any() and not x[:, :, :2].any() and not x[:, :, 30:].any()
    np.testing.assert_array_equal(y, labels[:100])
    xt, yt = next(iter(splits.train))
    assert xt.shape == (64, 32, 32, 3) and xt.dtype == tf.uint8 and yt.shape == (64,) and yt.dtype == tf.int32


@fx.needs_fashion
def test_fashion_mnist_unpadded_grayscale_keeps_raw_pixels():
    # n_batch_train 49 at anchor 32 is 49 * 32^2 // 28^2 = 64 per GPU.
    splits = get_data(hp(problem="fashion_mnist", image_size=28, n_channels=1, n_batch_train=49, dal=0))
    x, _ = take_batches(splits.test, 1)
    raw = fx.read_idx_images(os.path.join(fx.FASHION_MNIST_DIR, "t10k-images-idx3-ubyte.gz"))
    np.testing.assert_array_equal(x[..., 0], raw[:50])
    assert x.shape == (50, 28, 28, 1)


def test_cifar10_pickles_read_bit_for_bit_and_box_downsampled(tmp_path):
    x_train, y_train, x_test, y_test = fx.cifar10_pickles(str(tmp_path / "cifar-10-batches-py"))
    splits = get_data(hp(problem="cifar10", data_dir=str(tmp_path), n_batch_train=1, n_test=5, dal=0))
    x, y = take_batches(splits.test, splits.test_its)
    np.testing.assert_array_equal(x, x_test)
    np.testing.assert_array_equal(y, y_test)
    # image_size 16: the original's box downsampling of the 32x32 image, floored.
    small = get_data(hp(problem="cifar10", data_dir=str(tmp_path), image_size=16, n_batch_train=1, n_test=4,
                        dal=0))
    x16, _ = take_batches(small.test, 2)
    expect = x_test[:4].reshape(4, 16, 2, 16, 2, 3).astype(np.float64).mean(axis=(2, 4))
    np.testing.assert_array_equal(x16, np.floor(expect).astype(np.uint8))


def test_mnist_npz_and_in_memory_rank_shards_partition(tmp_path):
    x_train, y_train, x_test, _ = fx.mnist_npz(str(tmp_path / "mnist.npz"))
    seen_train = []
    for size in (2, 3):
        train_keys, test_keys = [], []
        for rank in range(size):
            splits = get_data(hp(problem="mnist", data_dir=str(tmp_path), n_batch_train=1, n_test=size,
                                 dal=0, image_size=28, n_channels=1), rank=rank, size=size)
            part = in_memory.rank_slice(16, rank, size)
            # One shuffled epoch of this rank is its contiguous slice, in some order.
            xr, _ = take_batches(splits.train, part.stop - part.start)
            assert sorted(keys(xr)) == sorted(keys(x_train[part, ..., None]))
            train_keys += keys(xr)
            xt, _ = take_batches(splits.test, splits.test_its)
            test_keys += keys(xt)
        assert sorted(train_keys) == sorted(keys(x_train[..., None]))  # disjoint and complete
        assert sorted(test_keys) == sorted(keys(x_test[:size, ..., None]))
        seen_train.append(train_keys)
    assert len(seen_train[0]) == len(seen_train[1]) == 16


@fx.needs_fashion
def test_training_augmentation_is_seeded_and_shifts():
    def first(seed, dal):
        return next(iter(get_data(hp(problem="fashion_mnist", n_batch_train=64, dal=dal, seed=seed)).train))[0]
    a, b, c = first(0, 1), first(0, 1), first(1, 1)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())
    plain = first(0, 0).numpy()
    assert not np.array_equal(a.numpy(), plain)  # same shuffled images, shifted


def test_cifar_dal2_extras_run_and_keep_range(tmp_path):
    fx.cifar10_pickles(str(tmp_path / "cifar-10-batches-py"))
    # n_batch_train 1 at 16x16 is 4 per GPU (test batch 2).
    splits = get_data(hp(problem="cifar10", data_dir=str(tmp_path), n_batch_train=1, n_test=4, dal=2,
                         image_size=16))
    x, _ = next(iter(splits.train))
    assert x.shape == (4, 16, 16, 3) and x.dtype == tf.uint8
    assert x.numpy().std() > 10  # real pictures, not a constant fill


@pytest.mark.parametrize("kwargs, message", [
    (dict(problem="cifar10", data_dir="EMPTY"), "no cifar10 data found"),
    (dict(problem="fashion_mnist", image_size=12), "image_size=12"),
    pytest.param(dict(problem="mnist", data_dir="TRUNCATED"), "truncated idx file", marks=fx.needs_fashion),
    pytest.param(dict(problem="fashion_mnist", n_test=20000), "exceeds the 10000", marks=fx.needs_fashion),
    pytest.param(dict(problem="fashion_mnist", n_test=9999), "not divisible", marks=fx.needs_fashion),
    (dict(problem="fashion_mnist", dal=3), "dal=3"),
    (dict(problem="celeba", n_batch_train=32), "gives a per-GPU batch of 32 * 32^2 // 256^2 = 0"),
    (dict(problem="nope", image_size=32), "unknown problem 'nope'"),
])
def test_in_memory_bad_inputs_raise_data_error(tmp_path, kwargs, message):
    if kwargs.get("data_dir") == "EMPTY":
        kwargs["data_dir"] = str(tmp_path)
    if kwargs.get("data_dir") == "TRUNCATED":
        for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
            shutil.copy(os.path.join(fx.FASHION_MNIST_DIR, name), tmp_path)
        with open(os.path.join(fx.FASHION_MNIST_DIR, "t10k-images-idx3-ubyte.gz"), "rb") as f:
            data = gzip.decompress(f.read())[:100000]
        with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as f:
            f.write(data)
        kwargs["data_dir"] = str(tmp_path)
    with pytest.raises(DataError, match=re.escape(message)):
        get_data(hp(**kwargs))


def test_rank_out_of_range():
    with pytest.raises(DataError, match="rank=2 and size=2"):
        get_data(hp(problem="fashion_mnist"), rank=2, size=2)


# ------------------------------------------------------------------------------------------------------
# TFRecord problems.

def tfr_hps(data_dir, **kw):
    kw = {"problem": "tfrecords", "data_dir": data_dir, "image_size": 32, "n_batch_train": 1, "n_test": 3, **kw}
    return hp(**kw)


def test_tfrecords_read_back_bit_for_bit(cifar_tfr):
    data_dir, truth = cifar_tfr
    splits = get_data(tfr_hps(data_dir))
    x, y = take_batches(splits.test, splits.test_its)
    assert sorted(keys(x)) == sorted(truth["validation"]) and not y.any()
    # Training: one epoch (17 records, batch 1) is every image once.
    xt, _ = take_batches(splits.train, 17)
    assert sorted(keys(xt)) == sorted(truth["train"])


@pytest.mark.parametrize("size", [2, 3])
def test_tfrecord_rank_shards_are_disjoint_and_complete(cifar_tfr, size):
    data_dir, truth = cifar_tfr
    files = tfrecords.list_shards(os.path.join(data_dir, "train"), "train", 5)
    counts = [sum(1 for _ in tf.data.TFRecordDataset(f)) for f in files]
    seen = []
    for rank in range(size):
        ds = tfrecords.make_dataset(files, resolution=32, batch=1, rank=rank, size=size, train=True, seed=rank)
        n_rank = sum(counts[rank::size])  # files are sharded round-robin over the sorted list
        x, _ = take_batches(ds, n_rank)
        assert len(set(keys(x))) == n_rank  # the first epoch of a rank repeats nothing
        seen += keys(x)
    assert sorted(seen) == sorted(truth["train"])


def test_fewer_files_than_ranks_shards_examples(cifar_tfr):
    data_dir, truth = cifar_tfr
    files = tfrecords.list_shards(os.path.join(data_dir, "validation"), "validation", 5)  # 2 files, 3 ranks
    seen = []
    for rank in range(3):
        ds = tfrecords.make_dataset(files, resolution=32, batch=1, rank=rank, size=3, train=False, n_take=1)
        seen += keys(take_batches(ds, 1)[0])
    assert sorted(seen) == sorted(truth["validation"])


def test_lsun_realnvp_crops_and_unsharded_validation(tmp_path):
    rng = np.random.default_rng(0)
    stored = {split: [rng.integers(0, 256, size=(96, 96 + 8 * i, 3), dtype=np.uint8) for i in range(3)]
              for split in ("train", "validation")}
    for split, images in stored.items():
        write_records(str(tmp_path / "bedroom" / split / fmt.shard_name(split, 6, 0, 1)),
                      [(img, 0) for img in images])
    hps = hp(problem="lsun_realnvp", data_dir=str(tmp_path), category="bedroom", n_batch_train=64, n_levels=3)
    # 16 per GPU at 64x64 -> test batch 10; LSUN's n_test is 300 per rank, every rank reading all of it.
    for size in (1, 2):
        splits = get_data(hps, rank=size - 1, size=size)
        assert (splits.n_test, splits.local_batch_test, splits.test_its) == (300 * size, 10, 30)
    x, _ = next(iter(splits.test))
    assert x.shape == (10, 64, 64, 3)
    assert all(_contains(stored["validation"], crop) for crop in x.numpy()[:4])
    xt, _ = next(iter(splits.train))
    assert xt.shape == (16, 64, 64, 3)
    assert all(_contains(stored["train"], crop) for crop in xt.numpy()[:4])
    assert len({crop.tobytes() for crop in xt.numpy()}) > 3  # random windows, not one fixed crop


def _contains(images, crop):
    """Whether crop is a window of one of the images (located by its first pixel row)."""
    for image in images:
        for i in range(image.shape[0] - 63):
            for j in range(image.shape[1] - 63):
                if np.array_equal(image[i, j:j + 64], crop[0]) and np.array_equal(image[i:i + 64, j:j + 64], crop):
                    return True
    return False


def test_tfrecord_problem_defaults(tmp_path):
    with pytest.raises(DataError, match="no TFRecord files match .*/mnt/host/celeba-reshard-tfr/train"):
        get_data(hp(problem="celeba", n_batch_train=64, n_levels=3), size=40)
    with pytest.raises(DataError, match="image_size=96 .*at a resolution of at least 96"):
        get_data(hp(problem="lsun", image_size=96, n_batch_train=64, n_levels=5))


@fx.needs_fashion
def test_test_batch_outside_the_original_table_divides_n_test():
    splits = get_data(hp(problem="fashion_mnist", n_batch_train=48))  # KeyError: 48 in the original
    assert (splits.local_batch_train, splits.local_batch_test, splits.test_its) == (48, 40, 250)


def test_missing_files_name_what_is_there(cifar_tfr, tmp_path):
    data_dir, _ = cifar_tfr
    with pytest.raises(DataError, match=r"no TFRecord files match .*train-r06-.*holds resolutions r05"):
        get_data(tfr_hps(data_dir, image_size=64, n_batch_train=4))
    with pytest.raises(DataError, match="is not a directory"):
        get_data(tfr_hps(str(tmp_path / "nowhere")))


def test_missing_shard_is_named(cifar_tfr, tmp_path):
    data_dir, _ = cifar_tfr
    copy = tmp_path / "copy"
    shutil.copytree(data_dir, copy)
    os.remove(copy / "train" / "train-r05-s-0001-of-0003.tfrecords")
    with pytest.raises(DataError, match=r"missing shard .*train-r05-s-0001-of-0003.tfrecords: the set has 2 of 3"):
        get_data(tfr_hps(str(copy)))


def _one_record_set(root, records, split="validation"):
    for s in ("train", "validation"):
        recs = records if s == split else [(np.zeros((32, 32, 3), np.uint8), 0)] * 3
        write_records(str(root / s / fmt.shard_name(s, 5, 0, 1)), recs)
    return str(root)


def test_wrong_size_first_record_is_a_data_error(tmp_path):
    data_dir = _one_record_set(tmp_path, [(np.zeros((16, 16, 3), np.uint8), 0)] * 3)
    with pytest.raises(DataError, match="validation-r05-s-0000-of-0001.tfrecords: image of the wrong size 16x16, "
                                        "expected 32x32"):
        get_data(tfr_hps(data_dir))


def test_corrupt_first_record_is_a_data_error(tmp_path):
    data_dir = _one_record_set(tmp_path, [b"not an example"] * 3)
    with pytest.raises(DataError, match="validation-r05-s-0000-of-0001.tfrecords: first record is not"):
        get_data(tfr_hps(data_dir))
    path = tmp_path / "validation" / fmt.shard_name("validation", 5, 0, 1)
    path.write_bytes(path.read_bytes()[:20])  # header complete, record cut short
    with pytest.raises(DataError, match=r"validation-r05-s-0000-of-0001.tfrecords: corrupt TFRecord file \(record 0 "
                                        r"at byte 0: truncated") as caught:
        get_data(tfr_hps(data_dir))
    # The hint is a command that works as written: it names the folder and finds the damage.
    command = re.search(r"run `python -m tfrecords_tools.verify (\S+)`", str(caught.value))
    assert command and command.group(1) == data_dir
    assert verify.main([command.group(1)]) == 1
    # A record whose data fails its checksum is named by its place in the file too.
    data_dir = _one_record_set(tmp_path / "flipped", [(np.zeros((32, 32, 3), np.uint8), 0)] * 3)
    path = tmp_path / "flipped" / "validation" / fmt.shard_name("validation", 5, 0, 1)
    data = bytearray(path.read_bytes())
    data[fmt.HEADER_BYTES + 4] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"corrupt TFRecord file \(record 0 at byte 0: the data fails its checksum"):
        get_data(tfr_hps(data_dir))


@pytest.mark.parametrize("bad, message", [
    ((np.zeros((8, 8, 3), np.uint8), 0), r"image of the wrong size \(expected 32x32x3\); shape\] \[8 8 3\]"),
    ((np.zeros((32, 32, 3), np.uint8), 5), r"label out of range \(expected 0 <= label < n_y = 1"),
])
def test_bad_record_inside_the_pipeline_names_the_file(tmp_path, bad, message):
    good = (np.zeros((32, 32, 3), np.uint8), 0)
    data_dir = _one_record_set(tmp_path, [good, bad, good])
    splits = get_data(tfr_hps(data_dir))
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"validation-r05-s-0000-of-0001.tfrecords: {message}") \
            as caught:
        take_batches(splits.test, 3)
    line = locate_damage(splits.test_files, caught.value)
    assert line.startswith(f"{splits.test_files[0]}: ") and "\n" not in line


def test_n_test_not_divisible_names_the_numbers(cifar_tfr):
    data_dir, _ = cifar_tfr
    with pytest.raises(DataError, match=r"n_test=3 is not divisible by local_batch_test \* ranks = 1 \* 2 = 2, .*"
                                        r"pass --n_test 2 \(1 batches per rank\)"):
        get_data(tfr_hps(data_dir), rank=0, size=2)


# ------------------------------------------------------------------------------------------------------
# Damaged TFRecord files: refused before training, named during it, or skipped and counted.

@pytest.fixture
def cifar_copy(cifar_tfr, tmp_path):
    """A private copy of cifar_tfr to damage, in a folder whose name needs quoting in a shell command:
    (data_dir, its train shards in order)."""
    shutil.copytree(cifar_tfr[0], tmp_path / "my data")
    folder = tmp_path / "my data" / "train"
    return str(tmp_path / "my data"), sorted(str(p) for p in folder.glob("*.tfrecords"))


def _flip_data_byte(path, record):
    offset, length = list(fmt.walk_records(path))[record]
    data = bytearray(open(path, "rb").read())
    data[offset + fmt.HEADER_BYTES + length // 2] ^= 0x01
    open(path, "wb").write(bytes(data))
    return offset


def _intact(files, damaged, record):
    """Pixels of every record that reads intact: all of the other files, the damaged one up to `record`."""
    out = []
    for path in files:
        records = list(tf.data.TFRecordDataset(path).take(record if path == damaged else 10 ** 6))
        out += [fmt.decode_example(r.numpy())["data"][0] for r in records]
    return out


def test_a_truncated_shard_is_refused_before_training_by_its_manifest(cifar_copy):
    data_dir, files = cifar_copy
    cut = files[1]
    last = list(fmt.walk_records(cut))[-1][0]
    with open(cut, "r+b") as f:
        f.truncate(last)  # at a record boundary: every remaining record reads intact
    with pytest.raises(DataError) as caught:
        get_data(tfr_hps(data_dir))
    message = str(caught.value)
    assert message.startswith(f"{cut} holds {last} bytes, train-r05.manifest.json says ") and "(truncated)" in message
    verify_command = f"python -m tfrecords_tools.verify {shlex.quote(data_dir)}"
    assert f"re-convert the set with tfrecords_tools (`{verify_command}` lists what else is damaged)" in message
    assert "\n" not in message
    # A set without a manifest (the original's published TFRecords) is read as it is.
    os.remove(os.path.join(data_dir, "train", "train-r05.manifest.json"))
    assert get_data(tfr_hps(data_dir)).train_files == tuple(files)


@pytest.mark.parametrize("split, record", [("train", 1), ("validation", 0)])
def test_a_corrupt_record_in_a_later_shard_names_the_file_and_the_fix(cifar_copy, split, record):
    data_dir, _ = cifar_copy
    files = sorted(str(p) for p in (Path(data_dir) / split).glob("*.tfrecords"))
    damaged = files[-1]
    offset = _flip_data_byte(damaged, record)
    splits = get_data(tfr_hps(data_dir))
    assert (splits.train_files if split == "train" else splits.test_files) == tuple(files)
    stream = splits.train if split == "train" else splits.test
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(damaged)) as caught:
        take_batches(stream, 40)
    line = locate_damage(files, caught.value)
    verify_command = f"python -m tfrecords_tools.verify {shlex.quote(data_dir)}"
    assert line == (f"{damaged}: record {record} at byte {offset}: the data fails its checksum; the rest of the file "
                    f"cannot be read: run `{verify_command}` to list every damaged record and re-convert the set, "
                    f"or pass --skip_corrupt_records to skip damaged records")
    assert locate_damage(files, caught.value, skip_flag=None).endswith("and re-convert the set")


def test_a_shard_cut_inside_a_record_header_stops_training_naming_it(cifar_copy):
    """TensorFlow's reader takes a file that ends inside a record header for a clean end of file."""
    data_dir, files = cifar_copy
    os.remove(os.path.join(data_dir, "train", "train-r05.manifest.json"))  # as the original's sets
    cut = files[2]
    last = list(fmt.walk_records(cut))[-1][0]
    with open(cut, "r+b") as f:
        f.truncate(last + 7)
    n_read = sum(1 for _ in tf.data.TFRecordDataset(cut))  # no error: it just stops
    splits = get_data(tfr_hps(data_dir))
    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        take_batches(splits.train, 40)
    assert locate_damage(splits.train_files, caught.value).startswith(
        f"{cut}: record {n_read} at byte {last}: truncated: the file ends 7 bytes "
        f"into the 12-byte record header; the rest of the file cannot be read: run `python -m tfrecords_tools.verify "
        f"{shlex.quote(data_dir)}`")


def test_tensorflows_own_error_is_traced_to_its_file(cifar_copy):
    """A DataLossError from a plain TFRecordDataset names no file; locate_damage finds it."""
    data_dir, files = cifar_copy
    offset = _flip_data_byte(files[1], 2)
    with pytest.raises(tf.errors.DataLossError) as caught:
        for _ in tf.data.TFRecordDataset(files):
            pass
    assert files[1] not in caught.value.message
    assert locate_damage(files, caught.value).startswith(
        f"{files[1]}: record 2 at byte {offset}: the data fails its checksum; run `python -m tfrecords_tools.verify "
        f"{shlex.quote(data_dir)}`")
    assert locate_damage(files, tf.errors.ResourceExhaustedError(None, None, "OOM when allocating")) is None
    assert locate_damage(files, ValueError("a bug")) is None


def test_skip_corrupt_records_reads_every_intact_record_and_counts_the_rest(cifar_copy, capfd):
    data_dir, files = cifar_copy
    damaged = files[0]
    _flip_data_byte(damaged, 2)
    intact = _intact(files, damaged, 2)
    lost = len(list(fmt.walk_records(damaged))) - 2
    hps = tfr_hps(data_dir, skip_corrupt_records=True)
    splits = get_data(hps)
    assert splits.skipped_summary() is None
    # Training passes are not mixed by the shuffle: the first pass is every intact record once.
    it = iter(splits.train)
    first_pass = [next(it)[0].numpy()[0].tobytes() for _ in range(len(intact))]
    assert sorted(first_pass) == sorted(intact)
    # The prefetching reader may already be on a later pass, so the line is checked for consistency with
    # itself (every read of the damaged file lost the same records) rather than against a second reading.
    summary = splits.skipped_summary()
    found = re.fullmatch(r"data: skipped (\d+) records \((\d+) bytes\) of damaged TFRecord files in (\d+) reads "
                         r"so far \(--skip_corrupt_records; the 'data: skipped' lines name the files\)", summary)
    assert found, summary
    records, n_bytes, passes = (int(g) for g in found.groups())
    assert passes >= 1 and records == lost * passes and n_bytes > 0 and n_bytes % passes == 0, summary
    assert f"data: skipped the rest of {damaged} after record 2" in capfd.readouterr().err
    # The stream's position still saves and restores (data_loaders.position) with the count outside it.
    expected = [next(it)[0].numpy() for _ in range(6)]
    again = iter(get_data(hps).train)
    for _ in range(len(intact)):
        next(again)
    prefix = tf.train.Checkpoint(iterator=again).write(os.path.join(data_dir, "position"))
    restored = iter(get_data(hps).train)
    tf.train.Checkpoint(iterator=restored).read(prefix).assert_consumed()
    for want in expected:
        np.testing.assert_array_equal(next(restored)[0].numpy(), want)


# ------------------------------------------------------------------------------------------------------
# The registry and the layering of the packages.

def test_a_new_problem_is_one_registry_entry(cifar_tfr, monkeypatch):
    monkeypatch.setitem(problems.REGISTRY, "my_photos", problems.Problem(
        "my_photos", problems.TFRECORDS, image_size=32, n_classes=1, n_test=3, data_dir=cifar_tfr[0]))
    hps = HParams(problem="my_photos", n_levels=2, n_batch_train=1)
    assert hps.image_shape == (32, 32, 3) and hps.n_classes == 1
    splits = get_data(hps)
    x, _ = take_batches(splits.test, splits.test_its)
    assert sorted(keys(x)) == sorted(cifar_tfr[1]["validation"])


def test_the_original_per_problem_defaults():
    """openai/glow train.py's -1 defaults and get_data.py's folders and validation sizes."""
    sizes = {name: HParams(problem=name).image_shape[0] for name in problems.with_default_size()}
    assert sizes == {"mnist": 32, "fashion_mnist": 32, "cifar10": 32, "imagenet-oord": 64, "imagenet": 256,
                     "celeba": 256, "lsun_realnvp": 64, "lsun": 256}
    assert {n: HParams(problem=n).n_classes for n in sizes} == {
        "mnist": 10, "fashion_mnist": 10, "cifar10": 10, "imagenet-oord": 1000, "imagenet": 1000, "celeba": 1,
        "lsun_realnvp": 1, "lsun": 1}
    assert [problems.find(n).default_n_test(8) for n in ("celeba", "imagenet", "lsun", "lsun_realnvp")] == \
        [3000, 50000, 2400, 2400]
    assert problems.find("celeba").data_dir == "/mnt/host/celeba-reshard-tfr"
    assert problems.find("tfds:mnist").source == problems.TFDS and problems.find("nope") is None


# ------------------------------------------------------------------------------------------------------
# TensorFlow Datasets.

def test_tfds_source_with_mock_data():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=20):
        splits = get_data(hp(problem="tfds:mnist", image_size=32, n_batch_train=4, n_test=4, n_levels=2),
                          rank=1, size=2)
        x, y = next(iter(splits.train))
        assert x.shape == (4, 32, 32, 3) and x.dtype == tf.uint8 and y.dtype == tf.int32
        np.testing.assert_array_equal(x[..., 0], x[..., 2])  # grey tiled
        xt, _ = take_batches(splits.test, splits.test_its)
        assert xt.shape == (2, 32, 32, 3) and splits.local_batch_test == 2


def test_tfds_unknown_dataset_is_a_data_error():
    with pytest.raises(DataError, match="TFDS has no dataset 'no_such_dataset'"):
        get_data(hp(problem="tfds:no_such_dataset", image_size=32))


def test_lsun_96_and_128_run_from_256_shards(tmp_path):
    """The original's LSUN 96/128 commands: per-GPU batches 7 and 4, read from 256x256 (r08) shards."""
    images = [fx.centre_resize(path, 256) for path, _ in fx.samples("imagenet")[:3]]
    for split in ("train", "validation"):
        write_records(str(tmp_path / "tower" / split / fmt.shard_name(split, 8, 0, 1)),
                      [(img, 0) for img in images])
    # 96: 64 * 32^2 // 96^2 = 7 per GPU, outside the original's test table; 6 divides LSUN's 300.
    for size, batch, test_batch in ((128, 4, 2), (96, 7, 6)):
        hps = hp(problem="lsun", data_dir=str(tmp_path), category="tower", image_size=size, n_batch_train=64,
                 n_levels=5)
        splits = get_data(hps)
        assert (splits.local_batch_train, splits.local_batch_test, splits.n_test) == (batch, test_batch, 300)
        x, _ = next(iter(splits.test))
        assert x.shape == (test_batch, size, size, 3) and x.dtype == tf.uint8
        if size == 128:  # an exact 2x2 area average of the stored pixels
            expected = images[0].astype(np.float64).reshape(128, 2, 128, 2, 3).mean(axis=(1, 3))
            assert np.abs(x.numpy()[0].astype(np.float64) - expected).max() <= 0.5 + 1e-3


# ---------------------------------------------------------------------------------------------------------
# Any picture prepared as a problem's data (data_loaders.images)

@fx.needs_fashion
@pytest.mark.parametrize("image_size,n_channels", [(32, 3), (16, 3), (28, 1), (32, 1)])
def test_a_picture_is_prepared_as_the_reader_prepares_the_problems_images(image_size, n_channels):
    """A Fashion-MNIST test image saved as a 28x28 PNG comes back from fit_image exactly as the in-memory
    reader gives it to the model: padded to 32 as the original, box-downsampled, grey in every channel."""
    from PIL import Image

    from data_loaders.images import fit_image

    hps = HParams(problem="fashion_mnist", image_size=image_size, n_channels=n_channels, n_levels=2, n_test=8,
                  n_batch_train=4, anchor_size=image_size, n_batch_init=4)
    x, _ = next(iter(get_data(hps).test))
    with gzip.open(os.path.join(fx.FASHION_MNIST_DIR, "t10k-images-idx3-ubyte.gz")) as f:
        raw = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:len(x)]
    prepared = np.stack([fit_image(Image.fromarray(image), hps, "test image") for image in raw])
    np.testing.assert_array_equal(prepared, x.numpy())


def test_a_colour_photo_given_to_a_grey_problem_becomes_grey_in_every_channel():
    """The reason the demo's reconstructions of colour photos by a Fashion-MNIST model went black: the photo
    reached the model in colours its grey training data never had."""
    from PIL import Image

    from data_loaders.images import fit_image

    path = fx.samples("imagenet")[0][0]
    hps = HParams(problem="fashion_mnist", image_size=32, n_levels=2)
    with Image.open(path) as img:
        x = fit_image(img, hps, path)
        colour = np.asarray(img.convert("RGB"))
    assert x.shape == (32, 32, 3) and np.array_equal(x[..., 0], x[..., 1]) and np.array_equal(x[..., 1], x[..., 2])
    assert not np.array_equal(colour[..., 0], colour[..., 1])  # the photo itself is in colour
    assert x[:2].max() == 0 and x[:, :2].max() == 0 and x[2:30, 2:30].max() > 0  # the original's zero border
    with Image.open(path) as img:  # an RGB problem keeps the colours: centre crop and Lanczos resize only
        side = min(img.size)
        left, top = (img.width - side) // 2, (img.height - side) // 2
        expected = np.asarray(img.convert("RGB").crop((left, top, left + side, top + side))
                              .resize((32, 32), Image.LANCZOS))
        np.testing.assert_array_equal(fit_image(img, HParams(problem="cifar10", image_size=32, n_levels=2), path),
                                      expected)


def test_a_picture_smaller_than_the_models_data_is_refused_naming_both_sizes(tmp_path):
    from PIL import Image

    from data_loaders.images import read_image

    Image.new("L", (20, 30)).save(tmp_path / "small.png")
    hps = HParams(problem="fashion_mnist", image_size=32, n_levels=2)
    with pytest.raises(DataError, match=r"small.png is 20x30, smaller than the 28x28 images the model's 32x32 data "
                                        r"is made from; give a picture whose shorter side is at least 28 pixels"):
        read_image(str(tmp_path / "small.png"), hps)
    (tmp_path / "not.png").write_bytes(b"no image")
    with pytest.raises(DataError, match="not.png is not a readable image"):
        read_image(str(tmp_path / "not.png"), hps)
