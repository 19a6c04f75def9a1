import numpy as np
import pytest
import tensorflow as tf

from glow_tf.multiscale import Split2d
from tests import flow_checks, reference


def make_split(channels=8):
    split = Split2d(channels, dtype="float64")
    flow_checks.randomize_weights(split, scale=0.2)  # the prior conv starts at zero
    return split


@pytest.mark.parametrize("mode", flow_checks.MODES)
def test_split2d_round_trip_with_eps(mode):
    split = make_split()
    z = flow_checks.random_input((3, 4, 6, 8))
    z1, objective, eps = flow_checks.maybe_traced(lambda a, b: split(a, b), mode)(z, tf.zeros([3], tf.float64))
    assert z1.shape == (3, 2, 3, 16) and eps.shape == (3, 4, 6, 4)
    back = flow_checks.maybe_traced(lambda a, e: split.reverse(a, eps=e), mode)(z1, eps)
    np.testing.assert_allclose(back.numpy(), z.numpy(), atol=1e-12)


def test_split2d_matches_reference_interleaved_prior():
    split = make_split()
    z = flow_checks.random_input((3, 4, 6, 8))
    z1, objective, eps = split(z, tf.zeros([3], tf.float64))
    exp_z1, exp_logp, exp_eps = reference.split2d(split, z.numpy())
    np.testing.assert_allclose(z1.numpy(), exp_z1, rtol=1e-12)
    np.testing.assert_allclose(objective.numpy(), exp_logp, rtol=1e-10)
    np.testing.assert_allclose(eps.numpy(), exp_eps, rtol=1e-10)


def test_split2d_logp_equals_change_of_variables_to_eps():
    """log p(z2|z1) = log N(eps; 0, I) + log|d eps / d z2|, with the Jacobian from autodiff."""
    split = make_split(4)
    z = flow_checks.random_input((3, 2, 4, 4))
    _, objective, eps = split(z, tf.zeros([3], tf.float64))
    z1 = z[..., :2]

    def to_eps(z2):
        return split(tf.concat([z1, z2], -1), tf.zeros([3], tf.float64))[2]

    logdet = flow_checks.jacobian_logdet(to_eps, z[..., 2:])
    std_normal = reference.flat_sum(reference.gaussian_logp(eps.numpy(), 0.0, 0.0))
    np.testing.assert_allclose(objective.numpy(), std_normal + logdet, rtol=1e-9)


def test_split2d_samples_at_temperature_zero_are_the_prior_mean():
    split = make_split()
    z1 = flow_checks.random_input((2, 2, 3, 16))
    a = split.reverse(z1, temperature=tf.zeros([2], tf.float64))
    b = split.reverse(z1, temperature=tf.zeros([2], tf.float64))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    c = split.reverse(z1, temperature=tf.constant([0.0, 1.0], tf.float64))
    np.testing.assert_array_equal(c.numpy()[0], a.numpy()[0])
    assert not np.allclose(c.numpy()[1], a.numpy()[1])


def test_split2d_rejects_odd_channels():
    with pytest.raises(ValueError, match="odd channel count 5"):
        Split2d(5)
