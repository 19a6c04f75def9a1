"""Library behind the converters: images in, the original's sharded TFRecords out (spec §4.1, §4.2).

Port of the writing half of data_loaders/generate_tfr (generate.py, lsun.py, imagenet_oord.py). Every record
is a `tf.train.Example` with `shape` int64[3] (H, W, C), `data` raw uint8 HWC bytes, `label` int64[1] and,
where known, `attr` int64[40]; files are `<output>/<split>/<split>-rXX-s-SSSS-of-NNNN.tfrecords`.

How a conversion runs (`convert`):
  1. A converter lists its inputs as `Item`s per split (a file, an lmdb value or a record of a TFRecord).
  2. A seeded permutation assigns the items of a split to shards (the original shuffled too); the same
     assignment serves every level of detail (LOD), so one pass writes all LODs.
  3. Worker processes decode and resize the images (`Spec`); the parent writes the records in shard order,
     so the output is the same for a seed whatever the number of workers.
  4. Each shard set is written under temporary names and renamed only when all of it is done, so an
     interrupted or failed run never leaves a partial set behind; existing shards are refused unless
     `overwrite`. Unreadable images are skipped and counted, or stop the run with `strict`.

TensorFlow is imported only where records are written: worker processes need just NumPy and Pillow.
"""

from __future__ import annotations

import dataclasses
import glob
import math
import multiprocessing
import os
import struct
import sys
import zlib
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".ppm", ".tif", ".tiff")
N_ATTR = 40
MIN_LOD_RESOLUTION = 4


class ConversionError(ValueError):
    """Input or output the converter cannot use; the CLIs print the message on one line."""


def shard_name(split: str, log2res: int, shard: int, n_shards: int) -> str:
    """The original's file name (spec §4.1)."""
    return f"{split}-r{log2res:02d}-s-{shard:04d}-of-{n_shards:04d}.tfrecords"


def log2_floor(resolution: int) -> int:
    """rXX of a resolution; 96 (LSUN RealNVP) gives 6, as int(log2(96)) did in lsun.py."""
    return resolution.bit_length() - 1


# -----------------------------------------------------------------------------------------------------------
# Inputs.

@dataclasses.dataclass(frozen=True)
class Item:
    """One input image: `kind` 'file' (path), 'lmdb' (path = environment, key) or 'tfrecord' (path, key =
    byte offset of the record; PGGAN-style CHW with optional attr). `name` identifies it in messages."""

    kind: str
    path: str
    key: object = None
    label: int = 0
    attr: Optional[Tuple[int, ...]] = None
    name: str = ""

    def describe(self) -> str:
        if self.kind == "file":
            return self.path
        return f"{self.path} [{self.name or self.key}]"


@dataclasses.dataclass(frozen=True)
class Spec:
    """What to make of each image.

    mode: 'square' centre-crops to a square and resizes (Lanczos, the original's PIL ANTIALIAS) to
    `resolution`; 'exact' requires resolution x resolution already (Oord's PNGs); 'short_side' resizes the
    shorter side to `resolution`, uncropped (LSUN RealNVP, spec §4.2). n_lods: resolutions written, halving
    each time by 2x2 mean pooling (the original's LODs; 0 = all down to 4x4).
    """

    mode: str
    resolution: int
    n_lods: int = 1

    @property
    def resolutions(self) -> List[int]:
        if self.mode == "short_side":
            return [self.resolution]
        n_all = log2_floor(self.resolution) - log2_floor(MIN_LOD_RESOLUTION) + 1
        n = n_all if self.n_lods == 0 else self.n_lods
        return [self.resolution >> i for i in range(n)]

    def check(self) -> None:
        if self.mode not in ("square", "exact", "short_side"):
            raise ConversionError(f"unknown mode {self.mode!r}")
        if self.resolution < 1:
            raise ConversionError(f"--resolution {self.resolution} must be positive")
        if self.mode == "short_side":
            if self.n_lods not in (0, 1):
                raise ConversionError("--lods applies to square images only")
            return
        if 2 ** log2_floor(self.resolution) != self.resolution:
            raise ConversionError(f"--resolution {self.resolution} is not a power of two; the reader finds "
                                  f"shards by rXX = log2(resolution)")
        n_all = log2_floor(self.resolution) - log2_floor(MIN_LOD_RESOLUTION) + 1
        if self.n_lods < 0 or self.n_lods > max(1, n_all):
            raise ConversionError(f"--lods {self.n_lods}: {self.resolution}x{self.resolution} has at most "
                                  f"{max(1, n_all)} levels down to {MIN_LOD_RESOLUTION}x{MIN_LOD_RESOLUTION} "
                                  f"(0 = all)")


