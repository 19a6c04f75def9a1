#!/usr/bin/env python
"""Train Glow: port of openai/glow train.py (spec §1 flags, §3 training).

    python train.py --problem fashion_mnist --preset fashion_small --logdir logs/fashion_small
    horovodrun -np 8 python train.py --problem cifar10 --n_level 3 --depth 32 --flow_coupling 1 --learntop

Reads top to bottom like the original: Horovod -> data -> Glow -> data-dependent init or restore ->
broadcast from rank 0 -> epochs of `train_its` steps, with validation, checkpoints and sample grids on the
original's schedule. Every flag of the original keeps its name, default and meaning (`HParams`). What
differs, and why:

* Horovod is optional: without it, or without a launcher, the same code runs as rank 0 of 1.
* Checkpoints go through `tf.train.CheckpointManager` (atomic) with the hps next to them: the original's
  best-loss checkpoint (`model_best_loss/`) plus the latest ones (`checkpoints/`), written every epoch.
* `--resume` (on by default) continues a run from `checkpoints/`: step, epoch, images processed (hence the
  warmup), optimizer state, Polyak average and data position carry on. `--restore_path` keeps the
  original's meaning: weights and optimizer restored, counters restarted.
* Bad input (flags, data, a checkpoint of another configuration) stops with one clear error before
  anything in the logdir is written; a non-finite loss stops training and keeps the last good checkpoint.
* `--max_steps` stops early; `--eval_ema` validates and samples with the Polyak average (which the original
  maintained but never used); `--jit_compile` XLA-compiles the forward/backward pass.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import math
import os
import sys
import time
import typing

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from data_loaders.common import rank_seed  # noqa: E402
from data_loaders.position import position_key, resume_position, save_position  # noqa: E402
from glow_tf import hparams as hparams_lib  # noqa: E402
from glow_tf import checkpoints  # noqa: E402
from glow_tf.checkpoints import BEST_DIR, CHECKPOINT_DIR, HPS_FILE  # noqa: E402
# Horovod when launched by horovodrun/mpirun, else rank 0 of 1 with the same interface (spec §3.7).
from glow_tf.distributed import DistributedError, configure_devices, init_distributed  # noqa: E402
from glow_tf.hparams import HParams  # noqa: E402
from glow_tf.optim import OPTIMIZERS, GlowOptimizer, PolyakAverage, tf_variable, warmup_lr  # noqa: E402
from glow_tf.tools_common import grid  # noqa: E402

STATS = ("loss", "bits_x", "bits_y", "pred_loss")  # the original's per-step results, in its order
TEMPERATURES = (0.0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # draw_samples (spec §3.8)
# Fields that decide the variables and what they mean: a checkpoint is only usable when these agree.
MODEL_FIELDS = ("image_shape", "n_levels", "depth", "width", "flow_permutation", "flow_coupling",
                "n_bits_x", "learntop", "ycond", "n_classes")
LATEST_KEPT = 2  # latest checkpoints kept, and the stream positions saved with them
# Fields that define a rank's training stream: a saved stream position is only restored when these agree.
DATA_FIELDS = ("problem", "category", "data_dir", "dal", "fmap", "pmap", "n_train", "n_batch_train",
               "anchor_size", "image_shape", "n_channels", "seed")


class ConfigError(ValueError):
    """Flags, files or a checkpoint that cannot be used; the message says which and why."""


class NonFiniteLoss(RuntimeError):
    """Training produced a NaN or infinite loss."""


# ---------------------------------------------------------------------------------------------------------
# Command line (spec §1): generated from HParams, so every original flag keeps its name and default.

HELP = {
    "verbose": "rank 0 prints n_processed, step time and the stats every step",
    "restore_path": "checkpoint (prefix, folder or logdir) to start from: weights, optimizer and Polyak average "
                    "are restored, counters restart, data-dependent init is skipped",
    "inference": "encode and decode the validation set, write x.npy and z.npy to the logdir, and exit",
    "logdir": "where train.txt, test.txt, TensorBoard events, checkpoints and samples go",
    "problem": "dataset: mnist, fashion_mnist, cifar10, imagenet-oord, imagenet, celeba, lsun_realnvp, "
               "lsun, tfrecords, tfds:NAME",
    "category": "LSUN category (appended to data_dir)",
    "data_dir": "data location; empty: the problem's default",
    "dal": "data augmentation level for mnist/cifar10: 0 none, 1 shifts, 2 extra",
    "fmap": "TFRecord files read in parallel", "pmap": "parallel calls of the parse map",
    "n_train": "images (at anchor_size) per 'epoch'; the same for every problem",
    "n_test": "validation images; default: the problem's validation set",
    "n_batch_train": "per-GPU batch at anchor_size", "n_batch_test": "unused (as in the original)",
    "n_batch_init": "per-GPU data-dependent-init batch at anchor_size",
    "optimizer": "adamax (the paper's), adam or adam2", "lr": "base learning rate (not scaled by GPUs)",
    "beta1": "first-moment decay",
    "polyak_epochs": "beta2 and the Polyak decay are 1 - 1/(train_its*polyak_epochs)",
    "weight_decay": "multiplicative weight decay, w <- wd*w - step; 1.0 is off",
    "epochs": "training runs epochs 1 .. epochs-1, as in the original",
    "epochs_warmup": "linear learning-rate warmup, in epochs of n_train images",
    "epochs_full_valid": "full validation (and best-loss checkpoint) every N epochs",
    "gradient_checkpointing": "1: recompute each flow step in the backward pass (tf.recompute_grad)",
    "image_size": "image side; default: the problem's", "anchor_size": "per-GPU batch = "
                  "n_batch_train * anchor_size^2 // image_size^2",
    "width": "hidden channels of the coupling network", "depth": "flow steps per level",
    "weight_y": "weight of the class-prediction loss (with --ycond)", "n_bits_x": "bits per subpixel",
    "n_levels": "levels of the multi-scale flow (the README's --n_level works too)",
    "n_sample": "unused (as in the original)", "epochs_full_sample": "sample grids every N epochs",
    "learntop": "learned top prior", "ycond": "class-conditional top prior",
    "seed": "seed; each rank uses rank + size*seed",
    "flow_permutation": "0 reverse, 1 shuffle, 2 invertible 1x1 conv, 3 its LU form",
    "flow_coupling": "0 additive, 1 affine",
    "n_channels": "image channels", "n_y": "number of classes; default: the problem's",
    "eval_ema": "validate and sample with the Polyak average instead of the raw weights",
    "resume": "continue from the logdir's latest checkpoint if it has one (--no-resume: start afresh "
              "and replace it)",
    "max_steps": "stop after this many training steps in total", "jit_compile":
        "XLA-compile the forward/backward pass (the cross-rank averaging stays outside)",
    "nn_dtype": "precision of the coupling networks' convolutions: float32 (the original), bfloat16 or "
                "float16 (faster where the hardware has them); the flow and its log-dets stay float32",
}


def build_parser(defaults: HParams) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Train Glow (a TensorFlow 2 port of openai/glow).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--preset", choices=sorted(hparams_lib.PRESETS), default=None,
                        help="start from a preset configuration; explicit flags override it")
    hints = typing.get_type_hints(HParams)
    for field in dataclasses.fields(HParams):
        names = [f"--{field.name}"] + (["--n_level"] if field.name == "n_levels" else [])
        kind = hints[field.name]
        default = getattr(defaults, field.name)
        help_text = HELP.get(field.name, "")
        if kind is bool:
            # --flag like the original's store_true; --no-flag undoes a preset's or a default's True.
            parser.add_argument(*names, action=argparse.BooleanOptionalAction, default=default,
                                help=help_text)
        elif kind is str:
            parser.add_argument(*names, type=str, default=default, help=help_text)
        else:
            base = typing.get_args(kind)[0] if typing.get_origin(kind) is typing.Union else kind
            # The original used -1 for "problem default"; it maps to None here.
            convert = _optional(base) if base is not kind else base
            parser.add_argument(*names, type=convert, default=default, help=help_text)
    return parser


def _optional(base):
    def convert(text):
        value = base(text)
        return None if value == -1 else value
    convert.__name__ = base.__name__
    return convert


def parse_hparams(argv=None) -> HParams:
    """HParams from a command line: `--preset` first, then every explicit flag on top of it."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--preset", choices=sorted(hparams_lib.PRESETS), default=None)
    known, _ = pre.parse_known_args(argv)
    base = hparams_lib.PRESETS[known.preset]() if known.preset else HParams()
    args = vars(build_parser(base).parse_args(argv))
    args.pop("preset")
    try:
        return HParams(**args)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def validate(hps: HParams) -> None:
    """Flag checks that need no data (the data checks are get_data's). Raises ConfigError."""
    checks = [
        (hps.lr > 0, f"lr={hps.lr} must be positive"),
        (hps.optimizer in OPTIMIZERS, f"optimizer={hps.optimizer!r} is not one of {', '.join(OPTIMIZERS)}"),
        (0 <= hps.beta1 < 1, f"beta1={hps.beta1} must be in [0, 1)"),
        (hps.polyak_epochs > 0, f"polyak_epochs={hps.polyak_epochs} must be positive"),
        (hps.weight_decay > 0, f"weight_decay={hps.weight_decay} must be positive (1.0 is off)"),
        (hps.n_train > 0, f"n_train={hps.n_train} must be positive"),
        (hps.epochs_warmup >= 0, f"epochs_warmup={hps.epochs_warmup} must be >= 0"),
        (hps.epochs_full_valid > 0, f"epochs_full_valid={hps.epochs_full_valid} must be positive"),
        (hps.epochs_full_sample > 0, f"epochs_full_sample={hps.epochs_full_sample} must be positive"),
        (hps.weight_y >= 0, f"weight_y={hps.weight_y} must be >= 0"),
        (hps.max_steps is None or hps.max_steps > 0, f"max_steps={hps.max_steps} must be positive"),
        (hps.anchor_size > 0, f"anchor_size={hps.anchor_size} must be positive"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    if hps.local_batch_init() < 1:
        raise ConfigError(f"n_batch_init={hps.n_batch_init} at anchor_size={hps.anchor_size} gives "
                          f"{hps.n_batch_init} * {hps.anchor_size}^2 // {hps.image_shape[0]}^2 = 0 images "
                          f"for data-dependent init; raise n_batch_init")


def model_signature(hps: HParams) -> dict:
    """What a checkpoint's variables depend on: the model fields, the classifier and the optimizer slots."""
    signature = {name: _jsonable(getattr(hps, name)) for name in MODEL_FIELDS}
    signature["classifier"] = bool(hps.ycond and hps.weight_y > 0)
    signature["first_moment (beta1 > 0)"] = hps.beta1 > 0
    return signature


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


def check_compatible(hps: HParams, checkpoint_dir: str, what: str) -> None:
    """Refuse a checkpoint written for another model (hparams.json saved next to it)."""
    path = os.path.join(checkpoint_dir, HPS_FILE)
    if not os.path.isfile(path):
        return  # e.g. a converted TF1 checkpoint; the restore itself still checks every variable's shape
    try:
        with open(path) as f:
            saved = HParams(**json.load(f))
    except (OSError, ValueError, TypeError) as err:
        raise ConfigError(f"{path}: unreadable hyperparameters of {what} ({err})") from None
    ours, theirs = model_signature(hps), model_signature(saved)
    diffs = [f"{k}: checkpoint {theirs[k]!r}, now {ours[k]!r}" for k in ours if ours[k] != theirs[k]]
    if diffs:
        raise ConfigError(f"{what} in {checkpoint_dir} was written for a different configuration ("
                          + "; ".join(diffs) + "); use the same flags, or another --logdir")


def write_json_atomic(path: str, obj) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------------------
# Logs (utils.ResultLogger, graphics.save_raster).

class ResultLogger:
    """JSON lines, the hps first (utils.ResultLogger). On resume, lines past the checkpoint are dropped."""

    def __init__(self, path: str, hps_line: dict, resume_epoch: int | None = None):
        self.path = path
        lines = [json.dumps(hps_line)]
        if resume_epoch is not None and os.path.isfile(path):
            with open(path) as f:
                old = [line for line in f.read().splitlines() if line.strip()]
            lines += [line for line in old[1:] if json.loads(line).get("epoch", 0) <= resume_epoch]
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
        self.file = open(path, "a")

    def log(self, **fields):
        self.file.write(json.dumps(fields) + "\n")
        self.file.flush()


def save_grid(images: np.ndarray, path: str) -> None:
    from PIL import Image
    mosaic = grid(np.clip(images, 0, 255).astype(np.uint8))
    if mosaic.shape[-1] == 1:
        mosaic = mosaic[..., 0]
    tmp = path + ".tmp.png"
    Image.fromarray(mosaic).save(tmp)
    os.replace(tmp, path)


def process_results(results) -> dict:
    return {name: f"{value:.4f}" for name, value in zip(STATS, results)}


# ---------------------------------------------------------------------------------------------------------
# Training state and the compiled steps.

class TrainState(tf.Module):
    """The loop's counters, checkpointed with the weights so that --resume continues exactly."""

    def __init__(self):
        super().__init__(name="train_state")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)  # training steps done
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)  # epochs completed
        self.epoch_step = tf.Variable(0, dtype=tf.int64, trainable=False)  # steps into the next epoch
        self.n_processed = tf.Variable(0, dtype=tf.int64, trainable=False)  # anchor-size images
        self.n_images = tf.Variable(0, dtype=tf.int64, trainable=False)  # actual images
        self.train_time = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        self.test_loss_best = tf.Variable(999999.0, dtype=tf.float64, trainable=False)
        self.data_batches = tf.Variable(0, dtype=tf.int64, trainable=False)  # taken from splits.train

    @property
    def all(self):
        return [self.step, self.epoch, self.epoch_step, self.n_processed, self.n_images, self.train_time,
                self.test_loss_best, self.data_batches]


