"""The on-disk format of openai/glow's image datasets, defined once and readable without TensorFlow.

Records (openai/glow data_loaders/get_data.py, parse_tfrecord_tf; written by data_loaders/generate_tfr/
generate.py, dump_celebahq): one `tf.train.Example` per image with

    shape  int64[3]   (H, W, C)
    data   bytes      the raw uint8 pixels in HWC order
    label  int64[1]   the class, 0 for unlabelled data
    attr   int64[40]  CelebA only, +1/-1 per attribute of list_attr_celeba.txt; the original's reader never
                      parses it, and its downloadable celeba-tfr lacks it (openai/glow#112)

Files: `<split>/<split>-rXX-s-SSSS-of-NNNN.tfrecords`, XX = log2 of the resolution (int(log2(96)) = 6
for LSUN's RealNVP images, as lsun.py wrote), SSSS the shard, NNNN the shard count.

Records are encoded and decoded by protobuf with the messages of example.proto beside this file
(compiled once into example_pb2.py): TensorFlow's field numbers under a package of our own, so the bytes
are TensorFlow's and reading them needs no TensorFlow.

Each file is TFRecord framing: per record a uint64 length, the masked CRC-32C of those 8 bytes, the
data, and the masked CRC-32C of the data (google-crc32c computes the CRC). TensorFlow checks both
checksums when it reads, but takes a file that ends inside a record header for a clean end of file, so
`walk_records` checks the framing here. Our converters also write a manifest per shard set
(`<split>-rXX.manifest.json`: records and bytes per file), which makes a truncated file visible from its
size alone; sets without one (the original's published TFRecords) are read as they are.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import struct
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import google_crc32c
from google.protobuf.message import DecodeError

from glow_common.files import write_bytes
from tfrecords_tools import example_pb2
from tfrecords_tools.errors import DamagedFile, FormatError

SPLITS = ("train", "validation")


# -----------------------------------------------------------------------------------------------------------
# Features.

@dataclasses.dataclass(frozen=True)
class Feature:
    """One feature of a record: its name, its value type ('int64' or 'bytes') and its shape per record
    (() is one value, as tf.io.FixedLenFeature takes it)."""

    name: str
    kind: str
    shape: Tuple[int, ...]


N_ATTR = 40
SHAPE = Feature("shape", "int64", (3,))
DATA = Feature("data", "bytes", ())
LABEL = Feature("label", "int64", (1,))
ATTR = Feature("attr", "int64", (N_ATTR,))
REQUIRED = (SHAPE, DATA, LABEL)

# The 40 attributes of CelebA's list_attr_celeba.txt, in the order of its columns and so of `attr`.
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby",
    "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male",
    "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose",
    "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair",
    "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)


# -----------------------------------------------------------------------------------------------------------
# File names.

SHARD_PATTERN = "<split>-rXX-s-SSSS-of-NNNN.tfrecords"
SHARD_RE = re.compile(r"^(?P<split>[a-z]+)-r(?P<res>\d{2})-s-(?P<shard>\d{4})-of-(?P<n>\d{4})\.tfrecords$")


class ShardName(NamedTuple):
    split: str
    log2res: int
    shard: int
    n_shards: int


def shard_name(split: str, log2res: int, shard: int, n_shards: int) -> str:
    return f"{split}-r{log2res:02d}-s-{shard:04d}-of-{n_shards:04d}.tfrecords"


def parse_shard_name(name: str) -> Optional[ShardName]:
    """The parts of a shard file name (a base name), or None for any other name."""
    match = SHARD_RE.match(name)
    if match is None:
        return None
    return ShardName(match["split"], int(match["res"]), int(match["shard"]), int(match["n"]))


def shard_glob(split: str, log2res: int) -> str:
    """A glob for every shard file of one split at one resolution, whatever the shard count."""
    return f"{split}-r{log2res:02d}-s-*-of-*.tfrecords"


def log2_floor(resolution: int) -> int:
    """The rXX of a resolution; 96 gives 6, as int(log2(96)) did in openai/glow lsun.py."""
    return resolution.bit_length() - 1


# -----------------------------------------------------------------------------------------------------------
# Record framing (TensorFlow's tensorflow/core/lib/io/record_writer.cc), with google-crc32c's CRC-32C.

HEADER_BYTES = 12  # uint64 length + masked CRC-32C of it
FOOTER_BYTES = 4   # masked CRC-32C of the data
_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of `data`."""
    return google_crc32c.value(bytes(data))


def masked_crc32c(data: bytes) -> int:
    """The checksum TFRecord framing stores: the CRC rotated right by 15 bits plus a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One record's framing around `data` (what tf.io.TFRecordWriter writes)."""
    length = struct.pack("<Q", len(data))
    return length + _FOOTER.pack(masked_crc32c(length)) + data + _FOOTER.pack(masked_crc32c(data))


