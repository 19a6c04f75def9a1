"""What a run survives: pre-emption, kill -9, damaged checkpoints, a second run on the same logdir,
--no-resume, divergence, a full disk, weights that do not fit their hparams.json.

Every fault is injected for real: signals to a running train.py, truncated and garbage files, two
processes at once, a small tmpfs. Each case ends either in an exact continuation or in one clear line,
and nothing already written is lost.
"""

import json
import os
import shutil
import signal
import subprocess

import numpy as np
import pytest
import tensorflow as tf

import train
from glow_common.errors import run_cli
from glow_tf.tools import evaluate, export
from tests.data_fixtures import needs_fashion
from tests.runs import (
    TINY,
    read_jsonl,
    run_train,
    snapshot,
    start_cli,
    step_of,
    truncate,
    verbose_step,
    wait_for_line,
    without_tf_log,
)

pytestmark = needs_fashion

# 80 steps per epoch, so that a signal can land inside one.
LONG = TINY + ["--n_train", "320", "--epochs", "4", "--seed", "3"]


def variables(prefix):
    reader = tf.train.load_checkpoint(prefix)
    return {name: np.asarray(reader.get_tensor(name)) for name, _ in tf.train.list_variables(prefix)
            if "VARIABLE_VALUE" in name}


def assert_same_run(a, b):
    """Two logdirs hold the same trained state and the same training history."""
    va = variables(tf.train.latest_checkpoint(f"{a}/checkpoints"))
    vb = variables(tf.train.latest_checkpoint(f"{b}/checkpoints"))
    assert sorted(va) == sorted(vb)
    assert {name.split("/")[0] for name in va} >= {"model", "optimizer", "ema", "state"}
    for name in va:
        if name.startswith(("save_counter/", "state/train_time/")):
            continue  # how many saves, how many seconds: not what the run computed
        if va[name].dtype.kind == "f":
            np.testing.assert_allclose(va[name], vb[name], rtol=1e-4, atol=1e-6, err_msg=name)
        elif va[name].dtype.kind != "f":
            np.testing.assert_array_equal(va[name], vb[name], err_msg=name)
    lines_a, lines_b = read_jsonl(f"{a}/train.txt")[1:], read_jsonl(f"{b}/train.txt")[1:]
    assert [line["epoch"] for line in lines_a] == [line["epoch"] for line in lines_b]
    assert [line["n_processed"] for line in lines_a] == [line["n_processed"] for line in lines_b]
    for x, y in zip(lines_a, lines_b):  # every epoch, the interrupted one too, averages the same steps
        assert abs(float(x["loss"]) - float(y["loss"])) <= 1.5e-4, (x, y)
    # The validations, whose noise is seeded by rank and batch, agree too.
    tests_a, tests_b = read_jsonl(f"{a}/test.txt")[1:], read_jsonl(f"{b}/test.txt")[1:]
    assert [line["epoch"] for line in tests_a] == [line["epoch"] for line in tests_b]
    for x, y in zip(tests_a, tests_b):
        assert abs(float(x["loss"]) - float(y["loss"])) <= 1.5e-4, (x, y)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    logdir = str(tmp_path_factory.mktemp("straight") / "run")
    result = run_train(LONG + ["--logdir", logdir])
    assert result.returncode == 0, result.stderr
    return logdir


# ------------------------------------------------------------------------------------------ signals

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_a_stopped_run_resumes_exactly_as_the_uninterrupted_one(sig, straight, tmp_path):
    logdir = str(tmp_path / "run")
    proc = start_cli(LONG + ["--verbose", "--logdir", logdir])
    # Inside epoch 2: after its first checkpoint (step 80), before the second.
    wait_for_line(proc, lambda line: (verbose_step(line) or 0) >= 100)
    proc.send_signal(sig)
    out = proc.stdout.read()
    code = proc.wait(timeout=300)
    stop = step_of(logdir)
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL and stop == 80  # the last epoch's checkpoint
    else:
        assert code == 75, out
        assert 100 < stop < 160, "the signal must stop the run inside epoch 2"
        assert f"stopped by {sig.name} at step {stop} (epoch 2, step {stop - 80} of 80); saved " \
               f"{logdir}/checkpoints/ckpt-{stop}; run the same command to resume" in out
        positions = os.listdir(f"{logdir}/checkpoints/data_position")
        assert any(name.endswith(f"-{stop}.index") for name in positions)
    resumed = run_train(LONG + ["--logdir", logdir])
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from {logdir}/checkpoints/ckpt-{stop}" in resumed.stdout
    assert "data position restored from" in resumed.stdout
    assert_same_run(logdir, straight)


