"""The demo's sliders: one direction in eps per CelebA attribute, or else one per class.

As in openai/glow demo/get_manipulators.py, a direction is
    delta = 1.6 * (mean eps of the images with the property - mean eps of the images without it)
(glow_tf.tools.manipulate.compute_directions does the sums). The property is one of CelebA's 40 attributes
when the model's TFRecords carry `attr` (the training split, as the original), and otherwise a class of
the model's own validation data: mean eps of the class minus the mean eps of all other classes.
Models of unlabelled data have no directions.

The directions are computed once, in a background thread while the page is already served (the page
shows the progress), and cached in the logdir as an .npz of `manipulate directions`' format. The cache is
written atomically and is used only while it matches the model: the same configuration, the same
checkpoint (a hash of its .index file, which holds every tensor's checksum), --ema and data source.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import traceback
from typing import Callable, Iterable, List, Optional, Tuple

import numpy as np

from glow_common.errors import UserError
from glow_tf.errors import ConfigError
from glow_tf.tools import manipulate

SCALE = manipulate.DEMO_SCALE
CACHE_NAME = "demo_directions.npz"
CLASS_NAMES = {
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                      "Bag", "Ankle boot"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    "mnist": tuple("0123456789"),
}


def class_names(hps) -> List[str]:
    names = CLASS_NAMES.get(hps.problem)
    if names and len(names) == hps.n_classes:
        return list(names)
    return [f"class {i}" for i in range(hps.n_classes)]


def cache_path(checkpoint: str, prefix: str) -> str:
    """The cache in the folder given on the command line (the logdir), else next to the checkpoint."""
    return os.path.join(checkpoint if os.path.isdir(checkpoint) else os.path.dirname(prefix), CACHE_NAME)


def model_key(prefix: str, ema: bool, source: dict) -> str:
    """Changes with the checkpoint's weights (its .index holds a checksum per tensor), --ema or the data."""
    digest = hashlib.sha256()
    with open(prefix + ".index", "rb") as f:
        digest.update(f.read())
    digest.update(json.dumps({"ema": bool(ema), **source}, sort_keys=True).encode())
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------- the data
class Source:
    """Batches of (x uint8, y int32 zeros, property indicator [B, K]) and what they are."""

    def __init__(self, kind: str, names: List[str], total: int, batches: Callable[[], Iterable],
                 description: str):
        self.kind, self.names, self.total, self.batches, self.description = kind, names, total, batches, description


def attr_records(hps) -> Optional[List[str]]:
    """The training TFRecords when the model's data is TFRecords with CelebA's `attr`, else None."""
    from data_loaders import DataError, problems, tfrecords

    problem = problems.find(hps.problem)
    if problem is None or problem.source != problems.TFRECORDS:
        return None
    try:
        files = tfrecords.find_files(tfrecords.data_dir_for(hps, problem), "train", hps.image_shape[0])
        tfrecords.check_first_record(files[0], hps.image_shape[0], hps.n_channels, need_attr=True)
    except DataError:
        return None
    return files


def find_source(hps, max_images: int, get_data=None) -> Source:
    """CelebA attributes if the data has them, else the classes of the validation data; ConfigError if neither."""
    files = attr_records(hps)
    if files is not None:
        def attr_batches():
            for x, _, attr in manipulate.attr_batches(files, hps.image_shape, 64, max_images, hps.n_classes):
                # y = 0 as for every image the page encodes, so that all eps share one space.
                yield x, np.zeros(len(x), np.int32), attr
        return Source("attributes", list(manipulate.CELEBA_ATTRIBUTES), max_images, attr_batches,
                      f"CelebA's 40 attributes over up to {max_images:,} training images")
    if hps.n_classes < 2:
        raise ConfigError(f"the model's data ({hps.problem}) has neither classes nor CelebA attributes, "
                        f"so there are no directions to move along")
    splits = (get_data or read_data)(hps)
    total = min(splits.n_test, max_images)

    def class_batches():
        seen = 0
        for x, y in splits.test.take(splits.test_its):
            x, y = x.numpy()[:total - seen], y.numpy()[:total - seen]
            seen += len(x)
            yield x, np.zeros(len(x), np.int32), np.eye(hps.n_classes, dtype=np.int64)[y]
            if seen >= total:
                return
    return Source("classes", class_names(hps), total, class_batches,
                  f"the {hps.n_classes} classes of {total:,} validation images (each class minus the rest)")


def read_data(hps):
    from data_loaders import DataError, get_data

    try:
        return get_data(hps, 0, 1)
    except DataError as err:
        raise ConfigError(f"cannot read the model's data: {err}") from None


