"""The training run: prepare (every check before anything is written), then fit, epoch by epoch.

The original's loop (openai/glow train.py, train): epochs of `train_its` steps; after each, the train.txt
line; every `epochs_full_valid` epochs a full validation, its test.txt line and the best-loss checkpoint;
sample grids at epochs 1, 10 and every `epochs_full_sample`. On top of it, what a days-long run needs:
the latest checkpoint after every epoch, every `save_interval_minutes` and when pre-empted (SIGTERM or
Ctrl-C: all ranks stop after the same step), an exact resume from any of them, and a refusal to save
weights that are not finite.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from typing import Optional

import numpy as np
import tensorflow as tf

from data_loaders.damage import read_batch
from glow_common.errors import warn
from glow_tf.errors import CheckpointError, ConfigError
from glow_tf.hparams import HParams
from glow_tf.training import checkpoints, runfiles
from glow_tf.training.checkpoints import CHECKPOINT_DIR, HPS_FILE
from glow_tf.training.logs import (
    CONSOLE_HEADER,
    Reporter,
    console_epoch,
    format_results,
    hps_record,
    progress_bar,
    sample_epoch,
    stats_line,
)
from glow_tf.training.optim import warmup_lr
from glow_tf.training.preemption import StopSignals
from glow_tf.training.state import STATS
from glow_tf.training.steps import FLAGS
from glow_tf.training.trainer import Trainer


def _silent(message: str) -> None:
    pass


@dataclasses.dataclass
class Plan:
    """What `prepare` found: the data, and where the run starts from."""

    hps: HParams
    splits: object
    resume: Optional[str]  # checkpoint prefix to continue from
    restore: Optional[str]  # --restore_path's checkpoint prefix
    lock: Optional[runfiles.RunLock] = None

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()


@dataclasses.dataclass
class Outcome:
    """How fit ended: the last validation, the counters, and the signal that stopped it, if any."""

    test: Optional[np.ndarray]
    step: int
    epoch: int
    n_images: int
    stopped_by: Optional[str] = None


# ---------------------------------------------------------------------------------------------------------
# prepare: every check that can fail on bad input, before anything in the logdir is written.

def prepare(hps: HParams, dist) -> Plan:
    """Check the logdir, the checkpoints and the data; then (unless --inference) take the logdir's lock."""
    from data_loaders import get_data

    chief = dist.rank == 0
    say = warn if chief else _silent
    logdir = os.path.abspath(hps.logdir)
    runfiles.check_logdir(hps.logdir)
    elastic = getattr(dist, "elastic", False)
    lock = None if hps.inference else runfiles.RunLock(logdir, say, job=runfiles.job_id() if elastic else None)
    if lock is not None:
        lock.check()
    resume, restore = _starting_points(hps, logdir, say)
    splits = get_data(hps, dist.rank, dist.size, allow_download=False)
    if lock is None:
        return Plan(hps, splits, resume, restore)
    if elastic:
        return _prepare_elastic(hps, dist, splits, resume, restore, lock, say)
    # Rank 0 takes the lock; every rank learns whether it got it.
    error = None
    if chief:
        try:
            lock.acquire()
        except ConfigError as err:
            error = err
    if not dist.all_ok(error is None):
        raise error or ConfigError("rank 0 could not take the logdir's lock (see its error)")
    plan = Plan(hps, splits, resume, restore, lock if chief else None)
    if hps.resume and resume is None and os.path.isdir(os.path.join(logdir, runfiles.REPLACED_DIR)):
        # A --no-resume run died before its first checkpoint: the run it replaced comes back.
        if chief:
            _bring_back(logdir, say)
        dist.all_ok(True)  # every rank waits until the files are back
        plan.resume, plan.restore = _starting_points(hps, logdir, say)
    return plan


