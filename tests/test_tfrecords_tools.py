"""tfrecords_tools: real images converted and read back bit for bit; determinism, atomicity, bad inputs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from data_loaders import get_data
from glow_common.errors import run_cli
from glow_tf.hparams import HParams
from tests import data_fixtures as fx
from tests.runs import ROOT, without_tf_log
from tfrecords_tools import celeba, imagenet_oord, images, lsun, verify
from tfrecords_tools import format as fmt
from tfrecords_tools.errors import ConversionError, DamagedFile

QUIET = ["--workers", "0", "--quiet"]


def read_set(folder, split, log2res):
    """{(image bytes): (shape, label, attr)} of one written shard set, via TensorFlow's reader."""
    out = []
    for path in sorted(tf.io.gfile.glob(os.path.join(folder, split, f"{split}-r{log2res:02d}-s-*.tfrecords"))):
        for record in tf.data.TFRecordDataset(path):
            f = tf.train.Example.FromString(record.numpy()).features.feature
            shape = tuple(f["shape"].int64_list.value)
            image = np.frombuffer(f["data"].bytes_list.value[0], np.uint8).reshape(shape)
            attr = tuple(f["attr"].int64_list.value) if "attr" in f else None
            out.append((image, f["label"].int64_list.value[0], attr))
    return out


def test_images_class_folders_round_trip_with_lods(tmp_path):
    truth = fx.class_folders(str(tmp_path / "in"))
    images.main(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--resolution", "32",
                 "--lods", "0", "--shards", "3"] + QUIET)
    names = os.listdir(tmp_path / "out" / "train")
    assert len([n for n in names if n.endswith(".tfrecords")]) == 3 * 4  # r05, r04, r03, r02
    assert sorted(n for n in names if n.endswith(".json")) == [f"train-r0{r}.manifest.json" for r in (2, 3, 4, 5)]
    written = read_set(str(tmp_path / "out"), "train", 5)
    expect = {pix.tobytes(): label for pix, label in truth.values()}
    assert {img.tobytes(): label for img, label, _ in written} == expect
    by_top = {img.tobytes(): img for img, _, _ in written}
    for log2res in (4, 3, 2):
        lower = {img.tobytes() for img, _, _ in read_set(str(tmp_path / "out"), "train", log2res)}
        expected = set()
        for img in by_top.values():
            for _ in range(5 - log2res):
                img = fx.pool2x(img)
            expected.add(img.tobytes())
        assert lower == expected
    classes = (tmp_path / "out" / "classes.txt").read_text().split("\n")
    assert classes[0].startswith("0 c")


def test_output_is_deterministic_for_a_seed_whatever_the_workers(tmp_path):
    fx.class_folders(str(tmp_path / "in"), count=12)
    args = ["--input", str(tmp_path / "in"), "--resolution", "16", "--shards", "3", "--quiet"]
    images.main(args + ["--output", str(tmp_path / "a"), "--workers", "0"])
    images.main(args + ["--output", str(tmp_path / "b"), "--workers", "2"])
    images.main(args + ["--output", str(tmp_path / "c"), "--workers", "0", "--seed", "1"])
    names = sorted(os.listdir(tmp_path / "a" / "train"))
    same = [(tmp_path / "a" / "train" / n).read_bytes() == (tmp_path / "b" / "train" / n).read_bytes()
            for n in names]
    assert all(same)
    assert any((tmp_path / "a" / "train" / n).read_bytes() != (tmp_path / "c" / "train" / n).read_bytes()
               for n in names)


def test_celeba_folder_with_attributes(tmp_path):
    folder, attr_file, attrs = fx.celeba_folder(str(tmp_path), count=8)
    reports = celeba.main(["--input", folder, "--attr", attr_file, "--output", str(tmp_path / "out"),
                           "--resolution", "32", "--n-validation", "3", "--shards", "train=2,validation=1"] + QUIET)
    assert [(r.split, r.written) for r in reports] == [("train", {32: 5, 16: 5, 8: 5, 4: 5}),
                                                       ("validation", {32: 3, 16: 3, 8: 3, 4: 3})]
    names = sorted(attrs)
    for split, chosen in (("validation", names[:3]), ("train", names[3:])):
        written = {img.tobytes(): attr for img, label, attr in read_set(str(tmp_path / "out"), split, 5)}
        expect = {fx.centre_resize(os.path.join(folder, n), 32).tobytes(): attrs[n] for n in chosen}
        assert written == expect
    # The reader takes it as the celeba problem (label 0; attr present but not parsed, as the original).
    splits = get_data(HParams(problem="celeba", data_dir=str(tmp_path / "out"), image_size=32, n_levels=2,
                              n_batch_train=1, n_test=3))
    x, y = next(iter(splits.test))
    assert x.shape == (1, 32, 32, 3) and int(y[0]) == 0