def make_steps(model, optimizer, ema, dist, hps):
    """tf.functions for one training step and one validation batch (the original's model.train/test)."""
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
    def train_step(x, y, lr, seed):
        """One update; `seed` [2] int64 = (rank seed, step) fixes the dequantisation noise, for resume."""
        stats, grads = loss_and_grads(x, y, seed)
        optimizer.apply_gradients(grads, trainable, lr)  # averages the gradients over ranks
        ema.apply(trainable)  # ordered after the update by tf.function's automatic control dependencies
        return dist.allreduce_mean([stats])[0]

    @tf.function
    def test_step(x, y):
        terms = model.objective_terms(x, y, training=False)
        return dist.allreduce_mean([tf.stack([tf.reduce_mean(terms[k]) for k in STATS])])[0]

    return train_step, test_step


# ---------------------------------------------------------------------------------------------------------
# The run.

class Trainer:
    """Holds the model, optimizer, Polyak average, counters and checkpoints of one run."""

    def __init__(self, hps: HParams, dist, splits):
        from glow_tf import Glow

        self.hps, self.dist, self.splits = hps, dist, splits
        self.is_chief = dist.rank == 0
        self.logdir = os.path.abspath(hps.logdir)
        self.train_its = hps.train_its(dist.size)
        self.beta2 = hps.beta2(dist.size)
        self.model = Glow(hps)
        self.trainable = list(self.model.trainable_variables)
        # Optimizer slots and Polyak shadows exist from the start, so one broadcast covers them, and the
        # shadows start from the pre-init values as the original's did (spec §3.4).
        self.optimizer = GlowOptimizer(self.trainable, hps.optimizer, beta1=hps.beta1, beta2=self.beta2,
                                       weight_decay=hps.weight_decay, allreduce_mean=dist.allreduce_mean)
        self.ema = PolyakAverage(self.trainable, self.beta2)
        self.state = TrainState()
        self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, ema=self.ema,
                                              state=self.state)
        self.weights = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, ema=self.ema)
        self.checkpoint.save_counter  # created now, so a resume restores it instead of deferring (a warning)
        self.ckpt_dir = os.path.join(self.logdir, CHECKPOINT_DIR)
        self.best_dir = os.path.join(self.logdir, BEST_DIR)
        # Each rank's training-stream position is saved beside the latest checkpoints, under a key naming
        # everything that defines the stream (data_loaders.position).
        self.data_dir = os.path.join(self.ckpt_dir, "data_position")
        self.data_key = position_key(dist.rank, dist.size, spec=repr(splits.train.element_spec),
                                     local_batch=splits.local_batch_train,
                                     **{k: getattr(hps, k) for k in DATA_FIELDS})
        self.train_step, self.test_step = make_steps(self.model, self.optimizer, self.ema, dist, hps)
        # The training noise of step t on this rank is a function of (noise_seed, t) alone, so that a
        # resumed run continues the uninterrupted run's noise (validation noise stays stateful).
        self.noise_seed = rank_seed(hps, dist.rank, dist.size)

    # -- start: resume, restore or data-dependent init, then broadcast ------------------------------
    def start(self, resume_path: str | None, restore_path: str | None) -> str:
        """Bring every rank to the same state; returns a description of where it came from."""
        if resume_path:
            _restore(self.checkpoint, resume_path, "the checkpoint to resume")
            origin = f"resumed from {resume_path} (step {int(self.state.step.numpy())})"
        elif restore_path:
            _restore(self.weights, restore_path, "--restore_path")
            origin = f"restored weights from {restore_path}"
        else:
            origin = "data-dependent init"
        # Every rank takes the same number of batches from its stream; each continues its own.
        step, batches = int(self.state.step.numpy()), int(self.state.data_batches.numpy())
        self.train_iter, how = resume_position(self.splits.train, self.data_dir, self.data_key, step, batches)
        if resume_path:
            origin += f"; data position {how}"
        if not resume_path and not restore_path:
            self.initialize()
        # Rank 0's values everywhere: its init statistics, random inits, permutations (spec §3.5).
        self.dist.broadcast(self.model.variables + self.optimizer.variables + self.ema.variables
                            + self.state.all)
        if not self.model.initialized:
            raise ConfigError(f"{origin}: the model's ActNorm layers are still uninitialised")
        return origin

    def initialize(self):
        """DDI from the first ceil(n_batch_init / local_batch) training batches, cut to local_batch_init."""
        hps = self.hps
        n_batches = int(math.ceil(hps.n_batch_init / self.splits.local_batch_train))
        xs, ys = zip(*[next(self.train_iter) for _ in range(n_batches)])
        self.state.data_batches.assign(n_batches)
        if self.is_chief:  # only rank 0's statistics survive the broadcast, so only it computes them
            n = hps.local_batch_init()
            self.model.initialize(tf.concat(xs, 0)[:n], tf.concat(ys, 0)[:n])

    # -- checkpoints ---------------------------------------------------------------------------------
    def managers(self):
        if not hasattr(self, "_latest"):
            self._latest = tf.train.CheckpointManager(self.checkpoint, self.ckpt_dir,
                                                      max_to_keep=LATEST_KEPT,
                                                      checkpoint_name="ckpt")
            self._best = tf.train.CheckpointManager(self.checkpoint, self.best_dir, max_to_keep=1,
                                                    checkpoint_name="model_best_loss.ckpt")
        return self._latest, self._best

    def save_data_position(self) -> None:
        """Every rank saves where its training stream stands (before rank 0 writes the checkpoint)."""
        save_position(self.train_iter, self.data_dir, self.data_key, int(self.state.step.numpy()),
                      keep=LATEST_KEPT)

    def save(self, best: bool = False) -> str:
        """Rank 0 writes the latest (or best-loss) checkpoint; the manager swaps it in atomically."""
        manager = self.managers()[1 if best else 0]
        folder = self.best_dir if best else self.ckpt_dir
        os.makedirs(folder, exist_ok=True)
        write_json_atomic(os.path.join(folder, HPS_FILE), dataclasses.asdict(self.hps))
        return manager.save(checkpoint_number=int(self.state.step.numpy()))

    # -- evaluation and samples ----------------------------------------------------------------------
    def evaluate(self, test_iter) -> np.ndarray:
        """Mean stats over one full validation pass, averaged over ranks (with --eval_ema: Polyak weights)."""
        with self.ema.swapped(self.trainable, self.hps.eval_ema):
            results = [self.test_step(*next(test_iter)).numpy() for _ in range(self.splits.test_its)]
        return np.mean(results, axis=0)

    def sample_grids(self):
        """draw_samples: one 10x10 (4x4 above 64 px) grid per temperature, labels = column mod n_y."""
        hps = self.hps
        rows = 10 if hps.image_shape[0] <= 64 else 4
        n = rows * rows
        y = np.asarray([c % hps.n_classes for c in list(range(rows)) * rows], np.int32)
        chunk = self.splits.local_batch_train
        grids = []
        with self.ema.swapped(self.trainable, hps.eval_ema):
            for temperature in TEMPERATURES:
                parts = [self.model.sample(len(y[i:i + chunk]), temperature=temperature, y=y[i:i + chunk])
                         for i in range(0, n, chunk)]
                grids.append(np.concatenate([np.asarray(p) for p in parts]))
        return grids


