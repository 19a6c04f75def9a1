"""The qualitative tools on a tiny checkpoint: sample, interpolate, manipulate, and their refusals.

The checkpoint is a tiny Glow initialised on real images and then perturbed (so that no layer is the
identity), written in train.py's layout. Inputs are real PNG and JPEG files from foolbox's samples.
Reconstructions are compared honestly: decode(encode(x)) may differ from x by one level on the rare
subpixel whose dequantisation noise fell within float32 rounding of a bin edge.
"""

import dataclasses
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from data_loaders.images import read_image, read_images
from data_loaders.tfrecords import find_files
from glow_common.errors import run_cli
from glow_tf import images, samples
from glow_tf.tools import common, convert_tf1, export, interpolate, manipulate, sample
from tests.images import foolbox_data_dir, imagenet_samples
from tests.tool_fixtures import TINY_HPS, assert_reconstructs, make_checkpoint, write_attr_records


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("run")
    return str(logdir), make_checkpoint(logdir)


@pytest.fixture(scope="module")
def photos():
    """Real files: two CIFAR-10 PNGs (32x32) and an ImageNet JPEG (non-square, larger)."""
    folder = foolbox_data_dir()
    return [str(p) for p in sorted(folder.glob("cifar10_*.png"))[:2]] + [str(sorted(folder.glob("imagenet_*.jpg"))[0])]


def opened(path):
    with Image.open(path) as img:
        img.load()
        return img.copy()


def run_tool(module, argv, capsys):
    """(exit status, stderr) of a tool's CLI, as `python -m` would run it."""
    code = run_cli(module.PROG, module.main, argv)
    return code, capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ sample
def test_sample_writes_one_grid_per_temperature(checkpoint, tmp_path):
    logdir, _ = checkpoint
    written = sample.main([logdir, "--output", str(tmp_path), "--temperatures", "0,0.7", "--n", "5"])
    assert len(written) == 2
    grids = [np.asarray(opened(p)) for p in written]
    # ceil(sqrt(5)) = 3 columns, 2 rows of 8x8 images; the sixth cell stays black.
    assert all(g.shape == (16, 24, 3) for g in grids)
    tiles = [grids[0][r * 8:(r + 1) * 8, c * 8:(c + 1) * 8] for r, c in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]]
    assert all(np.array_equal(t, tiles[0]) for t in tiles), "temperature 0 gives the prior mean every time"
    assert not np.array_equal(grids[1][:8, :8], grids[1][:8, 8:16]), "temperature 0.7 draws differ"
    assert np.all(grids[0][8:, 16:] == 0)


def test_sample_seed_fixes_the_draws(checkpoint, tmp_path):
    logdir, _ = checkpoint
    runs = [sample.main([logdir, "--output", str(tmp_path / name), "--temperatures", "1", "--n", "4",
                         "--seed", seed])[0] for name, seed in (("a", "3"), ("b", "3"), ("c", "4"))]
    a, b, c = (np.asarray(opened(p)) for p in runs)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_sample_ema_uses_the_polyak_average(checkpoint, tmp_path, capsys):
    model, average = make_checkpoint(tmp_path / "run", seed=2, ema=True)
    argv = [str(tmp_path / "run"), "--n", "1", "--temperatures", "0"]
    raw, polyak = (np.asarray(opened(sample.main(argv + ["--output", str(tmp_path / name), *flags])[0]))
                   for name, flags in (("raw", []), ("ema", ["--ema"])))
    np.testing.assert_array_equal(raw, model.sample(1, 0.0)[0])
    average.swap(model.trainable_variables)
    np.testing.assert_array_equal(polyak, model.sample(1, 0.0)[0])
    assert not np.array_equal(raw, polyak)
    code, err = run_tool(sample, [checkpoint[0], "--output", str(tmp_path), "--ema"], capsys)
    assert code == 2 and "holds no Polyak average" in err


