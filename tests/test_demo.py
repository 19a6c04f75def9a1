"""The demo's server, directions, uploads and face alignment, on a tiny Fashion-MNIST Glow trained by train.py.

The JSON API is driven through Flask's test client and, for the command line, concurrency and the upload
limit, over HTTP against `python -m glow_tf.tools.demo` in a child process. Expected values come from
independent computations: class means in NumPy, Debian's test images read with gzip, crops with PIL,
the model's own decode and sample.
"""

import base64
import collections
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from data_loaders import DataError
from glow_common.errors import run_cli
from glow_tf.errors import ConfigError
from glow_tf.presets import fashion_small
from glow_tf.tools.demo import align, directions, images, server
from glow_tf.tools.manipulate import CELEBA_ATTRIBUTES
from glow_tf.training.checkpoints import load_model
from tests import browser
from tests.data_fixtures import FASHION_MNIST_DIR, needs_fashion, samples
from tests.demo_fixtures import debian_test_set, foolbox_fashion, fresh_copy, from_uri, png_file, tiny_logdir
from tests.runs import ROOT
from tests.tool_fixtures import assert_reconstructs

FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot"]


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    if not os.path.exists(os.path.join(FASHION_MNIST_DIR, "t10k-images-idx3-ubyte.gz")):
        pytest.skip("needs Debian's dataset-fashion-mnist")
    return fresh_copy(tiny_logdir(tmp_path_factory), tmp_path_factory, "api")


@pytest.fixture(scope="module")
def demo(logdir):
    """A Demo whose directions were computed before the first request."""
    model, hps, prefix = load_model(logdir)
    built = server.build(model, hps, prefix, checkpoint=logdir, start=False)
    built.job.run()
    assert built.job.status()["state"] == "ready", built.job.status()
    return built


@pytest.fixture()
def client(demo):
    return server.create_app(demo).test_client()


def post(client, path, body):
    return client.post(path, data=json.dumps(body), content_type="application/json")


def upload(client, data: bytes, name="photo.png"):
    return client.post("/api/upload", data={"image": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def error_of(response, status):
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    return response.get_json()["error"]


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


# ------------------------------------------------------------------------------------------ directions
class StubSource:
    """Encodings known in advance: z = flattened pixels as float, so class means are NumPy's."""

    def __init__(self, x, labels, n_classes):
        self.x, self.labels, self.n_classes = x, labels, n_classes

    def source(self):
        def batches():
            for i in range(0, len(self.x), 7):
                y = self.labels[i:i + 7]
                yield self.x[i:i + 7], np.zeros(len(y), np.int32), np.eye(self.n_classes, dtype=np.int64)[y]
        return directions.Source("classes", [f"c{i}" for i in range(self.n_classes)], len(self.x), batches,
                                 "stub classes")


def stub_encode(calls):
    def encode(x, y):
        calls.append(len(x))
        return x.reshape(len(x), -1).astype(np.float32)
    return encode


def test_class_directions_are_scaled_differences_of_class_means_and_are_cached(tmp_path):
    from glow_tf.hparams import HParams

    hps = HParams(problem="fashion_mnist", image_size=4, n_channels=1, n_levels=1, depth=1, width=4)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 4, 4, 1)).astype(np.uint8)
    labels = np.arange(40) % 3  # classes 0-2 of 10: the other seven have no images and get no slider
    stub = StubSource(x, labels, hps.n_classes)
    cache = str(tmp_path / "cache.npz")
    calls = []
    job = directions.DirectionsJob(hps, stub_encode(calls), cache, lambda src: "key-A", stub.source)
    job.run()
    status = job.status()
    assert status["state"] == "ready" and status["done"] == status["total"] == 40 and sum(calls) == 40
    assert job.names == ["c0", "c1", "c2"]
    flat = x.reshape(40, -1).astype(np.float64)
    for k in range(3):
        expected = 1.6 * (flat[labels == k].mean(0) - flat[labels != k].mean(0))
        np.testing.assert_allclose(job.directions[k], expected, rtol=1e-5, atol=1e-4)
    assert sorted(os.listdir(tmp_path)) == ["cache.npz"]  # written through a temporary name, nothing left over

    # The same model and data: loaded, not recomputed.
    again = directions.DirectionsJob(hps, stub_encode(calls := []), cache, lambda src: "key-A", stub.source)
    again.run()
    assert again.status()["state"] == "ready" and calls == [] and "loaded from the cache" in again.status()["message"]
    np.testing.assert_array_equal(again.directions, job.directions)
    # Another checkpoint: recomputed, and the cache rewritten for it.
    other = directions.DirectionsJob(hps, stub_encode(calls := []), cache, lambda src: "key-B", stub.source)
    other.run()
    assert sum(calls) == 40 and "another checkpoint" in other.status()["message"]
    with np.load(cache) as f:
        assert str(f["model"]) == "key-B"