def _restore(checkpoint, prefix, what):
    """Read a checkpoint prefix (resolved by prepare) into `checkpoint`, refusing one of another model."""
    try:
        checkpoint.read(prefix).assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as err:
        raise ConfigError(f"{what}: {prefix} does not match this model ({str(err).splitlines()[0]})") from None


def hps_record(hps: HParams, dist, splits) -> dict:
    """The hps line of train.txt/test.txt: every flag plus the values the original derived onto hps."""
    record = dataclasses.asdict(hps)
    record.update(image_size=hps.image_shape[0], n_y=hps.n_classes, n_test=splits.n_test,
                  n_bins=hps.n_bins, local_batch_train=splits.local_batch_train,
                  local_batch_test=splits.local_batch_test, local_batch_init=hps.local_batch_init(),
                  train_its=hps.train_its(dist.size), full_test_its=splits.test_its, n_ranks=dist.size)
    return record


def prepare(hps: HParams, dist):
    """Every check that can fail on bad input, before anything is written. Returns (splits, resume, restore)."""
    from data_loaders import DataError, get_data

    validate(hps)
    logdir = os.path.abspath(hps.logdir)
    latest = tf.train.latest_checkpoint(os.path.join(logdir, CHECKPOINT_DIR))
    resume = latest if hps.resume else None
    if resume:
        check_compatible(hps, os.path.join(logdir, CHECKPOINT_DIR), "the checkpoint to resume")
    restore = None
    if hps.restore_path:
        try:
            restore = checkpoints.resolve(hps.restore_path)
        except checkpoints.CheckpointError as err:
            raise ConfigError(f"--restore_path: {err}") from None
        check_compatible(hps, os.path.dirname(restore), "--restore_path")
    if hps.inference and not resume and latest:
        resume = latest  # inference uses the logdir's model even with --no-resume
    try:
        splits = get_data(hps, dist.rank, dist.size, allow_download=False)
    except DataError as err:
        raise ConfigError(str(err)) from None
    return splits, resume, restore