def test_celeba_from_pggan_record_transposes_chw(tmp_path):
    rng = np.random.default_rng(1)
    pictures = [fx.centre_resize(p, 16) for p, _ in fx.samples("imagenet")[:5]]
    attrs = [tuple(int(v) for v in rng.choice([-1, 1], 40)) for _ in pictures]
    path = str(tmp_path / "celebahq-r04.tfrecords")
    # PGGAN's dataset_tool layout: CHW pixels, no label.
    chw = [img.transpose(2, 0, 1) for img in pictures]
    fx.write_records(path, [fmt.encode_example(c.shape, c.tobytes(), None, a) for c, a in zip(chw, attrs)])
    celeba.main(["--input", path, "--output", str(tmp_path / "out"), "--resolution", "16", "--lods", "1",
                 "--n-validation", "2", "--shards", "1"] + QUIET)
    valid = read_set(str(tmp_path / "out"), "validation", 4)  # the first records, in shuffled order
    assert sorted((img.tobytes(), attr) for img, _, attr in valid) == sorted((p.tobytes(), a) for p, a in
                                                                             zip(pictures[:2], attrs[:2]))
    assert len(read_set(str(tmp_path / "out"), "train", 4)) == 3


@pytest.mark.parametrize("case, message", [
    ("count", "line 1 says 9 images, the file lists 8"),
    ("names", "line 2 must name 40 attributes, found 39"),
    ("value", "line 5 must be a name and 40 values of 1 or -1"),
    ("missing", "no attributes for 1 images matched by file name, e.g. 000008.jpg"),
    ("absent", "attribute file"),
])
def test_celeba_wrong_attribute_file(tmp_path, case, message):
    folder, attr_file, attrs = fx.celeba_folder(str(tmp_path), count=8)
    if case == "count":
        fx.write_attr_file(attr_file, attrs, count=9)
    elif case == "names":
        fx.write_attr_file(attr_file, attrs, n_names=39)
    elif case == "value":
        bad = dict(attrs)
        bad["000003.jpg"] = (0,) * 40
        fx.write_attr_file(attr_file, bad)
    elif case == "missing":
        fx.write_attr_file(attr_file, {k: v for k, v in attrs.items() if k != "000008.jpg"})
    else:
        attr_file = str(tmp_path / "nope.txt")
    with pytest.raises(ConversionError, match=message):
        celeba.main(["--input", folder, "--attr", attr_file, "--output", str(tmp_path / "out"),
                     "--n-validation", "3"] + QUIET)
    assert not os.path.exists(tmp_path / "out")


def test_lsun_lmdb_crop_and_realnvp_modes_read_back(tmp_path):
    jpegs = [p for p, _ in fx.samples("imagenet")[:6]]
    root = tmp_path / "lsun"
    root.mkdir()
    fx.lsun_lmdb(str(root / "tower_train_lmdb"), jpegs[:4])
    fx.lsun_lmdb(str(root / "tower_val_lmdb"), jpegs[4:])
    lsun.main(["--input", str(root), "--category", "tower", "--resolution", "32",
               "--output", str(tmp_path / "crop")] + QUIET)
    written = {img.tobytes() for img, _, _ in read_set(str(tmp_path / "crop" / "tower"), "train", 5)}
    assert written == {fx.centre_resize(p, 32).tobytes() for p in jpegs[:4]}
    # RealNVP mode: shorter side 96, uncropped, stored as r06; read with lsun_realnvp's 64x64 crops.
    lsun.main(["--input", str(root), "--category", "tower", "--realnvp", "--output", str(tmp_path / "rnvp")] + QUIET)
    stored = read_set(str(tmp_path / "rnvp" / "tower"), "validation", 6)
    for img, _, _ in stored:
        assert min(img.shape[:2]) == 96
    splits = get_data(HParams(problem="lsun_realnvp", data_dir=str(tmp_path / "rnvp"), category="tower",
                              n_batch_train=64, n_levels=3), rank=0, size=1)
    x, _ = next(iter(splits.train))
    assert x.shape == (16, 64, 64, 3)
    report = verify.verify(str(tmp_path / "rnvp"), realnvp=True)
    assert all(not r.errors for r in report) and sum(r.n_records for r in report) == 6