def list_images(folder: str) -> List[str]:
    """Image files directly in `folder`, sorted by name (the order fixes the output for a seed)."""
    return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                  if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, f)))


def require_folder(path: str, what: str = "input folder") -> None:
    if not os.path.exists(path):
        raise ConversionError(f"{what} {path} does not exist")
    if not os.path.isdir(path):
        raise ConversionError(f"{what} {path} is not a folder")


def folder_images(folder: str, missing_hint: str = "") -> List[str]:
    """list_images of an input folder that must exist and hold at least one image."""
    require_folder(folder)
    paths = list_images(folder)
    if not paths:
        raise ConversionError(f"input folder {folder} holds no images{missing_hint} "
                              f"(looked for {', '.join(IMAGE_EXTENSIONS)})")
    return paths


# -----------------------------------------------------------------------------------------------------------
# Reading one image (runs in worker processes).

_LMDB_ENVS: Dict[str, object] = {}


def open_lmdb(path: str):
    """A read-only lmdb environment, opened once per process (lmdb refuses a second open of one path)."""
    import lmdb

    env = _LMDB_ENVS.get(path)
    if env is None:
        try:
            env = _LMDB_ENVS[path] = lmdb.open(path, readonly=True, lock=False, readahead=False, max_readers=4)
        except lmdb.Error as err:
            raise ConversionError(f"{path}: cannot open lmdb ({err})") from None
    return env


def _read_bytes_lmdb(path: str, key: bytes) -> bytes:
    with open_lmdb(path).begin(buffers=False) as txn:
        value = txn.get(key)
    if value is None:
        raise OSError(f"key {key!r} vanished from the lmdb")
    return value


def read_image(item: Item) -> Tuple[np.ndarray, Optional[Tuple[int, ...]]]:
    """Decode an item to (RGB uint8 [H, W, 3], attr); raises OSError/ValueError for unreadable data.

    attr is the item's, or for a PGGAN record the record's own `attr` where it has one.
    """
    from PIL import Image
    import io

    if item.kind == "tfrecord":
        features = decode_example(read_record_at(item.path, item.key))
        shape = features.get("shape")
        data = features.get("data")
        if shape is None or data is None or len(shape) != 3:
            raise ValueError("record lacks shape int64[3] / data bytes")
        c, h, w = shape  # PGGAN stores CHW
        image = np.frombuffer(data[0], np.uint8)
        if image.size != c * h * w:
            raise ValueError(f"data holds {image.size} bytes, shape {shape} needs {c * h * w}")
        image = image.reshape(c, h, w).transpose(1, 2, 0)
        attr = features.get("attr") or item.attr
        if attr is not None and len(attr) != N_ATTR:
            raise ValueError(f"attr holds {len(attr)} values, expected {N_ATTR}")
        return (np.repeat(image, 3, axis=2) if c == 1 else image), (tuple(attr) if attr else None)
    raw = _read_bytes_lmdb(item.path, item.key) if item.kind == "lmdb" else None
    with Image.open(io.BytesIO(raw) if raw is not None else item.path) as img:
        img.load()  # decode now: truncated files fail here, not later
        return np.asarray(img.convert("RGB")), item.attr


