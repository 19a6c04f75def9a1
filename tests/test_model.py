import dataclasses
import math

import numpy as np
import pytest
import tensorflow as tf

from glow_tf import Glow, HParams, presets
from glow_tf import hparams as H
from tests import flow_checks, images, reference


def tiny(**overrides):
    return dataclasses.replace(presets.tiny(), **overrides)


def make_model(hps, dtype=None, seed=0, scale=0.05):
    model = Glow(hps, dtype=dtype) if dtype else Glow(hps)
    flow_checks.randomize_weights(model, scale=scale, seed=seed)  # zero convs would hide wiring mistakes
    return model


def continuous_input(hps, batch=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (batch, *hps.image_shape)).astype(np.uint8)
    return reference.preprocess(x, hps.n_bits_x) + rng.uniform(0, 1.0 / hps.n_bins, x.shape)


@pytest.mark.parametrize("permutation", [0, 1, 2, 3])
@pytest.mark.parametrize("coupling", [0, 1])
def test_objective_matches_numpy_transcription(permutation, coupling):
    hps = tiny(flow_permutation=permutation, flow_coupling=coupling, ycond=True, n_y=3, n_bits_x=5)
    model = make_model(hps, dtype="float64")
    x = continuous_input(hps)
    y = np.array([0, 2, 1])
    z, objective, eps = model.encoder(tf.constant(x), tf.constant(y, tf.int32))
    exp_objective, exp_z, exp_eps = reference.glow_objective(model, x, y)
    np.testing.assert_allclose(objective.numpy(), exp_objective, rtol=1e-9)
    np.testing.assert_allclose(z.numpy(), exp_z, rtol=1e-9, atol=1e-12)
    assert [e.shape for e in eps] == [(3, *s) for s in model.eps_shapes]
    for e, exp in zip(eps, exp_eps):
        np.testing.assert_allclose(e.numpy(), exp, rtol=1e-8, atol=1e-10)


def test_bits_x_follows_the_original_formula():
    hps = tiny(n_bits_x=5)
    model = make_model(hps, dtype="float64")
    x_uint8 = np.random.default_rng(1).integers(0, 256, (3, *hps.image_shape)).astype(np.uint8)
    fixed = continuous_input(hps)
    model.dequantize = lambda x, seed=None: tf.constant(fixed)  # pin the dequantisation noise
    bits = model.objective_terms(tf.constant(x_uint8), training=False)["bits_x"].numpy()
    objective = reference.glow_objective(model, fixed, np.zeros(3, int))[0]
    d = np.prod(hps.image_shape)
    np.testing.assert_allclose(bits, -objective / (d * math.log(2)), rtol=1e-10)
    # The -log(n_bins) * D term: bits are per subpixel of the 5-bit image.
    assert np.all(np.abs(bits - 5.0) < 3.0)


def test_dequantisation_noise_is_fresh_every_pass():
    model = make_model(tiny())
    x = images.cifar10_samples(4)[:, ::4, ::4]
    a, b = model.bits_x(x).numpy(), model.bits_x(x).numpy()
    assert a.shape == (4,) and np.all(np.isfinite(a)) and not np.array_equal(a, b)


def test_seeded_dequantisation_noise_is_a_function_of_the_seed():
    model = make_model(tiny(n_bits_x=5))
    x = tf.constant(images.cifar10_samples(4)[:, ::4, ::4])
    seed = tf.constant([3, 17], tf.int64)
    a, b = model.dequantize(x, seed).numpy(), model.dequantize(x, seed).numpy()
    other = model.dequantize(x, tf.constant([3, 18], tf.int64)).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, other)
    noise = a - (np.floor(x.numpy() / 8) / 32 - 0.5)  # spec: x // 2^(8 - n_bits) / n_bins - 0.5
    assert noise.min() >= 0 and noise.max() < 1 / 32 and abs(noise.mean() - 1 / 64) < 2e-3


def assert_reconstructs(model, x):
    """decode(encode(x)) == x, up to float32 round-off.

    The continuous reconstruction error must be a tiny fraction of a bin. A pixel can then still land
    one level off only when its dequantisation noise fell within that error of a bin edge, which
    happens for about err * n_bins of the pixels, so allow exactly that.
    """
    hps = model.hps
    xc = model.dequantize(tf.constant(x))
    y = tf.zeros([x.shape[0]], tf.int32)
    err = np.abs(model.decoder(y, eps=model.encoder(xc, y)[2]).numpy() - xc.numpy()).max()
    assert err < 1e-3 / hps.n_bins, f"reconstruction error {err} is not small against a bin"
    z = model.encode(x)
    assert z.shape == (x.shape[0], int(np.prod(x.shape[1:]))) and z.dtype == tf.float32
    shift = 8 - hps.n_bits_x
    diff = np.abs(model.decode(z).numpy().astype(int) - ((x >> shift) << shift))
    assert diff.max() <= 2 ** shift and diff.astype(bool).mean() < 1e-3


