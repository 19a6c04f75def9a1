"""glow_tf.training.distributed: one process needs no Horovod; a launched rank without Horovod is an error.

The real multi-rank behaviour (broadcast, averaging, lockstep) is tested under horovodrun in
test_horovod.py; this covers the single-process stand-in and the choice between the two.
"""

import sys

import numpy as np
import pytest
import tensorflow as tf

from glow_tf.training import distributed


def test_without_a_launcher_it_is_rank_0_of_1_and_imports_no_horovod(monkeypatch):
    for name in distributed.LAUNCHER_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(sys.modules, "horovod.tensorflow", None)  # any import of it would now fail
    dist = distributed.init_distributed()
    assert (dist.rank, dist.size, dist.local_rank, dist.horovod) == (0, 1, 0, False)


def test_the_single_process_collectives_are_identities():
    dist = distributed.SingleProcess()
    t = [tf.constant([1.0, 2.0]), tf.constant(3.0)]
    assert [x.numpy().tolist() for x in dist.allreduce_mean(t)] == [[1.0, 2.0], 3.0]
    np.testing.assert_array_equal(dist.allreduce_sum(np.array([4, 5])), [4, 5])
    np.testing.assert_array_equal(dist.allgather(np.array([[1, 2]])), [[1, 2]])
    v = tf.Variable(7.0)
    dist.broadcast([v])
    assert v.numpy() == 7.0
    assert dist.all_ok(True) and not dist.all_ok(False)


def test_a_launched_rank_without_horovod_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("HOROVOD_RANK", "1")
    monkeypatch.setitem(sys.modules, "horovod.tensorflow", None)
    with pytest.raises(distributed.DistributedError, match="horovod.tensorflow does not import"):
        distributed.init_distributed()