def centre_crop(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return image[top:top + side, left:left + side]


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    from PIL import Image

    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.LANCZOS))


def downsample2x(image: np.ndarray) -> np.ndarray:
    """One LOD down: mean of 2x2 blocks, floored (generate.py's pooling, floor + clip to uint8)."""
    h, w, c = image.shape
    blocks = image.reshape(h // 2, 2, w // 2, 2, c).astype(np.uint16)
    return (blocks.sum(axis=(1, 3)) // 4).astype(np.uint8)


def process(image: np.ndarray, spec: Spec) -> List[np.ndarray]:
    """Input image -> one uint8 HWC array per resolution in spec.resolutions (largest first)."""
    res = spec.resolution
    if spec.mode == "exact":
        if image.shape[:2] != (res, res):
            raise ValueError(f"image is {image.shape[0]}x{image.shape[1]}, expected {res}x{res}")
        top = image
    elif spec.mode == "square":
        top = _resize(centre_crop(image), res, res)
    else:
        h, w = image.shape[:2]
        factor = min(h, w) / res
        # Shorter side exactly `res`; the other rounded up, like skimage's pyramid_reduce output shape.
        top = _resize(image, math.ceil(w / factor - 1e-9), math.ceil(h / factor - 1e-9))
    lods = [np.ascontiguousarray(top)]
    for _ in spec.resolutions[1:]:
        lods.append(downsample2x(lods[-1]))
    return lods


def _work(task: Tuple[Item, Spec]):
    """Worker: ('ok', (lods, attr)) or ('bad', message) for one item."""
    item, spec = task
    try:
        image, attr = read_image(item)
        return "ok", (process(image, spec), attr)
    except (OSError, ValueError, SyntaxError, struct.error) as err:  # PIL raises all three
        return "bad", f"{item.describe()}: {type(err).__name__}: {err}"


# -----------------------------------------------------------------------------------------------------------
# Reading TFRecord files without TensorFlow (PGGAN-style inputs, random access by offset).

def index_records(path: str) -> List[int]:
    """Byte offsets of every record in a TFRecord file (length u64, crc u32, data, crc u32)."""
    offsets = []
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        pos = 0
        while pos < size:
            header = f.read(8)
            if len(header) < 8:
                raise ConversionError(f"{path}: truncated after record {len(offsets)} (at byte {pos})")
            (length,) = struct.unpack("<Q", header)
            end = pos + 12 + length + 4
            if end > size:
                raise ConversionError(f"{path}: record {len(offsets)} is truncated (needs {length} bytes)")
            offsets.append(pos)
            pos = end
            f.seek(pos)
    return offsets


def read_record_at(path: str, offset: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        (length,) = struct.unpack("<Q", f.read(8))
        f.seek(4, os.SEEK_CUR)
        data = f.read(length)
    if len(data) != length:
        raise ValueError(f"record at byte {offset} is truncated")
    return data


def _varint(buf: bytes, pos: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[Tuple[int, int, object]]:
    """(field number, wire type, value) of a protobuf message; values of wire type 2 are bytes."""
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def decode_example(serialized: bytes) -> Dict[str, list]:
    """A tf.train.Example as {name: [bytes...] or [int...]} (bytes_list and int64_list features only)."""
    out: Dict[str, list] = {}
    for number, _, features in _fields(serialized):
        if number != 1:
            continue
        for fnum, _, entry in _fields(features):  # Features.feature: map<string, Feature>
            if fnum != 1:
                continue
            key, feature = "", b""
            for enum, _, value in _fields(entry):
                if enum == 1:
                    key = value.decode()
                elif enum == 2:
                    feature = value
            values: list = []
            for kind, _, lst in _fields(feature):
                for vnum, wire, value in _fields(lst):
                    if vnum != 1:
                        continue
                    if kind == 1:  # BytesList
                        values.append(bytes(value))
                    elif kind == 3 and wire == 2:  # packed Int64List
                        pos = 0
                        while pos < len(value):
                            v, pos = _varint(value, pos)
                            values.append(v - (1 << 64) if v >> 63 else v)
                    elif kind == 3:
                        values.append(value - (1 << 64) if value >> 63 else value)
            out[key] = values
    return out


# -----------------------------------------------------------------------------------------------------------
# Writing.

def example_bytes(image: np.ndarray, label: int, attr: Optional[Sequence[int]]) -> bytes:
    """The original's record: shape int64[3], data raw HWC bytes, label int64[1], attr int64[40] if known."""
    import tensorflow as tf

    def int64s(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))

    feature = {
        "shape": int64s(image.shape),
        "data": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image.tobytes()])),
        "label": int64s([label]),
    }
    if attr is not None:
        feature["attr"] = int64s(attr)
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