def test_the_save_interval_writes_checkpoints_inside_an_epoch(tmp_path):
    logdir = str(tmp_path / "run")
    assert train.main(TINY + ["--epochs", "3", "--max_steps", "13", "--save_interval_minutes", "1e-6",
                              "--logdir", logdir]) == 0
    # Every step's checkpoint was written and the two newest kept (without the interval: ckpt-8, ckpt-13).
    names = sorted(n for n in os.listdir(f"{logdir}/checkpoints") if n.endswith(".index"))
    assert names == ["ckpt-12.index", "ckpt-13.index"]
    assert train.main(TINY + ["--epochs", "3", "--logdir", logdir]) == 0
    assert step_of(logdir) == 16


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(tmp_path, capsys, monkeypatch):
    from glow_tf.training import loop

    real = loop.warmup_lr

    def two_ctrl_cs_at_step_11(lr, n_processed, n_train, epochs_warmup):  # inside epoch 2 (8 steps each)
        if n_processed == 10 * 4:
            os.kill(os.getpid(), signal.SIGINT)  # the handler asks for a stop at the step's end...
            os.kill(os.getpid(), signal.SIGINT)  # ...and the second one does not wait for it
        return real(lr, n_processed, n_train, epochs_warmup)

    monkeypatch.setattr(loop, "warmup_lr", two_ctrl_cs_at_step_11)
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN in a background job
    logdir = str(tmp_path / "run")
    assert train.main(TINY + ["--epochs", "3", "--logdir", logdir]) == 130
    err = capsys.readouterr().err
    assert "Ctrl-C again to stop at once" in err and "train.py: interrupted;" in err
    assert step_of(logdir) == 8  # epoch 1's checkpoint, untouched; nothing of step 11 was saved
    assert signal.getsignal(signal.SIGINT) is before  # the handlers were put back
    monkeypatch.setattr(loop, "warmup_lr", real)
    assert train.main(TINY + ["--epochs", "3", "--logdir", logdir]) == 0
    assert step_of(logdir) == 16  # --epochs 3 is epochs 1 and 2, as in the original


# --------------------------------------------------------------------------------- damaged checkpoints