def test_lsun_image_folder_and_single_lmdb_split(tmp_path):
    root = tmp_path / "exported"
    for split, chosen in (("church_outdoor_train", slice(0, 3)), ("church_outdoor_val", slice(3, 5))):
        (root / split).mkdir(parents=True)
        for p, _ in fx.samples("imagenet")[chosen]:
            os.symlink(p, root / split / os.path.basename(p).replace(".jpg", ".webp.jpg"))
    reports = lsun.main(["--input", str(root), "--category", "church_outdoor", "--resolution", "16",
                         "--output", str(tmp_path / "out")] + QUIET)
    assert {r.split: r.written[16] for r in reports} == {"train": 3, "validation": 2}
    fx.lsun_lmdb(str(tmp_path / "bedroom_val_lmdb"), [p for p, _ in fx.samples("imagenet")[:2]])
    reports = lsun.main(["--input", str(tmp_path / "bedroom_val_lmdb"), "--resolution", "16",
                         "--output", str(tmp_path / "single")] + QUIET)
    assert [r.split for r in reports] == ["validation"]


def oord_folders(root, bad=()):
    for split, chosen in (("train_32x32", fx.samples("cifar10")[:12]), ("valid_32x32", fx.samples("cifar10")[12:])):
        (root / split).mkdir(parents=True)
        for p, _ in chosen:
            os.symlink(p, root / split / os.path.basename(p))
    for name, data in bad:
        (root / "train_32x32" / name).write_bytes(data)


def test_imagenet_oord_round_trip_with_labels(tmp_path):
    oord_folders(tmp_path / "in")
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"{os.path.basename(p)} {label}\n" for p, label in fx.samples("cifar10")))
    imagenet_oord.main(["--input", str(tmp_path / "in"), "--labels", str(labels), "--output", str(tmp_path / "out"),
                        "--shards", "train=4,validation=2"] + QUIET)
    for split, chosen in (("train", fx.samples("cifar10")[:12]), ("validation", fx.samples("cifar10")[12:])):
        written = sorted((img.tobytes(), label) for img, label, _ in read_set(str(tmp_path / "out"), split, 5))
        assert written == sorted((fx.pixels(p).tobytes(), label) for p, label in chosen)
    reports = verify.verify(str(tmp_path / "out"))
    assert [(r.split, r.n_records, r.n_shards, r.errors) for r in reports] == [("train", 12, 4, []),
                                                                              ("validation", 8, 2, [])]


def test_bad_images_are_skipped_and_counted_or_stop_with_strict(tmp_path):
    with open(fx.samples("cifar10")[0][0], "rb") as f:
        truncated = f.read()[:200]
    small = open(fx.samples("mnist")[0][0], "rb").read()  # 28x28: the wrong size for 32x32 folders
    oord_folders(tmp_path / "in", bad=[("cut.png", truncated), ("small.png", small), ("text.png", b"hello")])
    reports = imagenet_oord.main(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                                  "--shards", "2"] + QUIET)
    train = reports[0]
    assert train.written == {32: 12} and len(train.skipped) == 3
    assert any("small.png" in s and "expected 32x32" in s for s in train.skipped)
    with pytest.raises(ConversionError, match=r"unreadable image .*(cut|small|text)\.png"):
        imagenet_oord.main(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "strict"),
                            "--shards", "2", "--strict"] + QUIET)
    # Nothing half-done: no shard and no temporary file of the failed run.
    assert os.listdir(tmp_path / "strict" / "train") == []


def test_existing_shards_are_refused_unless_overwrite(tmp_path):
    fx.class_folders(str(tmp_path / "in"), count=6)
    args = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--resolution", "8"] + QUIET
    images.main(args + ["--shards", "3"])
    with pytest.raises(ConversionError, match=r"train-r03-s-0000-of-0003.tfrecords already exists.*--overwrite"):
        images.main(args)
    images.main(args + ["--shards", "2", "--overwrite"])
    assert sorted(os.listdir(tmp_path / "out" / "train")) == ["train-r03-s-0000-of-0002.tfrecords",
                                                               "train-r03-s-0001-of-0002.tfrecords",
                                                               "train-r03.manifest.json"]
    manifest = fmt.read_manifest(str(tmp_path / "out" / "train"), "train", 3)
    assert sorted(manifest.files) == ["train-r03-s-0000-of-0002.tfrecords", "train-r03-s-0001-of-0002.tfrecords"]