def examples(hps, count: int, get_data=None) -> List[Tuple[np.ndarray, str]]:
    """Up to `count` validation images, one per class first (then in order), with their class names."""
    splits = (get_data or read_data)(hps)
    names = class_names(hps) if hps.n_classes > 1 else None
    chosen, rest, classes = [], [], set()
    for x, y in splits.test.take(min(splits.test_its, 64)):
        for image, label in zip(x.numpy(), y.numpy()):
            label = int(label)
            entry = (image, names[label] if names else f"image {len(chosen) + len(rest) + 1}")
            if names and label not in classes:
                classes.add(label)
                chosen.append(entry)
            else:
                rest.append(entry)
        if len(chosen) + len(rest) >= count and (not names or len(chosen) >= min(count, len(names))):
            break
    return (chosen + rest)[:count]


# ---------------------------------------------------------------------------------------- the cache
def load_cache(path: str, hps, key: str) -> Tuple[Optional[Tuple[List[str], np.ndarray]], str]:
    """((names, directions) or None, why not) from a cache written for this very model."""
    if not os.path.isfile(path):
        return None, "no cache yet"
    try:
        names, directions = manipulate.load_directions(path, hps)
        with np.load(path, allow_pickle=False) as f:
            stored = str(f["model"]) if "model" in f else ""
    except (ConfigError, OSError, ValueError, KeyError) as err:
        return None, f"cache unreadable ({err})"
    if stored != key:
        return None, "the cache was computed for another checkpoint or data"
    return (names, directions), "loaded from the cache"


# ------------------------------------------------------------------------------------------ the job
class DirectionsJob:
    """Computes (or loads) the directions once, in a thread; `status()` is what the page polls."""

    def __init__(self, hps, encode: Callable, path: str, key_of: Callable[[dict], str],
                 source: Callable[[], Source]):
        self.hps, self._encode, self.path, self._key_of, self._source = hps, encode, path, key_of, source
        self._lock = threading.Lock()
        self._status = {"state": "pending", "done": 0, "total": 0, "message": "waiting to start",
                        "kind": None, "names": []}
        self.names: List[str] = []
        self.directions: Optional[np.ndarray] = None
        self.thread: Optional[threading.Thread] = None

    def status(self) -> dict:
        with self._lock:
            return dict(self._status, names=list(self._status["names"]))

    def _set(self, **fields):
        with self._lock:
            self._status.update(fields)

    def start(self) -> "DirectionsJob":
        self.thread = threading.Thread(target=self.run, name="directions", daemon=True)
        self.thread.start()
        return self

    def run(self) -> None:
        try:
            self._run()
        except Exception as err:  # the page must say it, and the server must go on serving the rest
            if isinstance(err, UserError):  # e.g. a damaged data file: its one line is the message
                self._set(state="failed", message=str(err))
                return
            traceback.print_exc()
            self._set(state="failed", message=f"computing the directions failed: {type(err).__name__}: {err}")

    def _run(self) -> None:
        self._set(state="computing", message="finding the data")
        source = self._source()
        key = self._key_of({"kind": source.kind, "description": source.description})
        cached, why = load_cache(self.path, self.hps, key)
        if cached is not None:
            self._finish(source.kind, *cached, message=f"{source.description}; {why} ({self.path})")
            return
        self._set(kind=source.kind, total=source.total,
                  message=f"computing {source.description} ({why})")
        counted = _Counting(self._encode, lambda n: self._advance(n))
        indices = list(range(len(source.names)))
        delta, n_pos, n_neg = manipulate.compute_directions(counted, source.batches(), self.hps.n_classes,
                                                            indices)
        keep = (n_pos > 0) & (n_neg > 0)  # a direction needs images on both sides
        if not keep.any():
            raise ConfigError(f"none of {source.description} has images both with and without it")
        names = [n for n, k in zip(source.names, keep) if k]
        message = f"{source.description}; computed ({why})"
        try:
            manipulate.save_directions(self.path, names, delta[keep], n_pos[keep], n_neg[keep], SCALE, self.hps,
                                       extra={"model": key, "kind": source.kind})
            message += f" and cached in {self.path}"
        except OSError as err:
            message += f" (not cached: cannot write {self.path}: {err.strerror or err})"
        print(f"demo: directions {message}", file=sys.stderr, flush=True)
        self._finish(source.kind, names, (SCALE * delta[keep]).astype(np.float32), message)

    def _advance(self, n: int) -> None:
        with self._lock:
            done, total = self._status["done"] + n, self._status["total"]
            self._status["done"] = min(done, total) if total else done

    def _finish(self, kind: str, names: List[str], directions: np.ndarray, message: str) -> None:
        self.names, self.directions = list(names), np.asarray(directions, np.float32)
        with self._lock:
            self._status.update(state="ready", kind=kind, names=list(names), message=message,
                                done=self._status["total"])


class _Counting:
    """compute_directions' model: encodes through the demo (under its lock) and reports progress."""

    def __init__(self, encode: Callable, advance: Callable[[int], None]):
        self._encode, self._advance = encode, advance

    def encode(self, x, y):
        z = self._encode(x, y)
        self._advance(len(x))
        return z