def run(hps: HParams, dist) -> dict:
    """Train (or infer) with validated hps. Returns the last test results (for callers and tests)."""
    splits, resume, restore = prepare(hps, dist)
    chief = dist.rank == 0
    log = print if chief else (lambda *a, **k: None)
    logdir = os.path.abspath(hps.logdir)
    trainer = Trainer(hps, dist, splits)
    if hps.inference:
        if resume and restore:
            resume = None  # an explicit --restore_path wins for inference
        trainer.start(resume, restore)
        return infer(trainer, logdir)

    origin = trainer.start(resume, None if resume else restore)
    # Nothing is written to the logdir before this point, so bad input leaves it as it was.
    if chief:
        os.makedirs(logdir, exist_ok=True)
        if not hps.resume:
            _drop_old_checkpoints(logdir)
        write_json_atomic(os.path.join(logdir, HPS_FILE), dataclasses.asdict(hps))
    state = trainer.state
    resume_epoch = int(state.epoch.numpy()) if resume else None
    record = hps_record(hps, dist, splits)
    if chief:
        train_logger = ResultLogger(os.path.join(logdir, "train.txt"), record, resume_epoch)
        test_logger = ResultLogger(os.path.join(logdir, "test.txt"), record, resume_epoch)
        writer = tf.summary.create_file_writer(logdir)
        png_writer = concurrent.futures.ThreadPoolExecutor(max_workers=1)  # the original's background thread
    log(hps)
    log(f"Starting training ({origin}) on {dist.size} rank(s). Logging to {logdir}/")
    log("epoch n_processed n_images ips dtrain dtest dsample dtot train_results test_results msg")

    step, epoch_step = int(state.step.numpy()), int(state.epoch_step.numpy())
    n_processed, n_images = int(state.n_processed.numpy()), int(state.n_images.numpy())
    train_time, test_loss_best = float(state.train_time.numpy()), float(state.test_loss_best.numpy())
    data_batches = int(state.data_batches.numpy())
    epoch = int(state.epoch.numpy())  # epochs completed
    test_iter = iter(splits.test)
    last_test, lr = None, 0.0
    tcurr = time.time()

    def sync_state():
        for var, value in zip(state.all, (step, epoch, epoch_step, n_processed, n_images, train_time,
                                          test_loss_best, data_batches)):
            var.assign(value)

    def steps_left():
        return math.inf if hps.max_steps is None else hps.max_steps - step

    while epoch + 1 < hps.epochs and steps_left() > 0:
        current = epoch + 1
        t = time.time()
        results = []
        todo = int(min(trainer.train_its - epoch_step, steps_left()))
        bar = _progress(todo, current, chief)
        for _ in range(todo):
            # Linear warmup in anchor images processed before this step: the first step has lr 0.
            lr = warmup_lr(hps.lr, n_processed, hps.n_train, hps.epochs_warmup)
            _t = time.time()
            x, y = next(trainer.train_iter)
            seed = tf.constant([trainer.noise_seed, step], tf.int64)
            stats = trainer.train_step(x, y, tf.constant(lr, tf.float32), seed).numpy()
            if not np.all(np.isfinite(stats)):
                bar.close()
                raise NonFiniteLoss(
                    f"non-finite loss at step {step + 1} (epoch {current}): "
                    f"{dict(zip(STATS, np.round(stats, 4).tolist()))}; stopped without saving. Last good "
                    f"checkpoint: {tf.train.latest_checkpoint(trainer.ckpt_dir) or 'none'}. Lower --lr or "
                    f"lengthen --epochs_warmup (openai/glow#37).")
            results.append(stats)
            if hps.verbose:
                log(n_processed, time.time() - _t, stats)
            step += 1
            epoch_step += 1
            data_batches += 1
            n_processed += dist.size * hps.n_batch_train  # images at anchor resolution
            n_images += dist.size * splits.local_batch_train  # images actually seen
            bar.update(1)
            bar.set_postfix(loss=f"{stats[0]:.4f}", lr=f"{lr:.2e}", refresh=False)
        bar.close()
        dtrain = time.time() - t
        train_time += dtrain
        complete = epoch_step >= trainer.train_its  # else --max_steps stopped inside it; resume finishes it
        last = current + 1 >= hps.epochs or steps_left() <= 0
        train_results = np.mean(results, axis=0) if results else np.zeros(len(STATS))
        ips = len(results) * dist.size * splits.local_batch_train / max(dtrain, 1e-9)
        if complete:
            epoch, epoch_step = current, 0
            if chief:
                train_logger.log(epoch=epoch, n_processed=n_processed, n_images=n_images,
                                 train_time=int(train_time), **process_results(train_results))
                _summaries(writer, "train", train_results, step, lr=lr, ips=ips)

        # The original's schedule, plus a validation of the weights the run ends with.
        report = complete and (current < 10 or (current < 50 and current % 10 == 0)
                               or current % hps.epochs_full_valid == 0)
        t = time.time()
        test_results, msg, best = [], "", False
        if (complete and current % hps.epochs_full_valid == 0) or last:
            test_results = last_test = trainer.evaluate(test_iter)
            if chief:
                test_logger.log(epoch=current, n_processed=n_processed, n_images=n_images,
                                **process_results(test_results))
                _summaries(writer, "test", test_results, step)
            if test_results[0] < test_loss_best:
                test_loss_best, best, msg = float(test_results[0]), True, " *"
        dtest = time.time() - t
        t = time.time()
        if report and (current == 1 or current == 10 or current % hps.epochs_full_sample == 0) and chief:
            grids = trainer.sample_grids()
            for i, images in enumerate(grids):
                png_writer.submit(save_grid, images, os.path.join(logdir, f"epoch_{current}_sample_{i}.png"))
            _image_summaries(writer, grids, step)
        dsample = time.time() - t
        if report or last:
            dcurr, tcurr = time.time() - tcurr, time.time()
            log(current, n_processed, n_images, f"{ips:.1f} {dtrain:.1f} {dtest:.1f} {dsample:.1f} {dcurr:.1f}",
                train_results, test_results, msg)
        sync_state()
        trainer.save_data_position()
        if chief:  # the best-loss checkpoint (the original's only one), then the latest
            if best:
                trainer.save(best=True)
            trainer.save()

    if last_test is None:  # nothing left to train (e.g. resuming a finished run): just report
        last_test = trainer.evaluate(test_iter)
    if chief:
        png_writer.shutdown(wait=True)
        writer.flush()
        train_logger.file.close()
        test_logger.file.close()
        log("Finished!")
        log(f"test bits/dim {last_test[1]:.4f} (loss {last_test[0]:.4f}) after {step} steps, "
            f"{epoch} epochs, {n_images} images")
        log(f"logs: {logdir}/train.txt, {logdir}/test.txt (TensorBoard: tensorboard --logdir {logdir})")
        log(f"checkpoints: latest {tf.train.latest_checkpoint(trainer.ckpt_dir)}, "
            f"best-loss {tf.train.latest_checkpoint(trainer.best_dir)}")
        log(f"sample grids: {logdir}/epoch_<E>_sample_<i>.png (temperatures {list(TEMPERATURES)})")
    return {"test": last_test, "step": step, "epoch": epoch}


