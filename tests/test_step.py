"""FlowStep (openai/glow model.py, revnet2d_step): actnorm -> permutation -> coupling, checked as a whole
against float64 autodiff: the inverse, the log-determinant (slogdet of the batch Jacobian) and the
gradients of that log-determinant."""

import numpy as np
import pytest
import tensorflow as tf

from glow_tf.actnorm import ddi
from glow_tf.hparams import AFFINE, INVCONV, INVCONV_LU
from glow_tf.step import FlowStep
from glow_tf.training.optim import tf_variable
from tests import flow_checks

SHAPE = (3, 3, 5, 6)  # H != W, distinct examples


def make_step(permutation, coupling, conv_dtype=None, seed=0):
    """A float64 step after data-dependent init, with every weight moved off its initial value."""
    step = FlowStep(SHAPE[-1], 8, permutation, coupling, rng=np.random.default_rng(seed), conv_dtype=conv_dtype,
                    dtype="float64")
    with ddi():
        step(flow_checks.random_input(SHAPE, seed=seed + 10) * 2.0 + 0.5, tf.zeros([SHAPE[0]], tf.float64))
    flow_checks.randomize_weights(step, scale=0.2, seed=seed)
    return step


@pytest.mark.parametrize("mode", flow_checks.MODES)
@pytest.mark.parametrize("permutation", [0, 1, 2, 3])
@pytest.mark.parametrize("coupling", [0, 1])
def test_step_inverts_and_its_logdet_is_the_jacobians(permutation, coupling, mode):
    step = make_step(permutation, coupling)
    x = flow_checks.random_input(SHAPE)
    flow_checks.assert_round_trip(step, x, mode, atol=1e-10)
    expected = flow_checks.assert_logdet_matches_jacobian(step, x, mode)
    if coupling == AFFINE:
        assert len(set(np.round(expected, 6))) == SHAPE[0], "the affine log-det should differ per example"


def test_step_logdet_accumulates_onto_the_running_total():
    step = make_step(INVCONV, AFFINE)
    x = flow_checks.random_input(SHAPE)
    start = tf.constant([1.0, -2.0, 3.5], tf.float64)
    _, from_zero = step(x, tf.zeros([3], tf.float64))
    _, from_start = step(x, start)
    np.testing.assert_allclose(from_start.numpy(), start.numpy() + from_zero.numpy(), rtol=1e-12)


@pytest.mark.parametrize("permutation", [INVCONV, INVCONV_LU])
def test_logdet_gradient_wrt_the_1x1_conv_is_slogdets(permutation):
    """d logdet / d weights of the step's 1x1 conv, against the same derivative of tf.linalg.slogdet."""
    layer = make_step(permutation, AFFINE).permutation
    x = flow_checks.random_input(SHAPE)
    with tf.GradientTape(persistent=True) as tape:
        total = tf.reduce_sum(layer(x, tf.zeros([3], tf.float64))[1])
        reference = SHAPE[0] * SHAPE[1] * SHAPE[2] * tf.linalg.slogdet(layer.weight_matrix())[1]
    zero = tf.UnconnectedGradients.ZERO  # the LU form's log-det does not depend on L and U
    weights = [tf_variable(v) for v in layer.trainable_variables]
    got = tape.gradient(total, weights, unconnected_gradients=zero)
    expected = tape.gradient(reference, weights, unconnected_gradients=zero)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-9, atol=1e-9)
    assert max(np.abs(e.numpy()).max() for e in expected) > 1.0


def test_logdet_gradient_matches_the_jacobian_logdet_gradient():
    """The gradient of the step's log-det w.r.t. every weight equals that of slogdet(Jacobian)."""
    step = make_step(INVCONV, AFFINE, seed=3)
    x = flow_checks.random_input(SHAPE[:1] + (2, 3, SHAPE[-1]), seed=4)
    weights = step.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        _, logdet = step(x, tf.zeros([3], tf.float64))
        total = tf.reduce_sum(logdet)
        with tf.GradientTape() as inner:
            inner.watch(x)
            z = step(x, tf.zeros([3], tf.float64))[0]
        jac = inner.batch_jacobian(z, x)
        d = int(np.prod(x.shape[1:]))
        reference = tf.reduce_sum(tf.linalg.slogdet(tf.reshape(jac, [3, d, d]))[1])
    got, expected = tape.gradient(total, weights), tape.gradient(reference, weights)
    nonzero = 0
    for var, g, e in zip(weights, got, expected):
        e = np.zeros(var.shape) if e is None else e.numpy()
        g = np.zeros(var.shape) if g is None else g.numpy()
        np.testing.assert_allclose(g, e, rtol=1e-7, atol=1e-9, err_msg=var.path)
        nonzero += np.abs(e).max() > 1e-6
    assert nonzero >= 5  # actnorm logs, 1x1 conv, and the coupling network's weights all matter


@pytest.mark.parametrize("coupling", [0, 1])
def test_bfloat16_network_keeps_the_step_exactly_invertible(coupling):
    step = make_step(INVCONV, coupling, conv_dtype="bfloat16")
    x = flow_checks.random_input(SHAPE)
    flow_checks.assert_round_trip(step, x, "function", atol=1e-10)
    flow_checks.assert_logdet_matches_jacobian(step, x)


def test_checkpointed_step_has_the_same_gradients():
    step = make_step(INVCONV, AFFINE)
    x = flow_checks.random_input(SHAPE)

    def grads(fn):
        with tf.GradientTape() as tape:
            z, logdet = fn(x, tf.zeros([3], tf.float64))
            loss = tf.reduce_sum(z ** 2) - tf.reduce_sum(logdet)
        return tape.gradient(loss, step.trainable_variables)

    plain = grads(step)
    recomputed = tf.function(lambda: grads(tf.recompute_grad(step)))()
    for a, b in zip(plain, recomputed):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-10, atol=1e-12)