@dataclasses.dataclass
class SplitReport:
    """What one split produced: counts per resolution, skipped inputs with their reasons."""

    split: str
    n_input: int = 0
    n_shards: int = 0
    written: Dict[int, int] = dataclasses.field(default_factory=dict)
    skipped: List[str] = dataclasses.field(default_factory=list)
    files: List[str] = dataclasses.field(default_factory=list)


def existing_shards(output: str, split: str, resolutions: Iterable[int]) -> List[str]:
    found = []
    for res in resolutions:
        found += sorted(glob.glob(os.path.join(output, split, f"{split}-r{log2_floor(res):02d}-s-*.tfrecords")))
    return found


def shard_assignment(n: int, n_shards: int, seed: int, split: str) -> List[np.ndarray]:
    """A seeded random permutation cut into n_shards nearly equal parts (sizes differ by at most one)."""
    rng = np.random.default_rng([seed, zlib.crc32(split.encode())])
    return np.array_split(rng.permutation(n), n_shards)


def _results(tasks: List[Tuple[Item, Spec]], workers: int):
    """Yield _work results in task order, in `workers` spawned processes (0 or 1: in this process)."""
    if workers <= 1 or len(tasks) < 2:
        yield from map(_work, tasks)
        return
    # spawn, not fork: the parent may hold TensorFlow's threads, which do not survive a fork.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(_work, tasks, chunksize=max(1, min(16, len(tasks) // (8 * workers))))


def write_split(items: Sequence[Item], output: str, split: str, spec: Spec, *, n_shards: int, seed: int,
                workers: int = 1, strict: bool = False, overwrite: bool = False,
                progress: bool = False) -> SplitReport:
    """Convert one split; all its shard sets appear at once (rename from temporary names) or not at all."""
    import tensorflow as tf
    from tqdm import tqdm

    report = SplitReport(split=split, n_input=len(items))
    if not items:
        raise ConversionError(f"no input images for split {split!r}")
    n_shards = max(1, min(n_shards, len(items)))  # never write empty shards
    report.n_shards = n_shards
    resolutions = spec.resolutions
    report.written = {res: 0 for res in resolutions}
    folder = os.path.join(output, split)
    os.makedirs(folder, exist_ok=True)
    final = {(res, s): os.path.join(folder, shard_name(split, log2_floor(res), s, n_shards))
             for res in resolutions for s in range(n_shards)}
    temp = {k: os.path.join(folder, f".{os.path.basename(p)}.tmp{os.getpid()}") for k, p in final.items()}
    parts = shard_assignment(len(items), n_shards, seed, split)
    order = [int(i) for part in parts for i in part]
    shard_of = [s for s, part in enumerate(parts) for _ in part]
    writers: Dict[int, tf.io.TFRecordWriter] = {}
    current = -1
    try:
        bar = tqdm(total=len(order), desc=f"{split} {'/'.join(map(str, resolutions))}px", unit="img",
                   disable=not progress, file=sys.stderr)
        for position, (status, payload) in enumerate(_results([(items[i], spec) for i in order], workers)):
            shard = shard_of[position]
            if shard != current:
                for writer in writers.values():
                    writer.close()
                writers = {res: tf.io.TFRecordWriter(temp[res, shard]) for res in resolutions}
                current = shard
            bar.update(1)
            label = items[order[position]].label
            if status == "bad":
                if strict:
                    raise ConversionError(f"unreadable image {payload} (drop --strict to skip such images)")
                report.skipped.append(payload)
                bar.write(f"warning: skipping {payload}", file=sys.stderr)
                continue
            lods, attr = payload
            for res, image in zip(resolutions, lods):
                writers[res].write(example_bytes(image, label, attr))
                report.written[res] += 1
        bar.close()
        for writer in writers.values():
            writer.close()
        writers = {}
        if overwrite:
            for path in existing_shards(output, split, resolutions):
                os.remove(path)
        for key, path in final.items():
            os.replace(temp[key], path)
        report.files = sorted(final.values())
    finally:
        for writer in writers.values():
            writer.close()
        for path in temp.values():
            if os.path.exists(path):
                os.remove(path)
    return report