@pytest.mark.parametrize("argv, message", [
    (["--input", "MISSING", "--resolution", "32"], "input folder .*MISSING does not exist"),
    (["--input", "EMPTY", "--resolution", "32"], "input folder .*EMPTY holds no images"),
    (["--input", "EMPTY"], "--resolution is required"),
    (["--input", "IN", "--resolution", "24"], "--resolution 24 is not a power of two"),
    (["--input", "IN", "--resolution", "32", "--lods", "9"], "--lods 9: 32x32 has at most 4 levels"),
    (["--input", "IN", "--resolution", "32", "--shards", "x"], "--shards 'x': expected N"),
])
def test_images_bad_arguments_are_one_line_errors(tmp_path, capsys, argv, message):
    (tmp_path / "EMPTY").mkdir()
    fx.class_folders(str(tmp_path / "IN"), count=2)
    argv = [str(tmp_path / a) if a in ("MISSING", "EMPTY", "IN") else a for a in argv]
    status = run_cli(images.PROG, images.main, argv + ["--output", str(tmp_path / "out")] + QUIET)
    err = capsys.readouterr().err.strip()
    assert status == 2 and "\n" not in err and err.startswith("python -m tfrecords_tools.images: error: ")
    assert re.search(message, err), err


def test_verify_reports_corrupt_record_and_missing_shard(tmp_path):
    fx.class_folders(str(tmp_path / "in"), count=10)
    images.main(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--resolution", "32",
                 "--shards", "3"] + QUIET)
    folder = tmp_path / "out" / "train"
    target = folder / "train-r05-s-0001-of-0003.tfrecords"
    data = bytearray(target.read_bytes())
    record = len(data) // 3 + 1000  # inside the second record (3-4 records of ~3 kB)
    data[record] ^= 0xFF
    target.write_bytes(bytes(data))
    os.remove(folder / "train-r05-s-0002-of-0003.tfrecords")
    reports = verify.verify(str(tmp_path / "out"))
    errors = reports[0].errors
    assert any("missing shard train-r05-s-0002-of-0003.tfrecords" in e for e in errors)
    assert any(e.startswith(str(target)) and re.search(r"record 1 at byte \d+: the data fails its checksum", e)
               for e in errors), errors
    assert verify.main(["--input", str(tmp_path / "out")]) == 1




def run_module(*argv, timeout=120):
    """`python -m <argv>` from the repository, as a user runs it; stderr without TensorFlow's C++ log lines
    (which TF_CPP_MIN_LOG_LEVEL does not silence before absl is initialised)."""
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, timeout=timeout,
                            cwd=ROOT, env=env)
    result.stderr = "".join(line + "\n" for line in without_tf_log(result.stderr))
    return result


@pytest.mark.parametrize("module", ["celeba", "lsun", "imagenet_oord", "images", "verify"])
def test_every_cli_has_help_that_stands_alone(module):
    out = run_module(f"tfrecords_tools.{module}", "--help")
    assert out.returncode == 0 and "--input" in out.stdout
    assert "§" not in out.stdout and "issue 1" not in out.stdout
    assert not re.search(r"--[a-z]+-[a-z]", out.stdout), "kebab-case aliases are hidden"


# -----------------------------------------------------------------------------------------------------------
# The format module against TensorFlow's own encoder, decoder and writer.

