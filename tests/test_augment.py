"""data_loaders.augment against NumPy transcriptions of Keras' ImageDataGenerator (openai/glow
data_loaders/get_mnist_cifar.py: width_shift_range=0.1, height_shift_range=0.1, fill_mode 'nearest',
bilinear resampling)."""

import numpy as np
import pytest
import tensorflow as tf

from data_loaders import augment


def shift_reference(image: np.ndarray, ty: float, tx: float) -> np.ndarray:
    """Keras' apply_affine_transform for a pure shift, written out: output pixel (r, c) samples the input
    at (r + ty, c + tx) bilinearly, each of the four neighbours clamped to the image ('nearest' fill)."""
    h, w = image.shape[:2]
    out = np.zeros_like(image, dtype=np.float64)
    for r in range(h):
        for c in range(w):
            y, x = r + ty, c + tx
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            wy, wx = y - y0, x - x0
            for yy, fy in ((y0, 1 - wy), (y0 + 1, wy)):
                for xx, fx in ((x0, 1 - wx), (x0 + 1, wx)):
                    out[r, c] += fy * fx * image[min(max(yy, 0), h - 1), min(max(xx, 0), w - 1)]
    return out


def test_fractional_shifts_match_the_reference_edges_included():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(4, 9, 12, 3)).astype(np.float32)
    ty = np.array([0.5, -1.25, 2.7, -0.9], np.float32)
    tx = np.array([-3.2, 0.0, 1.6, 11.5], np.float32)  # the last one reaches past the edge
    out = augment.affine(images, ty=tf.constant(ty), tx=tf.constant(tx)).numpy()
    for i in range(4):
        np.testing.assert_allclose(out[i], shift_reference(images[i], ty[i], tx[i]), rtol=1e-5, atol=1e-3)


def test_integer_shifts_replicate_the_edge():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, size=(2, 8, 10, 3)).astype(np.float32)
    out = augment.affine(img, ty=tf.constant([2.0, -1.0]), tx=tf.constant([-3.0, 0.0])).numpy()
    for i, (dy, dx) in enumerate([(2, -3), (-1, 0)]):
        rows = np.clip(np.arange(8) + dy, 0, 7)
        cols = np.clip(np.arange(10) + dx, 0, 9)
        np.testing.assert_array_equal(out[i], img[i][rows][:, cols])


def coordinate_images(batch, h, w):
    """Channel 0 holds the row index, channel 1 the column: a bilinear sample then reads the position."""
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    return np.broadcast_to(np.stack([rows, cols], axis=-1), (batch, h, w, 2)).copy()


@pytest.mark.parametrize("h, w", [(32, 32), (28, 20)])
def test_random_shifts_stay_within_ten_percent_and_match_the_reference(h, w):
    images = coordinate_images(64, h, w)
    out = augment.random_affine(images, tf.constant([3, 4], tf.int64)).numpy()
    # Away from the edges the sample position is (r + ty, c + tx): read the shift off the centre pixel.
    ty = out[:, h // 2, w // 2, 0] - h // 2
    tx = out[:, h // 2, w // 2, 1] - w // 2
    assert np.all(np.abs(ty) <= 0.1 * h + 1e-4) and np.all(np.abs(tx) <= 0.1 * w + 1e-4)
    assert np.abs(ty).max() > 0.05 * h and np.abs(tx).max() > 0.05 * w  # the whole range is used
    assert len(np.unique(np.round(ty, 4))) == 64  # one draw per example
    for i in range(0, 64, 9):
        np.testing.assert_allclose(out[i], shift_reference(images[i], ty[i], tx[i]), atol=1e-3)


def test_the_seed_fixes_the_shifts():
    images = coordinate_images(8, 16, 16)
    a, b, c = (augment.random_affine(images, tf.constant(s, tf.int64)).numpy() for s in ([1, 2], [1, 2], [1, 3]))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_rotation_and_flip_follow_keras():
    """Keras rotates by theta with input = R(theta) @ output about the centre: 90 degrees takes output
    (r, c) from input (n-1-c, r), NumPy's clockwise rot90; the flip is horizontal, after the map."""
    img = np.random.default_rng(2).integers(0, 256, size=(1, 7, 7, 3)).astype(np.float32)
    zero = tf.zeros([1])
    rotated = augment.affine(img, ty=zero, tx=zero, theta=tf.constant([np.pi / 2], tf.float32)).numpy()
    np.testing.assert_allclose(rotated[0], np.rot90(img[0], k=-1), atol=1e-3)
    flipped = augment.affine(img, ty=zero, tx=zero, flip=tf.constant([True])).numpy()
    np.testing.assert_array_equal(flipped[0], img[0, :, ::-1])


def test_box_downsample_and_uint8_match_numpy():
    x = np.random.default_rng(3).uniform(-20, 280, size=(2, 8, 8, 3)).astype(np.float32)
    mean = x.reshape(2, 4, 2, 4, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(augment.box_downsample(x, 2).numpy(), mean, rtol=1e-6)
    np.testing.assert_array_equal(augment.to_uint8(x).numpy(), np.clip(np.floor(x), 0, 255).astype(np.uint8))
