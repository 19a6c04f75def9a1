"""bench/interleave.py: workers take turns, the order rotating per repetition, and report img/s."""

import os
import sys

import pytest

from tests.runs import ROOT

sys.path.insert(0, os.path.join(ROOT, "bench"))
import interleave  # noqa: E402

FAKE = """
import sys, time
sys.path.insert(0, {bench!r})
from interleave import serve
def run(n):
    with open({log!r}, "a") as f:
        f.write({name!r} + " %d\\n" % n)
    time.sleep(0.01 * n)
serve(run, images_per_step={per_step})
"""


def fake(tmp_path, name, per_step):
    code = FAKE.format(bench=os.path.join(ROOT, "bench"), log=str(tmp_path / "order.txt"), name=name,
                       per_step=per_step)
    return (name, [sys.executable, "-c", code], dict(os.environ))


def test_turns_rotate_and_rates_come_back(tmp_path):
    workers = interleave.interleave([fake(tmp_path, "a", 4), fake(tmp_path, "b", 8), fake(tmp_path, "c", 2)],
                                    reps=3, steps=5)
    order = [line.split()[0] for line in (tmp_path / "order.txt").read_text().splitlines()]
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    for worker, per_step in zip(workers, (4, 8, 2)):
        assert len(worker.img_s) == 3 and worker.rss_kib > 0
        # 5 steps of 0.01 s each: at most per_step * 100 img/s, and not far below on an idle machine
        assert all(0 < rate <= per_step * 100 for rate in worker.img_s)


def test_a_dying_worker_names_itself(tmp_path):
    bad = ("broken", [sys.executable, "-c", "import sys; sys.exit('no model here')"], dict(os.environ))
    with pytest.raises(RuntimeError, match="broken: worker exited \\(no model here\\)"):
        interleave.interleave([fake(tmp_path, "a", 4), bad], reps=3, steps=1)
