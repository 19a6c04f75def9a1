"""What the tool, export and demo tests share: a tiny checkpoint written as train.py writes one, TFRecords
with CelebA's attributes, and an honest comparison of a reconstruction with its image."""

import dataclasses
import json

import numpy as np
import tensorflow as tf

from glow_tf import Glow
from glow_tf.presets import tiny
from glow_tf.training.optim import PolyakAverage
from tests import data_fixtures as fx
from tests.flow_checks import randomize_weights
from tests.images import imagenet_samples

TINY_HPS = tiny()


def make_checkpoint(logdir, hps=TINY_HPS, seed=0, ema=False):
    """A Glow initialised on real 8x8 images, perturbed, saved as <logdir>/checkpoints/ckpt-1 + hparams.json.

    With `ema`, a Polyak average holding the weights from before the perturbation is saved too, as
    train.py does; (model, average) is returned then.
    """
    tf.keras.utils.set_random_seed(seed)
    model = Glow(hps)
    model.initialize(imagenet_samples(hps.image_shape[0], n=8))
    average = PolyakAverage(model.trainable_variables, decay=0.0) if ema else None
    randomize_weights(model, scale=0.05, seed=seed)
    folder = logdir / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "hparams.json").write_text(json.dumps(dataclasses.asdict(hps)))
    objects = {"model": model, **({"ema": average} if ema else {})}
    tf.train.CheckpointManager(tf.train.Checkpoint(**objects), str(folder), max_to_keep=1,
                               checkpoint_name="ckpt").save()
    return (model, average) if ema else model


def assert_reconstructs(actual, expected):
    """Equal but for at most 2% of subpixels, each off by at most one level (model.py encode/decode, float32 edges)."""
    diff = np.abs(actual.astype(int) - expected.astype(int))
    assert diff.max() <= 1, f"reconstruction off by {diff.max()} levels"
    assert np.mean(diff > 0) <= 0.02, f"{np.mean(diff > 0):.1%} of subpixels differ"


def write_attr_records(path, images, attrs, labels=None):
    """TFRecords in the original format (openai/glow data_loaders/get_data.py): shape, data, label and
    CelebA's attr int64[40]."""
    labels = [0] * len(images) if labels is None else labels
    fx.write_records(str(path), [(image, label, *([attrs[i]] if attrs is not None else []))
                                 for i, (image, label) in enumerate(zip(images, labels))])
