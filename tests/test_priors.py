import numpy as np
import tensorflow as tf

from glow_tf.priors import Classifier, TopPrior
from tests import flow_checks, reference


def make_prior(learntop=True, ycond=True, n_y=3):
    prior = TopPrior((2, 3, 4), learntop=learntop, ycond=ycond, n_y=n_y, dtype="float64")
    flow_checks.randomize_weights(prior, scale=0.2)
    return prior


def test_top_prior_without_options_is_standard_normal():
    prior = TopPrior((2, 3, 4), dtype="float64")
    assert prior.trainable_variables == []
    z = flow_checks.random_input((3, 2, 3, 4))
    logp, eps = prior.log_prob(z, tf.zeros([3, 1], tf.float64))
    np.testing.assert_allclose(logp.numpy(), reference.flat_sum(reference.gaussian_logp(z.numpy(), 0, 0)))
    np.testing.assert_array_equal(eps.numpy(), z.numpy())


def test_top_prior_matches_reference_halves():
    prior = make_prior()
    z = flow_checks.random_input((3, 2, 3, 4))
    y_onehot = np.eye(3)[[0, 2, 1]]
    logp, eps = prior.log_prob(z, tf.constant(y_onehot))
    exp_logp, exp_eps = reference.top_prior(prior, z.numpy(), y_onehot)
    np.testing.assert_allclose(logp.numpy(), exp_logp, rtol=1e-10)
    np.testing.assert_allclose(eps.numpy(), exp_eps, rtol=1e-10)


def test_learntop_is_border_aware():
    prior = TopPrior((4, 4, 2), learntop=True, dtype="float64")
    flow_checks.randomize_weights(prior, scale=0.3)
    mean, logs = prior.mean_logs(tf.zeros([1, 1], tf.float64))
    m = mean.numpy()[0, :, :, 0]
    assert m[1, 1] == m[2, 2] == m[1, 2]  # interior positions see only zeros
    assert not np.isclose(m[0, 0], m[1, 1])  # the edge-pad channel reaches the border


def test_ycond_prior_depends_on_the_label():
    prior = make_prior(learntop=False)
    y = tf.constant(np.eye(3)[[0, 1]])
    mean, _ = prior.mean_logs(y)
    assert not np.allclose(mean.numpy()[0], mean.numpy()[1])


def test_sample_at_temperature_zero_is_the_mean():
    prior = make_prior()
    y = tf.constant(np.eye(3)[[0, 1]])
    mean, _ = prior.mean_logs(y)
    np.testing.assert_allclose(prior.sample(y, temperature=tf.zeros([2], tf.float64)).numpy(), mean.numpy())


def test_classifier_bits_and_error_match_reference():
    head = Classifier(4, 3, dtype="float64")
    flow_checks.randomize_weights(head, scale=0.5)
    z = flow_checks.random_input((5, 2, 3, 4))
    y = np.array([0, 1, 2, 1, 0])
    bits_y, error = head(z, tf.constant(y))
    logits = reference.linear_zeros(z.numpy().mean(axis=(1, 2)), head.logits.W.numpy(), head.logits.b.numpy(),
                                    head.logits.logs.numpy())
    log_softmax = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    np.testing.assert_allclose(bits_y.numpy(), -log_softmax[np.arange(5), y] / np.log(2), rtol=1e-10)
    np.testing.assert_array_equal(error.numpy(), (logits.argmax(1) != y).astype(float))
