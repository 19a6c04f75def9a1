"""Horovod, or one process with the same interface (openai/glow train.py: hvd.init, allreduce, broadcast).

train.py and the evaluator run the same code path in one process and under `horovodrun -np N`:
`init_distributed()` returns a Horovod rank when the process was started by a launcher, else rank 0 of 1,
so a single-process run never imports Horovod.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket

import numpy as np
import tensorflow as tf

from glow_common.errors import first_line, warn
from glow_tf.errors import GlowError
from glow_tf.training.optim import tf_variable

LAUNCHER_ENV = ("HOROVOD_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK")
ELASTIC_ENV = "HOROVOD_ELASTIC"  # horovodrun sets it to 1 for the workers of an elastic job


def elastic_requested(env=os.environ) -> bool:
    """Whether this process is a worker of an elastic horovodrun job (--min-np/--max-np/
    --host-discovery-script): then train.py trains elastically (glow_tf.training.elastic)."""
    return env.get(ELASTIC_ENV, "0").strip() not in ("", "0")


class SingleProcess:
    """Rank 0 of 1: what the training loop needs from Horovod, without Horovod."""

    rank, size, local_rank = 0, 1, 0
    horovod = False
    elastic = False

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

    def __init__(self, hvd, elastic: bool = False):
        self.hvd = hvd
        self.elastic = elastic
        for line in multihost_warnings(os.environ, socket.gethostname(), _resolve):
            warn(line)
        hvd.init()
        self.refresh()
        self.hosts = []
        if elastic:  # no collective before the elastic state's first sync, where a joiner meets the others
            return
        # Every rank's host name as the launcher named it (-H), to name a lost host (lost_host_message).
        name = os.environ.get("HOROVOD_HOSTNAME") or socket.gethostname()
        encoded = np.frombuffer(name.encode()[:_NAME_BYTES].ljust(_NAME_BYTES, b"\0"), np.uint8)
        gathered = self.allgather(encoded[None, :])
        self.hosts = [bytes(row).rstrip(b"\0").decode(errors="replace") for row in gathered]

    def refresh(self) -> None:
        """Read this worker's rank, the job's size and the local rank (again, after an elastic reset)."""
        self.rank, self.size, self.local_rank = self.hvd.rank(), self.hvd.size(), self.hvd.local_rank()

    def reset(self) -> None:
        """Restart Horovod over the elastic job's current workers (hvd.elastic's reset), then refresh."""
        self.hvd.shutdown()
        self.hvd.init()
        self.refresh()

    def broadcast_object(self, obj):
        """A picklable object from rank 0 to every rank."""
        return self.hvd.broadcast_object(obj, root_rank=0)

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


EXIT_UNAVAILABLE = 69  # sysexits.h EX_UNAVAILABLE: another rank's host is gone
_NAME_BYTES = 64


class LostRankError(GlowError):
    """A collective failed because a rank (its host killed, crashed or cut off) stopped answering."""

    exit_code = EXIT_UNAVAILABLE


def _resolve(name: str):
    try:
        return socket.gethostbyname(name)
    except OSError:
        return None


def _is_loopback(address) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def multihost_warnings(env, hostname: str, resolve=_resolve) -> list:
    """The start-up warnings of a rank launched over several hosts (`env` is its environment, which
    horovodrun fills: HOROVOD_CROSS_SIZE hosts, HOROVOD_GLOO_IFACE the interface Gloo talks over).

    Gloo tells its peers the address of the interface it is given, else of this host's name: either
    being loopback sends ranks on other hosts to 127.x, where nothing of this job listens. Each
    warning is one line with its fix. The host's name is checked by its first rank only.
    """
    if int(env.get("HOROVOD_CROSS_SIZE", "1") or 1) <= 1:
        return []
    out = []
    iface = env.get("HOROVOD_GLOO_IFACE", "")
    if iface == "lo" and env.get("HOROVOD_RANK", "0") == "0":
        out.append("Gloo talks over the loopback interface lo while ranks run on other hosts, which "
                   "cannot reach it; pass horovodrun --network-interface IFACE (the interface the hosts "
                   "share, e.g. eth0)")
    address = resolve(hostname)
    if _is_loopback(address) and env.get("HOROVOD_LOCAL_RANK", "0") == "0":
        out.append(f"this host's name {hostname} resolves to the loopback address {address} while ranks "
                   f"run on other hosts, which would dial it; map {hostname} to its network address in "
                   f"/etc/hosts (Debian and Ubuntu map it to 127.0.1.1) or pass horovodrun "
                   f"--network-interface IFACE")
    return out


# How a collective fails when a peer went away: Horovod's Python error after its background loop stopped,
# and Gloo's own messages (a closed or reset connection, a partition's timeout).
_LOST = re.compile(r"Horovod has been shut down|HorovodInternalError|Connection (closed|reset) by peer|"
                   r"Timed out waiting \d+ ?ms|Broken pipe", re.IGNORECASE)
_ADDRESS = re.compile(r"\[?(\d{1,3}(?:\.\d{1,3}){3})\]?:\d+")


def is_lost_rank_error(error) -> bool:
    """Whether `error` (raised by a collective) is a peer rank going away rather than a bug."""
    return bool(_LOST.search(f"{type(error).__name__}: {error}"))


def reachable(address: str, timeout: float = 3.0, port: int = 9) -> bool:
    """Whether the host at `address` answers at all: any answer to a TCP connection (accepted or
    refused) proves it is there; silence or 'no route' means it is cut off."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def lost_host_message(error, hosts, rank: int, resolve=_resolve, probe=reachable) -> str:
    """One line naming the host(s) this job lost, from the failed collective's `error`, `hosts` (each
    rank's host name) and this `rank`. A host is named when the error gives a peer address of it, else
    when it does not answer (a partition); when neither tells, every other host is listed."""
    own = hosts[rank] if 0 <= rank < len(hosts) else None
    others = [h for h in dict.fromkeys(hosts) if h != own]
    addresses = {h: resolve(h) for h in others}
    named = set(_ADDRESS.findall(str(error)))
    lost = [h for h in others if addresses[h] in named]
    how = "its ranks stopped answering"
    if not lost:
        lost = [h for h in others if addresses[h] is None or not probe(addresses[h])]
        how = "it does not answer on the network"
    if not lost:
        lost, how = others, "a rank on one of them stopped answering"
    ranks = [str(r) for r, h in enumerate(hosts) if h in lost]
    return (f"lost host {', '.join(lost)} (rank{'s' if len(ranks) > 1 else ''} {', '.join(ranks)}): {how} "
            f"({first_line(error)}); the last checkpoint is intact: run the same command to resume once "
            f"every host is back, or without {'them' if len(lost) > 1 else 'it'} in -H")


def lost_rank(error, dist) -> LostRankError | None:
    """The one-line error naming the lost host when `error` is a collective failing because another
    rank went away (is_lost_rank_error), else None (also in an elastic job, which carries on instead)."""
    if dist.horovod and not dist.elastic and is_lost_rank_error(error):
        return LostRankError(lost_host_message(error, dist.hosts, dist.rank))
    return None


def init_distributed():
    """Horovod when this process was started by horovodrun/mpirun and Horovod imports; else one process."""
    if not any(name in os.environ for name in LAUNCHER_ENV):
        return SingleProcess()
    try:
        import horovod.tensorflow as hvd
    except ImportError as err:
        raise DistributedError(f"launched as one of several ranks but horovod.tensorflow does not import "
                               f"({err}); run scripts/install_horovod.sh or `make install`") from None
    return HorovodProcess(hvd, elastic=elastic_requested())


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