def test_sample_labels_are_columns_mod_n_y_as_the_original():
    hps = dataclasses.replace(TINY_HPS, ycond=True, n_y=2)
    np.testing.assert_array_equal(samples.grid_labels(hps, 9), [0, 1, 0, 0, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(samples.grid_labels(hps, 4, y=1), [1, 1, 1, 1])
    np.testing.assert_array_equal(samples.grid_labels(TINY_HPS, 4), [0, 0, 0, 0])


def test_sample_class_conditional_label_changes_the_image(tmp_path):
    logdir = tmp_path / "ycond"
    make_checkpoint(logdir, dataclasses.replace(TINY_HPS, ycond=True, n_y=3), seed=1)
    grids = [np.asarray(opened(sample.main([str(logdir), "--output", str(tmp_path / f"y{y}"), "--n", "1",
                                             "--temperatures", "0", "--y", str(y)])[0])) for y in (0, 1)]
    assert not np.array_equal(grids[0], grids[1])


def test_sample_refuses_a_label_for_an_unconditional_model(checkpoint, tmp_path, capsys):
    code, err = run_tool(sample, [checkpoint[0], "--output", str(tmp_path), "--y", "1"], capsys)
    assert code == 2 and "--y 1" in err and "not class-conditional" in err and "Traceback" not in err


# ------------------------------------------------------------------------------------------- interpolate
def test_mix_is_the_demos_linear_interpolation():
    z1, z2 = np.array([0.0, 2.0]), np.array([4.0, -2.0])
    np.testing.assert_allclose(interpolate.mix(z1, z2, [0, 0.25, 1]), [[0, 2], [1, 1], [4, -2]])


def test_interpolation_end_points_reconstruct_the_inputs(checkpoint, photos):
    _, model = checkpoint
    images = read_images(photos, TINY_HPS)
    frames = interpolate.interpolate(model, images, steps=5)
    assert frames.shape == (2, 5, 8, 8, 3) and frames.dtype == np.uint8
    assert_reconstructs(frames[0, 0], images[0])
    assert_reconstructs(frames[0, -1], images[1])
    assert_reconstructs(frames[1, -1], images[2])
    np.testing.assert_array_equal(frames[0, -1], frames[1, 0])  # the same z decoded twice
    middle = frames[0, 2]
    assert not np.array_equal(middle, frames[0, 0]) and not np.array_equal(middle, frames[0, -1])


def test_interpolate_cli_writes_strip_and_gif(checkpoint, photos, tmp_path):
    logdir, _ = checkpoint
    strip, gif = tmp_path / "mix.png", tmp_path / "mix.gif"
    interpolate.main([logdir, *photos, "--output", str(strip), "--gif", str(gif), "--steps", "4"])
    pixels = np.asarray(opened(strip))
    assert pixels.shape == (2 * 8, 4 * 8, 3)  # one row per pair, one column per step
    images = read_images(photos, TINY_HPS)
    assert_reconstructs(pixels[:8, :8], images[0])
    assert_reconstructs(pixels[:8, -8:], images[1])
    assert_reconstructs(pixels[8:, -8:], images[2])
    animation = opened(gif)
    # 4 + 3 frames (the shared middle image once), then back again without repeating the ends.
    assert Image.open(gif).n_frames == 7 + 5 and animation.size == (8, 8)


# -------------------------------------------------------------------------------------------- manipulate
@pytest.fixture(scope="module")
def celeba(tmp_path_factory):
    """A CelebA-like TFRecord set at 8x8: 12 real images with +-1 attributes, each attribute on both sides."""
    root = tmp_path_factory.mktemp("celeba-tfr")
    images = imagenet_samples(8, n=12)
    rng = np.random.default_rng(0)
    attrs = rng.choice([-1, 1], size=(12, 40))
    attrs[0], attrs[1] = 1, -1
    write_attr_records(root / "train" / "train-r03-s-0000-of-0001.tfrecords", images, attrs)
    return root, images, attrs


class FlattenModel:
    """A stand-in whose eps is the image itself, so directions are plain means of pixels."""

    def encode(self, x, y):
        return np.asarray(x, np.float64).reshape(len(x), -1)


def test_directions_are_mean_with_minus_mean_without(celeba):
    root, images, attrs = celeba
    files = find_files(str(root), "train", 8)
    batches = manipulate.attr_batches(files, TINY_HPS.image_shape, batch=5)  # 5 + 5 + 2: crosses batches
    which = [manipulate.CELEBA_ATTRIBUTES.index(n) for n in ("Smiling", "Young")]
    delta, n_pos, n_neg = manipulate.compute_directions(FlattenModel(), batches, 1, which)
    flat = images.reshape(12, -1).astype(np.float64)
    for k, a in enumerate(which):
        with_it = attrs[:, a] > 0
        np.testing.assert_allclose(delta[k], flat[with_it].mean(0) - flat[~with_it].mean(0))
        assert (n_pos[k], n_neg[k]) == (with_it.sum(), (~with_it).sum())


def test_directions_cli_saves_named_scaled_directions(checkpoint, celeba, tmp_path):
    logdir, _ = checkpoint
    out = tmp_path / "dirs.npz"
    manipulate.main(["directions", logdir, "--data", str(celeba[0]), "--output", str(out),
                     "--attributes", "Smiling,Young,Male", "--scale", "1.6", "--batch", "5"])
    with np.load(out) as f:
        assert list(f["names"]) == ["Smiling", "Young", "Male"]
        assert f["directions"].shape == (3, 8 * 8 * 3) and np.all(np.isfinite(f["directions"]))
        assert np.all(f["n_pos"] + f["n_neg"] == 12) and float(f["scale"]) == 1.6


def test_directions_read_the_attr_of_tfrecords_tools_celeba(checkpoint, tmp_path):
    """The converter's output (a CelebA folder + list_attr_celeba.txt) is what `directions` reads."""
    from tests import data_fixtures
    from tfrecords_tools import celeba as celeba_converter

    folder, attr_file, attrs = data_fixtures.celeba_folder(str(tmp_path), count=6)
    celeba_converter.main(["--input", folder, "--attr", attr_file, "--output", str(tmp_path / "tfr"),
                           "--resolution", "8", "--lods", "1", "--shards", "1", "--n-validation", "2",
                           "--workers", "0", "--quiet"])
    rows = np.concatenate([attr for split in ("train", "validation") for _, _, attr in manipulate.attr_batches(
        find_files(str(tmp_path / "tfr"), split, 8), TINY_HPS.image_shape, batch=4)])
    assert sorted(map(tuple, rows)) == sorted(attrs.values())  # every image's 40 values, in order
    out = tmp_path / "dirs.npz"
    manipulate.main(["directions", checkpoint[0], "--data", str(tmp_path / "tfr"), "--output", str(out)])
    with np.load(out) as f:
        assert np.all(f["n_pos"] + f["n_neg"] == 4)  # the 4 training images
        train = rows[:4]
        for name, n_pos in zip(f["names"], f["n_pos"]):
            assert n_pos == np.sum(train[:, manipulate.CELEBA_ATTRIBUTES.index(str(name))] > 0)


@pytest.fixture(scope="module")
def directions(checkpoint, celeba, tmp_path_factory):
    out = tmp_path_factory.mktemp("dirs") / "dirs.npz"
    manipulate.main(["directions", checkpoint[0], "--data", str(celeba[0]), "--output", str(out),
                     "--attributes", "Smiling,Eyeglasses"])
    return out


def test_manipulation_with_alpha_zero_is_the_reconstruction(checkpoint, directions, photos):
    _, model = checkpoint
    image = read_image(photos[2], TINY_HPS)
    _, deltas = manipulate.load_directions(str(directions), TINY_HPS)
    strips = manipulate.manipulate(model, image, deltas, alphas=[-1.0, 0.0, 1.0])
    assert strips.shape == (2, 3, 8, 8, 3)
    assert_reconstructs(strips[0, 1], image)
    np.testing.assert_array_equal(strips[0, 1], strips[1, 1])  # one z for every attribute
    assert not np.array_equal(strips[0, 0], strips[0, 1]) and not np.array_equal(strips[0, 2], strips[0, 1])


def test_apply_cli_writes_one_strip_per_attribute(checkpoint, directions, photos, tmp_path):
    written = manipulate.main(["apply", checkpoint[0], photos[0], "--directions", str(directions),
                               "--output", str(tmp_path), "--steps", "3"])
    assert [p.rsplit("_", 1)[-1] for p in written] == ["Smiling.png", "Eyeglasses.png"]
    image = read_image(photos[0], TINY_HPS)
    for path in written:
        strip = np.asarray(opened(path))
        assert strip.shape == (8, 3 * 8, 3)
        assert_reconstructs(strip[:, 8:16], image)  # alphas -1, 0, 1


def test_unknown_attribute_is_refused_with_the_valid_names(checkpoint, celeba, directions, photos, tmp_path, capsys):
    code, err = run_tool(manipulate, ["directions", checkpoint[0], "--data", str(celeba[0]), "--output",
                                      str(tmp_path / "d.npz"), "--attributes", "Smiling,Sparkly"], capsys)
    assert code == 2 and "unknown attribute Sparkly" in err and "5_o_Clock_Shadow" in err and "Young" in err
    code, err = run_tool(manipulate, ["apply", checkpoint[0], photos[0], "--directions", str(directions),
                                      "--output", str(tmp_path), "--attributes", "Young"], capsys)
    assert code == 2 and "unknown attribute Young; valid names: Smiling, Eyeglasses" in err


def test_records_without_attr_or_of_another_size_are_refused(checkpoint, tmp_path, capsys):
    images = imagenet_samples(8, n=2)
    write_attr_records(tmp_path / "plain.tfrecords", images, None)
    write_attr_records(tmp_path / "big.tfrecords", imagenet_samples(16, n=2), np.ones((2, 40), int))
    for name, expected in (("plain", "no `attr` int64[40]"), ("big", "big.tfrecords: image of the wrong size 16x16, expected 8x8")):
        code, err = run_tool(manipulate, ["directions", checkpoint[0], "--data", str(tmp_path / f"{name}.tfrecords"),
                                          "--output", str(tmp_path / "d.npz")], capsys)
        assert code == 2 and expected in err and "Traceback" not in err


def test_directions_of_another_configuration_are_refused(checkpoint, photos, tmp_path, capsys):
    other = dataclasses.replace(TINY_HPS, width=16)
    path = tmp_path / "other.npz"
    manipulate.save_directions(str(path), ["Smiling"], np.ones((1, 192)), [1], [1], 1.0, other)
    code, err = run_tool(manipulate, ["apply", checkpoint[0], photos[0], "--directions", str(path),
                                      "--output", str(tmp_path)], capsys)
    assert code == 2 and "another configuration" in err and "width: directions 16, model 8" in err


# --------------------------------------------------------------------------------------------- bad input
def bad_image_files(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(small)
    return {"missing": (str(tmp_path / "missing.jpg"), "missing.jpg does not exist"),
            "not an image": (str(text), "notes.png is not a readable image"),
            "too small": (str(small), "small.png is 6x4, smaller than the 32x32 images the model's 8x8 data is made "
                                           "from")}


@pytest.mark.parametrize("case", ["missing", "not an image", "too small"])
def test_bad_images_are_refused_by_interpolate_and_manipulate(checkpoint, directions, photos, tmp_path, capsys, case):
    path, message = bad_image_files(tmp_path)[case]
    code, err = run_tool(interpolate, [checkpoint[0], photos[0], path, "--output", str(tmp_path / "o.png")], capsys)
    assert code == 2 and message in err and "Traceback" not in err
    code, err = run_tool(manipulate, ["apply", checkpoint[0], path, "--directions", str(directions),
                                      "--output", str(tmp_path)], capsys)
    assert code == 2 and message in err
    assert not (tmp_path / "o.png").exists()


def test_checkpoint_of_another_configuration_is_refused(checkpoint, tmp_path, capsys):
    logdir = tmp_path / "edited"
    shutil.copytree(checkpoint[0], logdir)
    hps_file = logdir / "checkpoints" / "hparams.json"
    hps_file.write_text(json.dumps({**json.loads(hps_file.read_text()), "width": 16}))
    for tool, argv in ((sample, [str(logdir), "--output", str(tmp_path / "s")]),
                       (interpolate, [str(logdir), "a.png", "b.png", "--output", str(tmp_path / "i.png")])):
        code, err = run_tool(tool, argv, capsys)
        assert code == 2 and "does not fit this model" in err and "Traceback" not in err
        assert "hparams.json" in err and "where the model has" in err  # names the file and the differences


def test_missing_checkpoint_is_refused(tmp_path, capsys):
    code, err = run_tool(sample, [str(tmp_path / "nowhere"), "--output", str(tmp_path)], capsys)
    assert code == 2 and "nowhere" in err


@pytest.mark.parametrize("module", [sample, interpolate, manipulate, export, convert_tf1])
def test_help_describes_the_tool(module, capsys):
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and out.startswith(f"usage: {module.PROG}")
    assert " ".join(module.__doc__.split()[:8]) in " ".join(out.split())  # the docstring explains the tool


def test_grid_is_ceil_sqrt_wide_row_by_row():
    pictures = np.arange(5)[:, None, None, None] * np.ones((5, 2, 2, 1), np.uint8)
    mosaic = images.grid(pictures)
    assert mosaic.shape == (4, 6, 1)  # ceil(sqrt(5)) = 3 columns, 2 rows
    np.testing.assert_array_equal(mosaic[::2, ::2, 0], [[0, 1, 2], [3, 4, 0]])



def test_tools_run_the_networks_in_float32_unless_told(checkpoint, tmp_path, capsys):
    """A bfloat16-trained model's weights are float32: the tools run its coupling networks in float32 by
    default, so that decode inverts encode, and in bfloat16 only when asked; evaluate keeps the model's."""
    logdir = tmp_path / "run"
    shutil.copytree(checkpoint[0], logdir)
    hps_file = logdir / "checkpoints" / "hparams.json"
    hps_file.write_text(json.dumps({**json.loads(hps_file.read_text()), "nn_dtype": "bfloat16"}))
    tool = common.parser("tool", "A tool.")
    common.add_checkpoint_args(tool)
    like_evaluate = common.parser("evaluate", "Like evaluate.")
    common.add_checkpoint_args(like_evaluate, nn_dtype=None)
    for parser, extra, expected in ((tool, [], "float32"), (tool, ["--nn_dtype", "bfloat16"], "bfloat16"),
                                    (like_evaluate, [], "bfloat16")):
        model, hps, _ = common.load(parser.parse_args([str(logdir)] + extra))
        assert hps.nn_dtype == model.hps.nn_dtype == expected
    assert run_cli(sample.PROG, sample.main, [str(logdir), "--nn_dtype", "bfloat16", "--n", "4",
                                                 "--output", str(tmp_path / "s")]) == 0, capsys.readouterr().err
