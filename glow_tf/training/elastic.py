"""Elastic training: workers come and go while the job runs (Elastic Horovod).

`horovodrun --min-np N --max-np M --host-discovery-script discover.sh python train.py ...` starts every
worker with HOROVOD_ELASTIC=1, and train.py then trains elastically (no flag needed:
glow_tf.training.distributed.elastic_requested; this module, which needs Horovod, is imported only then). The
job keeps going when a worker dies, a host leaves the discovery script's output or a host joins:

* `TrainingState` is what the job continues from. Every `--elastic_commit_steps` steps (and at each
  epoch's end) the loop commits it: the weights, the optimizer's slots and step counter, the Polyak
  shadows and the loop's counters (glow_tf.training.state.TrainState, which include where the data
  stream stands) are copied to host memory, with the job's size at that step.
* `run` is the loop around training. A collective failing because a worker went away rolls every
  survivor back to its last commit; a change of hosts, noticed at a step boundary, interrupts at a
  commit. Either way Horovod is restarted over the new set of workers, rank 0's state is broadcast
  to all (joiners included), and training resumes.

Horovod's own TensorFlow state classes do not fit Keras 3 (TensorFlowKerasState calls
`optimizer.variables()`, a property there; TensorFlowState broadcasts in its constructor, so a worker
that joins later waits for a broadcast nobody sends), and its `hvd.elastic.run` for TensorFlow returns
None after any `tf.errors.UnknownError` that does not name a Horovod op, so a failed job would exit 0.
Hence the state class and the loop here: an error that is not a lost worker propagates.
"""

from __future__ import annotations

import re
import time
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf
from horovod.common.elastic import State, notification_manager
from horovod.common.exceptions import HorovodInternalError, HostsUpdatedInterrupt

from glow_tf.training.optim import tf_variable

# How a Horovod collective fails inside TensorFlow when a peer went away: the op's name in the error of
# the function (or eager op) that ran it, or the background loop's message after it stopped.
_HOROVOD_OP = re.compile(r"Horovod(Allreduce|Allgather|Broadcast|Alltoall|Reducescatter|Join)"
                         r"|Horovod has been shut down")


def is_lost_worker_error(error: BaseException) -> bool:
    """Whether `error` is a Horovod collective failing (a worker went away), rather than a bug."""
    if isinstance(error, HorovodInternalError):
        return True
    return isinstance(error, tf.errors.UnknownError) and bool(_HOROVOD_OP.search(str(error)))


class TrainingState(State):
    """The in-memory state an elastic job continues from.

    commit(): copy every variable to host memory and note the job's size; then (Horovod's part) raise
        HostsUpdatedInterrupt on every worker if the hosts changed.
    restore(): put the last commit back (after a worker was lost mid-step).
    sync(): broadcast rank 0's variables and commit record to every worker, then commit them.
    hosts_pending: the driver announced a change of hosts that no commit has acted on yet.

    `variables` (Keras or tf variables) is a fixed list; `size()` and `rank()` read the job's current
    size and this worker's rank; the broadcasts are Horovod's, from rank 0. Nothing here runs a
    collective before the first `sync`, so a worker that joins a running job meets the others there.
    """

    def __init__(self, variables: Sequence, size: Callable[[], int], rank: Callable[[], int],
                 broadcast_variables: Callable, broadcast_object: Callable):
        super().__init__(bcast_object=broadcast_object, get_rank=rank)
        self.variables = [tf_variable(v) for v in variables]
        self._size = size
        self._broadcast_variables = broadcast_variables
        self.values = None  # the committed values: host copies, in the order of `variables`
        self.committed = {}  # the job's size when the commit was made, and when
        self.hosts_pending = False

    def save(self):
        # np.array copies: a variable's numpy() may share the buffer that the next update overwrites.
        self.values = [np.array(v.numpy(), copy=True) for v in self.variables]
        self.committed = {"size": self._size(), "time": time.time()}

    def restore(self):
        for v, value in zip(self.variables, self.values, strict=True):
            v.assign(value)

    def sync(self):
        self._broadcast_variables(self.variables)
        record = self._bcast_object(self.committed)
        self.save()
        if record:  # the size of the job that committed the state (a joiner has no commit of its own)
            self.committed["size"] = record["size"]

    def on_hosts_updated(self, timestamp, update_res):
        super().on_hosts_updated(timestamp, update_res)
        self.hosts_pending = True

    def check_host_updates(self):
        self.hosts_pending = False
        super().check_host_updates()


def run(state, body: Callable, reset: Callable, notifications=None):
    """Call `body(state)` until it returns, across resets (horovod.common.elastic.run_fn's loop).

    Before each call the state is synced from rank 0. When a worker is lost, the survivors' next
    collective fails: the state goes back to its last commit, Horovod restarts over the remaining and
    new workers (`reset`), and the body runs again. A change of hosts raises HostsUpdatedInterrupt at a
    commit; the state is current then, and is synced again unless workers only left. Any other error
    propagates: it ends this worker, and with it (being raised on every worker, as errors of the step
    are) the job.
    """
    notifications = notification_manager if notifications is None else notifications
    notifications.init()
    notifications.register_listener(state)
    skip_sync = False
    try:
        while True:
            try:
                if not skip_sync:
                    state.sync()
                return body(state)
            except HostsUpdatedInterrupt as interrupt:
                skip_sync = interrupt.skip_sync
            except Exception as err:  # noqa: BLE001 - sorted here: a lost worker, or a real error
                if not is_lost_worker_error(err):
                    raise
                state.restore()
                skip_sync = False
            reset()
            state.on_reset()
    finally:
        notifications.remove_listener(state)