@pytest.mark.parametrize("error", [ConfigError("cannot read the model's data: /nowhere does not exist"),
                                   DataError("reading the data for the directions: /nowhere/x.tfrecords: record 3 "
                                             "at byte 9: the data fails its checksum")], ids=lambda e: type(e).__name__)
def test_directions_failure_is_reported_not_raised(tmp_path, capsys, error):
    from glow_tf.hparams import HParams

    hps = HParams(problem="fashion_mnist", image_size=4, n_channels=1, n_levels=1, depth=1, width=4)

    def broken_source():
        raise error

    job = directions.DirectionsJob(hps, stub_encode([]), str(tmp_path / "c.npz"), lambda s: "k", broken_source)
    job.run()
    # A user's error is its own message on the page, without a traceback on the server.
    assert job.status()["state"] == "failed" and job.status()["message"] == str(error)
    assert "Traceback" not in capsys.readouterr().err


def test_cache_key_follows_the_checkpoint_weights_ema_and_data(logdir, tmp_path):
    """Rewriting the checkpoint with other weights changes the key that a cache must match."""
    import tensorflow as tf

    copy = str(tmp_path / "run")
    shutil.copytree(logdir, copy)
    model, _, prefix = load_model(copy)
    source = {"kind": "classes", "description": "the 10 classes of 100 validation images"}
    key = directions.model_key(prefix, False, source)
    assert key == directions.model_key(prefix, False, dict(source))
    assert key != directions.model_key(prefix, True, source)
    assert key != directions.model_key(prefix, False, {**source, "description": "200 images"})
    variable = model.trainable_variables[0]
    variable.assign(variable + 0.01)
    tf.train.Checkpoint(model=model).write(prefix)
    assert directions.model_key(prefix, False, source) != key


@needs_fashion
def test_examples_are_validation_images_one_per_class(logdir):
    model, hps, _ = load_model(logdir)
    chosen = directions.examples(hps, 8)
    x_test, y_test = debian_test_set()
    assert len(chosen) == 8 and len({label for _, label in chosen}) == 8
    for image, label in chosen:
        matches = [i for i in range(hps.n_test) if np.array_equal(x_test[i], image[..., 0])]
        assert matches and FASHION_NAMES[y_test[matches[0]]] == label


# ------------------------------------------------------------------------------------------ alignment
def test_warp_puts_the_eyes_where_the_original_aligner_does():
    """Two marked points on a tilted line land at (0.371, 0.480) and (0.629, 0.480) of the square."""
    canvas = np.zeros((400, 500, 3), np.uint8)
    left, right = (180.5, 230.5), (290.5, 190.5)  # 117 px apart, tilted by 20 degrees
    for (cx, cy), colour in ((left, (255, 0, 0)), (right, (0, 255, 0))):
        canvas[int(cy) - 2:int(cy) + 3, int(cx) - 2:int(cx) + 3] = colour
    out = np.asarray(align.warp(Image.fromarray(canvas), left, right)).astype(float)
    side = out.shape[0]
    assert out.shape[:2] == (side, side)
    assert abs(side - np.hypot(110, 40) / (1 - 2 * 0.371)) <= 1

    def centroid(channel):
        weights = out[..., channel] * (out[..., channel] > 60)
        ys, xs = np.indices(weights.shape)
        return (xs * weights).sum() / weights.sum() + 0.5, (ys * weights).sum() / weights.sum() + 0.5

    for channel, target in ((0, (0.371, 0.480)), (1, (0.629, 0.480))):
        x, y = centroid(channel)
        assert abs(x - target[0] * side) < 1 and abs(y - target[1] * side) < 1, (channel, x, y, side)