def _drop_old_checkpoints(logdir):
    import shutil

    for name in (CHECKPOINT_DIR, BEST_DIR):
        if os.path.isdir(os.path.join(logdir, name)):
            print(f"--no-resume: replacing the previous run's {name}/ in {logdir}")
            shutil.rmtree(os.path.join(logdir, name))


def _progress(total, epoch, enabled):
    from tqdm import tqdm

    # Only on a terminal: in a redirected log, the per-epoch console line says the same without the noise.
    return tqdm(total=total, desc=f"epoch {epoch}", leave=False, disable=not (enabled and sys.stderr.isatty()),
                mininterval=1.0, dynamic_ncols=True)


def _summary_metadata(plugin: str):
    from tensorflow.core.framework import summary_pb2

    # What tensorboard.summary.v2 writes for scalars and images (plugin data version 0), so that
    # TensorBoard reads the events without the `tensorboard` package being installed here.
    return summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin))


def _summaries(writer, prefix, results, step, **extra):
    values = dict(zip(STATS, results), **extra)
    with writer.as_default(step=step):
        for name, value in values.items():
            tf.summary.write(f"{prefix}/{name}", tf.constant(float(value), tf.float32),
                             metadata=_summary_metadata("scalars"))


def _image_summaries(writer, grids, step):
    with writer.as_default(step=step):
        for temperature, images in zip(TEMPERATURES, grids):
            mosaic = grid(images)
            png = tf.io.encode_png(mosaic)
            tensor = tf.stack([tf.as_string(mosaic.shape[1]), tf.as_string(mosaic.shape[0]), png])
            tf.summary.write(f"samples/T={temperature}", tensor, metadata=_summary_metadata("images"))


