"""glow_tf.tools.score: per-image bits/dim that average to evaluate's, PNG sizes, AUROC, and its errors."""

import csv
import dataclasses
import io
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from data_loaders import get_data
from glow_common.errors import run_cli
from glow_tf.tools import evaluate, score
from tests import data_fixtures as fx
from tests.runs import ROOT
from tests.tool_fixtures import TINY_HPS, make_checkpoint

# 8x8 RGB models: Fashion-MNIST's test split (per-GPU batch 4 at anchor 8, so a validation batch of 2), and
# any TFRecords or pictures at 8x8 (the `tfrecords` problem, unlabelled).
FASHION_HPS = dataclasses.replace(TINY_HPS, problem="fashion_mnist", anchor_size=8, n_test=40)
FOLDER_HPS = dataclasses.replace(TINY_HPS, problem="tfrecords", anchor_size=8)


def one_line_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{score.PROG}: error: "), err
    return err[0]


def png_bits_by_hand(image):
    """8 * bytes of the PNG that Pillow writes at zlib level 9, per subpixel, written here in the test."""
    buffer = io.BytesIO()
    Image.fromarray(image if image.shape[2] == 3 else image[..., 0]).save(buffer, format="PNG", compress_level=9)
    return 8 * len(buffer.getvalue()) / image.size


def brute_force_auroc(inside, outside):
    pairs = [(o > i) + 0.5 * (o == i) for i, o in itertools.product(inside, outside)]
    return sum(pairs) / len(pairs)


@pytest.fixture(scope="module")
def folder_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder_model")
    make_checkpoint(root / "run", hps=FOLDER_HPS)
    return str(root / "run")


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """Two 8x8 RGB sets: smooth ramps as TFRecords (the reference) and noise as PNG pictures."""
    root = tmp_path_factory.mktemp("sets")
    rng = np.random.default_rng(0)
    ramp = np.arange(8, dtype=np.uint8)[None, :, None] * 30 + np.zeros([8, 8, 3], np.uint8)
    smooth = np.stack([np.roll(ramp, k, axis=1) + k for k in range(6)]).astype(np.uint8)
    noise = rng.integers(0, 256, size=[5, 8, 8, 3], dtype=np.uint8)
    fx.write_records(str(root / "tfr" / "smooth.tfrecords"), [(x, 0) for x in smooth])
    (root / "pictures").mkdir()
    for i, x in enumerate(noise):
        Image.fromarray(x).save(root / "pictures" / f"noise_{i}.png")
    return {"tfr": str(root / "tfr"), "pictures": str(root / "pictures"), "smooth": smooth, "noise": noise}


@fx.needs_fashion
def test_mean_of_per_image_bits_is_evaluates_on_the_same_images_and_draws(tmp_path):
    model = make_checkpoint(tmp_path / "run", hps=FASHION_HPS)
    splits = get_data(FASHION_HPS)
    tf.keras.utils.set_random_seed(5)
    expected = evaluate.evaluate(model, splits.test, splits.test_its, draws=3, reconstruct=False)
    tf.keras.utils.set_random_seed(5)
    columns = score.score_set(model, score.open_source("fashion_mnist", FASHION_HPS, max_images=40), draws=3)
    bits = columns["bits_x"]
    assert len(bits) == 40 and list(columns["index"]) == list(range(40))
    assert bits.mean() == pytest.approx(expected["bits_x"], rel=1e-6)
    # evaluate's test-set error is the spread of these very per-image values.
    assert bits.std(ddof=1) / np.sqrt(40) == pytest.approx(expected["se_images"], rel=1e-4)
    assert bits.std() > 0.01  # images differ, so the values are per image, not a repeated mean
    labels = fx.read_idx_labels(os.path.join(fx.FASHION_MNIST_DIR, "t10k-labels-idx1-ubyte.gz"))[:40]
    assert list(columns["label"]) == list(labels)


def test_auroc_matches_a_brute_force_pair_count():
    rng = np.random.default_rng(1)
    for n, m in ((1, 1), (3, 5), (7, 4)):
        inside, outside = rng.integers(0, 4, n).astype(float), rng.integers(0, 5, m).astype(float)  # many ties
        assert score.auroc(inside, outside) == pytest.approx(brute_force_auroc(inside, outside))
    assert score.auroc([0.0, 1.0], [2.0, 3.0]) == 1.0 and score.auroc([2.0, 3.0], [0.0, 1.0]) == 0.0


def test_png_bits_are_the_size_of_the_png(sets):
    for image in (sets["smooth"][0], sets["noise"][0], sets["smooth"][0][..., :1]):
        assert score.png_bits(image) == pytest.approx(png_bits_by_hand(image))
    # Noise does not compress: more than 8 bits per subpixel with PNG's headers; a ramp compresses well.
    assert score.png_bits(sets["noise"][0]) > 8 > 4 > score.png_bits(sets["smooth"][0])


