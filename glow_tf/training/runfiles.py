"""The logdir as a run's home: one run at a time, and starting afresh without losing the previous run.

* `RunLock`: `train.lock` in the logdir names the host, PID and start time of the run that holds it. A
  second train.py on the same logdir refuses with one line naming the holder. A lock left by a process
  that is gone is taken over with a warning: on the same host the PID (and its start time) tells; from
  another host (a job re-queued on another node after a crash) the holder's heartbeat tells - a running
  holder touches the file every HEARTBEAT_S seconds, so a lock not touched for STALE_S is stale.
* `set_aside` / `bring_back` / `discard_set_aside`: `--no-resume` moves the old run's files into
  `replaced_run/` (renames only, nothing is copied or deleted), and they are deleted only once the new
  run's first checkpoint is written. If the new run dies before that, its next start finds no checkpoint
  but `replaced_run/`, and moves the old run back instead of starting afresh over it.
"""

from __future__ import annotations

import contextlib
import datetime
import glob
import json
import os
import shutil
import socket
import sys
import threading
import time
from typing import List, Optional

from glow_common.errors import warn
from glow_common.files import write_error
from glow_tf.errors import ConfigError

LOCK_FILE = "train.lock"
HEARTBEAT_S = 30.0
STALE_S = 300.0
REPLACED_DIR = "replaced_run"
# What a run writes into its logdir (train.py and its loop); everything else there is left alone.
RUN_FILES = ("checkpoints", "model_best_loss", "hparams.json", "train.txt", "test.txt",
             "events.out.tfevents.*", "epoch_*_sample_*.png")


def check_logdir(logdir: str) -> None:
    """Refuse a --logdir that exists but is not a folder (or sits below a file)."""
    path = os.path.abspath(logdir)
    while path and not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    if os.path.exists(path) and not os.path.isdir(path):
        where = "is" if path == os.path.abspath(logdir) else f"lies below {path}, which is"
        raise ConfigError(f"--logdir {logdir} {where} a file, not a folder; choose another --logdir")


# ---------------------------------------------------------------------------------------------------------
# The lock.

def _process_start(pid: int) -> Optional[float]:
    """When process `pid` started (None when it does not exist or cannot be asked)."""
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:  # noqa: BLE001 - psutil missing, or the process is gone
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return -1.0  # exists, owned by someone else
        return -1.0


def job_id(env=os.environ) -> Optional[str]:
    """What names one horovodrun job on every host: its rendezvous server's address and port (None
    outside a Horovod job). The workers of an elastic job share the logdir's lock through it."""
    addr, port = env.get("HOROVOD_GLOO_RENDEZVOUS_ADDR"), env.get("HOROVOD_GLOO_RENDEZVOUS_PORT")
    return f"{addr}:{port}" if addr and port else None