def test_damaged_checkpoints_fall_back_to_the_newest_readable_one(tmp_path, capsys):
    logdir = str(tmp_path / "run")
    assert train.main(TINY + ["--epochs", "3", "--logdir", logdir]) == 0  # ckpt-8, ckpt-16
    capsys.readouterr()

    # A garbage state file: found by their files, with a warning; the history is kept.
    with open(f"{logdir}/checkpoints/checkpoint", "wb") as f:
        f.write(os.urandom(64))
    assert train.main(TINY + ["--epochs", "3", "--logdir", logdir]) == 0
    captured = capsys.readouterr()
    assert "is not a checkpoint state file; finding the checkpoints by their files" in captured.err
    assert f"resumed from {logdir}/checkpoints/ckpt-16" in captured.out
    assert [line["epoch"] for line in read_jsonl(f"{logdir}/train.txt")[1:]] == [1, 2]

    # A truncated newest checkpoint: the one before it, with a warning naming both; training continues.
    truncate(f"{logdir}/checkpoints/ckpt-16.data-00000-of-00001")
    assert train.main(TINY + ["--epochs", "4", "--logdir", logdir]) == 0
    captured = capsys.readouterr()
    assert f"skipping the damaged checkpoint {logdir}/checkpoints/ckpt-16" in captured.err
    assert f"using {logdir}/checkpoints/ckpt-8" in captured.err
    assert f"resumed from {logdir}/checkpoints/ckpt-8" in captured.out
    assert step_of(logdir) == 24 and [line["epoch"] for line in read_jsonl(f"{logdir}/train.txt")[1:]] == [1, 2, 3]
    # A tool skips a damaged checkpoint the same way, and says so once.
    truncate(f"{logdir}/checkpoints/ckpt-24.data-00000-of-00001")
    code = run_cli(evaluate.PROG, evaluate.main, [logdir, "--draws", "1", "--no_reconstruction"])
    err = capsys.readouterr().err
    assert code == 0 and err.count(f"skipping the damaged checkpoint {logdir}/checkpoints/ckpt-24") == 1, err

    # Nothing readable: one line, exit 2, and the logdir exactly as it was (no silent fresh start).
    for name in os.listdir(f"{logdir}/checkpoints"):
        if name.startswith("ckpt-") and ".data" in name:
            truncate(f"{logdir}/checkpoints/{name}", 0.2)
    (tmp_path / "run" / "checkpoints" / "checkpoint").write_text("")
    before = snapshot(logdir)
    assert train.main(TINY + ["--epochs", "5", "--logdir", logdir]) == 2
    err = capsys.readouterr().err
    assert f"train.py: error: no checkpoint in {logdir}/checkpoints can be read" in err and "Traceback" not in err
    assert snapshot(logdir) == before
    # The tools say the same, in one line.
    code = run_cli(evaluate.PROG, evaluate.main, [logdir, "--draws", "1"])
    assert code == 2 and "can be read" in capsys.readouterr().err


def test_weights_that_do_not_fit_their_hparams_json_are_refused_everywhere(tmp_path, capsys):
    logdir = str(tmp_path / "run")
    assert train.main(TINY + ["--epochs", "2", "--logdir", logdir]) == 0
    path = f"{logdir}/checkpoints/hparams.json"
    with open(path) as f:
        saved = json.load(f)
    with open(path, "w") as f:
        json.dump({**saved, "depth": 1}, f)
    capsys.readouterr()
    before = snapshot(logdir)
    assert train.main(TINY + ["--epochs", "3", "--depth", "1", "--logdir", logdir]) == 2
    assert "does not fit this model: it holds" in capsys.readouterr().err
    for module, argv in ((evaluate, [logdir, "--draws", "1"]), (export, [logdir, "--output", str(tmp_path / "e")])):
        assert run_cli(module.PROG, module.main, argv) == 2
        err = capsys.readouterr().err
        assert "does not fit this model" in err and "level0/flow1" in err and "Traceback" not in err
    assert snapshot(logdir) == before and not (tmp_path / "e").exists()


# ------------------------------------------------------------------------------------- one run at a time

def test_a_second_run_on_the_same_logdir_is_refused_naming_the_first(tmp_path, capsys):
    logdir = str(tmp_path / "run")
    first = start_cli(LONG + ["--verbose", "--logdir", logdir])
    wait_for_line(first, lambda line: verbose_step(line) is not None)
    assert train.main(TINY + ["--epochs", "2", "--logdir", logdir]) == 2
    err = capsys.readouterr().err
    assert f"is in use by another train.py (pid {first.pid} on host" in err and "Traceback" not in err
    first.send_signal(signal.SIGTERM)
    first.stdout.read()
    assert first.wait(timeout=300) == 75
    assert not os.path.exists(f"{logdir}/train.lock")
    lines = read_jsonl(f"{logdir}/train.txt")
    assert lines[0]["n_train"] == 320  # the first run's logs, untouched by the second


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path):
    logdir = str(tmp_path / "run")
    proc = start_cli(TINY + ["--n_train", "3200", "--epochs", "2", "--verbose", "--logdir", logdir])
    wait_for_line(proc, lambda line: verbose_step(line) is not None)
    proc.kill()
    proc.wait()
    assert os.path.exists(f"{logdir}/train.lock")
    result = run_train(TINY + ["--epochs", "2", "--logdir", logdir])
    assert result.returncode == 0, result.stderr
    assert f"took over the lock of a run that is gone (pid {proc.pid}" in result.stderr


