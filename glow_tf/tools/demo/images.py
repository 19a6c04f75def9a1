"""Images in and out of the demo: uploads, PNG data URIs, and the crop (or face alignment) to the model.

The original's page sent and received images as base64 PNG data URIs; so does this one. An upload is
prepared as the model's own data was, like the input of every glow_tf tool (data_loaders.images.fit_image:
the problem's colour, a centre square crop, a Lanczos resize, the reader's padding and channels); images
smaller than the model's are refused rather than upscaled.
With face alignment on, the square is instead the original's aligned face (see `align`).
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Optional, Tuple

import numpy as np

from data_loaders.images import fit_image
from glow_tf.errors import ConfigError
from glow_tf.images import to_pil

MAX_UPLOAD_BYTES = 16 * 2 ** 20
# Decoding is what costs memory: a small, highly compressed PNG can hold a gigapixel.
MAX_PIXELS = 50_000_000
UPLOAD_FORMATS = ("PNG", "JPEG")
DATA_URI_PREFIX = "data:image/png;base64,"
ALIGN_MODES = ("auto", "eyes", "centre")
FACE_PROBLEMS = ("celeba",)


def open_upload(data: bytes, name: str):
    """The uploaded bytes as a decoded PIL image in its upright orientation, or a ConfigError saying why not."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise ConfigError(f"{name} is empty")
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ConfigError(f"{name} is not an image (expected a PNG or JPEG file)") from None
    except Image.DecompressionBombError:
        raise ConfigError(f"{name} has far too many pixels to decode (at most {MAX_PIXELS // 10 ** 6} "
                        f"megapixels)") from None
    if img.format not in UPLOAD_FORMATS:
        raise ConfigError(f"{name} is a {img.format} image; upload a PNG or JPEG")
    if img.width * img.height > MAX_PIXELS:
        raise ConfigError(f"{name} is {img.width}x{img.height} ({img.width * img.height / 1e6:.0f} megapixels); "
                        f"the demo decodes at most {MAX_PIXELS // 10 ** 6} megapixels")
    try:
        img.load()  # a truncated or damaged file fails here rather than halfway through the model
        return ImageOps.exif_transpose(img)  # phone photos store their rotation in EXIF
    except (OSError, SyntaxError, ValueError) as err:
        raise ConfigError(f"{name} is a damaged {img.format} file ({err})") from None


def prepare(img, hps, name: str, aligner=None) -> Tuple[np.ndarray, str]:
    """(uint8 [H, W, C] as the model sees it, how it was cropped) for an opened image, prepared the way
    the model's data was (data_loaders.images.fit_image).

    `aligner` is an align.EyeFinder when face alignment is on; without a face and two eyes in the photo
    the centre crop is used and the note says why.
    """
    note = "centre crop"
    if aligner is not None:
        eyes = aligner.find(img)
        if isinstance(eyes, str):
            note = f"centre crop ({eyes})"
        else:
            from glow_tf.tools.demo import align

            aligned = align.warp(img, *eyes)
            return (fit_image(aligned, hps, f"the face in {name}"),
                    "aligned on the eyes, as the original's FaceAligner")
    return fit_image(img, hps, name), note


def align_mode(requested: str, hps) -> str:
    """'eyes' or 'centre': `auto` aligns faces only for models of face data."""
    if requested not in ALIGN_MODES:
        raise ConfigError(f"--align {requested!r}: expected one of {', '.join(ALIGN_MODES)}")
    if requested == "auto":
        return "eyes" if hps.problem in FACE_PROBLEMS else "centre"
    return requested


# ---------------------------------------------------------------------------------------- data URIs
def png_bytes(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    to_pil(image).save(out, format="PNG")
    return out.getvalue()


def data_uri(image: np.ndarray) -> str:
    return DATA_URI_PREFIX + base64.b64encode(png_bytes(image)).decode("ascii")


def from_data_uri(value, image_shape, field: str) -> np.ndarray:
    """uint8 [H, W, C] from a PNG data URI the page got from this server; anything else is refused."""
    from PIL import Image, UnidentifiedImageError

    height, width, channels = image_shape
    if not isinstance(value, str) or not value.startswith(DATA_URI_PREFIX):
        shown = value if not isinstance(value, str) else value[:40] + ("..." if len(value) > 40 else "")
        raise ConfigError(f"{field} must be a PNG data URI ({DATA_URI_PREFIX}...), got {shown!r}")
    try:
        raw = base64.b64decode(value[len(DATA_URI_PREFIX):], validate=True)
        with Image.open(io.BytesIO(raw)) as img:
            if img.format != "PNG":
                raise ConfigError(f"{field} holds a {img.format} image, not a PNG")
            if img.size != (width, height):
                raise ConfigError(f"{field} is {img.width}x{img.height}, but the model takes {width}x{height} "
                                f"(upload the image instead)")
            pixels = np.asarray(img.convert("L" if channels == 1 else "RGB"), np.uint8)
    except ConfigError:
        raise
    except (binascii.Error, UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ConfigError(f"{field} is not a readable base64 PNG ({err})") from None
    return pixels.reshape(height, width, channels)


def eye_finder(mode: str) -> Tuple[Optional[object], str]:
    """(an align.EyeFinder or None, what the page says about alignment) for 'eyes' or 'centre'."""
    if mode == "centre":
        return None, "centre crop (the model's data are not aligned faces; --align eyes turns alignment on)"
    from glow_tf.tools.demo import align

    try:
        return align.EyeFinder(), ("faces aligned on the eyes (OpenCV's Haar cascades), as the original's "
                                   "FaceAligner; centre crop when no face is found")
    except align.AlignmentUnavailable as err:
        return None, f"centre crop ({err})"
