"""The compiled steps of training: one update, one validation batch, a finiteness check of the weights.

The counterparts of the original's `model.train` and `model.test` (openai/glow train.py and model.py):
a step returns the rank averages of the original's four results (`STATS`).
"""

from __future__ import annotations

import tensorflow as tf

from glow_tf.training.optim import tf_variable
from glow_tf.training.state import STATS

# Requests a rank can make of all ranks with a step (see train_step): stop (a signal), save (its save
# interval passed), hosts (an elastic job's hosts changed: commit now, so that every rank resets there).
FLAGS = ("stop", "save", "hosts")


def make_steps(model, optimizer, ema, dist, hps):
    """(train_step, test_step) tf.functions for `model` with the original's optimizer and Polyak average."""
    trainable = [tf_variable(v) for v in model.trainable_variables]

    def loss_and_grads(x, y, seed):
        with tf.GradientTape() as tape:
            terms = model.objective_terms(x, y, training=True, noise_seed=seed)
            loss = tf.reduce_mean(terms["loss"])
        # Unused variables (e.g. a classifier's, with weight_y = 0) get zeros rather than None.
        grads = tape.gradient(loss, trainable, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return tf.stack([tf.reduce_mean(terms[k]) for k in STATS]), grads

    if hps.jit_compile:
        # XLA around the model alone: Horovod's ops cannot be compiled (its XLA ops are built out).
        loss_and_grads = tf.function(loss_and_grads, jit_compile=True)

    @tf.function
    def train_step(x, y, lr, seed, flags):
        """One update. Returns [STATS..., FLAGS...] averaged over ranks.

        `seed` [2] int64 = (rank seed, step) fixes the dequantisation noise, so a resume is exact.
        `flags` [len(FLAGS)] float32 ride on the results' allreduce for free: a rank that wants every
        rank to stop (a signal) or to save (its save interval passed) sets one, and all ranks see a
        positive average after the same step.
        """
        stats, grads = loss_and_grads(x, y, seed)
        optimizer.apply_gradients(grads, trainable, lr)  # averages the gradients over ranks
        ema.apply(trainable)  # ordered after the update by tf.function's automatic control dependencies
        return dist.allreduce_mean([tf.concat([stats, flags], 0)])[0]

    @tf.function
    def test_step(x, y, seed):
        """One validation batch; `seed` [2] int64 fixes its dequantisation noise (see Trainer.evaluate)."""
        terms = model.objective_terms(x, y, training=False, noise_seed=seed)
        return dist.allreduce_mean([tf.stack([tf.reduce_mean(terms[k]) for k in STATS])])[0]

    return train_step, test_step


def make_finite_check(variables):
    """A tf.function that is True when every value of every variable is finite (one reduction)."""
    variables = [tf_variable(v) for v in variables]

    @tf.function
    def all_finite():
        return tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in variables if v.dtype.is_floating])

    return all_finite