class RunLock:
    """`train.lock` in a logdir; `acquire` refuses while another live run holds it.

    `job` (job_id) marks a lock that the job's rank 0 holds for all its ranks: a lock of the same job is
    never refused, and `acquire` takes it over at once (an elastic job whose rank 0 left).
    """

    def __init__(self, logdir: str, warn=warn, job: Optional[str] = None):
        self.path = os.path.join(logdir, LOCK_FILE)
        self.warn = warn
        self.job = job
        self.host, self.pid = socket.gethostname(), os.getpid()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.held = False

    def _describe(self, info: dict) -> str:
        started = info.get("started", "?")
        return f"pid {info.get('pid', '?')} on host {info.get('host', '?')}, started {started}"

    def _read(self) -> Optional[dict]:
        try:
            with open(self.path) as f:
                info = json.load(f)
            return info if isinstance(info, dict) else {}
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # half-written or garbage: judged by its age below

    def _holder_is_gone(self, info: dict) -> Optional[str]:
        """Why the lock's holder is gone (a reason for the warning), or None when it may still run."""
        if self.job and info.get("job") == self.job:
            return "it belongs to this job, whose rank 0 it was"
        if info.get("host") == self.host and isinstance(info.get("pid"), int):
            start = _process_start(info["pid"])
            if start is None:
                return f"its process {info['pid']} no longer exists"
            if start > 0 and info.get("process_start") and abs(start - info["process_start"]) > 1.0:
                return f"process {info['pid']} is now another program"
            return None
        try:
            age = time.time() - os.path.getmtime(self.path)
        except FileNotFoundError:
            return "it was just released"
        if age > STALE_S:
            return f"it has not been renewed for {age / 60:.0f} minutes"
        return None

    def check(self) -> None:
        """Refuse, without writing anything, when a live run holds the lock."""
        holder = self._read()
        if holder is not None and self._holder_is_gone(holder) is None:
            raise self._in_use(holder)

    def _ours(self, info: dict) -> bool:
        return bool(self.job) and info.get("job") == self.job

    def _in_use(self, holder: dict) -> ConfigError:
        return ConfigError(
            f"{os.path.dirname(self.path)} is in use by another train.py ({self._describe(holder)}); wait for "
            f"it or stop it, or choose another --logdir (if you are sure it is gone, delete {self.path})")

    def acquire(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        info = {"host": self.host, "pid": self.pid, "process_start": _process_start(self.pid), "job": self.job,
                "started": datetime.datetime.now().isoformat(timespec="seconds"), "argv": sys.argv}
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._read()
                if holder is None:
                    continue  # released meanwhile: try again
                gone = self._holder_is_gone(holder)
                if gone is None:
                    raise self._in_use(holder) from None
                # Renaming is atomic: of two runs taking over the same stale lock, one wins.
                stale = f"{self.path}.stale{self.pid}"
                try:
                    os.rename(self.path, stale)
                except FileNotFoundError:
                    continue
                os.remove(stale)
                if not self._ours(holder):
                    self.warn(f"took over the lock of a run that is gone ({self._describe(holder)}: {gone})")
                continue
            except OSError as err:
                raise write_error(self.path, err) from None
            with os.fdopen(fd, "w") as f:
                json.dump(info, f)
            self.held = True
            self._thread = threading.Thread(target=self._heartbeat, name="train.lock heartbeat", daemon=True)
            self._thread.start()
            return
        raise ConfigError(f"could not take {self.path}: other runs keep creating it")

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        if not self.held:
            return
        self._stop.set()
        holder = self._read()
        if holder and holder.get("pid") == self.pid and holder.get("host") == self.host:
            with contextlib.suppress(OSError):
                os.remove(self.path)
        self.held = False

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


# ---------------------------------------------------------------------------------------------------------
# --no-resume without losing the previous run.

def run_files(logdir: str) -> List[str]:
    """The paths in `logdir` that belong to a training run."""
    found = []
    for pattern in RUN_FILES:
        found += glob.glob(os.path.join(glob.escape(logdir), pattern))
    return sorted(found)


def set_aside(logdir: str) -> Optional[str]:
    """Move the previous run's files into `<logdir>/replaced_run/` (renames only). Returns that folder.

    If `replaced_run/` already holds a run (an earlier --no-resume died before its first checkpoint),
    that run is kept, and the files of the interrupted attempt, which never reached a checkpoint, are
    removed instead.
    """
    aside = os.path.join(logdir, REPLACED_DIR)
    files = run_files(logdir)
    if not files:
        return aside if os.path.isdir(aside) else None
    try:
        if os.path.isdir(aside):
            for path in files:
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
            return aside
        os.makedirs(aside)
        for path in files:
            os.rename(path, os.path.join(aside, os.path.basename(path)))
    except OSError as err:
        raise write_error(aside, err) from None
    return aside


def bring_back(logdir: str) -> Optional[str]:
    """Undo an interrupted --no-resume: move `replaced_run/` back when the logdir has no checkpoint."""
    aside = os.path.join(logdir, REPLACED_DIR)
    if not os.path.isdir(aside):
        return None
    try:
        for path in run_files(logdir):  # the interrupted attempt's files (it wrote no checkpoint)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        for name in os.listdir(aside):
            os.rename(os.path.join(aside, name), os.path.join(logdir, name))
        os.rmdir(aside)
    except OSError as err:
        raise write_error(aside, err) from None
    return logdir


def discard_set_aside(logdir: str) -> bool:
    """Delete `replaced_run/` (called once the new run's first checkpoint exists)."""
    aside = os.path.join(logdir, REPLACED_DIR)
    if not os.path.isdir(aside):
        return False
    shutil.rmtree(aside, ignore_errors=True)
    return True
