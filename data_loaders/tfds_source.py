"""A TensorFlow Datasets source, `--problem tfds:NAME[/CONFIG]` (an extension; the original had none).

Maps any TFDS image dataset to the same per-rank batches as the other sources: uint8 [B, H, W, C] images
at hps.image_size and int32 labels (0 where the dataset has none). Images of another size are centre-
cropped to a square and resized with antialiasing; grey images are tiled to n_channels.

It never downloads unless `allow_download=True`: a dataset that is not prepared under --data_dir (or TFDS'
default folder) is a DataError. Tests use `tfds.testing.mock_data`.

`get_data` reads these attributes of hps: problem, data_dir, image_shape, n_channels, n_test,
n_batch_train, anchor_size, local_batch_train() and seed.
"""

from __future__ import annotations

from typing import Optional, Tuple

import tensorflow as tf

from data_loaders import common, problems
from data_loaders.errors import DataError

TEST_SPLITS = ("test", "validation")


def parse_name(problem: str) -> Tuple[str, Optional[str]]:
    """'tfds:celeb_a_hq/256' -> ('celeb_a_hq', '256')."""
    spec = problem[len(problems.TFDS_PREFIX):]
    name, _, config = spec.partition("/")
    if not name:
        raise DataError(f"problem {problem!r}: expected tfds:NAME or tfds:NAME/CONFIG")
    return name, config or None


def _builder(hps, allow_download: bool):
    import tensorflow_datasets as tfds  # heavy; only this source needs it

    name, config = parse_name(hps.problem)
    try:
        builder = tfds.builder(name, config=config, data_dir=hps.data_dir or None)
    except Exception as err:  # tfds raises its own DatasetNotFoundError / ValueError variants
        raise DataError(f"problem {hps.problem!r}: TFDS has no dataset {name!r}"
                        f"{f' with config {config!r}' if config else ''} ({type(err).__name__})") from None
    if allow_download:
        builder.download_and_prepare()
    return builder


def _image_key(features) -> str:
    import tensorflow_datasets as tfds

    keys = [k for k, f in features.items() if isinstance(f, tfds.features.Image)]
    if "image" in keys:
        return "image"
    if not keys:
        raise DataError(f"TFDS features {sorted(features.keys())} hold no image")
    return keys[0]


def _to_target(image, size: int, n_channels: int):
    """Centre square crop and antialiased resize to size x size, then channels to n_channels."""
    shape = tf.shape(image)
    if image.shape[:2] != (size, size):
        side = tf.minimum(shape[0], shape[1])
        image = tf.image.crop_to_bounding_box(image, (shape[0] - side) // 2, (shape[1] - side) // 2, side, side)
        image = tf.image.resize(image, [size, size], method="area", antialias=True)
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    channels = image.shape[-1]
    if channels == 1 and n_channels != 1:
        image = tf.tile(image, [1, 1, n_channels])
    elif channels != n_channels:
        raise DataError(f"TFDS images have {channels} channels, expected n_channels={n_channels}")
    return tf.ensure_shape(image, [size, size, n_channels])


def get_data(hps, rank: int, size: int, allow_download: bool = False) -> common.DataSplits:
    builder = _builder(hps, allow_download)
    info = builder.info
    splits = list(info.splits.keys())
    # A builder without generated metadata (tfds.testing.mock_data) knows no splits; assume the usual.
    known = bool(splits)
    test_split = next((s for s in TEST_SPLITS if s in splits), None) if known else "test"
    if known and ("train" not in splits or test_split is None):
        raise DataError(f"TFDS dataset {hps.problem!r} has splits {splits}; expected train and test or "
                        f"validation")
    key = _image_key(info.features)
    has_label = "label" in info.features
    image_size = hps.image_shape[0]
    batch_train = common.local_batch_train(hps)
    if hps.n_test is None and not known:
        raise DataError(f"TFDS dataset {hps.problem!r} does not say its test size; pass --n_test")
    n_test = hps.n_test if hps.n_test is not None else info.splits[test_split].num_examples
    batch_test = common.local_batch_test(hps, n_test, size)
    test_its = common.full_test_its(n_test, batch_test, size)
    seed = common.rank_seed(hps.seed, rank, size)

    def example(features):
        label = tf.cast(features["label"], tf.int32) if has_label else tf.constant(0, tf.int32)
        return _to_target(features[key], image_size, hps.n_channels), label

    def load(split, train):
        try:
            ds = builder.as_dataset(split=split, shuffle_files=False)
        except Exception as err:  # not prepared: tfds asks for download_and_prepare
            raise DataError(f"TFDS dataset {hps.problem!r} split {split!r} is not prepared under "
                            f"{builder.data_dir} ({type(err).__name__}); prepare it where there is network "
                            f"or allow downloading") from None
        ds = ds.shard(size, rank)  # examples: disjoint per rank, independent of TFDS' file count
        if not train:
            ds = ds.take(test_its * batch_test)
        ds = ds.map(example, num_parallel_calls=tf.data.AUTOTUNE)
        if train:
            ds = ds.shuffle(16 * batch_train, seed=seed, reshuffle_each_iteration=True)
        batch = batch_train if train else batch_test
        return ds.repeat().batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    return common.DataSplits(train=load("train", True), test=load(test_split, False),
                             local_batch_train=batch_train, local_batch_test=batch_test, test_its=test_its,
                             n_test=n_test)