@pytest.mark.parametrize("n_bits_x", [8, 5])
def test_decode_inverts_encode_on_real_cifar10_images(n_bits_x):
    hps = HParams(image_size=32, n_levels=3, depth=2, width=16, flow_coupling=1, learntop=True,
                  n_bits_x=n_bits_x)
    x = images.cifar10_samples(8)
    model = Glow(hps)
    model.initialize(x)
    flow_checks.randomize_weights(model, scale=0.02)
    assert_reconstructs(model, x)


def test_decode_inverts_encode_on_real_imagenet_photos_64px():
    hps = HParams(image_size=64, n_levels=4, depth=1, width=8, flow_coupling=0, flow_permutation=3,
                  learntop=True)
    x = images.imagenet_samples(64, 6)
    model = Glow(hps)
    model.initialize(x)
    assert_reconstructs(model, x)


def test_initialize_standardizes_every_actnorm_and_runs_once():
    hps = tiny()
    model = Glow(hps)
    assert not model.initialized
    x = images.cifar10_samples(16)[:, ::4, ::4]
    model.initialize(x)
    assert model.initialized
    first = model.levels[0].flows[0].actnorm
    b = first.b.numpy().copy()
    model.initialize(x[::-1] // 2)
    np.testing.assert_array_equal(first.b.numpy(), b)


def test_sample_is_deterministic_at_temperature_zero():
    model = make_model(tiny(), scale=0.02)
    s1, s2 = model.sample(4, temperature=0.0).numpy(), model.sample(4, temperature=0.0).numpy()
    assert s1.shape == (4, 8, 8, 3) and s1.dtype == np.uint8
    np.testing.assert_array_equal(s1, s2)
    mixed = model.sample(4, temperature=tf.constant([0.0, 0.0, 1.0, 1.0])).numpy()
    np.testing.assert_array_equal(mixed[:2], s1[:2])
    assert not np.array_equal(model.sample(4, temperature=1.0).numpy(), model.sample(4, temperature=1.0).numpy())


def test_sample_with_labels_for_ycond_models():
    model = make_model(tiny(ycond=True, n_y=3), scale=0.02)
    flow_checks.randomize_weights(model.prior.y_emb, scale=0.5)
    s = model.sample(3, temperature=0.0, y=[0, 1, 2]).numpy()
    assert not np.array_equal(s[0], s[1])


@pytest.mark.parametrize("traced", [False, True])
def test_gradient_checkpointing_gives_the_plain_gradients(traced):
    hps = tiny(depth=3)
    model = make_model(hps)
    x = tf.constant(continuous_input(hps, batch=4), tf.float32)
    y = tf.zeros([4], tf.int32)

    def grads(checkpoint):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(model.encoder(x, y, checkpoint=checkpoint)[1])
        return tape.gradient(loss, model.trainable_variables)

    fn = tf.function(grads) if traced else grads
    plain, recomputed = fn(False), fn(True)
    assert all(g is not None for g in recomputed)
    for a, b in zip(plain, recomputed):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6)


def test_classifier_loss_enters_only_with_ycond_and_weight_y():
    x = images.cifar10_samples(4)[:, ::4, ::4]
    plain = make_model(tiny()).objective_terms(x, training=False)
    np.testing.assert_array_equal(plain["bits_y"].numpy(), 0.0)
    np.testing.assert_array_equal(plain["pred_loss"].numpy(), 1.0)
    model = make_model(tiny(ycond=True, n_y=10, weight_y=0.5))
    terms = model.objective_terms(x, y=[3, 8, 8, 0], training=False)
    assert np.all(terms["bits_y"].numpy() > 0)
    np.testing.assert_allclose(terms["loss"].numpy(), terms["bits_x"].numpy() + 0.5 * terms["bits_y"].numpy(),
                               rtol=1e-6)