def test_cli_scores_tfrecords_and_pictures_with_auroc_rows_and_histogram(folder_model, sets, tmp_path, capsys):
    rows, histogram = tmp_path / "rows.csv", tmp_path / "hist.png"
    argv = [folder_model, "--reference", sets["tfr"], "--data", sets["pictures"], "--complexity", "png",
            "--draws", "2", "--output", str(rows), "--histogram", str(histogram)]
    assert run_cli(score.PROG, score.main, argv) == 0
    out = capsys.readouterr().out.splitlines()
    with open(rows) as f:
        table = list(csv.DictReader(f))
    assert [r["set"] for r in table] == [sets["tfr"]] * 6 + [sets["pictures"]] * 5
    assert [int(r["index"]) for r in table] == list(range(6)) + list(range(5))
    assert [r["label"] for r in table] == ["0"] * 6 + [""] * 5  # TFRecords carry a label, pictures none
    images = list(sets["smooth"]) + list(sets["noise"])
    for row, image in zip(table, images):
        assert float(row["png_bits"]) == pytest.approx(png_bits_by_hand(image))
        assert float(row["score"]) == pytest.approx(float(row["bits_x"]) - float(row["png_bits"]))
    by_set = {name: {key: np.array([float(r[key]) for r in table if r["set"] == name])
                     for key in ("bits_x", "png_bits", "score")} for name in (sets["tfr"], sets["pictures"])}
    line = next(line for line in out if line.startswith("AUROC"))
    for key in ("bits_x", "png_bits", "score"):
        expected = brute_force_auroc(by_set[sets["tfr"]][key], by_set[sets["pictures"]][key])
        assert f"{key} {expected:.4f}" in line
    summary = next(line for line in out if line.startswith(sets["pictures"] + ":"))
    assert f"{by_set[sets['pictures']]['bits_x'].mean():.4f} bits/dim" in summary
    with Image.open(histogram) as img:
        assert img.format == "PNG"


def test_npz_rows_and_max_images(folder_model, sets, tmp_path):
    rows = tmp_path / "rows.npz"
    argv = [folder_model, "--data", sets["tfr"], "--max_images", "4", "--batch", "3", "--output", str(rows)]
    assert run_cli(score.PROG, score.main, argv) == 0
    with np.load(rows) as f:
        assert list(f["index"]) == [0, 1, 2, 3] and "png_bits" not in f.files
        assert list(f["set"]) == [sets["tfr"]] * 4 and np.all(np.isfinite(f["bits_x"]))


@pytest.mark.parametrize("extra, fragment", [
    (["--data", "/nonexistent/set"], "--data /nonexistent/set: no such file, folder or pattern"),
    (["--data", "no_such_problem:/x"], "not a problem"),
    (["--data", "TFR", "--output", "rows.txt"], "expected a .csv or .npz"),
    (["--data", "TFR", "--histogram", "hist.jpg"], "expected a .png"),
    (["--data", "TFR", "--draws", "0"], "--draws 0 must be at least 1"),
    (["--data", "TFR", "--reference", "TFR"], "is given twice"),
    (["--data", "EMPTY"], "no validation/ shards, no *.tfrecords and no pictures"),
    (["--data", "mnist:EMPTY"], "no mnist data found"),
])
def test_bad_inputs_give_one_line(folder_model, sets, tmp_path, capsys, extra, fragment):
    (tmp_path / "empty").mkdir()
    argv = [folder_model] + [a.replace("TFR", sets["tfr"]).replace("EMPTY", str(tmp_path / "empty")) for a in extra]
    assert run_cli(score.PROG, score.main, argv) == 2
    assert fragment in one_line_error(capsys)


def test_a_picture_smaller_than_the_models_data_is_refused_in_one_line(folder_model, tmp_path, capsys):
    (tmp_path / "small").mkdir()
    Image.fromarray(np.zeros([4, 4, 3], np.uint8)).save(tmp_path / "small" / "tiny.png")
    assert run_cli(score.PROG, score.main, [folder_model, "--data", str(tmp_path / "small")]) == 2
    assert "tiny.png is 4x4, smaller than the model's 8x8" in one_line_error(capsys)


def test_help_describes_the_tool(capsys):
    with pytest.raises(SystemExit) as exit_info:
        score.main(["--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and out.startswith(f"usage: {score.PROG}")
    assert "--complexity" in out and "--reference" in out and "AUROC" in out


HOROVODRUN = os.path.join(os.path.dirname(sys.executable), "horovodrun")


@pytest.mark.skipif(not os.path.exists(HOROVODRUN), reason="needs horovodrun")
def test_two_horovod_ranks_give_every_row_once_in_order(folder_model, sets, tmp_path):
    single, double = tmp_path / "single.npz", tmp_path / "double.npz"
    args = ["-m", "glow_tf.tools.score", folder_model, "--reference", sets["tfr"], "--data", sets["pictures"],
            "--complexity", "png", "--draws", "2", "--batch", "2"]
    assert run_cli(score.PROG, score.main, args[2:] + ["--output", str(single)]) == 0
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    done = subprocess.run([HOROVODRUN, "-np", "2", "-H", "localhost:2", sys.executable, *args,
                           "--output", str(double)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with np.load(single) as one, np.load(double) as two:
        for key in ("set", "index", "label", "png_bits"):
            np.testing.assert_array_equal(one[key], two[key])  # each image once, in the set's order
        # Other ranks draw other noise: the same images, up to the dequantisation noise.
        assert np.corrcoef(one["bits_x"], two["bits_x"])[0, 1] > 0.99
