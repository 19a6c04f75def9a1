"""Face alignment as in openai/glow demo/align_face.py, with a detector that ships inside its pip package.

The original found 68 dlib landmarks (a model file downloaded separately) and let imutils' FaceAligner
rotate and scale the face so that the eye centres land at (0.371, 0.480) and (0.629, 0.480) of the
output square. Here the eyes come from OpenCV's Haar cascades, which opencv-python-headless (4.x)
installs with the package: the largest frontal face, then one eye in each half of its upper part. The
geometry afterwards is the same similarity transform (rotation, uniform scale, shift).
"""

from __future__ import annotations

import os
import threading
from typing import Tuple, Union

import numpy as np

# Where align_face.py's FaceAligner puts the eye on the image's left (desiredLeftEye); the other eye is
# mirrored to (1 - 0.371, 0.480).
LEFT_EYE = (0.371, 0.480)
# Detection runs on a copy at most this wide and high (the original resized to width 800 first).
DETECT_SIDE = 800
Point = Tuple[float, float]


class AlignmentUnavailable(RuntimeError):
    """OpenCV or its cascade files are missing."""


class EyeFinder:
    """Eye centres of the largest frontal face in a photo."""

    def __init__(self):
        try:
            import cv2
        except ImportError:
            raise AlignmentUnavailable("OpenCV is not installed (pip install opencv-python-headless)") from None
        folder = getattr(getattr(cv2, "data", None), "haarcascades", "")

        def load(name):
            cascade = cv2.CascadeClassifier(os.path.join(folder, name))
            if cascade.empty():
                raise AlignmentUnavailable(f"OpenCV {cv2.__version__} ships no {name} (opencv-python-headless "
                                           f"4.x does; 5.0 dropped the cascade files)")
            return cascade

        self.face = load("haarcascade_frontalface_default.xml")
        # The eyeglasses variant finds more eyes; the plain one is the fallback.
        self.eyes = [load("haarcascade_eye_tree_eyeglasses.xml"), load("haarcascade_eye.xml")]
        # The server handles uploads in several threads; OpenCV does not promise that one classifier
        # may run in two at once.
        self._lock = threading.Lock()

    def find(self, img) -> Union[Tuple[Point, Point], str]:
        """((x, y) of the eye on the image's left, the one on its right) in pixels of `img`, or why not."""
        from PIL import Image

        scale = min(1.0, DETECT_SIDE / max(img.size))
        grey = img.convert("L")
        if scale < 1:
            grey = grey.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                               Image.BILINEAR)
        with self._lock:
            return self._find(np.asarray(grey), scale)

    def _find(self, grey: np.ndarray, scale: float) -> Union[Tuple[Point, Point], str]:
        faces = self.face.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
        if len(faces) == 0:
            return "no face found"
        x, y, w, h = max((tuple(int(v) for v in f) for f in faces), key=lambda f: f[2] * f[3])
        top = grey[y:y + int(0.6 * h), x:x + w]  # the eyes sit in the upper part of the face box
        side = max(8, w // 10)
        for cascade in self.eyes:
            found = cascade.detectMultiScale(top, scaleFactor=1.05, minNeighbors=5, minSize=(side, side))
            halves = ([e for e in found if e[0] + e[2] / 2 < w / 2], [e for e in found if e[0] + e[2] / 2 >= w / 2])
            if halves[0] and halves[1]:
                left, right = (max(half, key=lambda e: e[2] * e[3]) for half in halves)
                # Box centres in continuous pixel coordinates (pixel i spans [i, i + 1)), back at full size.
                return tuple((float(x + e[0] + e[2] / 2) / scale, float(y + e[1] + e[3] / 2) / scale)
                             for e in (left, right))
        return "a face, but not both of its eyes, found"


def warp(img, left: Point, right: Point):
    """The square crop of `img` that puts `left` at LEFT_EYE and `right` at its mirror, at the photo's scale.

    Its side is the eye distance over (1 - 2 * 0.371), so no detail is invented; fit_image then resizes it
    to the model. Pixels outside the photo are black, as with FaceAligner's warpAffine.
    """
    from PIL import Image

    src_l, src_r = complex(*left), complex(*right)
    if abs(src_r - src_l) < 1:
        raise ValueError(f"eye centres {left} and {right} are less than a pixel apart")
    side = max(1, round(abs(src_r - src_l) / (1 - 2 * LEFT_EYE[0])))
    dst_l = complex(LEFT_EYE[0] * side, LEFT_EYE[1] * side)
    dst_r = complex((1 - LEFT_EYE[0]) * side, LEFT_EYE[1] * side)
    # A similarity transform is multiplication by a complex number plus a shift: out = a * in + b.
    a = (dst_r - dst_l) / (src_r - src_l)
    b = dst_l - a * src_l
    # PIL maps each output point back into the input: in = out / a - b / a.
    c, d = 1 / a, -b / a
    coefficients = (c.real, -c.imag, d.real, c.imag, c.real, d.imag)
    return img.transform((side, side), Image.AFFINE, coefficients, resample=Image.BICUBIC)

