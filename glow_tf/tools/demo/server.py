"""The demo's web server: one loaded model behind a lock, a JSON API and the static page (Flask).

Endpoints, all answering JSON; images travel as PNG data URIs, as in openai/glow demo/server.py:
    GET  /api/info         the model, the range of every control, how uploads are cropped
    GET  /api/examples     a few of the model's validation images, one per class first
    POST /api/upload       multipart field `image` (PNG or JPEG): the image as the model sees it + its
                           reconstruction decode(encode(x))
    POST /api/reconstruct  {image}: decode(encode(image)) for an image the page already holds
    GET  /api/directions   the directions' progress, then their names
    POST /api/manipulate   {image, alphas: {name: alpha}}: decode(z + sum of alpha * delta_name)
    POST /api/mix          {a, b, alpha}: decode(z_a + alpha * (z_b - z_a)), the original's mix
    POST /api/random       {temperature, seed, n}: decode(temperature * eps), eps ~ N(0, 1) drawn from seed
Bad input (not an image, too large, a value out of range or not a number, an unknown direction) gets
{"error": message} and a 4xx status; an unexpected failure gets a 500 with one generic sentence and a
request id (the message and traceback go to the server's log, under that id), and the server goes on
serving. A decoded image that overflowed (not finite: a trained affine Glow is not invertible far from
its data) comes with {"warning": sentence}, which the page shows. Model calls are serialised by one lock, as the original's were.

Encoding draws its dequantisation noise from a seed that is a hash of the image's pixels, so the same
image always gets the same z and the same reconstruction, however often it is sent. Random samples use
NumPy's generator seeded with `seed`, so a seed names a sample: decode(T * eps) with eps ~ N(0, 1) over
every level is the model's sample at temperature T (0.7 in the original demo).
"""

from __future__ import annotations

import collections
import functools
import hashlib
import math
import os
import secrets
import sys
import threading
import traceback
from typing import Optional

import numpy as np

from glow_common.errors import UserError
from glow_tf.errors import ConfigError
from glow_tf.tools.demo import directions as directions_lib
from glow_tf.tools.demo import images

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
ALPHA_MAX = 1.0  # the original's manipulate_range went from z - delta to z + delta
TEMPERATURE_MAX = 1.0
DEFAULT_TEMPERATURE = 0.7  # the original demo's random samples
MAX_SAMPLES = 16
MAX_SEED = 2 ** 31 - 1
Z_CACHE_SIZE = 512


class ApiError(Exception):
    """A request the demo refuses: `status` is its HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class Demo:
    """One loaded model and everything the endpoints share; model calls hold `lock`."""

    def __init__(self, model, hps, *, checkpoint: str = "", job: Optional[directions_lib.DirectionsJob] = None,
                 no_directions: str = "", example_images=(), examples_note: str = "", aligner=None,
                 align_note: str = "centre crop"):
        self.model, self.hps, self.checkpoint = model, hps, checkpoint
        self.job, self.no_directions = job, no_directions
        self.examples, self.examples_note = list(example_images), examples_note
        self.aligner, self.align_note = aligner, align_note
        self.lock = threading.Lock()
        self._z = collections.OrderedDict()

    def encode(self, image: np.ndarray) -> np.ndarray:
        """Flat eps [D] of one uint8 [H, W, C] image, with noise seeded by the image (cached)."""
        key = hashlib.sha256(np.ascontiguousarray(image, np.uint8).tobytes()).digest()
        with self.lock:
            if key in self._z:
                self._z.move_to_end(key)
                return self._z[key]
            seed = np.frombuffer(key[:8], np.int32)  # stateless_uniform's [2] seed
            z = np.asarray(self.model.encode(image[None], seed=seed))[0]
            self._z[key] = z
            while len(self._z) > Z_CACHE_SIZE:
                self._z.popitem(last=False)
        return z

    def encode_batch(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The model's own encode (fresh noise), for the directions' means."""
        with self.lock:
            return np.asarray(self.model.encode(x, y))

    def decode(self, z: np.ndarray):
        """(uint8 images, finite [B]): finite is False where the decode overflowed (Glow.decode)."""
        z = np.asarray(z, np.float32).reshape(-1, self.model.n_dims)
        with self.lock:
            x, finite = self.model.decode(z, np.zeros([len(z)], np.int32), with_finite=True)
        return np.asarray(x), np.asarray(finite)

    def random(self, n: int, temperature: float, seed: int):
        eps = np.random.default_rng(seed).standard_normal((n, self.model.n_dims), dtype=np.float32)
        return self.decode(temperature * eps)

    def prepare_upload(self, data: bytes, name: str):
        img = images.open_upload(data, name)
        return images.prepare(img, self.hps, name, self.aligner)

    def direction_vectors(self, alphas: dict) -> np.ndarray:
        """sum of alpha * delta over {name: alpha}, once the directions are ready."""
        if self.job is None:
            raise ApiError(409, f"this model has no directions: {self.no_directions}")
        status = self.job.status()
        if status["state"] != "ready":
            if status["state"] == "failed":
                raise ApiError(409, f"the directions could not be computed: {status['message']}")
            raise ApiError(409, f"the directions are still being computed ({status['done']:,} of "
                                f"{status['total']:,} images); the sliders appear when they are ready")
        names = self.job.names
        total = np.zeros(self.model.n_dims, np.float32)
        for name, alpha in alphas.items():
            if name not in names:
                raise ApiError(400, f"unknown direction {name!r}; this model's directions are: {', '.join(names)}")
            total += number(alphas, name, -ALPHA_MAX, ALPHA_MAX, field=f"alpha of {name!r}") * \
                self.job.directions[names.index(name)]
        return total

    def info(self) -> dict:
        hps = self.hps
        return {
            "model": {"checkpoint": self.checkpoint, "problem": hps.problem, "image_shape": list(hps.image_shape),
                      "n_levels": hps.n_levels, "depth": hps.depth, "width": hps.width,
                      "coupling": "affine" if hps.flow_coupling else "additive", "n_bits_x": hps.n_bits_x},
            "limits": {"alpha_max": ALPHA_MAX, "temperature_max": TEMPERATURE_MAX,
                       "default_temperature": DEFAULT_TEMPERATURE, "max_samples": MAX_SAMPLES,
                       "max_seed": MAX_SEED, "max_upload_bytes": images.MAX_UPLOAD_BYTES,
                       "max_pixels": images.MAX_PIXELS},
            "alignment": self.align_note,
        }