def test_eye_finder_on_a_real_portrait_and_on_a_picture_without_a_face():
    pytest.importorskip("cv2")
    from matplotlib import cbook

    finder = align.EyeFinder()
    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as img:
        eyes = finder.find(img)
        assert not isinstance(eyes, str), eyes
        (lx, ly), (rx, ry) = eyes
        assert lx < rx and 0.1 * img.width < rx - lx < 0.4 * img.width  # two eyes, a plausible distance apart
        assert ly < img.height / 2 and ry < img.height / 2 and abs(ly - ry) < 0.1 * img.height
        image, note = images.prepare(img, fashion_small(), "grace_hopper.jpg", finder)
        assert image.shape == (28, 28, 1) and "aligned on the eyes" in note
    with Image.open(samples("imagenet")[0][0]) as img:
        image, note = images.prepare(img, fashion_small(), "x.jpg", finder)
        assert note.startswith("centre crop (") and image.shape == (28, 28, 1)


def test_alignment_mode():
    from glow_tf.hparams import HParams

    assert images.align_mode("auto", HParams(problem="celeba")) == "eyes"
    assert images.align_mode("auto", HParams(problem="fashion_mnist")) == "centre"
    assert images.align_mode("eyes", HParams(problem="fashion_mnist")) == "eyes"
    with pytest.raises(ConfigError, match="--align 'middle'"):
        images.align_mode("middle", HParams())


# ---------------------------------------------------------------------------------------------- pages
def test_page_and_static_files_are_served_and_load_nothing_from_outside(client):
    page = client.get("/")
    assert page.status_code == 200 and b'src="/static/app.js"' in page.data
    for name in os.listdir(server.STATIC):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200, name
        assert b"://" not in response.data, f"{name} refers to another site"


def test_info_says_the_model_the_limits_and_the_cropping(client):
    info = client.get("/api/info").get_json()
    assert info["model"]["image_shape"] == [28, 28, 1] and info["model"]["problem"] == "fashion_mnist"
    assert info["limits"]["alpha_max"] == server.ALPHA_MAX and info["limits"]["default_temperature"] == 0.7
    assert info["alignment"].startswith("centre crop")


@needs_fashion
def test_examples_endpoint(client):
    data = client.get("/api/examples").get_json()
    x_test, y_test = debian_test_set()
    assert len(data["examples"]) == 8
    for example in data["examples"]:
        image = from_uri(example["image"])[..., 0]
        index = next(i for i in range(100) if np.array_equal(x_test[i], image))
        assert FASHION_NAMES[y_test[index]] == example["label"]


def test_directions_endpoint(client):
    status = client.get("/api/directions").get_json()
    assert status["state"] == "ready" and status["kind"] == "classes"
    assert set(status["names"]) <= set(FASHION_NAMES) and len(status["names"]) >= 8


# -------------------------------------------------------------------------------------------- uploads
def test_upload_png_shows_the_image_and_a_repeatable_reconstruction(client):
    path = foolbox_fashion(0)
    with Image.open(path) as img:
        expected = np.asarray(img.convert("L"))[..., None]
    first = upload(client, read_file(path), "shoe.png").get_json()
    assert first["name"] == "shoe.png" and first["alignment"] == "centre crop"
    np.testing.assert_array_equal(from_uri(first["image"]), expected)
    assert_reconstructs(from_uri(first["reconstruction"]), expected)
    # The dequantisation noise is seeded by the image: the same upload gives the same reconstruction.
    second = upload(client, read_file(path), "again.png").get_json()
    assert second["reconstruction"] == first["reconstruction"]
    again = post(client, "/api/reconstruct", {"image": first["image"]}).get_json()
    assert again["reconstruction"] == first["reconstruction"]


def test_upload_large_jpeg_is_centre_cropped_and_resized_to_the_model(client):
    path = samples("imagenet")[0][0]
    with Image.open(path) as img:
        grey = img.convert("L")
        w, h = grey.size
        side = min(w, h)
        box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
        expected = np.asarray(grey.crop(box).resize((28, 28), Image.LANCZOS))[..., None]
        assert (w, h) != (28, 28) and side > 28
    data = upload(client, read_file(path), "photo.jpg").get_json()
    np.testing.assert_array_equal(from_uri(data["image"]), expected)
    assert_reconstructs(from_uri(data["reconstruction"]), expected)


