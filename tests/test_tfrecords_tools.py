"""tfrecords_tools: real images converted and read back bit for bit; determinism, atomicity, bad inputs."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from data_loaders import get_data
from glow_tf.hparams import HParams
from tests import data_fixtures as fx
from tfrecords_tools import celeba, cli, imagenet_oord, images, lsun, verify
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
    status = cli.run(images.main, images.PROG, argv + ["--output", str(tmp_path / "out")] + QUIET)
    err = capsys.readouterr().err.strip()
    assert status == 2 and "\n" not in err and err.startswith("tfrecords_tools.images: error: ")
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


@pytest.mark.parametrize("module", ["celeba", "lsun", "imagenet_oord", "images", "verify"])
def test_every_cli_has_help(module):
    out = subprocess.run([sys.executable, "-m", f"tfrecords_tools.{module}", "--help"], capture_output=True,
                         text=True, timeout=60, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.returncode == 0 and "--input" in out.stdout
