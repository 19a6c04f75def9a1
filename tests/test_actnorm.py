import numpy as np
import pytest
import tensorflow as tf

from glow_tf.actnorm import ActNorm, ddi
from tests import flow_checks, reference


def make_actnorm(channels=4, seed=0):
    layer = ActNorm(channels, dtype="float64")
    flow_checks.randomize_weights(layer, scale=0.3, seed=seed)
    return layer


def test_actnorm_inverts_with_the_jacobians_logdet():
    flow_checks.assert_flow_contract(make_actnorm(), flow_checks.random_input())


def test_actnorm_matches_reference_with_logs_stored_over_three():
    layer = make_actnorm()
    x = flow_checks.random_input()
    z, logdet = layer(x, tf.zeros([3], tf.float64))
    expected, expected_logdet = reference.actnorm(x.numpy(), layer.b.numpy(), layer.logs.numpy())
    np.testing.assert_allclose(z.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(logdet.numpy(), expected_logdet, rtol=1e-12)


def test_actnorm_ddi_standardizes_output():
    layer = ActNorm(4, dtype="float64")
    x = flow_checks.random_input((8, 3, 5, 4)) * 3.0 + 2.0
    with ddi():
        z, _ = layer(x, tf.zeros([8], tf.float64))
    assert bool(layer.initialized.numpy())
    np.testing.assert_allclose(z.numpy().mean(axis=(0, 1, 2)), 0.0, atol=1e-10)
    np.testing.assert_allclose(z.numpy().std(axis=(0, 1, 2)), 1.0, atol=1e-5)
    b, logs = reference.actnorm_ddi(x.numpy())
    np.testing.assert_allclose(layer.b.numpy(), b, rtol=1e-12)
    np.testing.assert_allclose(layer.logs.numpy(), logs, rtol=1e-12)


def test_actnorm_ddi_happens_once_and_only_inside_the_context():
    layer = ActNorm(4, dtype="float64")
    x = flow_checks.random_input((8, 3, 5, 4))
    layer(x, tf.zeros([8], tf.float64))
    assert not bool(layer.initialized.numpy()) and np.all(layer.b.numpy() == 0)
    with ddi():
        layer(x, tf.zeros([8], tf.float64))
    values = [v.numpy().copy() for v in layer.weights]
    with ddi():
        layer(x * 5.0 + 1.0, tf.zeros([8], tf.float64))
    for before, v in zip(values, layer.weights):
        np.testing.assert_array_equal(before, v.numpy())


def test_actnorm_ddi_refuses_to_run_traced():
    layer = ActNorm(4)
    with ddi(), pytest.raises(RuntimeError, match="eagerly"):
        tf.function(lambda x: layer(x, tf.zeros([2])))(tf.ones([2, 2, 2, 4]))


def test_actnorm_init_survives_checkpoint(tmp_path):
    layer = ActNorm(4, dtype="float64")
    x = flow_checks.random_input((8, 3, 5, 4))
    with ddi():
        layer(x, tf.zeros([8], tf.float64))
    path = tf.train.Checkpoint(layer=layer).save(str(tmp_path / "ckpt"))
    fresh = ActNorm(4, dtype="float64")
    tf.train.Checkpoint(layer=fresh).restore(path).assert_consumed()
    assert bool(fresh.initialized.numpy())
    other = flow_checks.random_input((8, 3, 5, 4), seed=7)
    with ddi():  # restored layers are initialised: DDI must not touch them again
        a = fresh(other, tf.zeros([8], tf.float64))[0]
    np.testing.assert_array_equal(a.numpy(), layer(other, tf.zeros([8], tf.float64))[0].numpy())