def convert(splits: Dict[str, Sequence[Item]], output: str, spec: Spec, *, shards: Dict[str, int], seed: int = 0,
            workers: int = 1, strict: bool = False, overwrite: bool = False,
            progress: bool = False) -> List[SplitReport]:
    """Write every split; refuses up front if any target shard set exists and `overwrite` is off."""
    spec.check()
    for split, items in splits.items():
        if not items:
            raise ConversionError(f"no input images for split {split!r}")
        clash = existing_shards(output, split, spec.resolutions)
        if clash and not overwrite:
            raise ConversionError(f"{clash[0]} already exists ({len(clash)} shard files for split {split!r}); "
                                  f"pass --overwrite to replace them")
    return [write_split(items, output, split, spec, n_shards=shards[split], seed=seed, workers=workers,
                        strict=strict, overwrite=overwrite, progress=progress)
            for split, items in splits.items()]


def summary(reports: Sequence[SplitReport], output: str) -> str:
    """The final table: images written per split and resolution, shards, skipped inputs."""
    lines = [f"wrote {output}:", f"  {'split':<12}{'resolution':>11}{'images':>10}{'shards':>8}{'skipped':>9}"]
    for r in reports:
        for res, count in r.written.items():
            lines.append(f"  {r.split:<12}{str(res) + 'px':>11}{count:>10}{r.n_shards:>8}{len(r.skipped):>9}")
    return "\n".join(lines)


def parse_attr_file(path: str) -> Dict[str, Tuple[int, ...]]:
    """CelebA's list_attr_celeba.txt: count, 40 names, then `name v1..v40` with values 1 or -1.

    Returns {image name: 40 ints}; any deviation is a ConversionError naming the line.
    """
    if not os.path.isfile(path):
        raise ConversionError(f"attribute file {path} does not exist")
    with open(path) as f:
        lines = [line.split() for line in f if line.strip()]
    if len(lines) < 2 or not lines[0] or not lines[0][0].isdigit():
        raise ConversionError(f"{path}: line 1 must be the image count (CelebA's list_attr_celeba.txt format)")
    count = int(lines[0][0])
    if len(lines[1]) != N_ATTR:
        raise ConversionError(f"{path}: line 2 must name {N_ATTR} attributes, found {len(lines[1])}")
    attrs = {}
    for number, fields in enumerate(lines[2:], start=3):
        values = fields[1:]
        if len(values) != N_ATTR or any(v not in ("1", "-1") for v in values):
            raise ConversionError(f"{path}: line {number} must be a name and {N_ATTR} values of 1 or -1")
        attrs[fields[0]] = tuple(int(v) for v in values)
    if len(attrs) != count:
        raise ConversionError(f"{path}: line 1 says {count} images, the file lists {len(attrs)}")
    return attrs