def test_encode_example_parses_in_tensorflow_and_decode_reads_what_tensorflow_wrote():
    img = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    attr = [-1] * 20 + [1] * 20
    parsed = tf.train.Example.FromString(fmt.encode_example(img.shape, img.tobytes(), 2 ** 40, attr)).features.feature
    assert list(parsed["shape"].int64_list.value) == [2, 3, 4]
    assert parsed["data"].bytes_list.value == [img.tobytes()]
    assert list(parsed["label"].int64_list.value) == [2 ** 40] and list(parsed["attr"].int64_list.value) == attr
    pggan = tf.train.Example.FromString(fmt.encode_example((3, 2, 2), b"x" * 12, None)).features.feature
    assert sorted(pggan.keys()) == ["data", "shape"]

    def int64s(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    example = tf.train.Example(features=tf.train.Features(feature={
        "shape": int64s([2, 3, 4]), "label": int64s([7]), "attr": int64s(attr),
        "data": tf.train.Feature(bytes_list=tf.train.BytesList(value=[img.tobytes()]))}))
    assert fmt.decode_example(example.SerializeToString()) == {"shape": [2, 3, 4], "label": [7], "attr": attr,
                                                              "data": [img.tobytes()]}
    with pytest.raises(fmt.FormatError):
        fmt.decode_example(b"\x0a\xff\x01")  # a field longer than the message


def test_framing_is_byte_for_byte_tensorflows_and_every_record_is_found(tmp_path):
    payloads = [b"", b"a", bytes(range(256)) * 40, b"last"]
    path = str(tmp_path / "tf.tfrecords")
    with tf.io.TFRecordWriter(path) as writer:
        for p in payloads:
            writer.write(p)
    with open(path, "rb") as f:
        written = f.read()
    assert b"".join(fmt.frame(p) for p in payloads) == written
    assert fmt.crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    frames = list(fmt.walk_records(path, check_data=True))
    assert [length for _, length in frames] == [len(p) for p in payloads]
    assert [fmt.read_record(path, offset) for offset, _ in frames] == payloads


# -----------------------------------------------------------------------------------------------------------
# The codec's libraries (protobuf with example.proto, google-crc32c) against TensorFlow and a transcription.

def _crc32c_bitwise(data):
    """CRC-32C transcribed from its definition (Castagnoli polynomial 0x1EDC6F41, reflected 0x82F63B78,
    init and final xor 0xFFFFFFFF), one bit at a time; no table, no library."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def test_crc_and_its_mask_are_crc32c_as_tfrecord_framing_stores_it():
    rng = np.random.default_rng(0)
    for size in (0, 1, 3, 8, 9, 63, 64, 65, 1000, 4099):
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        crc = _crc32c_bitwise(data)
        assert fmt.crc32c(data) == crc, size
        rotated = ((crc >> 15) | (crc << 17)) & 0xFFFFFFFF  # tensorflow/core/lib/hash/crc32c.h, Mask
        assert fmt.masked_crc32c(data) == (rotated + 0xA282EAD8) & 0xFFFFFFFF, size
    assert _crc32c_bitwise(b"123456789") == 0xE3069283  # the transcription gives the published check value


def _tf_example(shape, data, label=None, attr=None):
    def int64s(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    feature = {"shape": int64s(shape), "data": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))}
    if label is not None:
        feature["label"] = int64s([label])
    if attr is not None:
        feature["attr"] = int64s(attr)
    return tf.train.Example(features=tf.train.Features(feature=feature))


@pytest.mark.parametrize("shape, label, attr", [
    ((2, 3, 4), 7, None), ((1, 1, 3), 0, [-1] * 20 + [1] * 20), ((3, 2, 2), None, None),
    ((256, 256, 3), 2 ** 40, [1] * 40), ((5, 1, 1), -3, []),
])
def test_encoded_bytes_are_tensorflows_for_the_same_features(shape, label, attr):
    """The same bytes as TensorFlow's own serializer. Its default order of the feature map changes from one
    process to the next (protobuf's map), so the byte comparison is with its deterministic order (sorted
    keys), which ours always uses; the message is equal whatever the order."""
    data = np.random.default_rng(1).integers(0, 256, int(np.prod(shape)), dtype=np.uint8).tobytes()
    ours = fmt.encode_example(shape, data, label, attr)
    theirs = _tf_example(shape, data, label, attr)
    assert ours == theirs.SerializeToString(deterministic=True)
    assert tf.train.Example.FromString(ours) == theirs
    assert fmt.decode_example(theirs.SerializeToString()) == fmt.decode_example(ours)


def test_our_messages_carry_tensorflows_field_numbers_types_and_packing():
    """example.proto against TensorFlow's compiled tensorflow/core/example/{example,feature}.proto, field by
    field (name, number, type, label, packing, oneof, message type), in another package."""
    from tfrecords_tools import example_pb2

    def fields(descriptor):
        return [(f.name, f.number, f.type, f.is_repeated, f.is_packed,
                 f.containing_oneof.name if f.containing_oneof else None,
                 f.message_type.name if f.message_type else None) for f in descriptor.fields]

    for name in ("Example", "Features", "Feature", "BytesList", "FloatList", "Int64List"):
        ours, theirs = getattr(example_pb2, name).DESCRIPTOR, getattr(tf.train, name).DESCRIPTOR
        assert fields(ours) == fields(theirs), name
        assert (ours.full_name, theirs.full_name) == (f"glow_tfrecords.{name}", f"tensorflow.{name}")
    entry = example_pb2.Features.DESCRIPTOR.fields_by_name["feature"].message_type
    assert entry.GetOptions().map_entry and fields(entry) == fields(
        tf.train.Features.DESCRIPTOR.fields_by_name["feature"].message_type)


@pytest.mark.parametrize("first", ["tensorflow", "tfrecords_tools.format"])
def test_tensorflow_and_our_messages_load_in_one_process_in_either_order(first):
    """Both register their messages in protobuf's default descriptor pool; a package of our own keeps
    TensorFlow's tensorflow.Example and ours apart, whichever is imported first."""
    second = "tfrecords_tools.format" if first == "tensorflow" else "tensorflow"
    probe = (f"import {first}, {second}; import tensorflow as tf; from tfrecords_tools import format as fmt; "
             "from google.protobuf import descriptor_pool as p; "
             "b = fmt.encode_example((1, 1, 1), b'x', 2); "
             "print(tf.train.Example.FromString(b).features.feature['label'].int64_list.value[0], "
             "p.Default().FindMessageTypeByName('glow_tfrecords.Example').full_name, "
             "p.Default().FindMessageTypeByName('tensorflow.Example').full_name)")
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT,
                            env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "glow_tfrecords.Example", "tensorflow.Example"]


