"""train.py under a real `horovodrun -np 2` (Gloo on localhost): rank 0's state reaches every rank, the
ranks stay bit-identical while training on different data, and the logged loss is the rank average."""

import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from tests.data_fixtures import needs_fashion
from tests.runs import HOROVOD_HELPER as HELPER
from tests.runs import HOROVODRUN, ROOT
from tests.runs import TINY as TINY_FLAGS
from tests.runs import load_npz as load

pytestmark = [
    pytest.mark.skipif(not os.path.exists(HOROVODRUN),
                       reason="needs horovodrun"),
    needs_fashion,
]

TINY = [*TINY_FLAGS, "--epochs", "3"]


def test_two_ranks_stay_identical_and_log_the_rank_average(tmp_path):
    helper = tmp_path / "helper.py"
    helper.write_text(HELPER)
    logdir = tmp_path / "run"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", GLOW_ROOT=ROOT)
    runner = HOROVODRUN
    result = subprocess.run([runner, "-np", "2", "-H", "localhost:2", sys.executable, str(helper),
                             str(tmp_path), *TINY, "--logdir", str(logdir)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    # Before the broadcast the ranks differ (only rank 0 ran data-dependent init) ...
    before0, before1 = load(tmp_path / "before_rank0.npz"), load(tmp_path / "before_rank1.npz")
    assert any(not np.array_equal(a, b) for a, b in zip(before0, before1))
    # ... after it every variable is rank 0's, including the init statistics rank 1 never computed.
    after0, after1 = load(tmp_path / "after_rank0.npz"), load(tmp_path / "after_rank1.npz")
    for a, b in zip(after0, after1):
        np.testing.assert_array_equal(a, b)
    # Training on different shards keeps them bit-identical (weights, optimizer slots, Polyak average).
    end0, end1 = load(tmp_path / "end_rank0.npz"), load(tmp_path / "end_rank1.npz")
    assert any(not np.array_equal(a, b) for a, b in zip(after0, end0))  # it did train
    for a, b in zip(end0, end1):
        np.testing.assert_array_equal(a, b)

    # Each step's stats: local values differ per rank; both ranks get (and log) their average.
    s0, s1 = np.load(tmp_path / "stats_rank0.npz"), np.load(tmp_path / "stats_rank1.npz")
    assert int(s0["size"]) == 2
    train_its = 4  # ceil(n_train / (n_batch_train * 2 ranks)) = ceil(32 / 8)
    n_train_steps = 2 * train_its
    assert not np.allclose(s0["local"][0], s1["local"][0])
    np.testing.assert_allclose(s0["averaged"], s1["averaged"], rtol=0, atol=0)
    np.testing.assert_allclose(s0["averaged"], (s0["local"] + s1["local"]) / 2, rtol=1e-6)

    with open(logdir / "train.txt") as f:
        lines = [json.loads(line) for line in f][1:]
    assert [line["epoch"] for line in lines] == [1, 2]
    assert lines[-1]["n_processed"] == n_train_steps * 2 * 4  # both ranks' images at anchor size
    # Stats records run in program order: each epoch's steps, then (every epoch here) its validation.
    test_its = 20 // (2 * 2)
    per_epoch = train_its + test_its
    for e, line in enumerate(lines):
        steps = s0["averaged"][e * per_epoch:e * per_epoch + train_its]
        assert line["loss"] == f"{steps[:, 0].mean():.4f}"
    # Only rank 0 writes logs.
    assert len([n for n in os.listdir(logdir) if n.startswith("events.out")]) == 1


def test_sigterm_to_horovodrun_stops_every_rank_after_the_same_step(tmp_path):
    """horovodrun forwards SIGTERM to its ranks: they agree on one step, rank 0 saves it with both ranks'
    data positions, and the same command resumes it."""
    logdir = tmp_path / "run"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    env.pop("HOROVOD_RANK", None)
    runner = HOROVODRUN
    # 80 steps per epoch on 2 ranks.
    command = [runner, "-np", "2", "-H", "localhost:2", sys.executable, os.path.join(ROOT, "train.py"),
               *TINY[:-2], "--epochs", "3", "--n_train", "640", "--logdir", str(logdir)]
    proc = subprocess.Popen(command + ["--verbose"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:  # rank 0's --verbose lines: "[0]<stdout>:<n_processed> <seconds> [stats]"
        body = line.split(">:", 1)[-1]
        if body.split(" ", 1)[0].isdigit() and "[" in body and int(body.split(" ", 1)[0]) >= 100 * 8:
            break
    proc.send_signal(signal.SIGTERM)
    out = proc.stdout.read()
    proc.wait(timeout=600)
    stops = re.findall(r"stopped by (\w+) at step (\d+)", out)
    assert stops, out[-3000:]
    step = int(stops[0][1])
    assert 100 < step < 160
    assert os.path.exists(logdir / "checkpoints" / f"ckpt-{step}.index")
    positions = os.listdir(logdir / "checkpoints" / "data_position")
    for rank in (0, 1):
        assert any(n.endswith(f"rank{rank}of2-{step}.index") for n in positions), positions
    assert re.findall(r"\[1\]<stderr>:.*Traceback", out) == [], out[-3000:]

    resumed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"resumed from {logdir}/checkpoints/ckpt-{step}" in resumed.stdout
    with open(logdir / "train.txt") as f:
        assert [line["epoch"] for line in map(json.loads, f.readlines()[1:])] == [1, 2]
