"""Elastic train.py jobs under real events (scripts/elastic_scenarios.py): a host leaves the discovery
output and comes back, a worker is SIGKILLed, rank 0 is lost. Each runs once with both hosts on this
machine (two names for it) and once on namespace hosts node1 and node2 (tests/cluster.py), where
horovodrun runs on node1 and starts node2's worker over ssh.

After each job: it exited 0 without a person; training continued after every event, losing at most the
steps since the last commit; steps only went up; the logs hold every epoch once; every final rank holds
the same weights; the final checkpoint loads and is finite; the logdir's lock was released."""

import glob
import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.cluster import cluster  # noqa: F401 (a fixture)
from tests.data_fixtures import needs_fashion
from tests.runs import HOROVODRUN, ROOT, load_npz, read_jsonl

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import elastic_scenarios  # noqa: E402

pytestmark = [pytest.mark.skipif(not os.path.exists(HOROVODRUN), reason="needs horovodrun"), needs_fashion]

EVENTS = ["remove_add", "kill_worker", "kill_rank0"]


def check(result, scenario):
    job = result["job"]
    text = job.text()
    assert result["exit"] == 0, text[-4000:]
    assert "Traceback" not in text, text[-4000:]  # the survivors carried on; nothing raised
    rows = result["rows"]
    assert len(rows) == 2, rows
    # Training continued after every event: one rank less, then back at two.
    assert [r["size"] for r in rows] == [1, 2], rows
    for row in rows:
        assert 0 <= row["steps_lost"] <= elastic_scenarios.COMMIT_STEPS, row
    # Steps only go up: every restart continues from a later step than the one before it.
    starts = [r["from_step"] for r in rows]
    assert starts == sorted(starts) and starts[0] > 0, starts
    assert result["steps"] > starts[-1]
    if scenario == "remove_add":
        assert rows[0]["steps_lost"] == 0  # a change of hosts is acted on at a commit: nothing is redone

    # Rank 0's duties moved with it: one train.txt line per epoch, in order, whoever was rank 0.
    logdir = job.logdir
    epochs = [line["epoch"] for line in read_jsonl(os.path.join(logdir, "train.txt"))[1:]]
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) >= 20, epochs
    assert not os.path.exists(os.path.join(logdir, "train.lock"))

    # Every final rank holds the same weights (in lockstep to the end), and trained on disjoint shards.
    ends = glob.glob(os.path.join(job.out, "end_*.npz"))
    ranks = sorted(json.load(open(p[:-4] + ".json"))["rank"] for p in ends)
    assert ranks == [0, 1], ranks
    first, second = (load_npz(p) for p in ends)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)

    # The final checkpoint is the last step, loads, and is finite.
    prefix = tf.train.latest_checkpoint(os.path.join(logdir, "checkpoints"))
    assert prefix.endswith(f"ckpt-{result['steps']}"), prefix
    reader = tf.train.load_checkpoint(prefix)
    floats = [name for name, dtype in reader.get_variable_to_dtype_map().items() if dtype.is_floating]
    assert len(floats) > 20
    for name in floats:
        assert np.all(np.isfinite(reader.get_tensor(name))), name
    step = reader.get_tensor("state/step/.ATTRIBUTES/VARIABLE_VALUE")
    assert int(step) == result["steps"]


@pytest.mark.parametrize("scenario", EVENTS)
def test_elastic_job_on_this_machine(scenario, tmp_path):
    check(elastic_scenarios.run(scenario, elastic_scenarios.Hosts(), str(tmp_path)), scenario)


@pytest.mark.parametrize("scenario", EVENTS)
def test_elastic_job_on_namespace_hosts_over_ssh(scenario, cluster, tmp_path):  # noqa: F811
    result = elastic_scenarios.run(scenario, elastic_scenarios.Hosts(cluster.dir), str(tmp_path))
    check(result, scenario)
    hosts = {json.loads(line)["host"] for p in glob.glob(os.path.join(result["job"].out, "ranks", "*.jsonl"))
             for line in open(p)}
    assert hosts == {"node1", "node2"}, hosts


def test_an_error_inside_the_step_ends_the_elastic_job_with_its_message(tmp_path):
    """A non-finite loss is raised on every rank at the same step: the job fails loudly (Horovod's own
    elastic loop would have swallowed a TensorFlow error and exited 0)."""
    flags = [f for f in elastic_scenarios.FLAGS if f != "--verbose"]
    flags += ["--epochs_warmup", "0", "--lr", "1e30"]  # the first update blows the weights up
    job = elastic_scenarios.Job(elastic_scenarios.Hosts(), str(tmp_path), flags=flags)
    code = job.finish(timeout=300)
    text = job.text()
    assert code != 0, text[-3000:]
    assert "non-finite loss at step" in text, text[-3000:]
    assert "Finished!" not in text