def test_upload_follows_the_exif_orientation(client):
    """A phone JPEG stored sideways (EXIF orientation 6: turn 90 degrees clockwise to view)."""
    stored = np.zeros((40, 80), np.uint8)
    stored[:, :40] = 255  # the left half white: after the turn, the top half is white
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    Image.fromarray(stored).save(out, "JPEG", quality=95, exif=exif.tobytes())
    image = from_uri(upload(client, out.getvalue(), "phone.jpg").get_json()["image"])[..., 0]
    assert image[:10].mean() > 200 and image[-10:].mean() < 50


@pytest.mark.parametrize("name,data,message", [
    ("notes.png", b"these are my notes, not a picture\n", "notes.png is not an image"),
    ("anim.gif", "gif", "anim.gif is a GIF image; upload a PNG or JPEG"),
    ("tiny.png", "small", "tiny.png is 10x12, smaller than the model's 28x28"),
    ("cut.png", "truncated", "cut.png is a damaged PNG file"),
    ("bomb.png", "bomb", "megapixels"),
    ("empty.png", b"", "empty.png is empty"),
])
def test_bad_uploads_get_a_clear_400_and_the_server_goes_on(client, name, data, message):
    if data == "gif":
        out = io.BytesIO()
        Image.new("L", (40, 40)).save(out, "GIF")
        data = out.getvalue()
    elif data == "small":
        data = png_file(np.zeros((12, 10), np.uint8))
    elif data == "truncated":
        data = read_file(samples("imagenet")[0][0])
        data = png_file(np.asarray(Image.open(io.BytesIO(data)).convert("L")))[:3000]
    elif data == "bomb":
        out = io.BytesIO()
        Image.new("L", (9000, 9000)).save(out, "PNG")  # 81 megapixels in about 80 KB
        data = out.getvalue()
    assert message in error_of(upload(client, data, name), 400)
    assert upload(client, read_file(foolbox_fashion(1)), "good.png").status_code == 200


def test_upload_without_a_file_and_a_huge_upload(client):
    assert "no file in the upload" in error_of(client.post("/api/upload", data={}), 400)
    huge = b"\x89PNG" + b"\0" * (images.MAX_UPLOAD_BYTES + 10)
    assert "larger than the demo's limit of 16 MiB" in error_of(upload(client, huge, "huge.png"), 413)
    assert upload(client, read_file(foolbox_fashion(1)), "good.png").status_code == 200


# ---------------------------------------------------------------------------------------- manipulate
@pytest.fixture()
def shoe(client):
    return upload(client, read_file(foolbox_fashion(0)), "shoe.png").get_json()


def test_manipulate_adds_the_scaled_directions(client, demo, shoe):
    pixels = from_uri(shoe["image"])
    none = post(client, "/api/manipulate", {"image": shoe["image"], "alphas": {}}).get_json()
    assert none["image"] == shoe["reconstruction"]
    names = demo.job.names
    z = demo.encode(pixels)
    one = post(client, "/api/manipulate", {"image": shoe["image"], "alphas": {names[1]: 0.75}})
    one = from_uri(one.get_json()["image"])
    expected = np.asarray(demo.model.decode(z[None] + 0.75 * demo.job.directions[1][None]))[0]
    np.testing.assert_array_equal(one, expected)
    assert not np.array_equal(one, from_uri(shoe["reconstruction"]))
    two = from_uri(post(client, "/api/manipulate",
                        {"image": shoe["image"], "alphas": {names[0]: -1, names[2]: 0.5}}).get_json()["image"])
    shift = -1 * demo.job.directions[0] + 0.5 * demo.job.directions[2]
    np.testing.assert_array_equal(two, np.asarray(demo.model.decode(z[None] + shift[None]))[0])
    # One finite direction per class in eps (their formula is checked in test_class_directions_are_scaled_...).
    assert np.all(np.isfinite(demo.job.directions)) and demo.job.directions.shape == (len(names), 784)