def test_converted_shards_are_what_tensorflows_writer_writes_and_parse_in_tf_data(tmp_path):
    """A converter's files: byte for byte what tf.io.TFRecordWriter writes for the same records, and each
    record parses with tf.data.TFRecordDataset (both checksums checked) and tf.io.parse_single_example."""
    fx.class_folders(str(tmp_path / "in"), count=6)
    images.main(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--resolution", "8",
                 "--shards", "2"] + QUIET)
    spec = {"shape": tf.io.FixedLenFeature([3], tf.int64), "data": tf.io.FixedLenFeature([], tf.string),
            "label": tf.io.FixedLenFeature([1], tf.int64)}
    files = sorted((tmp_path / "out" / "train").glob("*.tfrecords"))
    parsed = 0
    for path in files:
        records = [data for _, data in fmt.read_records(str(path))]
        again = str(tmp_path / "again.tfrecords")
        with tf.io.TFRecordWriter(again) as writer:
            for record in records:
                writer.write(record)
        assert path.read_bytes() == open(again, "rb").read()
        for record, ours in zip(tf.data.TFRecordDataset(str(path)), records):
            example = tf.io.parse_single_example(record, spec)
            assert list(example["shape"].numpy()) == [8, 8, 3]
            assert example["data"].numpy() == fmt.decode_example(ours)["data"][0]
            assert example["label"].numpy()[0] == fmt.decode_example(ours)["label"][0]
            parsed += 1
    assert parsed == 6 and len(files) == 2