def test_checkpoint_restores_an_identical_model(tmp_path):
    hps = tiny()
    model = make_model(hps)
    model.initialize(images.cifar10_samples(8)[:, ::4, ::4])
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    other = Glow(dataclasses.replace(hps, seed=11))
    tf.train.Checkpoint(model=other).restore(path).assert_consumed()
    assert other.initialized
    fixed = tf.constant(continuous_input(hps), tf.float32)
    y = tf.zeros([3], tf.int32)
    np.testing.assert_array_equal(model.encoder(fixed, y)[1].numpy(), other.encoder(fixed, y)[1].numpy())


def independent_param_count(hps):
    """Trainable parameters from the original's weight shapes (openai/glow model.py revnet2d_step, f_,
    split2d_prior, prior; tfops.py actnorm, conv2d, conv2d_zeros), counted without the model."""
    h, w, c = hps.image_shape
    c, total = 4 * c, 0
    width = hps.width
    for level in range(hps.n_levels):
        n_out = c if hps.flow_coupling == H.AFFINE else c // 2
        step = 2 * c  # actnorm b, logs
        step += {H.REVERSE: 0, H.SHUFFLE: 0, H.INVCONV: c * c, H.INVCONV_LU: 2 * c * c + c}[hps.flow_permutation]
        step += 9 * (c // 2 + 1) * width + 2 * width  # l_1 (edge pad channel) + its actnorm
        step += width * width + 2 * width  # l_2 (1x1) + its actnorm
        step += 9 * (width + 1) * n_out + 2 * n_out  # l_last W, b, logs
        total += hps.depth * step
        if level < hps.n_levels - 1:
            total += 9 * (c // 2 + 1) * c + 2 * c  # split prior conv2d_zeros
            c *= 2
    if hps.learntop:
        total += 9 * (2 * c + 1) * 2 * c + 4 * c
    return total


def model_param_count(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_variables)


@pytest.mark.parametrize("preset,millions", [("cifar10", 44), ("celeba256", 170)])
def test_preset_parameter_counts_match_the_paper(preset, millions):
    hps = presets.PRESETS[preset]()
    expected = independent_param_count(hps)
    assert abs(expected / 1e6 - millions) / millions < 0.05  # about 44M (CIFAR-10) and 170M (CelebA-HQ 256x256)
    assert model_param_count(Glow(hps)) == expected


def test_lu_variant_stores_L_U_and_log_S_per_step():
    a, b = Glow(tiny(flow_permutation=2)), Glow(tiny(flow_permutation=3))
    # W (c*c) becomes L and U (c*c each, masked in use) plus log_S (c); tiny has c = 12, 24, depth 2.
    assert model_param_count(b) - model_param_count(a) == 2 * (12 * 12 + 12 + 24 * 24 + 24)
    assert model_param_count(b) == independent_param_count(tiny(flow_permutation=3))


def test_bad_images_are_rejected_with_a_clear_error():
    model = Glow(tiny())
    with pytest.raises(ValueError, match="uint8.*float32"):
        model.bits_x(np.zeros([2, 8, 8, 3], np.float32))
    with pytest.raises(ValueError, match=r"\(16, 16, 3\).*\(8, 8, 3\)"):
        model.bits_x(np.zeros([2, 16, 16, 3], np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        model.initialize(np.zeros([2, 8, 8, 3], np.int32))
    with pytest.raises(ValueError, match=r"\[B, 192\]"):
        model.decode(np.zeros([2, 100], np.float32))


def test_bfloat16_networks_keep_the_model_invertible_and_close():
    # The dequantisation noise decides which few subpixels land next to a bin edge: seeded, so that the
    # outcome does not depend on which tests ran before in the same process.
    tf.keras.utils.set_random_seed(0)
    x = images.cifar10_samples(8)[:, ::4, ::4]
    exact, fast = Glow(tiny()), Glow(tiny(nn_dtype="bfloat16"))
    exact.initialize(x)
    for a, b in zip(fast.weights, exact.weights):
        a.assign(b)
    flow_checks.randomize_weights(exact, scale=0.02)
    for a, b in zip(fast.weights, exact.weights):
        a.assign(b)
    assert_reconstructs(fast, x)
    fixed = tf.constant(continuous_input(tiny(), batch=8), tf.float32)
    y = tf.zeros([8], tf.int32)
    diff = np.abs(fast.encoder(fixed, y)[1].numpy() - exact.encoder(fixed, y)[1].numpy()) / exact.n_dims
    assert diff.max() < 0.01  # nats per dimension