# --------------------------------------------------------------------------------------- validation
def number(data: dict, key: str, low: float, high: float, default=None, field: Optional[str] = None) -> float:
    """data[key] as a finite float in [low, high], or an ApiError naming the value and the range."""
    field = field or key
    if key not in data:
        if default is None:
            raise ApiError(400, f"{field} is missing")
        return default
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiError(400, f"{field} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ApiError(400, f"{field} must be a finite number, got {value}")
    if not low <= value <= high:
        raise ApiError(400, f"{field} = {value:g} is out of range: expected {low:g} to {high:g}")
    return float(value)


def integer(data: dict, key: str, low: int, high: int, default: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{key} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ApiError(400, f"{key} = {value} is out of range: expected {low} to {high}")
    return value


def overflow_warning(finite: np.ndarray, what: str) -> Optional[str]:
    """The sentence the page shows when a decode was not finite (else None): what, and why."""
    bad = int((~np.asarray(finite)).sum())
    if not bad:
        return None
    which = what if len(finite) == 1 else f"{bad} of the {len(finite)} {what}"
    return (f"The model could not invert {which}: its decode overflowed to values that are not finite numbers, "
            f"shown black, as a trained affine Glow can for images far from its training data.")


def _body() -> dict:
    from flask import request

    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "expected a JSON object as the request body (Content-Type: application/json)")
    return data


# -------------------------------------------------------------------------------------------- the app
def create_app(demo: Demo):
    from flask import Flask, jsonify, request
    from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

    app = Flask(__name__, static_folder=STATIC, static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = images.MAX_UPLOAD_BYTES
    shape = demo.hps.image_shape

    def image_field(data, key):
        if key not in data:
            raise ApiError(400, f"{key} is missing (a PNG data URI of an image the page shows)")
        return images.from_data_uri(data[key], shape, key)

    @app.errorhandler(ApiError)
    def api_error(err):
        return jsonify(error=err.message), err.status

    @app.errorhandler(UserError)
    def user_error(err):  # bad input of any package (a ConfigError, a DataError, ...): its one line
        return jsonify(error=str(err)), 400

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(err):
        return jsonify(error=f"the upload is larger than the demo's limit of "
                             f"{images.MAX_UPLOAD_BYTES // 2 ** 20} MiB"), 413

    @app.errorhandler(HTTPException)
    def http_error(err):
        return jsonify(error=f"{request.method} {request.path}: {err.name} ({err.description})"), err.code

    @app.errorhandler(Exception)
    def unexpected(err):
        # The message and traceback go to the server's log only: they name files and paths, which a page
        # that --host exposes to the network must not show.
        request_id = secrets.token_hex(4)
        print(f"demo: request {request_id} ({request.method} {request.path}) failed:", file=sys.stderr, flush=True)
        traceback.print_exc()
        return jsonify(error=f"The server failed on this request (request {request_id}; the server's log says "
                             f"why). It goes on serving."), 500

    @app.get("/")
    def index():
        return app.send_static_file("index.html")

    @app.get("/api/info")
    def info():
        return jsonify(demo.info())

    @app.get("/api/examples")
    def examples():
        return jsonify(examples=[{"image": images.data_uri(x), "label": label} for x, label in demo.examples],
                       note=demo.examples_note)

    @app.post("/api/upload")
    def upload():
        upload = request.files.get("image")
        if upload is None:
            raise ApiError(400, "no file in the upload (send a multipart form with the field `image`)")
        name = os.path.basename(upload.filename or "") or "the upload"
        image, note = demo.prepare_upload(upload.read(), name)
        back, finite = demo.decode(demo.encode(image))
        return jsonify(image=images.data_uri(image), reconstruction=images.data_uri(back[0]), alignment=note,
                       name=name, warning=overflow_warning(finite, "this image"))

    @app.post("/api/reconstruct")
    def reconstruct():
        back, finite = demo.decode(demo.encode(image_field(_body(), "image")))
        return jsonify(reconstruction=images.data_uri(back[0]), warning=overflow_warning(finite, "this image"))

    @app.get("/api/directions")
    def directions():
        if demo.job is None:
            return jsonify(state="none", message=demo.no_directions, names=[], done=0, total=0, kind=None)
        return jsonify(demo.job.status())

    @app.post("/api/manipulate")
    def manipulate():
        data = _body()
        image = image_field(data, "image")
        alphas = data.get("alphas", {})
        if not isinstance(alphas, dict):
            raise ApiError(400, f"alphas must be an object of direction name to number, got {alphas!r}")
        shift = demo.direction_vectors(alphas)
        moved, finite = demo.decode(demo.encode(image) + shift)
        return jsonify(image=images.data_uri(moved[0]), warning=overflow_warning(finite, "the manipulated image"))

    @app.post("/api/mix")
    def mix():
        data = _body()
        a, b = image_field(data, "a"), image_field(data, "b")
        alpha = number(data, "alpha", 0.0, 1.0)
        z_a, z_b = demo.encode(a), demo.encode(b)
        mixed, finite = demo.decode(z_a + np.float32(alpha) * (z_b - z_a))
        return jsonify(image=images.data_uri(mixed[0]), warning=overflow_warning(finite, "the mix"))

    @app.post("/api/random")
    def random():
        data = _body()
        temperature = number(data, "temperature", 0.0, TEMPERATURE_MAX, default=DEFAULT_TEMPERATURE)
        seed = integer(data, "seed", 0, MAX_SEED, 0)
        n = integer(data, "n", 1, MAX_SAMPLES, 8)
        samples, finite = demo.random(n, temperature, seed)
        return jsonify(images=[images.data_uri(x) for x in samples], temperature=temperature, seed=seed,
                       warning=overflow_warning(finite, "samples"))

    return app


# ------------------------------------------------------------------------------------------ assembly
def build(model, hps, prefix: str, *, checkpoint: str, ema: bool = False, align: str = "auto",
          n_examples: int = 8, direction_images: int = 10000, get_data=None, start: bool = True) -> Demo:
    """A Demo for a loaded model: examples, alignment, and the directions job (started with `start`)."""
    get_data = functools.lru_cache(maxsize=1)(get_data or directions_lib.read_data)
    try:
        example_images, examples_note = directions_lib.examples(hps, n_examples, get_data), ""
    except ConfigError as err:
        example_images, examples_note = [], f"no examples: {err}"
    aligner, align_note = images.eye_finder(images.align_mode(align, hps))
    no_directions = ""
    if hps.n_classes < 2 and directions_lib.attr_records(hps) is None:
        no_directions = (f"the model's data ({hps.problem}) has neither classes nor CelebA attributes, so there "
                         f"is nothing to move along")
    demo = Demo(model, hps, checkpoint=prefix, no_directions=no_directions, example_images=example_images,
                examples_note=examples_note, aligner=aligner, align_note=align_note)
    if not no_directions:
        demo.job = directions_lib.DirectionsJob(
            hps, demo.encode_batch, directions_lib.cache_path(checkpoint, prefix),
            lambda source: directions_lib.model_key(prefix, ema, source),
            lambda: directions_lib.find_source(hps, direction_images, get_data))
        if start:
            demo.job.start()
    return demo
