"""data_loaders.position: a resumed training stream continues exactly where the saved one stood."""

import os

import numpy as np
import pytest
import tensorflow as tf

from data_loaders.errors import DataError
from data_loaders.position import position_key, resume_position, save_position
from glow_tf.hparams import HParams
from tests.data_fixtures import needs_fashion


def stream(seed=1):
    """A small pipeline with the parts the real ones have: a reshuffling seeded shuffle, a repeat, a
    parallel map and a prefetch buffer."""
    ds = tf.data.Dataset.range(50).shuffle(50, seed=seed, reshuffle_each_iteration=True).repeat()
    return ds.batch(4).map(lambda b: b * 10, num_parallel_calls=2).prefetch(3)


def take(iterator, n):
    return [next(iterator).numpy().tolist() for _ in range(n)]


def test_restored_and_skipped_streams_both_continue_the_uninterrupted_one(tmp_path):
    folder, key = str(tmp_path), position_key(0, 1, seed=1)
    expected = take(iter(stream()), 40)  # crosses three reshuffled passes of the 50 items
    it = iter(stream())
    assert take(it, 17) == expected[:17]
    save_position(it, folder, key, step=17)

    restored, how = resume_position(stream(), folder, key, step=17, batches=17)
    assert how.startswith("restored from")
    assert take(restored, 23) == expected[17:]

    skipped, how = resume_position(stream(), folder, key, step=16, batches=17)  # no state for step 16
    assert how == "no saved state for step 16: skipped 17 batches"
    assert take(skipped, 23) == expected[17:]

    fresh, how = resume_position(stream(), folder, key, step=0, batches=0)
    assert how == "from the start" and take(fresh, 3) == expected[:3]


def test_a_state_saved_for_another_configuration_is_never_restored(tmp_path):
    folder = str(tmp_path)
    it = iter(stream(seed=1))
    take(it, 5)
    save_position(it, folder, position_key(0, 1, seed=1), step=5)
    other = position_key(0, 1, seed=2)
    assert other != position_key(0, 1, seed=1) != position_key(1, 2, seed=1)
    resumed, how = resume_position(stream(seed=2), folder, other, step=5, batches=5)
    assert how.endswith("skipped 5 batches")
    assert take(resumed, 4) == take(iter(stream(seed=2)), 9)[5:]


def test_a_damaged_state_falls_back_to_skipping(tmp_path):
    folder, key = str(tmp_path), position_key(0, 1)
    it = iter(stream())
    take(it, 3)
    prefix = save_position(it, folder, key, step=3)
    data = [p for p in os.listdir(folder) if ".data-" in p][0]
    with open(os.path.join(folder, data), "r+b") as f:
        f.truncate(os.path.getsize(os.path.join(folder, data)) // 2)
    resumed, how = resume_position(stream(), folder, key, step=3, batches=3)
    assert how.startswith(f"the saved state {prefix} is unreadable") and how.endswith("skipped 3 batches")
    assert take(resumed, 2) == take(iter(stream()), 5)[3:]


def test_only_the_newest_states_are_kept(tmp_path):
    folder, key = str(tmp_path), position_key(0, 1)
    it = iter(stream())
    for step in range(1, 6):
        next(it)
        save_position(it, folder, key, step=step, keep=2)
    names = sorted(os.listdir(folder))
    assert {name.split(".")[0] for name in names} == {f"{key}-4", f"{key}-5"}


@needs_fashion
def test_the_augmented_fashion_mnist_stream_restores_exactly(tmp_path):
    from data_loaders import get_data

    hps = HParams(problem="fashion_mnist", image_size=16, n_batch_train=8, anchor_size=16, dal=2, seed=4,
                  n_train=64, n_test=20)
    def train_stream():
        return get_data(hps, 0, 1).train

    expected = [x.numpy() for x, _ in (next(it) for it in [iter(train_stream())] * 12)]
    it = iter(train_stream())
    for _ in range(7):
        next(it)
    save_position(it, str(tmp_path), "fashion", step=7)
    resumed, how = resume_position(train_stream(), str(tmp_path), "fashion", step=7, batches=7)
    assert how.startswith("restored")
    for want in expected[7:]:
        np.testing.assert_array_equal(next(resumed)[0].numpy(), want)


def test_a_state_that_does_not_fit_the_pipeline_skips_over_a_rebuilt_stream(tmp_path):
    folder, key = str(tmp_path), position_key(0, 1)
    other = iter(tf.data.Dataset.range(50).repeat().batch(4))  # another pipeline's state under this key
    next(other)
    prefix = save_position(other, folder, key, step=3)
    with pytest.raises(DataError, match=f"the saved state {prefix} does not fit this stream .*skipping 3 batches"):
        resume_position(stream(), folder, key, step=3, batches=3)
    resumed, how = resume_position(stream(), folder, key, step=3, batches=3, rebuild=stream)
    assert how.startswith(f"the saved state {prefix} does not fit this stream") and how.endswith("skipped 3 batches")
    assert take(resumed, 4) == take(iter(stream()), 7)[3:]
