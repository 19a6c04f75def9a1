"""glow_tf.training.checkpoints: which checkpoint to trust, and whether it fits a model.

Damage is injected for real (a truncated data file, flipped bytes, a garbage or empty state file), and
each expectation about names and shapes is checked against what tf.train.Checkpoint actually writes.
"""

import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf

from glow_tf import Glow
from glow_tf.errors import CheckpointError, WriteError
from glow_tf.presets import tiny
from glow_tf.training import checkpoints
from tests.runs import snapshot, truncate


class Weights(tf.Module):
    def __init__(self, n=64, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.a = tf.Variable(rng.standard_normal([n, 8]).astype(np.float32))
        self.b = tf.Variable(rng.standard_normal([n]).astype(np.float32))


def write_steps(folder, steps, seed=0):
    """Checkpoints ckpt-<step> for `steps` through a CheckpointManager, as train.py writes them."""
    weights = Weights(seed=seed)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(w=weights), str(folder), max_to_keep=len(steps),
                                         checkpoint_name="ckpt")
    for step in steps:
        weights.b.assign_add(tf.ones_like(weights.b))
        checkpoints.save(manager, "ckpt", step)
    return weights


def flip_bytes(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


def data_file(prefix):
    return prefix + ".data-00000-of-00001"


def test_candidates_are_found_by_their_files_newest_first(tmp_path):
    write_steps(tmp_path, [8, 16, 120])
    assert [os.path.basename(p) for p in checkpoints.candidates(str(tmp_path))] == ["ckpt-120", "ckpt-16", "ckpt-8"]


@pytest.mark.parametrize("state", [b"\x00\x01garbage !!", b"", b"model_checkpoint_path: 42 43\n"])
def test_a_damaged_state_file_is_ignored_with_a_warning(tmp_path, state):
    write_steps(tmp_path, [8, 16])
    (tmp_path / "checkpoint").write_bytes(state)
    warnings = []
    assert checkpoints.newest_readable(str(tmp_path), warnings.append) == str(tmp_path / "ckpt-16")
    assert len(warnings) == 1 and "checkpoint" in warnings[0] and "by their files" in warnings[0]


@pytest.mark.parametrize("damage", ["truncated data", "flipped byte", "garbage index", "empty index",
                                    "missing data"])
def test_a_damaged_newest_checkpoint_is_skipped_for_the_previous_one(tmp_path, damage):
    write_steps(tmp_path, [8, 16])
    newest = str(tmp_path / "ckpt-16")
    if damage == "truncated data":
        truncate(data_file(newest))
    elif damage == "flipped byte":
        flip_bytes(data_file(newest), os.path.getsize(data_file(newest)) // 2)
    elif damage == "garbage index":
        (tmp_path / "ckpt-16.index").write_bytes(os.urandom(200))
    elif damage == "empty index":
        (tmp_path / "ckpt-16.index").write_bytes(b"")
    else:
        os.remove(data_file(newest))
    assert checkpoints.damage(newest) is not None
    warnings = []
    assert checkpoints.newest_readable(str(tmp_path), warnings.append) == str(tmp_path / "ckpt-8")
    assert any("ckpt-16" in w and "damaged" in w for w in warnings), warnings
    # resolve (what every tool calls) falls back the same way.
    assert checkpoints.resolve(str(tmp_path), warnings.append) == str(tmp_path / "ckpt-8")


def test_no_readable_checkpoint_is_one_error_and_nothing_changes(tmp_path):
    write_steps(tmp_path, [8, 16])
    for step in (8, 16):
        truncate(data_file(str(tmp_path / f"ckpt-{step}")), 0.3)
    before = snapshot(tmp_path)
    with pytest.raises(CheckpointError, match="no checkpoint in .* can be read .*ckpt-16.*ckpt-8"):
        checkpoints.newest_readable(str(tmp_path))
    assert snapshot(tmp_path) == before
    assert checkpoints.newest_readable(str(tmp_path / "empty")) is None  # no folder: a fresh start


def test_repair_state_file_points_at_the_chosen_checkpoint(tmp_path):
    write_steps(tmp_path, [8, 16, 24])
    truncate(data_file(str(tmp_path / "ckpt-24")))
    (tmp_path / "checkpoint").write_text("garbage")
    checkpoints.repair_state_file(str(tmp_path), str(tmp_path / "ckpt-16"))
    state = tf.train.get_checkpoint_state(str(tmp_path))
    assert state.model_checkpoint_path.endswith("ckpt-16")
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == ["ckpt-8", "ckpt-16"]


def test_expected_variables_are_what_the_checkpoint_writer_writes(tmp_path):
    model = Glow(tiny())
    objects = {"model": model, "extra": Weights()}
    written = tf.train.Checkpoint(**objects).write(str(tmp_path / "x"))
    stored = {name: tuple(shape) for name, shape in tf.train.list_variables(written)
              if name.endswith(checkpoints.VARIABLE_SUFFIX)}
    assert checkpoints.expected_variables(objects) == stored
    assert checkpoints.mismatch(written, objects) is None


def test_weights_that_do_not_fit_their_hparams_are_refused_naming_the_differences(tmp_path):
    hps = tiny()
    model = Glow(hps)
    model.initialize(tf.constant(np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3)), tf.uint8))
    folder = tmp_path / "checkpoints"
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(folder), max_to_keep=1,
                                         checkpoint_name="ckpt")
    checkpoints.save(manager, "ckpt", 3)
    checkpoints.save_hparams(str(folder), hps)
    loaded, _, _ = checkpoints.load_model(str(tmp_path))
    np.testing.assert_array_equal(loaded.variables[0].numpy(), model.variables[0].numpy())

    checkpoints.save_hparams(str(folder), dataclasses.replace(hps, depth=1))  # an edited hparams.json
    with pytest.raises(CheckpointError, match="does not fit this model: it holds .* variables the model does "
                                              "not have .*level0/flow1"):
        checkpoints.load_model(str(tmp_path))
    checkpoints.save_hparams(str(folder), dataclasses.replace(hps, width=16))
    with pytest.raises(CheckpointError, match="have another shape .* where the model has"):
        checkpoints.load_model(str(tmp_path))
    checkpoints.save_hparams(str(folder), dataclasses.replace(hps, depth=3))
    with pytest.raises(CheckpointError, match="of the model's variables are not in it"):
        checkpoints.load_model(str(tmp_path))


def test_a_failed_save_leaves_no_partial_files_and_says_why(tmp_path, monkeypatch):
    write_steps(tmp_path, [8])
    weights = Weights()
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(w=weights), str(tmp_path), max_to_keep=2,
                                         checkpoint_name="ckpt")
    real_write = tf.train.Checkpoint._write  # what CheckpointManager.save calls

    def full_disk(self, prefix, options=None):
        os.makedirs(prefix + "_temp", exist_ok=True)
        open(os.path.join(prefix + "_temp", "part-00000-of-00001.data-00000-of-00001"), "w").close()
        raise tf.errors.ResourceExhaustedError(None, None, f"{prefix}_temp; No space left on device")

    monkeypatch.setattr(tf.train.Checkpoint, "_write", full_disk)
    with pytest.raises(WriteError, match="cannot write .*ckpt-16: no space left on device .* free there"):
        checkpoints.save(manager, "ckpt", 16)
    monkeypatch.setattr(tf.train.Checkpoint, "_write", real_write)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "ckpt-8.data-00000-of-00001", "ckpt-8.index"]
    assert checkpoints.newest_readable(str(tmp_path)) == str(tmp_path / "ckpt-8")
