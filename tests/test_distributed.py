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


MULTIHOST = {"HOROVOD_CROSS_SIZE": "2", "HOROVOD_RANK": "0", "HOROVOD_LOCAL_RANK": "0",
             "HOROVOD_GLOO_IFACE": "eth0"}


def fake_resolver(table):
    return lambda name: table.get(name)


def test_a_multihost_launch_with_a_loopback_host_name_warns_once_with_the_fix():
    warnings = distributed.multihost_warnings(MULTIHOST, "node1", fake_resolver({"node1": "127.0.1.1"}))
    assert len(warnings) == 1
    assert "node1 resolves to the loopback address 127.0.1.1" in warnings[0]
    assert "/etc/hosts" in warnings[0] and "\n" not in warnings[0]
    # Only a host's first rank says it; a network address, or a single host, is no warning.
    assert distributed.multihost_warnings({**MULTIHOST, "HOROVOD_LOCAL_RANK": "1"}, "node1",
                                          fake_resolver({"node1": "127.0.1.1"})) == []
    assert distributed.multihost_warnings(MULTIHOST, "node1", fake_resolver({"node1": "10.0.0.2"})) == []
    assert distributed.multihost_warnings({**MULTIHOST, "HOROVOD_CROSS_SIZE": "1"}, "node1",
                                          fake_resolver({"node1": "127.0.1.1"})) == []


def test_gloo_on_lo_across_hosts_warns_on_rank_0_with_the_flag_to_pass():
    env = {**MULTIHOST, "HOROVOD_GLOO_IFACE": "lo"}
    resolve = fake_resolver({"node1": "10.0.0.2"})
    [warning] = distributed.multihost_warnings(env, "node1", resolve)
    assert "loopback interface lo" in warning and "--network-interface" in warning
    assert distributed.multihost_warnings({**env, "HOROVOD_RANK": "2"}, "node1", resolve) == []
    assert distributed.multihost_warnings({**env, "HOROVOD_CROSS_SIZE": "1"}, "node1", resolve) == []


HOSTS = ["node1", "node1", "node2", "node2", "node3", "node3"]
ADDRESSES = fake_resolver({"node1": "10.0.0.2", "node2": "10.0.0.3", "node3": "10.0.0.4"})


def test_a_lost_host_is_named_by_the_peer_address_in_the_error():
    err = RuntimeError("Gloo: Connection closed by peer [10.0.0.4]:28882")
    line = distributed.lost_host_message(err, HOSTS, 0, ADDRESSES, probe=lambda a: True)
    assert line.startswith("lost host node3 (ranks 4, 5)") and "\n" not in line
    assert "same command" in line


def test_a_partitioned_host_is_named_by_not_answering():
    err = RuntimeError("Horovod has been shut down.")
    line = distributed.lost_host_message(err, HOSTS, 1, ADDRESSES, probe=lambda a: a != "10.0.0.3")
    assert line.startswith("lost host node2 (ranks 2, 3): it does not answer")


def test_when_nothing_tells_which_every_other_host_is_listed():
    err = RuntimeError("Horovod has been shut down.")
    line = distributed.lost_host_message(err, HOSTS, 2, ADDRESSES, probe=lambda a: True)
    assert line.startswith("lost host node1, node3 (ranks 0, 1, 4, 5)")


def test_only_a_peer_going_away_counts_as_a_lost_rank():
    assert distributed.is_lost_rank_error(tf.errors.UnknownError(None, None, "Horovod has been shut down."))
    assert distributed.is_lost_rank_error(RuntimeError("Timed out waiting 30000ms for recv operation"))
    assert not distributed.is_lost_rank_error(tf.errors.InvalidArgumentError(None, None, "loss is NaN"))


def test_reachable_tells_an_answering_host_from_a_silent_one(monkeypatch):
    import socket
    with socket.socket() as s:  # a closed port of this machine refuses: the host is there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert distributed.reachable("127.0.0.1", timeout=1.0, port=port)
    # A partitioned host does not answer: the connection times out (or has no route).
    for silence in (TimeoutError("timed out"), OSError(113, "No route to host")):
        def connect(*args, error=silence, **kwargs):
            raise error
        monkeypatch.setattr(socket, "create_connection", connect)
        assert not distributed.reachable("10.0.0.3", timeout=0.5)


def test_a_single_process_never_reports_a_lost_rank():
    assert distributed.lost_rank(RuntimeError("Horovod has been shut down."), distributed.SingleProcess()) is None