# ---------------------------------------------------------------------------------------- --no-resume

def test_no_resume_keeps_the_old_run_until_the_new_one_has_a_checkpoint(tmp_path):
    logdir = str(tmp_path / "run")
    assert run_train(TINY + ["--epochs", "2", "--logdir", logdir]).returncode == 0
    old = snapshot(logdir)

    proc = start_cli(LONG + ["--no-resume", "--verbose", "--logdir", logdir])
    lines = wait_for_line(proc, lambda line: verbose_step(line) is not None)
    assert any("--no-resume: moved the previous run" in line for line in lines)
    proc.kill()  # before the new run's first checkpoint
    proc.wait()
    assert snapshot(f"{logdir}/replaced_run") == {k: v for k, v in old.items() if "lock" not in k}

    again = run_train(TINY + ["--epochs", "2", "--logdir", logdir])  # the plain command again
    assert again.returncode == 0, again.stderr
    assert "moved the run it replaced back from replaced_run/" in again.stderr
    assert f"resumed from {logdir}/checkpoints/ckpt-8" in again.stdout
    assert not os.path.exists(f"{logdir}/replaced_run") and step_of(logdir) == 8
    assert os.path.exists(f"{logdir}/model_best_loss/model_best_loss.ckpt-8.index")

    fresh = run_train(TINY + ["--epochs", "2", "--no-resume", "--seed", "1", "--logdir", logdir])
    assert fresh.returncode == 0, fresh.stderr
    assert "deleted the run that --no-resume replaced" in fresh.stdout
    assert not os.path.exists(f"{logdir}/replaced_run")
    assert read_jsonl(f"{logdir}/train.txt")[0]["seed"] == 1


# ------------------------------------------------------------------------------------- finite means finite

def test_weights_made_non_finite_by_an_epochs_last_step_are_never_saved(tmp_path, capsys, monkeypatch):
    from glow_tf.training import loop

    real = loop.warmup_lr

    def infinite_at_step_8(lr, n_processed, n_train, epochs_warmup):  # its update makes the weights inf
        return float("inf") if n_processed == 7 * 4 else real(lr, n_processed, n_train, epochs_warmup)

    monkeypatch.setattr(loop, "warmup_lr", infinite_at_step_8)
    logdir = str(tmp_path / "run")
    # No validation after epoch 1, so the save is the first thing after the poisoned update.
    assert train.main(TINY + ["--epochs", "3", "--epochs_full_valid", "2", "--logdir", logdir]) == 3
    err = capsys.readouterr().err
    assert "the weights became non-finite by step 8; stopped without saving. Last good checkpoint: none" in err
    assert step_of(logdir) == 0 and not os.path.exists(f"{logdir}/checkpoints/ckpt-8.index")
    # With validation first, the non-finite validation loss stops it the same way.
    monkeypatch.setattr(loop, "warmup_lr", infinite_at_step_8)
    assert train.main(TINY + ["--epochs", "3", "--no-resume", "--logdir", logdir]) == 3
    assert "non-finite validation loss after epoch 1" in capsys.readouterr().err
    assert step_of(logdir) == 0


# -------------------------------------------------------------------------------------------- disk full

