"""glow_tf.training.runfiles: one run per logdir, and --no-resume without losing the previous run."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from glow_tf.errors import ConfigError
from glow_tf.training import runfiles
from glow_tf.training.runfiles import RunLock
from tests.runs import ROOT


def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_second_run_is_refused_naming_the_holder(tmp_path):
    first = RunLock(str(tmp_path))
    first.acquire()
    try:
        with pytest.raises(ConfigError, match=f"in use by another train.py \\(pid {os.getpid()} on host "
                                              f"{socket.gethostname()}, started .*delete .*train.lock"):
            RunLock(str(tmp_path)).acquire()
        with pytest.raises(ConfigError, match="in use by another train.py"):
            RunLock(str(tmp_path)).check()  # the read-only check says the same
    finally:
        first.release()
    assert not (tmp_path / "train.lock").exists()
    with RunLock(str(tmp_path)):  # free again
        assert json.loads((tmp_path / "train.lock").read_text())["pid"] == os.getpid()


def test_the_lock_of_a_dead_process_on_this_host_is_taken_over_with_a_warning(tmp_path):
    pid = dead_pid()
    (tmp_path / "train.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": pid,
                                                     "started": "yesterday"}))
    warnings = []
    lock = RunLock(str(tmp_path), warn=warnings.append)
    lock.acquire()
    lock.release()
    assert len(warnings) == 1 and f"pid {pid}" in warnings[0] and "no longer exists" in warnings[0]


def test_a_lock_from_another_host_is_stale_only_once_its_heartbeat_stops(tmp_path):
    path = tmp_path / "train.lock"
    path.write_text(json.dumps({"host": "node-that-crashed", "pid": 4242, "started": "yesterday"}))
    with pytest.raises(ConfigError, match="pid 4242 on host node-that-crashed"):
        RunLock(str(tmp_path)).acquire()  # renewed just now: maybe still running there
    old = time.time() - runfiles.STALE_S - 60
    os.utime(path, (old, old))
    warnings = []
    RunLock(str(tmp_path), warn=warnings.append).acquire()
    assert "has not been renewed for" in warnings[0]


def test_a_lock_of_the_same_horovodrun_job_passes_to_its_new_rank_0_and_no_other_job_gets_it(tmp_path):
    path = tmp_path / "train.lock"
    # Rank 0 of an elastic job on another host holds the lock, renewed just now.
    path.write_text(json.dumps({"host": "node2", "pid": 4242, "started": "now", "job": "10.0.0.1:4000"}))
    with pytest.raises(ConfigError, match="pid 4242 on host node2"):
        RunLock(str(tmp_path), job="10.0.0.1:5000").check()  # another job's rank: refused
    with pytest.raises(ConfigError, match="pid 4242 on host node2"):
        RunLock(str(tmp_path)).acquire()  # a plain train.py: refused
    RunLock(str(tmp_path), job="10.0.0.1:4000").check()  # a worker of the same job joining: fine
    warnings = []
    lock = RunLock(str(tmp_path), warn=warnings.append, job="10.0.0.1:4000")
    lock.acquire()  # the job's new rank 0 takes it over at once, without a warning
    try:
        assert warnings == []
        info = json.loads(path.read_text())
        assert (info["pid"], info["host"], info["job"]) == (os.getpid(), socket.gethostname(), "10.0.0.1:4000")
    finally:
        lock.release()
    assert runfiles.job_id({"HOROVOD_GLOO_RENDEZVOUS_ADDR": "10.0.0.1", "HOROVOD_GLOO_RENDEZVOUS_PORT": "4000"}) \
        == "10.0.0.1:4000"
    assert runfiles.job_id({}) is None


def test_a_running_holder_renews_its_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(runfiles, "HEARTBEAT_S", 0.05)
    with RunLock(str(tmp_path)):
        old = time.time() - 1000
        os.utime(tmp_path / "train.lock", (old, old))
        time.sleep(0.5)
        assert time.time() - os.path.getmtime(tmp_path / "train.lock") < 5


def test_of_processes_starting_together_exactly_one_gets_the_lock(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {ROOT!r})
        from glow_tf.errors import ConfigError
        from glow_tf.training.runfiles import RunLock
        time.sleep(max(0.0, float(sys.argv[1]) - time.time()))
        try:
            RunLock({str(tmp_path)!r}).acquire()
            print("got it", flush=True)
            time.sleep(2)
        except ConfigError:
            print("refused", flush=True)
    """)
    start = str(time.time() + 1.0)
    procs = [subprocess.Popen([sys.executable, "-c", script, start], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    outcomes = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outcomes == ["got it", "refused", "refused", "refused"]


def test_logdir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match="afile is a file, not a folder"):
        runfiles.check_logdir(str(tmp_path / "afile"))
    with pytest.raises(ConfigError, match="lies below .*afile, which is a file"):
        runfiles.check_logdir(str(tmp_path / "afile" / "run"))
    runfiles.check_logdir(str(tmp_path / "new" / "run"))  # not there yet: fine


def make_run(logdir, tag):
    (logdir / "checkpoints").mkdir(parents=True)
    (logdir / "checkpoints" / "ckpt-8.index").write_text(tag)
    (logdir / "train.txt").write_text(tag)
    (logdir / "epoch_1_sample_0.png").write_text(tag)
    (logdir / "notes.md").write_text("the user's own file")


def test_no_resume_sets_the_old_run_aside_and_brings_it_back_if_the_new_one_never_saved(tmp_path):
    make_run(tmp_path, "old")
    aside = runfiles.set_aside(str(tmp_path))
    assert sorted(os.listdir(aside)) == ["checkpoints", "epoch_1_sample_0.png", "train.txt"]
    assert sorted(os.listdir(tmp_path)) == ["notes.md", "replaced_run"]
    (tmp_path / "train.txt").write_text("new, interrupted")  # the new run died before its first checkpoint
    assert runfiles.set_aside(str(tmp_path)) == aside  # a second --no-resume keeps the old run aside
    assert (tmp_path / "replaced_run" / "train.txt").read_text() == "old" and not (tmp_path / "train.txt").exists()
    (tmp_path / "train.txt").write_text("new again, interrupted")
    runfiles.bring_back(str(tmp_path))
    assert (tmp_path / "train.txt").read_text() == "old"
    assert (tmp_path / "checkpoints" / "ckpt-8.index").read_text() == "old"
    assert not (tmp_path / "replaced_run").exists() and (tmp_path / "notes.md").exists()


def test_the_old_run_is_deleted_once_the_new_run_saved(tmp_path):
    make_run(tmp_path, "old")
    runfiles.set_aside(str(tmp_path))
    assert runfiles.discard_set_aside(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["notes.md"]
    assert not runfiles.discard_set_aside(str(tmp_path))
