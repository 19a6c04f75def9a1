"""A run's checkpoints: where they live, which one to trust, and whether it fits a model.

A logdir holds
    checkpoints/ckpt-<step>.index|.data-*     the latest checkpoints (every epoch, every save interval and
                                              at a pre-emption), with TF's `checkpoint` state file
    checkpoints/data_position/                each rank's tf.data iterator state for those steps
    model_best_loss/model_best_loss.ckpt-<step>.*   the original's best-test-loss checkpoint
    hparams.json, and a copy in each checkpoint folder: the flags the weights were made with.
Every tool accepts the logdir, one of those folders, or a checkpoint prefix.

What is trusted, and why: the state file is only a hint (a garbage or empty one used to make a resume
start afresh over the run). Checkpoints are found by their files, newest step first; one whose index or
data cannot be read is skipped with a warning that names it and the reason, and the newest one that reads
completely is used. When there are checkpoint files but none reads, that is one clear error and nothing is
touched. Before any value is restored, the checkpoint's variable names and shapes are compared with the
model's, so weights that do not fit their hparams.json (or the flags given) are refused with the
differences listed instead of silently giving another model's numbers.
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import json
import os
import re
import shutil
from typing import Callable, Dict, List, Optional

import tensorflow as tf

from glow_common.errors import first_line, warn
from glow_common.files import write_error, write_json
from glow_tf.errors import CheckpointError
from glow_tf.hparams import HParams, model_signature

CHECKPOINT_DIR = "checkpoints"
BEST_DIR = "model_best_loss"
HPS_FILE = "hparams.json"
LATEST_NAME = "ckpt"  # checkpoints/ckpt-<step>
BEST_NAME = "model_best_loss.ckpt"  # the original's file name, model_best_loss.ckpt
LATEST_KEPT = 2  # latest checkpoints kept, and the data positions saved with them

Warn = Callable[[str], None]


# ---------------------------------------------------------------------------------------------------------
# Finding checkpoints by their files.

def _step_of(prefix: str) -> int:
    match = re.search(r"-(\d+)$", prefix)
    return int(match.group(1)) if match else -1


def candidates(folder: str) -> List[str]:
    """Every checkpoint prefix in `folder` that has an index file, newest step first."""
    prefixes = [path[:-len(".index")] for path in glob.glob(os.path.join(glob.escape(folder), "*.index"))]
    return sorted(prefixes, key=lambda p: (_step_of(p), p), reverse=True)


def damage(prefix: str) -> Optional[str]:
    """Why the checkpoint at `prefix` cannot be read completely, or None when every tensor reads.

    Reads each tensor once (TF checks each one's checksum), one at a time so that memory stays at the
    largest tensor.
    """
    try:
        if os.path.getsize(prefix + ".index") == 0:
            return "its index file is empty"
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as err:  # noqa: BLE001 - the reader raises OpErrors, IndexError, ValueError...
        return first_line(err)
    return None


def _state_file_problem(folder: str) -> Optional[str]:
    path = os.path.join(folder, "checkpoint")
    if not os.path.exists(path):
        return None
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as err:
        return f"{path} cannot be read ({err.strerror})"
    if not text.strip():
        return f"{path} is empty"
    # A text-format CheckpointState: `field: "string"` or `field: number` lines.
    lines = text.decode("utf-8", "replace").strip().splitlines()
    if not all(_STATE_LINE.match(line.strip()) for line in lines):
        return f"{path} is not a checkpoint state file"
    if not any(line.startswith("model_checkpoint_path:") for line in lines):
        return f"{path} names no checkpoint"
    return None


_STATE_LINE = re.compile(r'^[a-z_]+: ("[^"]*"|[-+0-9.eE]+)$')


def newest_readable(folder: str, warn: Warn = warn) -> Optional[str]:
    """The newest checkpoint in `folder` that reads completely; None when the folder holds none at all.

    Damaged checkpoints (and a damaged state file) are skipped with a warning; if every checkpoint is
    damaged, CheckpointError says which and why.
    """
    if not os.path.isdir(folder):
        return None
    problem = _state_file_problem(folder)
    found = candidates(folder)
    if problem and found:
        warn(f"{problem}; finding the checkpoints by their files instead")
    skipped = []
    for prefix in found:
        reason = damage(prefix)
        if reason is None:
            for bad, why in skipped:
                warn(f"skipping the damaged checkpoint {bad} ({why}); using {prefix}")
            return prefix
        skipped.append((prefix, reason))
    if skipped:
        details = "; ".join(f"{p}: {why}" for p, why in skipped)
        raise CheckpointError(f"no checkpoint in {folder} can be read ({details}). Nothing was changed; "
                              f"restore the folder from a backup, or train into another --logdir")
    orphans = glob.glob(os.path.join(glob.escape(folder), "*.data-*"))
    if orphans:
        raise CheckpointError(f"{folder} holds checkpoint data ({os.path.basename(orphans[0])}) but no index "
                              f"file, so no checkpoint can be read. Nothing was changed; restore the folder "
                              f"from a backup, or train into another --logdir")
    return None


def resolve(path: str, warn: Warn = warn) -> str:
    """The checkpoint prefix for a logdir, a checkpoint folder or a prefix (latest first, then best)."""
    if not path:
        raise CheckpointError("no checkpoint given (expected a logdir, a checkpoint folder or a prefix)")
    if os.path.isdir(path):
        for folder in (path, os.path.join(path, CHECKPOINT_DIR), os.path.join(path, BEST_DIR)):
            prefix = newest_readable(folder, warn)
            if prefix:
                return prefix
        raise CheckpointError(f"no checkpoint in {path} (looked in it, in {CHECKPOINT_DIR}/ and in {BEST_DIR}/)")
    if os.path.isfile(path + ".index"):
        reason = damage(path)
        if reason:
            raise CheckpointError(f"the checkpoint {path} cannot be read ({reason})")
        return path
    raise CheckpointError(f"no checkpoint at {path}: neither a folder nor a prefix with an .index file")


def repair_state_file(folder: str, prefix: str) -> None:
    """Point TF's state file at `prefix` and the readable checkpoints before it (atomically).

    Called on resume, so that CheckpointManager, which trusts the state file, neither fails on a damaged
    one nor keeps counting a damaged checkpoint among those it may delete.
    """
    if _state_file_problem(folder) is None and tf.train.latest_checkpoint(folder) == prefix:
        return  # already right: leave the file alone
    keep = [p for p in reversed(candidates(folder)) if _step_of(p) <= _step_of(prefix) and
            (p == prefix or damage(p) is None)][-LATEST_KEPT:]
    tf.compat.v1.train.update_checkpoint_state(folder, prefix, all_model_checkpoint_paths=keep)


# ---------------------------------------------------------------------------------------------------------
# Does a checkpoint fit the objects it is read into?

VARIABLE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


def expected_variables(objects: Dict[str, object]) -> Dict[str, tuple]:
    """{checkpoint key: shape} that tf.train.Checkpoint(**objects) would write, without writing it.

    Walks the object graph breadth first, as the checkpoint writer does, so an object reachable by two
    paths gets the same (first) key.
    """
    root = tf.train.Checkpoint(**objects)
    view = tf.train.TrackableView(root)
    keys, seen = {}, {id(root)}
    queue = collections.deque([(root, ())])
    while queue:
        obj, path = queue.popleft()
        for name, child in view.children(obj).items():
            if id(child) in seen:
                continue
            seen.add(id(child))
            if isinstance(child, tf.Variable) or (hasattr(child, "assign") and hasattr(child, "shape")):
                keys["/".join(path + (name,)) + VARIABLE_SUFFIX] = tuple(child.shape)
            queue.append((child, path + (name,)))
    return keys


def _listing(names, limit: int = 3) -> str:
    names = sorted(names)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(n.replace(VARIABLE_SUFFIX, "") for n in names[:limit]) + more


def mismatch(prefix: str, objects: Dict[str, object], lenient: tuple = ("state/", "save_counter/")) -> Optional[str]:
    """How the checkpoint's variables differ from those of `objects`, or None when they fit.

    Only the roots in `objects` are compared (a tool reads `model` out of a full training checkpoint).
    Keys under a `lenient` prefix may be missing from the checkpoint: counters added to the training
    state later start at zero when an older checkpoint is resumed, and a checkpoint written with
    `Checkpoint.write` has no save counter.
    """
    expected = expected_variables(objects)
    stored = {name: tuple(shape) for name, shape in tf.train.list_variables(prefix)
              if name.endswith(VARIABLE_SUFFIX) and name.split("/")[0] in objects}
    missing = [k for k in expected if k not in stored and not k.startswith(lenient)]
    extra = [k for k in stored if k not in expected]
    shaped = [f"{k.replace(VARIABLE_SUFFIX, '')} {list(stored[k])} where the model has {list(expected[k])}"
              for k in expected if k in stored and stored[k] != expected[k]]
    problems = []
    if missing:
        problems.append(f"{len(missing)} of the model's variables are not in it ({_listing(missing)})")
    if extra:
        problems.append(f"it holds {len(extra)} variables the model does not have ({_listing(extra)})")
    if shaped:
        problems.append(f"{len(shaped)} have another shape ({'; '.join(shaped[:3])})")
    return "; ".join(problems) or None


def restore(prefix: str, objects: Dict[str, object], what: str, root: Optional[tf.train.Checkpoint] = None,
            hint: str = "") -> None:
    """Read `objects` from the checkpoint at `prefix`, after checking that its variables fit them.

    `root`, a tf.train.Checkpoint over exactly `objects`, is read instead of a new one, so that its
    save counter is restored too. `hint` ends the message when the variables do not fit.
    """
    try:
        problem = mismatch(prefix, objects)
    except (tf.errors.OpError, OSError) as err:
        raise CheckpointError(f"{what}: the checkpoint {prefix} cannot be read ({first_line(err)})") from None
    if problem:
        raise CheckpointError(f"{what}: the checkpoint {prefix} does not fit this model: {problem}{hint}")
    try:
        (root or tf.train.Checkpoint(**objects)).read(prefix).expect_partial()
    except (tf.errors.OpError, ValueError) as err:
        raise CheckpointError(f"{what}: the checkpoint {prefix} cannot be read ({first_line(err)})") from None


# ---------------------------------------------------------------------------------------------------------
# The hyperparameters beside the weights.

def save_hparams(folder: str, hps: HParams) -> None:
    write_json(os.path.join(folder, HPS_FILE), dataclasses.asdict(hps))


def read_hparams_file(path: str, **overrides) -> HParams:
    """HParams from an hparams.json, with `overrides`; unknown keys (from other versions) are ignored."""
    try:
        with open(path) as f:
            fields = json.load(f)
        if not isinstance(fields, dict):
            raise ValueError("not a JSON object")
        names = {f.name for f in dataclasses.fields(HParams)}
        return HParams(**{k: v for k, v in {**fields, **overrides}.items() if k in names})
    except (OSError, ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: unreadable hyperparameters ({first_line(err)})") from None


def hparams_beside(prefix: str, **overrides) -> HParams:
    """The HParams saved next to the checkpoint `prefix`, with `overrides` applied (e.g. data_dir, n_test)."""
    hps_path = os.path.join(os.path.dirname(prefix), HPS_FILE)
    if not os.path.isfile(hps_path):
        raise CheckpointError(f"{hps_path} is missing: the checkpoint's configuration is unknown")
    return read_hparams_file(hps_path, **overrides)


def check_compatible(hps: HParams, folder: str, what: str) -> None:
    """Refuse a checkpoint folder whose hparams.json describes another model than `hps` does."""
    path = os.path.join(folder, HPS_FILE)
    if not os.path.isfile(path):
        return  # e.g. a converted TF1 checkpoint; the restore still compares every variable
    saved = read_hparams_file(path)
    ours, theirs = model_signature(hps), model_signature(saved)
    ours["first moment (beta1 > 0)"], theirs["first moment (beta1 > 0)"] = hps.beta1 > 0, saved.beta1 > 0
    diffs = [f"{k}: checkpoint {theirs[k]!r}, now {ours[k]!r}" for k in ours if ours[k] != theirs[k]]
    if diffs:
        raise CheckpointError(f"{what} in {folder} was written for a different configuration ("
                              + "; ".join(diffs) + "); use the same flags, or another --logdir")


# ---------------------------------------------------------------------------------------------------------
# Writing.

def discard_partial(prefix: str) -> None:
    """Remove what a failed write of `prefix` left: TF's `<prefix>_temp` folders and data without an index."""
    for temp in glob.glob(glob.escape(prefix) + "_temp*"):
        shutil.rmtree(temp, ignore_errors=True)
    if not os.path.exists(prefix + ".index"):
        for data in glob.glob(glob.escape(prefix) + ".data-*"):
            try:
                os.remove(data)
            except OSError:
                pass


def save(manager: tf.train.CheckpointManager, name: str, step: int) -> str:
    """manager.save of `<name>-<step>`; a failed write leaves no partial files and becomes one WriteError."""
    prefix = os.path.join(manager.directory, f"{name}-{step}")
    try:
        return manager.save(checkpoint_number=step)
    except (tf.errors.OpError, OSError) as err:
        discard_partial(prefix)
        raise write_error(prefix, err) from None


# ---------------------------------------------------------------------------------------------------------
# Loading a trained model, for the tools.

def load_model(path: str, ema: bool = False, **overrides):
    """(model, hps, prefix): a Glow with the checkpoint's weights (the Polyak average with `ema`), built
    from the hparams.json beside it with `overrides` applied (HParams fields, e.g. data_dir, nn_dtype)."""
    from glow_tf.model import Glow
    from glow_tf.training.optim import PolyakAverage

    prefix = resolve(path)  # once: it reads the whole checkpoint, and warns about any damaged one it skips
    hps = hparams_beside(prefix, **overrides)
    model = Glow(hps)
    objects = {"model": model}
    if ema:
        if not any(name.startswith("ema/") for name, _ in tf.train.list_variables(prefix)):
            raise CheckpointError(f"{prefix} holds no Polyak average (model-only checkpoints, such as "
                                  f"convert_tf1's without --ema, have none); leave out --ema")
        objects["ema"] = PolyakAverage(model.trainable_variables, decay=0.0)
    hps_path = os.path.join(os.path.dirname(prefix), HPS_FILE)
    restore(prefix, objects, f"the model of {hps_path}",
            hint="; that hparams.json may have been edited or copied from another run")
    if ema:
        objects["ema"].swap(model.trainable_variables)
    if not model.initialized:
        raise CheckpointError(f"{prefix}: the model's ActNorm layers were never initialised")
    return model, hps, prefix
