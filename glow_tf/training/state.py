"""The training loop's counters, saved in every checkpoint so that a resumed run continues exactly."""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

# What every step reports, in the original's order (openai/glow train.py, model.train's results).
STATS = ("loss", "bits_x", "bits_y", "pred_loss")


@dataclasses.dataclass
class Progress:
    """Where the run stands, as plain Python numbers (the loop's working copy of TrainState)."""

    step: int = 0  # training steps done
    epoch: int = 0  # epochs completed
    epoch_step: int = 0  # steps into the epoch after `epoch`
    n_processed: int = 0  # images at anchor_size (the warmup's clock)
    n_images: int = 0  # images actually seen
    train_time: float = 0.0  # seconds spent in training steps
    test_loss_best: float = 999999.0  # the original's initial "best"
    data_batches: int = 0  # batches taken from this rank's training stream
    epoch_stats: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(len(STATS)))  # sums


class TrainState(tf.Module):
    """`Progress` as variables, so that tf.train.Checkpoint saves it with the weights."""

    def __init__(self):
        super().__init__(name="train_state")
        defaults = Progress()
        self.step = tf.Variable(defaults.step, dtype=tf.int64, trainable=False)
        self.epoch = tf.Variable(defaults.epoch, dtype=tf.int64, trainable=False)
        self.epoch_step = tf.Variable(defaults.epoch_step, dtype=tf.int64, trainable=False)
        self.n_processed = tf.Variable(defaults.n_processed, dtype=tf.int64, trainable=False)
        self.n_images = tf.Variable(defaults.n_images, dtype=tf.int64, trainable=False)
        self.train_time = tf.Variable(defaults.train_time, dtype=tf.float64, trainable=False)
        self.test_loss_best = tf.Variable(defaults.test_loss_best, dtype=tf.float64, trainable=False)
        self.data_batches = tf.Variable(defaults.data_batches, dtype=tf.int64, trainable=False)
        # The current epoch's sums of the step results: its train.txt line averages every step of the
        # epoch even when the epoch was interrupted and resumed (a checkpoint older than this field
        # restores zeros here).
        self.epoch_stats = tf.Variable(defaults.epoch_stats, dtype=tf.float64, trainable=False)

    def _pairs(self):
        return [(f.name, getattr(self, f.name)) for f in dataclasses.fields(Progress)]

    def read(self) -> Progress:
        values = {name: var.numpy() for name, var in self._pairs()}
        return Progress(**{k: (v if k == "epoch_stats" else v.item()) for k, v in values.items()})

    def write(self, progress: Progress) -> None:
        for name, var in self._pairs():
            var.assign(getattr(progress, name))

    @property
    def all(self):
        return [var for _, var in self._pairs()]