@pytest.mark.parametrize("alphas,message", [
    ({"Trouser": "abc"}, "alpha of 'Trouser' must be a number, got 'abc'"),
    ({"Trouser": 1.5}, "alpha of 'Trouser' = 1.5 is out of range: expected -1 to 1"),
    ({"Trouser": True}, "must be a number, got True"),
    ({"Trouser": None}, "must be a number, got None"),
    ({"Smiling": 0.5}, "unknown direction 'Smiling'; this model's directions are: "),
    ([0.5], "alphas must be an object of direction name to number"),
])
def test_manipulate_refuses_bad_values(client, shoe, alphas, message):
    assert message in error_of(post(client, "/api/manipulate", {"image": shoe["image"], "alphas": alphas}), 400)


def test_non_finite_numbers_and_bodies_that_are_not_json(client, shoe):
    body = json.dumps({"image": shoe["image"], "alphas": {"Trouser": 0}}).replace("0}}", "NaN}}")
    response = client.post("/api/manipulate", data=body, content_type="application/json")
    assert "must be a finite number, got nan" in error_of(response, 400)
    assert "expected a JSON object" in error_of(client.post("/api/mix", data="alpha=1"), 400)
    assert "expected a JSON object" in error_of(post(client, "/api/random", [1, 2]), 400)


@pytest.mark.parametrize("image,message", [
    (None, "image is missing"),
    ("data:image/jpeg;base64,AAAA", "image must be a PNG data URI"),
    ("data:image/png;base64,@@@@", "image is not a readable base64 PNG"),
    ("small", "image is 10x10, but the model takes 28x28"),
])
def test_images_in_json_must_be_the_pages_own_pngs(client, image, message):
    if image == "small":
        image = "data:image/png;base64," + base64.b64encode(png_file(np.zeros((10, 10), np.uint8))).decode()
    body = {"alphas": {}} if image is None else {"image": image, "alphas": {}}
    assert message in error_of(post(client, "/api/manipulate", body), 400)


def test_manipulate_before_the_directions_are_ready_is_a_409(demo, shoe):
    waiting = server.Demo(demo.model, demo.hps, job=directions.DirectionsJob(
        demo.hps, demo.encode_batch, "/nonexistent/cache.npz", lambda s: "k", lambda: None))
    response = post(server.create_app(waiting).test_client(), "/api/manipulate", {"image": shoe["image"]})
    assert "still being computed" in error_of(response, 409)
    unlabelled = server.Demo(demo.model, demo.hps, no_directions="the data has no labels")
    response = post(server.create_app(unlabelled).test_client(), "/api/manipulate", {"image": shoe["image"]})
    assert "this model has no directions: the data has no labels" in error_of(response, 409)


# ------------------------------------------------------------------------------------------------ mix
def test_mix_goes_from_one_reconstruction_to_the_other(client, demo, shoe):
    other = upload(client, read_file(foolbox_fashion(1)), "b.png").get_json()
    def mixed(alpha):
        return from_uri(post(client, "/api/mix", {"a": shoe["image"], "b": other["image"], "alpha": alpha})
                        .get_json()["image"])

    ends = [mixed(0), mixed(1)]
    np.testing.assert_array_equal(ends[0], from_uri(shoe["reconstruction"]))
    np.testing.assert_array_equal(ends[1], from_uri(other["reconstruction"]))
    middle = mixed(0.5)
    z_a, z_b = demo.encode(from_uri(shoe["image"])), demo.encode(from_uri(other["image"]))
    np.testing.assert_array_equal(middle, np.asarray(demo.model.decode(((z_a + z_b) / 2)[None]))[0])
    for alpha, message in ((1.01, "alpha = 1.01 is out of range: expected 0 to 1"), ("half", "must be a number"),
                           (None, "alpha must be a number, got None")):
        response = post(client, "/api/mix", {"a": shoe["image"], "b": other["image"], "alpha": alpha})
        assert message in error_of(response, 400)
    assert "alpha is missing" in error_of(post(client, "/api/mix", {"a": shoe["image"], "b": other["image"]}), 400)