def infer(trainer: Trainer, logdir: str) -> dict:
    """--inference: encode then decode the validation set; x.npy (reconstructions) and z.npy (eps).

    The original wrote to a hard-coded `logs/`; these go to the logdir. Ranks' shards are gathered.
    """
    xs, zs = [], []
    test_iter = iter(trainer.splits.test)
    with trainer.ema.swapped(trainer.trainable, trainer.hps.eval_ema):
        for _ in range(trainer.splits.test_its):
            x, y = next(test_iter)
            z = trainer.model.encode(x, y)
            xs.append(np.asarray(trainer.model.decode(z, y)))
            zs.append(np.asarray(z))
    x_all = trainer.dist.allgather(np.concatenate(xs))
    z_all = trainer.dist.allgather(np.concatenate(zs))
    if trainer.is_chief:
        os.makedirs(logdir, exist_ok=True)
        np.save(os.path.join(logdir, "x.npy"), x_all)
        np.save(os.path.join(logdir, "z.npy"), z_all)
        print(f"inference: wrote {logdir}/x.npy {x_all.shape} and {logdir}/z.npy {z_all.shape}")
    return {"x": x_all, "z": z_all}


def main(argv=None) -> int:
    try:
        hps = parse_hparams(argv)
        dist = init_distributed()
        configure_devices(dist)
        # The original's per-rank seed for TF and NumPy (and here Python and Keras too).
        tf.keras.utils.set_random_seed(rank_seed(hps, dist.rank, dist.size))
        run(hps, dist)
    except (ConfigError, DistributedError) as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        return 2
    except NonFiniteLoss as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
