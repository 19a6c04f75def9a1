"""What a resume costs to find its place in the training stream: a saved iterator state against skipping.

train.py saves each rank's tf.data iterator state with every checkpoint (data_loaders.position) and a
resume restores it; without one (an older checkpoint) it reads and drops every batch consumed so far.
For the TFRecord pipelines (real photos, as in bench/reader.py) and the in-memory Fashion-MNIST one, at a
few stream positions, this prints the size and write time of the saved state and the time from a fresh
pipeline to the first batch after the position, restoring against skipping. Skipping grows with the
position (a long run has consumed hundreds of passes); restoring does not.

    python bench/resume.py
"""

from __future__ import annotations

import dataclasses
import glob
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import reader  # noqa: E402  (bench/reader.py: the TFRecord sets)
import tensorflow as tf  # noqa: E402

from data_loaders import get_data  # noqa: E402
from data_loaders.common import LOCAL_BATCH_TEST  # noqa: E402
from data_loaders.position import resume_position, save_position  # noqa: E402
from glow_tf.hparams import HParams  # noqa: E402

POSITIONS = (200, 2000)


def row(name, hps, position, folder):
    """(state MiB, save s, restore s, skip s) at `position` batches, checking both give the same batch."""
    iterator = iter(get_data(hps).train)
    for _ in range(position):
        next(iterator)
    t = time.perf_counter()
    prefix = save_position(iterator, folder, name, step=position)
    save_s = time.perf_counter() - t
    size = sum(os.path.getsize(p) for p in glob.glob(prefix + ".*"))
    expected = next(iterator)[0].numpy()
    timings = []
    for restore in (True, False):
        dataset = get_data(hps).train  # built outside the timing: both resumes start from a fresh pipeline
        t = time.perf_counter()
        resumed, how = resume_position(dataset, folder, name if restore else "none", position, position)
        got = next(resumed)[0].numpy()
        timings.append(time.perf_counter() - t)
        assert how.startswith("restored" if restore else "no saved state"), how
        np.testing.assert_array_equal(got, expected)
    return size / 2**20, save_s, *timings


def main():
    configs = []
    with tempfile.TemporaryDirectory() as root:
        for size in (32, 256):
            reader.write_set(os.path.join(root, str(size)), size)
            hps = HParams(problem="tfrecords", data_dir=os.path.join(root, str(size)), image_size=size,
                          n_levels=3, n_batch_train=64, n_test=50)
            hps = dataclasses.replace(hps, n_test=LOCAL_BATCH_TEST[hps.local_batch_train()])
            configs.append((f"TFRecords {size}px, batch {hps.local_batch_train()}", hps))
        configs.append(("Fashion-MNIST in memory, dal=1, batch 64",
                        HParams(problem="fashion_mnist", n_batch_train=64, dal=1)))
        print(f"resume cost, {os.cpu_count()} CPU cores, TF {tf.__version__}")
        print(f"{'pipeline':<42}{'position':>9}{'state MiB':>11}{'save s':>8}{'restore s':>11}{'skip s':>8}"
              f"{'skip/restore':>14}")
        for name, hps in configs:
            for position in POSITIONS:
                with tempfile.TemporaryDirectory() as folder:
                    mib, save_s, restore_s, skip_s = row(name.split(",")[0].replace(" ", "_"), hps, position,
                                                          folder)
                print(f"{name:<42}{position:>9}{mib:>11.2f}{save_s:>8.3f}{restore_s:>11.3f}{skip_s:>8.2f}"
                      f"{skip_s / restore_s:>14.1f}", flush=True)


if __name__ == "__main__":
    main()
