"""Horovod, or one process with the same interface (openai/glow train.py: hvd.init, allreduce, broadcast).

train.py and the evaluator run the same code path in one process and under `horovodrun -np N`:
`init_distributed()` returns a Horovod rank when the process was started by a launcher, else rank 0 of 1,
so a single-process run never imports Horovod.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from glow_tf.errors import GlowError
from glow_tf.training.optim import tf_variable

LAUNCHER_ENV = ("HOROVOD_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK")


class SingleProcess:
    """Rank 0 of 1: what the training loop needs from Horovod, without Horovod."""

    rank, size, local_rank = 0, 1, 0
    horovod = False

    def allreduce_mean(self, tensors):
        return list(tensors)

    def allreduce_sum(self, array: np.ndarray) -> np.ndarray:
        return np.asarray(array)

    def broadcast(self, variables):
        pass

    def allgather(self, array: np.ndarray) -> np.ndarray:
        return array

    def all_ok(self, ok: bool) -> bool:
        return bool(ok)


class HorovodProcess:
    """One rank of a Horovod job: averaging, broadcasts and gathers go through horovod.tensorflow."""

    horovod = True

    def __init__(self, hvd):
        self.hvd = hvd
        hvd.init()
        self.rank, self.size, self.local_rank = hvd.rank(), hvd.size(), hvd.local_rank()

    def allreduce_mean(self, tensors):
        # One allreduce per tensor, as the original and DistributedGradientTape's default do; Horovod's
        # tensor fusion still packs the ready ones into few messages. Unlike one grouped call, which
        # waits for the last gradient and returns all averages at once, each gradient is sent as soon
        # as the backward pass produces it and applied as soon as its average is back: communication
        # overlaps the backward pass, and the gradients need not all be alive at once.
        return [self.hvd.allreduce(t, op=self.hvd.Average) for t in tensors]

    def allreduce_sum(self, array: np.ndarray) -> np.ndarray:
        return self.hvd.allreduce(tf.convert_to_tensor(array), op=self.hvd.Sum).numpy()

    def broadcast(self, variables):
        # Horovod 0.28 needs tf.Variables; Keras 3 variables are unwrapped (tf_variable).
        self.hvd.broadcast_variables([tf_variable(v) for v in variables], root_rank=0)

    def allgather(self, array: np.ndarray) -> np.ndarray:
        return self.hvd.allgather(tf.convert_to_tensor(array)).numpy()

    def all_ok(self, ok: bool) -> bool:
        """True on every rank when `ok` is true on every rank (a collective: all ranks must call it)."""
        return int(self.allreduce_sum(np.array([int(bool(ok))]))[0]) == self.size


class DistributedError(GlowError):
    """Launched as one of several ranks, but Horovod cannot be used."""


def init_distributed():
    """Horovod when this process was started by horovodrun/mpirun and Horovod imports; else one process."""
    if not any(name in os.environ for name in LAUNCHER_ENV):
        return SingleProcess()
    try:
        import horovod.tensorflow as hvd
    except ImportError as err:
        raise DistributedError(f"launched as one of several ranks but horovod.tensorflow does not import "
                               f"({err}); run scripts/install_horovod.sh or `make install`") from None
    return HorovodProcess(hvd)


def configure_devices(dist) -> str | None:
    """One GPU per local rank, memory allocated as needed (the original's visible_device_list/allow_growth);
    on CPUs, single-threaded ops (`cpu_thread_layout`). Call it before TensorFlow runs anything.
    Returns a line for the log when it chose the CPU layout, else None."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        gpu = gpus[dist.local_rank % len(gpus)]
        tf.config.set_visible_devices(gpu, "GPU")
        tf.config.experimental.set_memory_growth(gpu, True)
        return None
    return cpu_thread_layout()


def cpu_thread_layout() -> str | None:
    """On CPUs, run every op on one thread, so that the model encodes each batch as concurrent
    sub-batches, one per inter-op thread (glow_tf.model.concurrent_batch_parts): at 2 cores the faster
    layout for every configuration in bench/ (bench/cpu_layout.py), and no slower at 1 core.

    An explicit choice decides: TF_NUM_INTRAOP_THREADS in the environment (0 is TensorFlow's own
    pools) or tf.config.threading set before. Returns a line saying what was chosen, or None when
    nothing was changed (also when TensorFlow has already started its thread pools)."""
    if "TF_NUM_INTRAOP_THREADS" in os.environ or tf.config.threading.get_intra_op_parallelism_threads():
        return None
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
    except RuntimeError:  # the runtime is already initialised: its pools stay as they are
        return None
    from glow_tf.model import concurrent_batch_parts

    return (f"CPU threads: every op on one thread, each batch as {concurrent_batch_parts()} concurrent "
            f"sub-batches (TF_NUM_INTRAOP_THREADS=0 for TensorFlow's default pools)")