def _prepare_elastic(hps, dist, splits, resume, restore, lock, say) -> Plan:
    """prepare's end for a worker of an elastic job, without collectives: a worker may be joining a job
    that is training, whose ranks meet it only at the elastic state's sync. Rank 0 takes the lock (a
    refusal ends it, and each rank after it, with the same line); what the others found here is
    replaced by rank 0's state at that sync."""
    if dist.rank != 0:
        return Plan(hps, splits, resume, restore)
    lock.acquire()
    plan = Plan(hps, splits, resume, restore, lock)
    logdir = os.path.abspath(hps.logdir)
    if hps.resume and resume is None and os.path.isdir(os.path.join(logdir, runfiles.REPLACED_DIR)):
        _bring_back(logdir, say)
        plan.resume, plan.restore = _starting_points(hps, logdir, say)
    return plan


def _bring_back(logdir: str, say) -> None:
    """A --no-resume run died before its first checkpoint: the run it replaced comes back."""
    runfiles.bring_back(logdir)
    say(f"the last --no-resume run in {logdir} stopped before its first checkpoint; moved the run it "
        f"replaced back from {runfiles.REPLACED_DIR}/ and resuming that")


def _starting_points(hps: HParams, logdir: str, warn):
    """(resume prefix, restore prefix), both checked against hps; raises CheckpointError."""
    folder = os.path.join(logdir, CHECKPOINT_DIR)
    latest = checkpoints.newest_readable(folder, warn)
    # --inference uses the logdir's model even with --no-resume.
    resume = latest if (hps.resume or hps.inference) else None
    if resume:
        checkpoints.check_compatible(hps, folder, "the checkpoint to resume")
    restore = None
    if hps.restore_path:
        try:
            restore = checkpoints.resolve(hps.restore_path, warn)
        except CheckpointError as err:
            raise CheckpointError(f"--restore_path: {err}") from None
        checkpoints.check_compatible(hps, os.path.dirname(restore), "--restore_path")
    return resume, restore


# ---------------------------------------------------------------------------------------------------------
# fit

def fit(plan: Plan, dist) -> Outcome:
    """Train from `plan` until --epochs or --max_steps, or until a signal stops every rank."""
    return _Loop(plan, dist).run()