@pytest.fixture
def small_disk(tmp_path):
    """An 8 MiB tmpfs (needs root and mount; skipped where the test cannot mount one)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.decode().strip() or result.returncode})")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_is_one_line_and_the_previous_checkpoint_survives(small_disk, capsys):
    logdir = str(small_disk / "run")
    args = TINY + ["--epochs_full_sample", "100", "--logdir", logdir]
    assert train.main(args + ["--epochs", "2"]) == 0
    good = snapshot(f"{logdir}/checkpoints")
    filler = small_disk / "filler"
    free = shutil.disk_usage(small_disk).free
    with open(filler, "wb") as f:
        f.write(b"\0" * (free - 16 * 1024))  # leave 16 KiB: less than a checkpoint
    capsys.readouterr()
    assert train.main(args + ["--epochs", "3"]) == 74
    err = capsys.readouterr().err
    assert "train.py: error: cannot write " in err and "no space left on device" in err and "free there" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    leftovers = [n for n in os.listdir(f"{logdir}/checkpoints") if "_temp" in n or n.startswith(".")]
    assert leftovers == []
    assert {k: v for k, v in snapshot(f"{logdir}/checkpoints").items() if k in good} == good
    assert step_of(logdir) == 8
    os.remove(filler)
    assert train.main(args + ["--epochs", "3"]) == 0  # space again: it resumes and finishes
    assert step_of(logdir) == 16


# ------------------------------------------------------------------------------------------- damaged data

@pytest.fixture
def damaged_tfrecords(tmp_path):
    """foolbox's CIFAR-10 images as TFRecords (17 train in 3 shards, 3 validation), with one byte of
    record 1 of the last training shard flipped and no manifest (as the original's published sets)."""
    from tests import data_fixtures as fx
    from tfrecords_tools import format as fmt

    fx.cifar_tfrecords(str(tmp_path), validation_shards=1)
    shards = sorted((tmp_path / "tfr" / "train").glob("*.tfrecords"))
    os.remove(tmp_path / "tfr" / "train" / "train-r05.manifest.json")
    offset, length = list(fmt.walk_records(str(shards[-1])))[1]
    data = bytearray(shards[-1].read_bytes())
    data[offset + fmt.HEADER_BYTES + length // 2] ^= 0x01
    shards[-1].write_bytes(bytes(data))
    return str(tmp_path / "tfr"), str(shards[-1]), offset


def test_a_corrupt_record_met_in_training_is_one_line_naming_it_or_is_skipped(damaged_tfrecords, tmp_path,
                                                                             capfd):
    data_dir, damaged, offset = damaged_tfrecords
    args = ["--problem", "tfrecords", "--data_dir", data_dir, "--image_size", "32", "--anchor_size", "32",
            "--n_levels", "2", "--depth", "1", "--width", "4", "--n_batch_train", "4", "--n_batch_init", "4",
            "--n_train", "64", "--n_test", "2", "--epochs", "3", "--epochs_full_sample", "100", "--learntop"]
    assert train.main(args + ["--logdir", str(tmp_path / "run")]) == 2
    err = without_tf_log(capfd.readouterr().err.strip())
    assert len(err) == 1 and err[0].startswith("train.py: error: reading the data "), err
    assert f"{damaged}: record 1 at byte {offset}: the data fails its checksum" in err[0]
    assert "tfrecords_tools.verify" in err[0] and "--skip_corrupt_records" in err[0]

    assert train.main(args + ["--skip_corrupt_records", "--logdir", str(tmp_path / "skipping")]) == 0
    err = capfd.readouterr().err
    assert f"data: skipped the rest of {damaged} after record 1" in err and "data: skipped " in err
    assert step_of(str(tmp_path / "skipping")) == 2 * 16

    # A damaged validation record met by --inference is the same one line (inference never skips).
    from tfrecords_tools import format as fmt

    valid = sorted((tmp_path / "tfr" / "validation").glob("*.tfrecords"))[0]
    for manifest in (tmp_path / "tfr" / "validation").glob("*.manifest.json"):
        os.remove(manifest)  # the manifest would refuse the set before reading (the original's sets have none)
    offset, length = list(fmt.walk_records(str(valid)))[1]  # (record 0 is checked before anything runs)
    data = bytearray(valid.read_bytes())
    data[offset + fmt.HEADER_BYTES + length // 2] ^= 0x01
    valid.write_bytes(bytes(data))
    assert train.main(args + ["--skip_corrupt_records", "--inference", "--logdir", str(tmp_path / "skipping")]) == 2
    err = without_tf_log(capfd.readouterr().err.strip())
    assert len(err) == 1 and err[0].startswith("train.py: error: reading the data for --inference: "), err
    assert f"{valid}: record 1 at byte {offset}: the data fails its checksum" in err[0]