def test_a_conversion_and_its_verification_run_without_tensorflow(tmp_path):
    """protobuf and google-crc32c write and check the records, so neither command loads TensorFlow."""
    fx.class_folders(str(tmp_path / "in"), count=4)
    probe = ("import sys; from tfrecords_tools import images, verify; "
             f"images.main(['--input', {str(tmp_path / 'in')!r}, '--output', {str(tmp_path / 'out')!r}, "
             "'--resolution', '8', '--workers', '0', '--quiet']); "
             f"status = verify.main([{str(tmp_path / 'out')!r}]); print(status, 'tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["0", "False"], result.stdout


def _damage(path, how, frames):
    """Damage the third record of a file: cut inside its header or its data, or flip a length or data byte."""
    offset, length = frames[2]
    data = bytearray(open(path, "rb").read())
    if how == "cut in header":
        data = data[:offset + 5]
    elif how == "cut in data":
        data = data[:offset + fmt.HEADER_BYTES + length // 2]
    else:
        data[offset + 1 if how == "flipped length" else offset + fmt.HEADER_BYTES + 3] ^= 0x10
    with open(path, "wb") as f:
        f.write(bytes(data))
    return offset


@pytest.mark.parametrize("how, reason", [
    ("cut in header", "truncated: the file ends 5 bytes into the 12-byte record header"),
    ("cut in data", "truncated: the record needs"),
    ("flipped length", "the length field fails its checksum"),
    ("flipped data", "the data fails its checksum"),
])
def test_walk_records_finds_the_damaged_record(tmp_path, how, reason):
    path = str(tmp_path / "x.tfrecords")
    fx.write_records(path, [b"record %d" % i * 50 for i in range(5)])
    offset = _damage(path, how, list(fmt.walk_records(path)))
    with pytest.raises(DamagedFile, match=re.escape(reason)) as caught:
        list(fmt.walk_records(path, check_data=True))
    assert (caught.value.index, caught.value.offset, caught.value.path) == (2, offset, path)


# -----------------------------------------------------------------------------------------------------------
# verify: every record, its framing and the manifest.

def converted(tmp_path, count=10, shards=3, resolution="16", split="train"):
    fx.class_folders(str(tmp_path / "in"), count=count)
    images.main(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--resolution", resolution,
                 "--shards", str(shards), "--split", split] + QUIET)
    return tmp_path / "out"


@pytest.mark.parametrize("how", ["cut in header", "cut in data"])
def test_verify_catches_a_shard_truncated_mid_record(tmp_path, how):
    out = converted(tmp_path)
    target = out / "train" / "train-r04-s-0001-of-0003.tfrecords"
    offset = _damage(str(target), how, list(fmt.walk_records(str(target))))
    if how == "cut in header":  # TensorFlow's reader alone takes this for a clean end of file
        assert len(list(tf.data.TFRecordDataset(str(target)))) == 2
    os.remove(out / "train" / "train-r04.manifest.json")  # as for the original's published sets
    errors = verify.verify(str(out))[0].errors
    assert errors == [f"{target}: record 2 at byte {offset}: truncated: " + errors[0].split("truncated: ")[1]]
    assert errors[0].endswith("the rest of the file is unreadable")
    assert verify.main([str(out)]) == 1


def test_verify_takes_the_folder_as_the_readme_writes_it(tmp_path):
    out = converted(tmp_path)
    ok = run_module("tfrecords_tools.verify", str(out))
    assert ok.returncode == 0 and ok.stdout.strip().endswith("manifest: OK"), ok.stdout + ok.stderr
    assert run_module("tfrecords_tools.verify", "--input", str(out)).returncode == 0
    none = run_module("tfrecords_tools.verify")
    assert none.returncode == 2 and none.stderr.strip() == "python -m tfrecords_tools.verify: error: give the folder to " \
                                                           "check: verify FOLDER"
    missing = run_module("tfrecords_tools.verify", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and missing.stderr.strip() == f"python -m tfrecords_tools.verify: error: " \
                                                                 f"{tmp_path / 'nowhere'} is not a folder"


def test_the_manifest_holds_each_shards_records_and_bytes_and_verify_checks_it(tmp_path):
    out = converted(tmp_path, count=10, shards=3)
    folder = out / "train"
    manifest = fmt.read_manifest(str(folder), "train", 4)
    files = sorted(folder.glob("*.tfrecords"))
    assert manifest.files == {f.name: (sum(1 for _ in tf.data.TFRecordDataset(str(f))), f.stat().st_size)
                              for f in files}
    assert manifest.n_records == 10
    # Cut one file at a record boundary: every remaining record is intact, only the manifest knows.
    target = files[1]
    offset = list(fmt.walk_records(str(target)))[-1][0]
    target.write_bytes(target.read_bytes()[:offset])
    errors = verify.verify(str(out))[0].errors
    assert errors[0] == (f"{target} holds {offset} bytes, train-r04.manifest.json says "
                         f"{manifest.files[target.name][1]} (truncated)")
    assert re.fullmatch(rf"{target}: \d+ records, train-r04.manifest.json says \d+", errors[1])


# -----------------------------------------------------------------------------------------------------------
# Converters: what users got wrong, each one line.

def test_every_image_unreadable_is_an_error_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    for i in range(3):
        (tmp_path / "in" / f"broken{i}.png").write_bytes(b"not a png")
    status = run_cli(images.PROG, images.main, ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                                                "--resolution", "8"] + QUIET)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert err[-1].startswith("python -m tfrecords_tools.images: error: none of the 3 input images of split 'train' could "
                              "be read, e.g. ") and "broken" in err[-1]
    assert os.listdir(tmp_path / "out" / "train") == []  # no shard, no manifest, no temporary file


def test_class_labels_are_the_same_in_separately_converted_splits(tmp_path):
    chosen = fx.samples("cifar10")
    for split, labels in (("train", (1, 3, 5)), ("validation", (3, 5))):
        for path, label in chosen:
            if label in labels:
                folder = tmp_path / split / f"class{label}"
                folder.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, folder)
        images.main(["--input", str(tmp_path / split), "--output", str(tmp_path / "out"), "--resolution", "32",
                     "--split", split] + QUIET)
    classes = (tmp_path / "out" / "classes.txt").read_text()
    assert classes == "0 class1\n1 class3\n2 class5\n"
    # Each image keeps its class's label from the list, also in the split that lacks class1.
    truth = {fx.pixels(p).tobytes(): [1, 3, 5].index(label) for p, label in chosen if label in (1, 3, 5)}
    for split in ("train", "validation"):
        for image, label, _ in read_set(str(tmp_path / "out"), split, 5):
            assert truth[image.tobytes()] == label
    # A class the list does not know is refused, and the list stays as it was.
    extra = tmp_path / "test" / "class7"
    extra.mkdir(parents=True)
    shutil.copy(chosen[0][0], extra)
    with pytest.raises(ConversionError, match=r"has class folder 'class7', which .*classes.txt does not list"):
        images.main(["--input", str(tmp_path / "test"), "--output", str(tmp_path / "out"), "--resolution", "32",
                     "--split", "validation", "--overwrite"] + QUIET)
    assert (tmp_path / "out" / "classes.txt").read_text() == classes


