"""The original's Keras `ImageDataGenerator` augmentation for MNIST/CIFAR-10, rebuilt from tf ops (openai/glow
data_loaders/get_mnist_cifar.py, get_data).

dal=1 (the default, used by every CIFAR result of the paper): random shifts of up to ±10% of the height and
width, `nearest` fill, bilinear resampling. dal=2 (CIFAR only) adds what get_mnist_cifar.py enabled there:
horizontal flips, rotations of up to 15 degrees, zoom in [0.9, 1.1] per axis and shear of up to 0.02 degrees
(Keras 2.2's keras_preprocessing reads shear_range in degrees).

ImageDataGenerator is gone from Keras 3, so the affine maps are composed here and applied with
`ImageProjectiveTransformV3`, which resamples like scipy's affine_transform with mode='nearest' and order=1.
Random numbers are stateless and drawn per batch from a seed tensor, so a seed reproduces the stream.
Two details differ from Keras and do not matter for training: the rotation/zoom centre is the exact image
centre ((n-1)/2, where Keras used n/2+0.5), and the random parameters come from TF's generator, not NumPy's.
"""

from __future__ import annotations

import math

import tensorflow as tf

SHIFT = 0.1
ROTATION_DEGREES = 15.0
ZOOM = 0.1
SHEAR_DEGREES = 0.02


def _uniform(seed, batch, limit):
    """U(-limit, limit), one value per example."""
    return tf.random.stateless_uniform([batch], seed=seed, minval=-limit, maxval=limit)


def random_affine(images, seed, *, extra: bool = False):
    """Randomly shift (and, with `extra`, flip, rotate, zoom and shear) float images [B, H, W, C].

    Returns float32 images of the same shape. `seed` is an int [2] tensor. Parameters follow
    ImageDataGenerator.get_random_transform.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    # One independent seed per random parameter.
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=7)
    batch = tf.shape(images)[0]
    height = tf.cast(tf.shape(images)[1], tf.float32)
    width = tf.cast(tf.shape(images)[2], tf.float32)
    # Shifts in pixels, continuous (width_shift_range=0.1 < 1 means a fraction of the size).
    params = dict(ty=_uniform(seeds[0], batch, SHIFT) * height, tx=_uniform(seeds[1], batch, SHIFT) * width)
    if extra:
        params.update(
            theta=_uniform(seeds[2], batch, ROTATION_DEGREES) * (math.pi / 180.0),
            shear=_uniform(seeds[3], batch, SHEAR_DEGREES) * (math.pi / 180.0),
            zy=1.0 + _uniform(seeds[4], batch, ZOOM),
            zx=1.0 + _uniform(seeds[5], batch, ZOOM),
            flip=tf.random.stateless_uniform([batch], seed=seeds[6]) < 0.5)
    return affine(images, **params)


def affine(images, *, ty, tx, theta=None, shear=None, zy=None, zx=None, flip=None):
    """Apply per-example affine maps to float images [B, H, W, C] as Keras' apply_affine_transform.

    All parameters are [B] tensors (None: identity): shifts in pixels, angles in radians, zoom factors,
    and a boolean horizontal flip. The map goes from output pixel to input pixel, as in Keras and in
    ImageProjectiveTransform; pixels outside take the nearest edge value, resampling is bilinear.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    batch = tf.shape(images)[0]
    zeros, ones = tf.zeros([batch]), tf.ones([batch])
    theta = zeros if theta is None else theta
    shear = zeros if shear is None else shear
    zy = ones if zy is None else zy
    zx = ones if zx is None else zx
    # Keras composes rotation @ shift @ shear @ zoom in (row, col) coordinates; written out here in
    # (col=x, row=y) coordinates, the order ImageProjectiveTransform expects.
    cos, sin = tf.cos(theta), tf.sin(theta)
    rotation = _matrix([[cos, sin, zeros], [-sin, cos, zeros]], ones, zeros)
    shift = _matrix([[ones, zeros, tf.cast(tx, tf.float32)], [zeros, ones, tf.cast(ty, tf.float32)]], ones, zeros)
    shear_m = _matrix([[tf.cos(shear), zeros, zeros], [-tf.sin(shear), ones, zeros]], ones, zeros)
    zoom = _matrix([[zx, zeros, zeros], [zeros, zy, zeros]], ones, zeros)
    transform = rotation @ shift @ shear_m @ zoom
    # About the image centre, as Keras' transform_matrix_offset_center.
    cy = (tf.cast(tf.shape(images)[1], tf.float32) - 1.0) / 2.0
    cx = (tf.cast(tf.shape(images)[2], tf.float32) - 1.0) / 2.0
    to_centre = _matrix([[ones, zeros, cx * ones], [zeros, ones, cy * ones]], ones, zeros)
    from_centre = _matrix([[ones, zeros, -cx * ones], [zeros, ones, -cy * ones]], ones, zeros)
    transform = to_centre @ transform @ from_centre  # [B, 3, 3]
    flat = tf.reshape(transform, [batch, 9])[:, :8]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=flat, output_shape=tf.shape(images)[1:3], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="NEAREST")
    if flip is None:
        return out
    # Keras flips after the affine map.
    return tf.where(flip[:, None, None, None], tf.reverse(out, axis=[2]), out)


def _matrix(rows, ones, zeros):
    """[B, 3, 3] affine matrices from two rows of [B] tensors and the fixed last row (0, 0, 1)."""
    rows = [tf.stack(r, axis=-1) for r in rows] + [tf.stack([zeros, zeros, ones], axis=-1)]
    return tf.stack(rows, axis=1)


def box_downsample(images, factor: int):
    """Mean over factor x factor blocks of float images [B, H, W, C] (the original's `downsample`)."""
    if factor == 1:
        return images
    shape = tf.shape(images)
    b, h, w, c = shape[0], shape[1], shape[2], images.shape[-1]
    blocks = tf.reshape(images, [b, h // factor, factor, w // factor, factor, c])
    return tf.reduce_mean(blocks, axis=[2, 4])


def to_uint8(images):
    """Floor and clip float images to uint8, as get_mnist_cifar.py did with the generator's output."""
    return tf.cast(tf.clip_by_value(tf.floor(images), 0.0, 255.0), tf.uint8)
