"""glow_tf.training.elastic in one process: the state's commit, restore and sync, and the loop that sorts
a lost worker from a real error (with stand-ins for Horovod's broadcasts and its driver's notices).

The scenarios on real workers (horovodrun --min-np/--max-np) are in tests/test_elastic_jobs.py."""

import numpy as np
import pytest
import tensorflow as tf

pytest.importorskip("horovod")

from horovod.common.exceptions import HorovodInternalError, HostsUpdatedInterrupt  # noqa: E402

from glow_tf.training import elastic  # noqa: E402
from glow_tf.training.distributed import elastic_requested  # noqa: E402


def state_over(variables, size=2, root=None):
    """A TrainingState whose broadcasts copy rank 0's values from `root` (a list of arrays, a record)."""
    def broadcast_variables(vs):
        if root is not None:
            for v, value in zip(vs, root[0], strict=True):
                v.assign(value)

    def broadcast_object(obj):
        return root[1] if root is not None else obj

    return elastic.TrainingState(variables, size=lambda: size, rank=lambda: 0,
                                 broadcast_variables=broadcast_variables, broadcast_object=broadcast_object)


def test_a_commit_is_a_copy_that_restore_puts_back():
    keras_var = tf.keras.Variable(np.arange(6, dtype=np.float32).reshape(2, 3))
    counter = tf.Variable(7, dtype=tf.int64)
    state = state_over([keras_var, counter])
    state.save()
    assert state.committed["size"] == 2
    keras_var.assign(keras_var * 10 + 1)  # an update after the commit, in place
    counter.assign_add(5)
    np.testing.assert_array_equal(state.values[0], np.arange(6).reshape(2, 3))  # the copy did not follow
    state.restore()
    np.testing.assert_array_equal(keras_var.numpy(), np.arange(6).reshape(2, 3))
    assert int(counter.numpy()) == 7


def test_sync_takes_rank_0s_values_and_the_size_its_commit_was_made_by():
    v = tf.Variable([0.0, 0.0])
    rank0 = ([np.array([3.0, 4.0], np.float32)], {"size": 1, "time": 0.0})
    joiner = state_over([v], size=2, root=rank0)  # a worker joining a job that committed at size 1
    joiner.sync()
    np.testing.assert_array_equal(v.numpy(), [3.0, 4.0])
    assert joiner.committed["size"] == 1  # so the loop converts the epoch's steps from 1 rank to 2
    v.assign([9.0, 9.0])
    joiner.restore()  # sync committed what it received
    np.testing.assert_array_equal(v.numpy(), [3.0, 4.0])


def test_a_notice_of_new_hosts_is_pending_until_a_commit_acts_on_it():
    state = state_over([tf.Variable(1.0)])
    state.save()
    assert not state.hosts_pending
    state.on_hosts_updated(timestamp=5, update_res=1)
    assert state.hosts_pending
    with pytest.raises(HostsUpdatedInterrupt):
        state.commit()  # Horovod's check: the hosts changed, every rank resets at this commit
    assert not state.hosts_pending


class FakeState:
    def __init__(self):
        self.calls = []

    def sync(self):
        self.calls.append("sync")

    def restore(self):
        self.calls.append("restore")

    def on_reset(self):
        self.calls.append("on_reset")


class FakeNotifications:
    def __init__(self):
        self.listeners = []

    def init(self):
        pass

    def register_listener(self, state):
        self.listeners.append(state)

    def remove_listener(self, state):
        self.listeners.remove(state)


def run_with(failures):
    """elastic.run over a body that raises `failures` in turn, then returns "done"."""
    state, notices, resets = FakeState(), FakeNotifications(), []
    failures = list(failures)

    def body(s):
        s.calls.append("body")
        if failures:
            raise failures.pop(0)
        return "done"

    result = elastic.run(state, body, reset=lambda: resets.append(1), notifications=notices)
    assert notices.listeners == []  # unregistered however it ended
    return result, state.calls, len(resets)


def lost_worker():
    # What a survivor's training step raises when a peer's connection went: the op is named.
    return tf.errors.UnknownError(None, None, "{{function_node __inference_train_step_123}} "
                                  "HorovodAllreduce_grads_0 failed: Connection reset by peer")


def test_a_lost_worker_rolls_back_to_the_commit_restarts_horovod_and_trains_on():
    result, calls, resets = run_with([lost_worker(), HorovodInternalError("gone")])
    assert result == "done" and resets == 2
    assert calls == ["sync", "body", "restore", "on_reset", "sync", "body", "restore", "on_reset", "sync", "body"]


def test_new_or_removed_hosts_reset_at_the_commit_without_rolling_back():
    result, calls, resets = run_with([HostsUpdatedInterrupt(skip_sync=False), HostsUpdatedInterrupt(skip_sync=True)])
    assert result == "done" and resets == 2
    # Hosts only removed: no new worker needs the state, so no sync.
    assert calls == ["sync", "body", "on_reset", "sync", "body", "on_reset", "body"]


@pytest.mark.parametrize("error", [
    tf.errors.UnknownError(None, None, "a py_function raised: ValueError: bad pixel"),  # hvd.elastic.run: None
    tf.errors.InvalidArgumentError(None, None, "Incompatible shapes"),
    ValueError("a bug"),
])
def test_any_other_error_ends_the_worker_with_that_error(error):
    with pytest.raises(type(error), match=str(error.message if hasattr(error, "message") else error)):
        run_with([error])


def test_only_workers_of_an_elastic_horovodrun_train_elastically():
    assert elastic_requested({"HOROVOD_ELASTIC": "1"})
    assert not elastic_requested({"HOROVOD_ELASTIC": "0"})
    assert not elastic_requested({"HOROVOD_RANK": "0"})