def walk_records(path: str, check_data: bool = False) -> Iterator[Tuple[int, int]]:
    """Yield (byte offset, data length) of every record of a TFRecord file, in order.

    Checks each header's checksum and that each record ends inside the file, and with `check_data`
    the data checksums too; raises DamagedFile at the first record that fails. OSError if unreadable.
    """
    for offset, length, _ in _walk(path, check_data):
        yield offset, length


def read_records(path: str) -> Iterator[Tuple[int, bytes]]:
    """Yield (byte offset, data) of every record of a TFRecord file, in order, both checksums checked;
    DamagedFile at the first record that fails, as `walk_records(path, check_data=True)`."""
    for offset, _, data in _walk(path, True):
        yield offset, data


def _walk(path: str, read_data: bool) -> Iterator[Tuple[int, int, Optional[bytes]]]:
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        index = offset = 0
        while offset < size:
            header = f.read(HEADER_BYTES)
            if len(header) < HEADER_BYTES:
                raise DamagedFile(path, index, offset, f"truncated: the file ends {len(header)} bytes into "
                                                       f"the {HEADER_BYTES}-byte record header")
            length, stored = _HEADER.unpack(header)
            if masked_crc32c(header[:8]) != stored:
                raise DamagedFile(path, index, offset, "the length field fails its checksum")
            end = offset + HEADER_BYTES + length + FOOTER_BYTES
            if end > size:
                left = size - offset - HEADER_BYTES
                raise DamagedFile(path, index, offset, f"truncated: the record needs {length + FOOTER_BYTES} "
                                                       f"bytes after its header, the file has {left}")
            data = None
            if read_data:
                data = f.read(length)
                if masked_crc32c(data) != _FOOTER.unpack(f.read(FOOTER_BYTES))[0]:
                    raise DamagedFile(path, index, offset, "the data fails its checksum")
            else:
                f.seek(end)
            yield offset, length, data
            offset, index = end, index + 1


def index_records(path: str) -> List[int]:
    """Byte offsets of every record (framing checked, data not); DamagedFile at the first bad one."""
    return [offset for offset, _ in walk_records(path)]


def read_record(path: str, offset: int, check: bool = True) -> bytes:
    """The data of the record at `offset`; with `check`, DamagedFile unless both checksums hold."""
    with open(path, "rb") as f:
        f.seek(offset)
        header = f.read(HEADER_BYTES)
        if len(header) < HEADER_BYTES:
            raise DamagedFile(path, -1, offset, "truncated record header")
        length, stored = _HEADER.unpack(header)
        if check and masked_crc32c(header[:8]) != stored:
            raise DamagedFile(path, -1, offset, "the length field fails its checksum")
        data = f.read(length)
        footer = f.read(FOOTER_BYTES)
    if len(data) != length or len(footer) != FOOTER_BYTES:
        raise DamagedFile(path, -1, offset, "truncated record")
    if check and masked_crc32c(data) != _FOOTER.unpack(footer)[0]:
        raise DamagedFile(path, -1, offset, "the data fails its checksum")
    return data


# -----------------------------------------------------------------------------------------------------------
# tf.train.Example, with protobuf and the messages of example.proto (TensorFlow's field numbers, our package).

def encode_example(shape: Sequence[int], data: bytes, label: Optional[int],
                   attr: Optional[Sequence[int]] = None) -> bytes:
    """A serialized tf.train.Example of one image: shape, data, and label and attr when given (a
    PGGAN-style record, as tfrecords_tools.celeba reads, has no label). The features are written in the
    order of their names, so a conversion gives the same bytes in every process (protobuf's default
    order of map entries changes from one process to the next)."""
    example = example_pb2.Example()
    feature = example.features.feature
    feature[SHAPE.name].int64_list.value.extend(int(v) for v in shape)
    feature[DATA.name].bytes_list.value.append(bytes(data))
    if label is not None:
        feature[LABEL.name].int64_list.value.append(int(label))
    if attr is not None:
        feature[ATTR.name].int64_list.value.extend(int(v) for v in attr)
    return example.SerializeToString(deterministic=True)


def decode_example(serialized: bytes) -> Dict[str, list]:
    """A serialized tf.train.Example as {name: [bytes, ...] or [int, ...]}; a float feature reads as [].
    FormatError if it is not a protobuf message."""
    try:
        example = example_pb2.Example.FromString(serialized)
    except DecodeError:
        raise FormatError("the bytes do not parse as a protobuf message") from None
    out: Dict[str, list] = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        out[name] = list(getattr(feature, kind).value) if kind in ("bytes_list", "int64_list") else []
    return out


