"""Find and load the checkpoints that train.py writes, for evaluation, sampling and export.

A run's logdir holds `checkpoints/ckpt-<step>` (the latest, from CheckpointManager) and
`model_best_loss/model_best_loss.ckpt-<step>` (the original's best-loss checkpoint), each folder with the
run's `hparams.json`. Every tool accepts any of: the logdir, one of those folders, or a checkpoint prefix.
"""

from __future__ import annotations

import dataclasses
import json
import os

import tensorflow as tf

from glow_tf.hparams import HParams

CHECKPOINT_DIR = "checkpoints"
BEST_DIR = "model_best_loss"
HPS_FILE = "hparams.json"


class CheckpointError(ValueError):
    """A checkpoint path that holds no checkpoint, or one that does not fit the model."""


def resolve(path: str) -> str:
    """The checkpoint prefix for a logdir, a checkpoint folder or a prefix (latest first, then best)."""
    if not path:
        raise CheckpointError("no checkpoint given (expected a logdir, a checkpoint folder or a prefix)")
    if os.path.isdir(path):
        for folder in (path, os.path.join(path, CHECKPOINT_DIR), os.path.join(path, BEST_DIR)):
            prefix = tf.train.latest_checkpoint(folder) if os.path.isdir(folder) else None
            if prefix:
                return prefix
        raise CheckpointError(f"no checkpoint in {path} (looked in it, in {CHECKPOINT_DIR}/ and in {BEST_DIR}/)")
    if tf.io.gfile.exists(path + ".index"):
        return path
    raise CheckpointError(f"no checkpoint at {path}: neither a folder nor a prefix with an .index file")


def load_hparams(path: str, **overrides) -> HParams:
    """The HParams saved next to a checkpoint, with `overrides` applied (e.g. data_dir, n_test)."""
    prefix = resolve(path)
    hps_path = os.path.join(os.path.dirname(prefix), HPS_FILE)
    if not os.path.isfile(hps_path):
        raise CheckpointError(f"{hps_path} is missing: the checkpoint's configuration is unknown "
                              f"(pass the model flags explicitly)")
    try:
        with open(hps_path) as f:
            fields = json.load(f)
        names = {f.name for f in dataclasses.fields(HParams)}
        return HParams(**{k: v for k, v in {**fields, **overrides}.items() if k in names})
    except (OSError, ValueError, TypeError) as err:
        raise CheckpointError(f"{hps_path}: unreadable hyperparameters ({err})") from None


def load_model(path: str, hps: HParams | None = None, ema: bool = False):
    """(model, hps, prefix): a Glow with the checkpoint's weights (the Polyak average with `ema`)."""
    from glow_tf.model import Glow
    from glow_tf.optim import PolyakAverage

    prefix = resolve(path)
    hps = hps or load_hparams(prefix)
    model = Glow(hps)
    objects = {"model": model}
    if ema:
        if not any(name.startswith("ema/") for name, _ in tf.train.list_variables(prefix)):
            raise CheckpointError(f"{prefix} holds no Polyak average (ema); load it without --ema")
        objects["ema"] = PolyakAverage(model.trainable_variables, decay=0.0)
    try:
        status = tf.train.Checkpoint(**objects).read(prefix)
        status.expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as err:
        raise CheckpointError(f"{prefix} does not match the model of its hparams "
                              f"({str(err).splitlines()[0]})") from None
    if ema:
        objects["ema"].swap(model.trainable_variables)
    if not model.initialized:
        raise CheckpointError(f"{prefix}: the model's ActNorm layers were never initialised")
    return model, hps, prefix