class _Loop:
    def __init__(self, plan: Plan, dist):
        self.hps, self.dist = plan.hps, dist
        self.plan = plan
        self.logdir = os.path.abspath(self.hps.logdir)
        self.trainer = Trainer(self.hps, dist, plan.splits)
        self.replaced = None  # the folder holding the run that --no-resume replaces, until our first save
        self.reporter = None
        self.lr = 0.0
        self.p = None  # the counters (state.Progress), once training began
        self.elastic = None  # an elastic job's in-memory state (glow_tf.training.elastic)
        self.reset_at = None  # when the last elastic reset began, until the first step after it
        self.last_test, self.last_save, self.tcurr = None, time.time(), time.time()

    @property
    def splits(self):
        return self.trainer.splits

    @property
    def chief(self) -> bool:  # rank 0: it alone writes the logdir (an elastic reset may renumber ranks)
        return self.dist.rank == 0

    def log(self, *args, **kwargs) -> None:
        if self.chief:
            print(*args, **kwargs)

    # -- the phases ----------------------------------------------------------------------------------
    def run(self) -> Outcome:
        trainer = self.trainer
        if self.dist.elastic and not self.chief:
            # A worker of an elastic job takes its whole state from rank 0 at the state's first sync, and
            # reads nothing from the logdir: it may be joining a job that is training, whose checkpoints
            # and data positions rank 0 and its peers are writing. (A joiner is never rank 0: Horovod
            # numbers the hosts that stayed first.)
            origin = "rank 0's state, at the elastic state's first sync"
        else:
            origin = trainer.start(self.plan.resume, None if self.plan.resume else self.plan.restore,
                                   broadcast=not self.dist.elastic)
        try:
            if not self.dist.elastic:
                return self.train(origin)
            from glow_tf.training import elastic

            self.elastic = elastic.TrainingState(trainer.variables, lambda: self.dist.size, lambda: self.dist.rank,
                                                 self.dist.broadcast, self.dist.broadcast_object)
            return elastic.run(self.elastic, lambda _: self.train(origin), self._reset)
        finally:
            if self.reporter is not None:
                self.reporter.close()

    def train(self, origin: str) -> Outcome:
        """Train from the state every rank holds: at the start, and again after each elastic reset."""
        hps, trainer = self.hps, self.trainer
        first = self.p is None
        if self.elastic is None:
            self.p = trainer.state.read()
        else:
            self.rejoin(origin)
        self.take_duties(first)
        if first:
            self.log(hps)
            self.log(f"Starting training ({origin}) on {self.dist.size} rank(s)"
                     f"{', elastic' if self.elastic else ''}. Logging to {self.logdir}/")
            self.log(CONSOLE_HEADER)
        self.test_iter = iter(self.splits.test)  # every pass reads the first test_its batches afresh
        stopped_by = None
        with StopSignals(announce=self.chief) as signals:
            while self.p.epoch + 1 < hps.epochs and self._steps_left() > 0 and stopped_by is None:
                stopped_by = self.epoch(signals)
        if stopped_by:
            prefix = self.checkpoint()
            self.log(f"stopped by {stopped_by} at step {self.p.step} (epoch {self.p.epoch + 1}, step "
                     f"{self.p.epoch_step} of {trainer.train_its}); saved {prefix}; run the same command "
                     f"to resume", flush=True)
            # A barrier: no rank exits before rank 0 has written the checkpoint and said so, since
            # horovodrun ends every rank as soon as one exits non-zero (75 here).
            self.dist.all_ok(True)
            return self._outcome(stopped_by)
        if self.last_test is None:  # nothing left to train (e.g. resuming a finished run): just report
            self.last_test = trainer.evaluate(self.test_iter, self.p.epoch)
        return self._outcome(None)

    def take_duties(self, first: bool) -> None:
        """Rank 0's part: the logdir's files and its lock. At the first start it sets a replaced run
        aside (--no-resume); in an elastic job the duties follow rank 0, and the logs are reopened at
        every reset, dropping the lines of epochs that the restored state has yet to train."""
        if not self.chief:
            if self.reporter is not None:  # this process was rank 0 before the reset
                self.reporter.close()
                self.reporter = None
            return
        hps = self.hps
        if first and self.plan.lock is not None and not hps.resume and self.p.step == 0 \
                and runfiles.run_files(self.logdir):  # nothing in the logdir was written before this point
            self.replaced = runfiles.set_aside(self.logdir)
            self.log(f"--no-resume: moved the previous run in {self.logdir} to {self.replaced}/; it is deleted "
                     f"once this run's first checkpoint is written")
        if self.plan.lock is None:  # rank 0 of an elastic job whose rank 0 left: the lock is its now
            self.plan.lock = runfiles.RunLock(self.logdir, warn, job=runfiles.job_id())
            self.plan.lock.acquire()
        checkpoints.save_hparams(self.logdir, hps)
        if self.reporter is not None:
            self.reporter.close()
        resumed = self.plan.resume is not None or not first
        self.reporter = Reporter(self.logdir, hps_record(hps, self.dist, self.splits),
                                 self.p.epoch if resumed else None)

    # -- an elastic job's resets ---------------------------------------------------------------------
    def _reset(self) -> None:
        if self.reset_at is None:
            self.reset_at = time.time()
        self.dist.reset()

    def rejoin(self, origin: str) -> None:
        """After the elastic state's sync, continue from it as rank dist.rank of dist.size ranks.

        Batch semantics are the original's: the per-rank batch stays, so the global batch follows the
        job's size, and an epoch still counts n_train images: `train_its`, beta2 (optimizer and Polyak
        average) and the rank seeds are those of the new size, and the steps done in the current epoch
        are converted to steps of the new size (to the nearest step). Every rank reads its new shard
        from where a job of the new size would stand after the same number of images.
        """
        trainer, dist = self.trainer, self.dist
        trainer.check_initialized(origin)
        before, p = self.p, trainer.state.read()
        committed = self.elastic.committed.get("size", dist.size)
        if committed != dist.size:
            steps = int(round(p.epoch_step * committed / dist.size))
            # The epoch's sums are kept per step of the new size, so that its train.txt line stays a mean.
            p.epoch_stats = p.epoch_stats * (steps / p.epoch_step) if p.epoch_step else p.epoch_stats
            p.epoch_step = steps
            p.data_batches = p.n_images // (dist.size * self.splits.local_batch_train)
        if trainer.topology != (dist.rank, dist.size):
            trainer.adopt(trainer.read_data())
        trainer.state.write(p)
        # A stream to position: new shards, a worker that has none yet, or a state rolled back to the commit.
        if trainer.train_iter is None or (before is not None and before.step != p.step):
            trainer.position_stream(p.data_batches)
        self.p = p
        if before is not None:
            self.log(f"elastic: {dist.size} rank(s) (the last commit was made by {committed}); continuing from "
                     f"step {p.step}, redoing the {before.step - p.step} step(s) done since that commit",
                     flush=True)

    def commit(self) -> None:
        """An elastic job's in-memory commit of the state, counters included (may raise Horovod's
        HostsUpdatedInterrupt: the hosts changed, and every rank resets here)."""
        self.trainer.state.write(self.p)
        self.elastic.commit()

    def epoch(self, signals) -> Optional[str]:
        """One epoch (or what is left of it): train, then validate, sample, report and save at its end.

        Returns the signal that stopped the run inside it, if one did.
        """
        hps, p = self.hps, self.p
        current = p.epoch + 1
        t = time.time()
        steps, stopped_by = self.train_steps(current, signals)
        dtrain = time.time() - t
        p.train_time += dtrain
        if stopped_by:
            return stopped_by
        complete = p.epoch_step >= self.trainer.train_its  # else --max_steps stopped inside it
        last = current + 1 >= hps.epochs or self._steps_left() <= 0
        train_results = p.epoch_stats / max(p.epoch_step, 1)
        ips = steps * self.dist.size * self.splits.local_batch_train / max(dtrain, 1e-9)
        skipped = self.splits.skipped_summary()
        if skipped:  # with --skip_corrupt_records: what this rank's stream skipped so far
            print(f"rank {self.dist.rank}: {skipped}", file=sys.stderr, flush=True)
        if complete:
            p.epoch, p.epoch_step, p.epoch_stats = current, 0, np.zeros(len(STATS))
            if self.chief:
                self.reporter.train.log(epoch=current, n_processed=p.n_processed, n_images=p.n_images,
                                        train_time=int(p.train_time), **format_results(train_results))
                self.reporter.scalars("train", train_results, p.step, lr=self.lr, ips=ips)
        t = time.time()
        test_results, best = self.validate(current) if (complete and current % hps.epochs_full_valid == 0) \
            or last else ([], False)
        dtest = time.time() - t
        t = time.time()
        report = complete and console_epoch(current, hps.epochs_full_valid)
        if report and sample_epoch(current, hps.epochs_full_sample) and self.chief:
            self.reporter.samples(current, self.trainer.sample_grids(), p.step)
        dsample = time.time() - t
        if report or last:
            dcurr, self.tcurr = time.time() - self.tcurr, time.time()
            self.log(current, p.n_processed, p.n_images,
                     f"{ips:.1f} {dtrain:.1f} {dtest:.1f} {dsample:.1f} {dcurr:.1f}", train_results, test_results,
                     " *" if best else "")
        if best:
            self.checkpoint(best=True)  # the original's only checkpoint, model_best_loss
        self.checkpoint()
        if self.elastic is not None:
            self.commit()  # an epoch's reports and checkpoint are not done twice
        return None

    def train_steps(self, epoch: int, signals):
        """The epoch's remaining steps. Returns (steps run, the signal that stopped them or None)."""
        hps, p, trainer = self.hps, self.p, self.trainer
        todo = int(min(trainer.train_its - p.epoch_step, self._steps_left()))
        bar = progress_bar(todo, epoch, self.chief)
        interval = hps.save_interval_minutes * 60
        try:
            for done in range(1, todo + 1):
                # Linear warmup in anchor images processed before this step: the first step has lr 0.
                self.lr = warmup_lr(hps.lr, p.n_processed, hps.n_train, hps.epochs_warmup)
                t = time.time()
                x, y = self._next_batch()
                wants = {"stop": signals.requested,
                         "save": interval > 0 and time.time() - self.last_save >= interval,
                         "hosts": self.elastic is not None and self.elastic.hosts_pending}
                flags = np.array([wants[name] for name in FLAGS], np.float32)
                seed = tf.constant([trainer.noise_seed, p.step], tf.int64)
                out = trainer.train_step(x, y, tf.constant(self.lr, tf.float32), seed, tf.constant(flags)).numpy()
                stats, requests = out[:len(STATS)], dict(zip(FLAGS, out[len(STATS):] > 0))
                if not np.all(np.isfinite(stats)):
                    raise trainer.non_finite(f"non-finite loss at step {p.step + 1} (epoch {epoch}): "
                                             f"{stats_line(stats)}")
                if hps.verbose:
                    self.log(p.n_processed, time.time() - t, stats)
                p.step += 1
                p.epoch_step += 1
                p.data_batches += 1
                p.n_processed += self.dist.size * hps.n_batch_train  # images at anchor resolution
                p.n_images += self.dist.size * self.splits.local_batch_train  # images actually seen
                p.epoch_stats = p.epoch_stats + stats
                bar.update(1)
                bar.set_postfix(loss=f"{stats[0]:.4f}", lr=f"{self.lr:.2e}", refresh=False)
                if self.reset_at is not None:
                    self.log(f"elastic: training continued at step {p.step}, {time.time() - self.reset_at:.1f} s "
                             f"after the job's workers changed", flush=True)
                    self.reset_at = None
                if requests["stop"]:
                    return done, signals.received or "a signal to another rank"
                if requests["save"] and done < todo:
                    self.checkpoint()
                if self.elastic is not None and (requests["hosts"] or p.step % hps.elastic_commit_steps == 0):
                    self.commit()
        finally:
            bar.close()
        return todo, None

    def validate(self, epoch: int):
        """A full validation pass; its test.txt line. Returns (results, whether it is the best so far)."""
        p = self.p
        results = self.last_test = self.trainer.evaluate(self.test_iter, epoch)
        if not np.all(np.isfinite(results)):
            raise self.trainer.non_finite(f"non-finite validation loss after epoch {epoch} (step {p.step}): "
                                          f"{stats_line(results)}", hint=False)
        if self.chief:
            self.reporter.test.log(epoch=epoch, n_processed=p.n_processed, n_images=p.n_images,
                                   **format_results(results))
            self.reporter.scalars("test", results, p.step)
        best = results[0] < p.test_loss_best
        if best:
            p.test_loss_best = float(results[0])
        return results, best

    def checkpoint(self, best: bool = False) -> str:
        """Write the counters into the state, then the checkpoint (every rank saves its data position)."""
        self.trainer.state.write(self.p)
        prefix = self.trainer.save(best=best)
        if not best:
            self.last_save = time.time()
            if self.replaced and runfiles.discard_set_aside(self.logdir):
                self.log(f"deleted the run that --no-resume replaced ({self.replaced}/)")
                self.replaced = None
        return prefix

    # -- helpers -------------------------------------------------------------------------------------
    def _steps_left(self):
        return math.inf if self.hps.max_steps is None else self.hps.max_steps - self.p.step

    def _next_batch(self):
        return read_batch(self.trainer.train_iter, self.splits.train_files, f"at step {self.p.step + 1}")

    def _outcome(self, stopped_by) -> Outcome:
        p = self.p
        return Outcome(test=self.last_test, step=p.step, epoch=p.epoch, n_images=p.n_images, stopped_by=stopped_by)


def summary(outcome: Outcome, hps: HParams) -> str:
    """The lines train.py prints when a run finishes."""
    logdir = os.path.abspath(hps.logdir)
    latest = tf.train.latest_checkpoint(os.path.join(logdir, CHECKPOINT_DIR))
    best = tf.train.latest_checkpoint(os.path.join(logdir, checkpoints.BEST_DIR))
    test = outcome.test
    return "\n".join([
        "Finished!",
        f"test bits/dim {test[1]:.4f} (loss {test[0]:.4f}) after {outcome.step} steps, {outcome.epoch} epochs, "
        f"{outcome.n_images} images",
        f"logs: {logdir}/train.txt, {logdir}/test.txt (TensorBoard: tensorboard --logdir {logdir})",
        f"checkpoints: latest {latest}, best-loss {best}",
        f"sample grids: {logdir}/epoch_<E>_sample_<i>.png",
        f"hyperparameters: {logdir}/{HPS_FILE}",
    ])