def check_example(features: Dict[str, list], *, side: Optional[int] = None, min_side: Optional[int] = None,
                  image_shape: Optional[Sequence[int]] = None, need_attr: bool = False) -> Optional[str]:
    """What is wrong with a decoded record, or None: missing features, a shape that is not [H, W, C] or
    disagrees with the data's length or with `side` x `side` / a shorter side of `min_side` /
    `image_shape`, a label that is not one value >= 0, an attr that is not 40 values (openai/glow's
    ImageNet exporter wrote an empty one, accepted unless `need_attr`)."""
    missing = [f.name for f in REQUIRED if f.name not in features]
    if missing:
        return f"missing features {missing} (has {sorted(features)}, needs {[f.name for f in REQUIRED]})"
    shape, data, label = (features[f.name] for f in REQUIRED)
    if len(shape) != 3 or min(shape) < 1:
        return f"shape {shape} is not [H, W, C]"
    h, w, c = shape
    if len(data) != 1 or len(data[0]) != h * w * c:
        size = len(data[0]) if len(data) == 1 else "no"
        return f"data holds {size} bytes, shape {shape} needs {h * w * c}"
    if side is not None and (h, w) != (side, side):
        return f"shape {shape} is not {side}x{side}"
    if min_side is not None and min(h, w) < min_side:
        return f"shape {shape} has a side below {min_side}"
    if image_shape is not None and tuple(shape) != tuple(image_shape):
        return f"shape {shape} is not {list(image_shape)}"
    if len(label) != 1 or label[0] < 0:
        return f"label {label} is not one value >= 0"
    attr = features.get(ATTR.name)
    if need_attr and attr is None:
        return f"no `{ATTR.name}` feature"
    if attr is not None and (len(attr) != N_ATTR if need_attr else len(attr) not in (0, N_ATTR)):
        return f"attr holds {len(attr)} values, expected {N_ATTR}"
    return None


# -----------------------------------------------------------------------------------------------------------
# Manifests.

MANIFEST_KIND = "glow-tf shard set"
MANIFEST_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Manifest:
    """What the converter wrote for one shard set: {file name: (records, bytes)}."""

    split: str
    log2res: int
    files: Dict[str, Tuple[int, int]]

    @property
    def n_records(self) -> int:
        return sum(records for records, _ in self.files.values())


def manifest_name(split: str, log2res: int) -> str:
    return f"{split}-r{log2res:02d}.manifest.json"


def write_manifest(folder: str, manifest: Manifest) -> str:
    path = os.path.join(folder, manifest_name(manifest.split, manifest.log2res))
    body = {"kind": MANIFEST_KIND, "version": MANIFEST_VERSION, "split": manifest.split,
            "log2res": manifest.log2res, "n_shards": len(manifest.files),
            "files": {name: {"records": r, "bytes": b} for name, (r, b) in sorted(manifest.files.items())}}
    write_bytes(path, (json.dumps(body, indent=1) + "\n").encode())
    return path


def read_manifest(folder: str, split: str, log2res: int) -> Optional[Manifest]:
    """The manifest of one shard set; None when there is none; FormatError when it cannot be read."""
    path = os.path.join(folder, manifest_name(split, log2res))
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            body = json.load(f)
        if body.get("kind") != MANIFEST_KIND or body.get("version") != MANIFEST_VERSION:
            raise ValueError(f"kind {body.get('kind')!r} version {body.get('version')!r}")
        files = {str(name): (int(v["records"]), int(v["bytes"])) for name, v in body["files"].items()}
        return Manifest(str(body["split"]), int(body["log2res"]), files)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise FormatError(f"{path}: unreadable manifest ({type(err).__name__}: {err}); re-convert the set, or "
                          f"delete the manifest to read the set unchecked") from None


def manifest_mismatch(folder: str, manifest: Manifest, names: Sequence[str]) -> Optional[str]:
    """The first way the files `names` in `folder` differ from the manifest (a file missing, extra or of
    another size: one stat per file), or None."""
    extra = sorted(set(names) - set(manifest.files))
    where = manifest_name(manifest.split, manifest.log2res)
    if extra:
        return f"{os.path.join(folder, extra[0])} is not in {where} (it lists {len(manifest.files)} files)"
    for name, (records, expected) in sorted(manifest.files.items()):
        path = os.path.join(folder, name)
        try:
            actual = os.path.getsize(path)
        except OSError:
            return f"{path} is missing ({where} lists it with {records} records)"
        if actual != expected:
            how = "truncated" if actual < expected else "longer than written"
            return f"{path} holds {actual} bytes, {where} says {expected} ({how})"
    return None
