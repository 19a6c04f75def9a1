"""What the converters read: input images as `Item`s (a file, an lmdb value or a record of a TFRecord
file), found in folders and decoded to RGB arrays. Decoding runs in worker processes, so this module
needs only NumPy and Pillow.
"""

from __future__ import annotations

import dataclasses
import io
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from tfrecords_tools import format as fmt
from tfrecords_tools.errors import ConversionError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".ppm", ".tif", ".tiff")


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


def _read_pggan_record(item: Item) -> Tuple[np.ndarray, Optional[Tuple[int, ...]]]:
    features = fmt.decode_example(fmt.read_record(item.path, item.key))
    shape = features.get(fmt.SHAPE.name)
    data = features.get(fmt.DATA.name)
    if shape is None or data is None or len(shape) != 3:
        raise ValueError("record lacks shape int64[3] / data bytes")
    c, h, w = shape  # PGGAN's dataset_tool stores CHW
    image = np.frombuffer(data[0], np.uint8)
    if image.size != c * h * w:
        raise ValueError(f"data holds {image.size} bytes, shape {shape} needs {c * h * w}")
    image = image.reshape(c, h, w).transpose(1, 2, 0)
    attr = features.get(fmt.ATTR.name) or item.attr
    if attr is not None and len(attr) != fmt.N_ATTR:
        raise ValueError(f"attr holds {len(attr)} values, expected {fmt.N_ATTR}")
    return (np.repeat(image, 3, axis=2) if c == 1 else image), (tuple(attr) if attr else None)


def read_image(item: Item) -> Tuple[np.ndarray, Optional[Tuple[int, ...]]]:
    """Decode an item to (RGB uint8 [H, W, 3], attr); raises OSError/ValueError for unreadable data.

    attr is the item's, or for a PGGAN record the record's own `attr` where it has one.
    """
    from PIL import Image

    if item.kind == "tfrecord":
        return _read_pggan_record(item)
    raw = _read_bytes_lmdb(item.path, item.key) if item.kind == "lmdb" else None
    with Image.open(io.BytesIO(raw) if raw is not None else item.path) as img:
        img.load()  # decode now: truncated files fail here, not later
        return np.asarray(img.convert("RGB")), item.attr