def test_output_that_is_a_file_is_one_line_error(tmp_path):
    fx.class_folders(str(tmp_path / "in"), count=2)
    (tmp_path / "out").write_text("my notes")
    result = run_module("tfrecords_tools.images", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                        "--resolution", "8", "--workers", "0", "--quiet")
    assert result.returncode == 2
    assert result.stderr.strip() == (f"python -m tfrecords_tools.images: error: --output {tmp_path / 'out'} is a file; give "
                                     f"a folder (it is created if missing)")
    assert (tmp_path / "out").read_text() == "my notes"


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (needs root, as on the project's machines; skipped elsewhere)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_disk_full_is_one_line_and_loses_nothing(tmp_path, small_disk):
    for name, count in (("small", 2), ("big", 8)):
        (tmp_path / name).mkdir()
        for path, _ in fx.samples("imagenet")[:count]:
            shutil.copy(path, tmp_path / name)
    out = small_disk / "tfr"
    images.main(["--input", str(tmp_path / "small"), "--output", str(out), "--resolution", "64"] + QUIET)
    before = {p.name: p.read_bytes() for p in (out / "train").iterdir()}
    # 8 photos at 256x256 and every lower level (about 2 MiB) do not fit in what is left.
    result = run_module("tfrecords_tools.images", "--input", str(tmp_path / "big"), "--output", str(out),
                        "--resolution", "256", "--lods", "0", "--overwrite", "--workers", "0", "--quiet")
    assert result.returncode == 74  # sysexits.h EX_IOERR, as for every failed write of every command
    assert re.fullmatch(rf"python -m tfrecords_tools.images: error: cannot write "
                        rf"{out}/train/train-r0\d-s-0000-of-0001.tfrecords: no space left on device \(\d+\.\d KiB "
                        rf"free there\); free some space and run the same command again \(what was there before "
                        rf"is intact\)", result.stderr.strip()), result.stderr
    assert {p.name: p.read_bytes() for p in (out / "train").iterdir()} == before  # no temporary file either


def test_flags_are_snake_case_and_the_old_kebab_case_still_works(tmp_path):
    folder, attr_file, _ = fx.celeba_folder(str(tmp_path), count=5)
    common = ["--input", folder, "--attr", attr_file, "--resolution", "8", "--lods", "1", "--shards", "1"] + QUIET
    snake = celeba.main(common + ["--output", str(tmp_path / "a"), "--n_validation", "2", "--n_train", "2"])
    kebab = celeba.main(common + ["--output", str(tmp_path / "b"), "--n-validation", "2", "--n-train", "2"])
    assert [(r.split, r.written) for r in snake] == [(r.split, r.written) for r in kebab] == \
        [("train", {8: 2}), ("validation", {8: 2})]
    bad = run_module("tfrecords_tools.celeba", "--input", folder, "--output", str(tmp_path / "c"), "--n_valid", "x")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "python -m tfrecords_tools.celeba: error: argument --n_validation: invalid int value: 'x'"
