"""train.py on two hosts: `horovodrun -np 4 -H node1:2,node2:2 --network-interface eth0`, started on node1
as a user logged into it would, the ranks of node2 started over ssh, every rank talking over the hosts'
own interfaces (tests/cluster.py, made by scripts/local_cluster.sh)."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.cluster import IFACE, cluster  # noqa: F401 (a fixture)
from tests.data_fixtures import needs_fashion
from tests.runs import HOROVOD_HELPER, HOROVODRUN, ROOT, TINY, load_npz, read_jsonl

pytestmark = [pytest.mark.skipif(not os.path.exists(HOROVODRUN), reason="needs horovodrun"), needs_fashion]

# 4 ranks: n_test must be a multiple of 4 ranks * test batch 2.
FLAGS = [("16" if prev == "--n_test" else f) for prev, f in zip([None, *TINY], TINY)]
LAUNCH = [HOROVODRUN, "-np", "4", "-H", "node1:2,node2:2", "--network-interface", IFACE]
# The job must end this soon after a host is lost: Gloo's 30 s timeout, then horovodrun's teardown.
LOST_BOUND = 120


def env():
    out = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1", GLOW_ROOT=ROOT)
    for name in list(out):
        if name.startswith(("HOROVOD_", "OMPI_", "PMI")):
            out.pop(name)
    return out


def train_command(logdir, *extra):
    return [*LAUNCH, sys.executable, os.path.join(ROOT, "train.py"), *FLAGS, "--logdir", str(logdir), *extra]


def test_four_ranks_on_two_hosts_train_in_lockstep(cluster, tmp_path):  # noqa: F811
    helper = tmp_path / "helper.py"
    helper.write_text(HOROVOD_HELPER)
    logdir = tmp_path / "run"
    result = subprocess.run(cluster.command("node1", [*LAUNCH, sys.executable, str(helper), str(tmp_path),
                                                      *FLAGS, "--epochs", "3", "--logdir", str(logdir)]),
                            cwd=ROOT, env=env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    where = [json.loads((tmp_path / f"where_rank{r}.json").read_text()) for r in range(4)]
    # Ranks 0, 1 on node1 and 2, 3 on node2 (each host's own hostname), local_rank 0 and 1 on each.
    assert [w["hostname"] for w in where] == ["node1", "node1", "node2", "node2"]
    assert [w["local_rank"] for w in where] == [0, 1, 0, 1]
    assert all(w["hosts"] == ["node1", "node1", "node2", "node2"] for w in where)
    assert all(w["iface"] == IFACE for w in where)

    # Rank 0's state reached every rank, and they trained in lockstep on different shards.
    after = [load_npz(tmp_path / f"after_rank{r}.npz") for r in range(4)]
    end = [load_npz(tmp_path / f"end_rank{r}.npz") for r in range(4)]
    assert any(not np.array_equal(a, b) for a, b in zip(after[0], end[0]))  # it did train
    for r in (1, 2, 3):
        for a, b in zip(end[0], end[r]):
            np.testing.assert_array_equal(a, b)
    stats = [np.load(tmp_path / f"stats_rank{r}.npz") for r in range(4)]
    assert int(stats[0]["size"]) == 4
    assert not np.allclose(stats[0]["local"][0], stats[2]["local"][0])  # node2 read other data
    np.testing.assert_allclose(stats[0]["averaged"], sum(s["local"] for s in stats) / 4, rtol=1e-6)

    # Only rank 0 writes the logdir: one event file, one train log of its epochs.
    assert len([n for n in os.listdir(logdir) if n.startswith("events.out")]) == 1
    assert [line["epoch"] for line in read_jsonl(logdir / "train.txt")[1:]] == [1, 2]


def start(cluster, logdir, *extra):  # noqa: F811
    return subprocess.Popen(cluster.command("node1", train_command(logdir, "--verbose", *extra)), cwd=ROOT,
                            env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_step(proc, n_processed):
    """Read rank 0's --verbose lines ("[0]<stdout>:<n_processed> <seconds> [stats]") until that many
    images were processed; the lines read."""
    lines = []
    for line in proc.stdout:
        lines.append(line)
        body = line.split(">:", 1)[-1]
        first = body.split(" ", 1)[0]
        if line.startswith("[0]") and first.isdigit() and "[" in body and int(first) >= n_processed:
            return lines
    raise AssertionError("".join(lines[-40:]))


LONG = ["--epochs", "3", "--n_train", "640"]  # 40 steps of 4 ranks * 4 images per epoch


def test_sigterm_to_horovodrun_checkpoints_every_host_and_the_same_command_resumes(cluster, tmp_path):  # noqa: F811
    logdir = tmp_path / "run"
    proc = start(cluster, logdir, *LONG)
    wait_for_step(proc, 50 * 16)
    proc.send_signal(signal.SIGTERM)
    out = proc.stdout.read()
    proc.wait(timeout=300)
    # Rank 0 saves the step, then node1's ranks exit 75. horovodrun ends node2's ssh sessions once those
    # ranks have agreed on the step and saved their data positions (ssh reports 255), then terminates
    # whichever node1 rank is still running (143) and reports a failure itself: no other exit status.
    codes = {int(c) for c in re.findall(r"Process \d exit with status code (\d+)", out)}
    assert codes and codes <= {75, 143, 255}, out[-3000:]
    assert re.search(r"\[0\]<stdout>:stopped by SIGTERM at step \d+ .*; saved ", out), out[-3000:]
    assert not re.search(r"\[\d\]<stderr>:Traceback", out), out[-3000:]
    step = int(re.findall(r"stopped by \w+ at step (\d+)", out)[0])
    assert os.path.exists(logdir / "checkpoints" / f"ckpt-{step}.index")
    positions = os.listdir(logdir / "checkpoints" / "data_position")
    for rank in range(4):  # node2's ranks saved their data positions too (one shared filesystem here)
        assert any(n.endswith(f"rank{rank}of4-{step}.index") for n in positions), positions

    resumed = subprocess.run(cluster.command("node1", train_command(logdir, *LONG)), cwd=ROOT, env=env(),
                             capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"resumed from {logdir}/checkpoints/ckpt-{step}" in resumed.stdout
    assert [line["epoch"] for line in read_jsonl(logdir / "train.txt")[1:]] == [1, 2]


def lost_host_lines(out):
    return [line for line in out.splitlines() if "train.py: error: lost host" in line]


@pytest.mark.parametrize("how", ["sigkill", "link_down"])
def test_a_lost_host_ends_the_job_with_one_line_naming_it_and_the_same_command_resumes(cluster, tmp_path,  # noqa: F811
                                                                                       how):
    logdir = tmp_path / "run"
    proc = start(cluster, logdir, *LONG)
    try:
        wait_for_step(proc, 45 * 16)  # after the first epoch's checkpoint (40 steps)
        lost_at = time.time()
        if how == "sigkill":
            assert cluster.kill_ranks("node2") == 2
        else:
            cluster.link("node2", up=False)
        out = proc.stdout.read()
        code = proc.wait(timeout=LOST_BOUND)
        ended_after = time.time() - lost_at
    finally:
        if how == "link_down":
            cluster.link("node2", up=True)
        cluster.kill_ranks("node2")  # a partitioned host's ranks outlive the job
        if proc.poll() is None:
            proc.kill()
    assert code != 0
    assert ended_after < LOST_BOUND
    lines = lost_host_lines(out)
    assert lines, out[-4000:]
    assert all("lost host node2 (ranks 2, 3)" in line for line in lines), lines
    assert not re.search(r"\[[01]\]<stderr>:Traceback", out), out[-4000:]

    resumed = subprocess.run(cluster.command("node1", train_command(logdir, *LONG)), cwd=ROOT, env=env(),
                             capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"resumed from {logdir}/checkpoints/ckpt-40" in resumed.stdout
    assert [line["epoch"] for line in read_jsonl(logdir / "train.txt")[1:]] == [1, 2]
