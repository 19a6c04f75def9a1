"""One run's model, optimizer, Polyak average, counters and checkpoints (openai/glow train.py, main).

`Trainer.start` brings every rank to the same state (resume, restore or data-dependent init, then a
broadcast from rank 0); `save` writes a checkpoint, refusing non-finite weights; `evaluate` and
`sample_grids` are the original's validation pass and draw_samples.
"""

from __future__ import annotations

import math
import os

import numpy as np
import tensorflow as tf

from data_loaders.common import rank_seed
from data_loaders.damage import read_batch
from data_loaders.position import position_key, resume_position, save_position
from glow_tf import samples
from glow_tf.errors import ConfigError, NonFiniteError
from glow_tf.hparams import DATA_FIELDS, HParams
from glow_tf.model import Glow
from glow_tf.training import checkpoints
from glow_tf.training.checkpoints import BEST_DIR, BEST_NAME, CHECKPOINT_DIR, LATEST_KEPT, LATEST_NAME
from glow_tf.training.optim import GlowOptimizer, PolyakAverage
from glow_tf.training.state import TrainState
from glow_tf.training.steps import make_finite_check, make_steps


class Trainer:
    """Holds the model, optimizer, Polyak average, counters and checkpoints of one run."""

    def __init__(self, hps: HParams, dist, splits):
        self.hps, self.dist = hps, dist
        self.logdir = os.path.abspath(hps.logdir)
        beta2 = hps.beta2(dist.size)
        self.model = Glow(hps)
        self.trainable = list(self.model.trainable_variables)
        # Optimizer slots and Polyak shadows exist from the start, so one broadcast covers them, and the
        # shadows start from the pre-init values as the original's did (optim.py, polyak).
        self.optimizer = GlowOptimizer(self.trainable, hps.optimizer, beta1=hps.beta1, beta2=beta2,
                                       weight_decay=hps.weight_decay, allreduce_mean=dist.allreduce_mean)
        self.ema = PolyakAverage(self.trainable, beta2)
        self.state = TrainState()
        self.objects = {"model": self.model, "optimizer": self.optimizer, "ema": self.ema, "state": self.state}
        self.checkpoint = tf.train.Checkpoint(**self.objects)
        self.checkpoint.save_counter  # created now, so that a resume restores it instead of deferring it
        self.ckpt_dir = os.path.join(self.logdir, CHECKPOINT_DIR)
        self.best_dir = os.path.join(self.logdir, BEST_DIR)
        self._managers = None
        self.position_dir = os.path.join(self.ckpt_dir, "data_position")
        self.all_finite = make_finite_check(self.model.variables + self.optimizer.variables + self.ema.variables)
        self.train_iter = None
        self.adopt(splits)

    def adopt(self, splits) -> None:
        """Take up this rank's part of a job of dist.size ranks, reading `splits` (its shards): at the
        start, and after an elastic job changed size. Everything that depends on the rank or the size is
        set here: the steps per epoch, beta2 (a constant of the compiled step, so the steps are compiled
        again), the rank seed and the key of the saved stream positions. The stream itself is positioned
        by `start` or `position_stream`."""
        hps, dist = self.hps, self.dist
        self.splits = splits
        self.train_iter = None  # a stream over the new shards is positioned next
        self.is_chief = dist.rank == 0
        self.topology = (dist.rank, dist.size)
        self.train_its = hps.train_its(dist.size)
        self.beta2 = self.optimizer.beta2 = self.ema.decay = hps.beta2(dist.size)
        # Each rank's training-stream position is saved beside the latest checkpoints, under a key naming
        # everything that defines the stream (data_loaders.position).
        self.position_key = position_key(dist.rank, dist.size, spec=repr(splits.train.element_spec),
                                         local_batch=splits.local_batch_train,
                                         **{k: getattr(hps, k) for k in DATA_FIELDS})
        self.train_step, self.test_step = make_steps(self.model, self.optimizer, self.ema, dist, hps)
        # The training noise of step t on this rank is a function of (noise_seed, t) alone, so that a
        # resumed run continues the uninterrupted run's noise (and the validation's, see evaluate).
        self.noise_seed = rank_seed(hps.seed, dist.rank, dist.size)

    @property
    def variables(self) -> list:
        """Everything a run's state is: weights, optimizer state, Polyak shadows, the loop's counters."""
        return self.model.variables + self.optimizer.variables + self.ema.variables + self.state.all

    def position_stream(self, batches: int) -> str:
        """A new training stream, continuing where this rank's stands after `batches` batches; how.

        A seeded shuffle that reshuffles every pass draws a new order for every new iterator over the
        same dataset, so a stream that has been read is rebuilt from the data first (get_data)."""
        if self.train_iter is not None:
            self.splits = self.read_data()
        step = int(self.state.step.numpy())
        self.train_iter, how = resume_position(self.splits.train, self.position_dir, self.position_key,
                                               step, batches, rebuild=lambda: self.read_data().train)
        return how

    def read_data(self):
        """This rank's shards of the data (get_data), as new datasets that no iterator has read yet."""
        from data_loaders import get_data

        return get_data(self.hps, self.dist.rank, self.dist.size, allow_download=False)

    # -- start: resume, restore or data-dependent init, then broadcast ------------------------------
    def start(self, resume_path, restore_path, broadcast: bool = True) -> str:
        """Bring every rank to the same state; returns a description of where it came from.

        Without `broadcast` (an elastic job, whose state's first sync broadcasts instead) only this
        rank's part is done, and `check_initialized` is left to the caller."""
        if resume_path:
            checkpoints.restore(resume_path, self.objects, "the checkpoint to resume", root=self.checkpoint)
            if self.is_chief:  # the state file may be damaged or name a damaged checkpoint
                checkpoints.repair_state_file(os.path.dirname(resume_path), resume_path)
            origin = f"resumed from {resume_path} (step {int(self.state.step.numpy())})"
        elif restore_path:
            objects = {k: self.objects[k] for k in ("model", "optimizer", "ema")}
            checkpoints.restore(restore_path, objects, "--restore_path")
            origin = f"restored weights from {restore_path}"
        else:
            origin = "data-dependent init"
        # Every rank takes the same number of batches from its stream; each continues its own.
        how = self.position_stream(int(self.state.data_batches.numpy()))
        if resume_path:
            origin += f"; data position {how}"
        if not resume_path and not restore_path:
            self.initialize()
        if broadcast:
            # Rank 0's values everywhere: its init statistics, random inits, permutations (train.py).
            self.dist.broadcast(self.variables)
            self.check_initialized(origin)
        return origin

    def check_initialized(self, origin: str) -> None:
        if not self.model.initialized:
            raise ConfigError(f"{origin}: the model's ActNorm layers are still uninitialised")

    def initialize(self) -> None:
        """DDI from the first ceil(n_batch_init / local_batch) training batches, cut to local_batch_init."""
        hps = self.hps
        n_batches = int(math.ceil(hps.n_batch_init / self.splits.local_batch_train))
        xs, ys = zip(*[read_batch(self.train_iter, self.splits.train_files, "for data-dependent init")
                       for _ in range(n_batches)])
        self.state.data_batches.assign(n_batches)
        if self.is_chief:  # only rank 0's statistics survive the broadcast, so only it computes them
            n = hps.local_batch_init()
            self.model.initialize(tf.concat(xs, 0)[:n], tf.concat(ys, 0)[:n])

    # -- checkpoints ---------------------------------------------------------------------------------
    def managers(self):
        if self._managers is None:
            latest = tf.train.CheckpointManager(self.checkpoint, self.ckpt_dir, max_to_keep=LATEST_KEPT,
                                                checkpoint_name=LATEST_NAME)
            best = tf.train.CheckpointManager(self.checkpoint, self.best_dir, max_to_keep=1,
                                              checkpoint_name=BEST_NAME)
            self._managers = (latest, best)
        return self._managers

    def non_finite(self, what: str, hint: bool = True) -> NonFiniteError:
        """The error that stops a run whose loss or weights became non-finite: `what`, that nothing was
        saved, the last good checkpoint (damaged ones skipped without a word: the start warned of them)
        and, with `hint`, the fix."""
        last = checkpoints.newest_readable(self.ckpt_dir, lambda _: None) or "none"
        fix = ". Lower --lr or lengthen --epochs_warmup (openai/glow issue #37)" if hint else ""
        return NonFiniteError(f"{what}; stopped without saving. Last good checkpoint: {last}{fix}")

    def save(self, best: bool = False) -> str:
        """Every rank saves its data position, then rank 0 writes the latest (or best-loss) checkpoint.

        The weights, optimizer state and Polyak average are checked first: a run whose update made them
        non-finite stops here, so every checkpoint written is one a resume can continue from.
        """
        step = int(self.state.step.numpy())
        if not bool(self.all_finite()):
            raise self.non_finite(f"the weights became non-finite by step {step}")
        if not best:
            save_position(self.train_iter, self.position_dir, self.position_key, step, keep=LATEST_KEPT)
        if not self.is_chief:
            return ""
        folder = self.best_dir if best else self.ckpt_dir
        checkpoints.save_hparams(folder, self.hps)
        manager = self.managers()[1 if best else 0]
        return checkpoints.save(manager, BEST_NAME if best else LATEST_NAME, step)

    # -- evaluation and samples ----------------------------------------------------------------------
    def evaluate(self, test_iter, epoch: int) -> np.ndarray:
        """Mean stats over one full validation pass, averaged over ranks (with --eval_ema: Polyak weights).

        Each pass draws new dequantisation noise, as the original's did, but from seeds (rank seed,
        -(1 + index of the batch among all validation batches of the run)), negative so that they never
        meet a training step's; a resumed run therefore validates exactly as the uninterrupted one.
        """
        n, files = self.splits.test_its, self.splits.test_files
        results = []
        with self.ema.swapped(self.trainable, self.hps.eval_ema):
            for i in range(n):
                x, y = read_batch(test_iter, files, "for validation", skip_flag=None)
                seed = tf.constant([self.noise_seed, -(1 + epoch * n + i)], tf.int64)
                results.append(self.test_step(x, y, seed).numpy())
        return np.mean(results, axis=0)

    def sample_grids(self):
        """draw_samples: one grid per temperature (glow_tf.samples), with the raw or Polyak weights."""
        labels = samples.grid_labels(self.hps, samples.grid_size(self.hps))
        with self.ema.swapped(self.trainable, self.hps.eval_ema):
            return [samples.draw(self.model, t, labels, self.splits.local_batch_train)
                    for t in samples.TEMPERATURES]