# --------------------------------------------------------------------------------------------- random
def test_random_samples_follow_the_seed_and_temperature(client, demo):
    def draw(**body):
        response = post(client, "/api/random", body)
        assert response.status_code == 200, response.get_json()
        return np.stack([from_uri(u) for u in response.get_json()["images"]])

    a, b, c = draw(temperature=0.7, seed=1, n=4), draw(temperature=0.7, seed=1, n=4), draw(temperature=0.7, seed=2, n=4)
    assert a.shape == (4, 28, 28, 1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(draw(temperature=0.7, seed=1, n=1)[0], a[0])  # a seed names each sample
    # Temperature 0 is the prior's mean at every level, whatever the seed: the model's own sample at T = 0.
    np.testing.assert_array_equal(draw(temperature=0, seed=5, n=2), np.asarray(demo.model.sample(2, temperature=0.0)))
    assert len(post(client, "/api/random", {}).get_json()["images"]) == 8  # defaults: T = 0.7, seed 0


@pytest.mark.parametrize("body,message", [
    ({"temperature": -0.1}, "temperature = -0.1 is out of range: expected 0 to 1"),
    ({"temperature": "hot"}, "temperature must be a number, got 'hot'"),
    ({"seed": -1}, "seed = -1 is out of range"),
    ({"seed": 1.5}, "seed must be a whole number, got 1.5"),
    ({"seed": 2 ** 40}, "out of range: expected 0 to 2147483647"),
    ({"n": 0}, "n = 0 is out of range: expected 1 to 16"),
    ({"n": 17}, "n = 17 is out of range"),
])
def test_random_refuses_bad_values(client, body, message):
    assert message in error_of(post(client, "/api/random", body), 400)


def test_unknown_paths_methods_and_failures_answer_json(client, demo, monkeypatch, capfd):
    assert "Not Found" in error_of(client.get("/api/nothing"), 404)
    assert "Method Not Allowed" in error_of(client.get("/api/mix"), 405)

    def broken(z):
        raise RuntimeError("the accelerator caught fire")

    monkeypatch.setattr(demo, "decode", broken)
    message = error_of(post(client, "/api/random", {}), 500)
    # The page gets one sentence and a request id; the exception's message (which can name files) stays in
    # the server's log, under that id.
    request_id = re.fullmatch(r"The server failed on this request \(request ([0-9a-f]{8}); the server's log says "
                              r"why\)\. It goes on serving\.", message)[1]
    log = capfd.readouterr().err
    assert f"demo: request {request_id} (POST /api/random) failed:" in log
    assert "RuntimeError: the accelerator caught fire" in log and "accelerator" not in message
    monkeypatch.undo()
    assert post(client, "/api/random", {"n": 1}).status_code == 200


def test_a_decode_that_overflows_is_said_in_one_sentence_not_shown_black_in_silence(client, demo, shoe,
                                                                                  monkeypatch):
    """Latents far outside what the model saw make a trained affine flow's inverse overflow (openai/glow
    issues #40, #82): the answer still carries the image, and a sentence saying what happened and why."""
    assert shoe["warning"] is None  # an image of the model's own data inverts
    assert post(client, "/api/reconstruct", {"image": shoe["image"]}).get_json()["warning"] is None
    far = np.full([demo.model.n_dims], 1e30, np.float32)
    x, finite = demo.model.decode(far[None], with_finite=True)
    assert not bool(finite[0]) and np.asarray(x).dtype == np.uint8  # the model itself says the decode failed
    monkeypatch.setattr(demo, "encode", lambda image: far)
    for path, body, what in [("/api/reconstruct", {"image": shoe["image"]}, "this image"),
                             ("/api/mix", {"a": shoe["image"], "b": shoe["image"], "alpha": 0.5}, "the mix")]:
        answer = post(client, path, body).get_json()
        assert answer["warning"] == (f"The model could not invert {what}: its decode overflowed to values that are "
                                     f"not finite numbers, shown black, as a trained affine Glow can for images "
                                     f"far from its training data."), answer
    assert server.overflow_warning(np.array([True, False, False, True]), "samples").startswith(
        "The model could not invert 2 of the 4 samples:")


def test_encode_cache_is_bounded_and_keyed_by_pixels(demo, monkeypatch):
    monkeypatch.setattr(server, "Z_CACHE_SIZE", 3)
    monkeypatch.setattr(demo, "_z", collections.OrderedDict())
    rng = np.random.default_rng(1)
    batch = rng.integers(0, 256, (5, 28, 28, 1)).astype(np.uint8)
    zs = [demo.encode(x) for x in batch]
    assert len(demo._z) == 3
    np.testing.assert_array_equal(demo.encode(batch[0]), zs[0])  # recomputed after eviction: same seed
    assert not np.array_equal(zs[0], zs[1])


# ----------------------------------------------------------------------------------------- the command
def run_demo(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "glow_tf.tools.demo", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_help_and_one_line_errors(tmp_path, capsys):
    from glow_tf.tools.demo.__main__ import PROG, main

    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0 and "--port" in capsys.readouterr().out
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert run_cli(PROG, main, [str(tmp_path), "--port", str(taken.getsockname()[1])]) == 2
    assert "glow_tf.tools.demo: error: cannot listen on 127.0.0.1:" in capsys.readouterr().err
    assert run_cli(PROG, main, [str(tmp_path), "--port", "70000"]) == 2
    assert "--port 70000 is not a port number" in capsys.readouterr().err
    # As a user runs it: a logdir without a checkpoint is one line and status 2.
    result = run_demo(str(tmp_path / "nothing"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("python -m glow_tf.tools.demo: error: no checkpoint at ")


def http(url, body=None, upload=None):
    """(status, JSON answer) of a request with a JSON body or a (name, bytes) file upload; 4xx and 5xx too."""
    data, headers = None, {}
    if body is not None:
        data, headers = json.dumps(body).encode(), {"Content-Type": "application/json"}
    elif upload is not None:
        boundary = "glowdemoboundary"
        data = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{upload[0]}\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + upload[1] + \
            f"\r\n--{boundary}--\r\n".encode()
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@needs_fashion
def test_served_demo_answers_8_concurrent_requests_like_sequential_ones(tmp_path_factory):
    logdir = fresh_copy(tiny_logdir(tmp_path_factory), tmp_path_factory, "served")
    with browser.DemoProcess(logdir) as served:
        assert served.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(served.url, timeout=60) as page:
            assert b"<title>Glow demo</title>" in page.read()
        status, shoe = http(served.url + "api/upload", upload=("shoe.png", read_file(foolbox_fashion(0))))
        _, bag = http(served.url + "api/upload", upload=("bag.png", read_file(foolbox_fashion(1))))
        assert status == 200
        deadline = time.monotonic() + 120
        while http(served.url + "api/directions")[1]["state"] != "ready" and time.monotonic() < deadline:
            time.sleep(0.2)
        name = http(served.url + "api/directions")[1]["names"][0]
        requests = [("api/random", {"temperature": 0.5, "seed": 3, "n": 2}),
                    ("api/manipulate", {"image": shoe["image"], "alphas": {name: 0.5}}),
                    ("api/mix", {"a": shoe["image"], "b": bag["image"], "alpha": 0.3}),
                    ("api/reconstruct", {"image": bag["image"]})] * 2
        sequential = [http(served.url + path, body) for path, body in requests]
        with ThreadPoolExecutor(8) as pool:
            concurrent = list(pool.map(lambda r: http(served.url + r[0], r[1]), requests))
        assert [s for s, _ in concurrent] == [200] * 8
        assert concurrent == sequential
        # A body over the limit over real HTTP: a 413 with the message, and the server still serves.
        huge = b"\x89PNG" + b"\0" * (images.MAX_UPLOAD_BYTES + 1)
        status, answer = http(served.url + "api/upload", upload=("huge.png", huge))
        assert status == 413 and "16 MiB" in answer["error"]
        assert http(served.url + "api/random", {"n": 1})[0] == 200
        assert served.proc.poll() is None


# ------------------------------------------------------------------------------- CelebA-like models
def celeba_logdir(tmp_path_factory, with_attr=True):
    """A tiny 8x8 Glow of problem celeba over TFRecords with (or without) CelebA's `attr`."""
    import dataclasses

    from tests.images import imagenet_samples
    from tests.tool_fixtures import TINY_HPS, make_checkpoint, write_attr_records

    root = tmp_path_factory.mktemp("celeba-tfr")
    images = imagenet_samples(8, n=16)
    attrs = np.random.default_rng(0).choice([-1, 1], size=(16, 40))
    attrs[0], attrs[1] = 1, -1  # every attribute on both sides
    write_attr_records(root / "train" / "train-r03-s-0000-of-0001.tfrecords", images[:12],
                       attrs[:12] if with_attr else None)
    write_attr_records(root / "validation" / "validation-r03-s-0000-of-0001.tfrecords", images[12:],
                       attrs[12:] if with_attr else None)
    hps = dataclasses.replace(TINY_HPS, problem="celeba", data_dir=str(root), anchor_size=8, n_test=4)
    logdir = tmp_path_factory.mktemp("celeba-run")
    make_checkpoint(logdir, hps=hps)
    return str(logdir), images, attrs


def test_celeba_models_get_the_40_attribute_directions_and_aligned_uploads(tmp_path_factory):
    pytest.importorskip("cv2")
    from matplotlib import cbook

    logdir, images_, attrs = celeba_logdir(tmp_path_factory)
    model, hps, prefix = load_model(logdir)
    # The attribute source reads the training TFRecords: with z = the pixels, Δ is 1.6 x a difference of
    # pixel means, computed here with NumPy from the records' images and attributes.
    source = directions.find_source(hps, 1000)
    assert source.kind == "attributes" and source.names == list(CELEBA_ATTRIBUTES)
    job = directions.DirectionsJob(hps, stub_encode([]), str(tmp_path_factory.mktemp("c") / "c.npz"),
                                   lambda s: "k", lambda: source)
    job.run()
    assert job.status()["state"] == "ready" and len(job.names) == 40
    flat = images_[:12].reshape(12, -1).astype(np.float64)
    for a in (0, 17, 39):
        present = attrs[:12, a] > 0
        expected = 1.6 * (flat[present].mean(0) - flat[~present].mean(0))
        np.testing.assert_allclose(job.directions[a], expected, rtol=1e-5, atol=1e-4)

    demo = server.build(model, hps, prefix, checkpoint=logdir, start=False)
    demo.job.run()
    client = server.create_app(demo).test_client()
    status = client.get("/api/directions").get_json()
    assert status["state"] == "ready" and status["kind"] == "attributes" and "Smiling" in status["names"]
    examples = client.get("/api/examples").get_json()["examples"]
    assert len(examples) == 4 and from_uri(examples[0]["image"]).shape == (8, 8, 3)
    assert client.get("/api/info").get_json()["alignment"].startswith("faces aligned on the eyes")
    # align auto = eyes for celeba: a portrait is aligned, a photo without a face is centre-cropped.
    face = upload(client, read_file(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), "gh.jpg")
    assert face.get_json()["alignment"] == "aligned on the eyes, as the original's FaceAligner"
    other = upload(client, read_file(samples("imagenet")[0][0]), "x.jpg").get_json()
    assert other["alignment"].startswith("centre crop (")
    edited = post(client, "/api/manipulate", {"image": face.get_json()["image"], "alphas": {"Smiling": 1}})
    assert edited.status_code == 200 and edited.get_json()["image"] != face.get_json()["reconstruction"]


def test_models_without_classes_or_attributes_have_no_sliders_and_say_so(tmp_path_factory):
    logdir, _, _ = celeba_logdir(tmp_path_factory, with_attr=False)
    model, hps, prefix = load_model(logdir)
    demo = server.build(model, hps, prefix, checkpoint=logdir, align="centre")
    assert demo.job is None
    client = server.create_app(demo).test_client()
    status = client.get("/api/directions").get_json()
    assert status["state"] == "none" and "neither classes nor CelebA attributes" in status["message"]
    assert len(client.get("/api/examples").get_json()["examples"]) == 4
    photo = upload(client, read_file(samples("imagenet")[1][0]), "x.jpg").get_json()
    assert "this model has no directions" in error_of(post(client, "/api/manipulate", {"image": photo["image"]}), 409)
    assert post(client, "/api/mix", {"a": photo["image"], "b": photo["image"], "alpha": 0.5}).status_code == 200
