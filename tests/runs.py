"""Running train.py in tests: the tiny configuration, a user's command line, and reading what it wrote."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# 8x8 Fashion-MNIST images, 2 levels of 2 steps, width 8; per-GPU batch 4 (anchor 8), 8 steps per epoch,
# test batch 2.
TINY = ["--preset", "tiny", "--problem", "fashion_mnist", "--anchor_size", "8", "--n_train", "32",
        "--n_test", "20", "--epochs_warmup", "1", "--epochs_full_valid", "1"]


# A line of TensorFlow's C++ log (which TF_CPP_MIN_LOG_LEVEL does not silence before absl is initialised),
# and the tab-indented lines that continue one (e.g. the `[[{{node Assert/Assert}}]]` of a failed op).
_TF_LOG = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages before absl)")


def without_tf_log(text: str) -> list:
    """The lines of `text` (a process's stderr) that are not TensorFlow's C++ log."""
    lines, in_log = [], False
    for line in text.splitlines():
        in_log = bool(_TF_LOG.match(line)) or (in_log and line.startswith("\t"))
        if not in_log:
            lines.append(line)
    return lines


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    env.pop("HOROVOD_RANK", None)
    return env


def run_train(args, timeout=600):
    """train.py in a fresh process, as a user runs it."""
    return subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *args], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def start_cli(args, **kwargs):
    """train.py started in the background, its stdout a pipe the test reads line by line."""
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), *args], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, text=True, **kwargs)


def wait_for_line(proc, predicate, timeout=300):
    """Read the process's stdout until a line satisfies `predicate`; returns the lines read."""
    deadline, lines = time.time() + timeout, []
    for line in proc.stdout:
        lines.append(line)
        if predicate(line):
            return lines
        if time.time() > deadline:
            break
    raise AssertionError(f"no such line before the process ended or {timeout} s passed: {''.join(lines[-20:])}")


def verbose_step(line):
    """The step number of a --verbose line (`n_processed seconds [stats]`), for the tiny batch of 4."""
    first = line.split(" ", 1)[0]
    return int(first) // 4 + 1 if first.isdigit() and "[" in line else None


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def truncate(path, keep=0.5):
    """Cut the file at `path` to the fraction `keep` of its size (a damaged or half-written file)."""
    with open(path, "r+b") as f:
        f.truncate(int(os.path.getsize(path) * keep))


def snapshot(folder):
    """Every file under folder with a hash of its contents."""
    out = {}
    for base, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(base, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return out


def step_of(logdir):
    """The step of the logdir's latest checkpoint (0 when it has none)."""
    latest = tf.train.latest_checkpoint(os.path.join(logdir, "checkpoints"))
    return int(latest.rsplit("-", 1)[1]) if latest else 0


_BESIDE = os.path.join(os.path.dirname(sys.executable), "horovodrun")
HOROVODRUN = _BESIDE if os.path.exists(_BESIDE) else (shutil.which("horovodrun") or _BESIDE)

# Runs train.main on each rank, recording what the test compares: every variable (model, optimizer,
# Polyak average, counters) before and after the start-up broadcast and at the end, where it ran (rank, local rank, host), and each (local stats, averaged stats) pair of every step.
HOROVOD_HELPER = textwrap.dedent("""
    import json, os, socket, sys
    import numpy as np
    import tensorflow as tf
    sys.path.insert(0, os.environ["GLOW_ROOT"])
    import train
    from glow_tf.training import distributed, trainer
    from glow_tf.training.state import STATS
    from glow_tf.training.steps import FLAGS

    out, argv = sys.argv[1], sys.argv[2:]
    records, trainers = [], []

    real_init = distributed.init_distributed
    def init_distributed():
        dist = real_init()
        real_mean = dist.allreduce_mean
        def allreduce_mean(tensors):
            tensors = list(tensors)
            averaged = real_mean(tensors)
            # The stats of training steps (with the flags) and of validation steps, not gradients.
            if len(tensors) == 1 and tensors[0].shape in ((len(STATS),), (len(STATS) + len(FLAGS),)):
                tf.py_function(lambda a, b: records.append((a.numpy()[:len(STATS)], b.numpy()[:len(STATS)])),
                               [tensors[0], averaged[0]], [])
            return averaged
        dist.allreduce_mean = allreduce_mean
        real_broadcast = dist.broadcast
        def broadcast(variables):
            dump = lambda tag: np.savez(f"{out}/{tag}_rank{dist.rank}.npz",
                                        *[np.asarray(v.numpy()) for v in variables])
            dump("before")
            real_broadcast(variables)
            dump("after")
        dist.broadcast = broadcast
        return dist
    distributed.init_distributed = init_distributed

    real_start = trainer.Trainer.start
    def start(self, *args, **kwargs):
        trainers.append(self)
        return real_start(self, *args, **kwargs)
    trainer.Trainer.start = start

    code = train.main(argv)
    t = trainers[0]
    state = t.model.variables + t.optimizer.variables + t.ema.variables
    np.savez(f"{out}/end_rank{t.dist.rank}.npz", *[np.asarray(v.numpy()) for v in state])
    with open(f"{out}/where_rank{t.dist.rank}.json", "w") as f:
        json.dump({"rank": t.dist.rank, "local_rank": t.dist.local_rank, "hostname": socket.gethostname(),
                   "hosts": t.dist.hosts, "iface": os.environ.get("HOROVOD_GLOO_IFACE")}, f)
    np.savez(f"{out}/stats_rank{t.dist.rank}.npz", local=np.array([r[0] for r in records]),
             averaged=np.array([r[1] for r in records]), size=t.dist.size)
    sys.exit(code)
""")


def load_npz(path):
    """The arrays of an .npz written by np.savez(*arrays), in order."""
    with np.load(path) as f:
        return [f[f"arr_{i}"] for i in range(len(f.files))]
