"""Shared assertions for flow layers: round trip and log-determinant against autodiff, eager and traced."""

import numpy as np
import tensorflow as tf

MODES = ("eager", "function")


def maybe_traced(fn, mode):
    return tf.function(fn) if mode == "function" else fn


def randomize_weights(layer, scale=0.1, seed=0):
    """Perturb every trainable weight, so zero-initialised layers (zero convs, ActNorm) stop being trivial."""
    rng = np.random.default_rng(seed)
    for v in layer.trainable_variables:
        v.assign(v.numpy() + scale * rng.standard_normal(v.shape).astype(v.dtype))


def random_input(shape=(3, 2, 3, 4), dtype=np.float64, seed=1):
    """Distinct examples, H != W, so per-example and H*W mistakes show."""
    return tf.constant(np.random.default_rng(seed).standard_normal(shape), dtype=dtype)


def assert_round_trip(layer, x, mode="eager", atol=1e-6):
    """reverse(call(x, 0)) == (x, 0), and the layer is not the identity."""
    logdet0 = tf.zeros([x.shape[0]], x.dtype)
    z, logdet = maybe_traced(lambda a, b: layer(a, b), mode)(x, logdet0)
    x2, logdet2 = maybe_traced(lambda a, b: layer.reverse(a, b), mode)(z, logdet)
    np.testing.assert_allclose(x2.numpy(), x.numpy(), atol=atol, rtol=0)
    np.testing.assert_allclose(logdet2.numpy(), 0.0, atol=atol)
    assert not np.allclose(z.numpy(), x.numpy()), "the layer left its input unchanged"
    return z, logdet


def jacobian_logdet(fn, x):
    """log|det dz/dx| per example from an autodiff Jacobian, for fn: [B, ...] -> [B, ...]."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        z = fn(x)
    jac = tape.batch_jacobian(z, x)
    d = int(np.prod(x.shape[1:]))
    return tf.linalg.slogdet(tf.reshape(jac, [x.shape[0], d, d]))[1].numpy()


def assert_logdet_matches_jacobian(layer, x, mode="eager", rtol=1e-7, atol=1e-8):
    """The layer's logdet equals slogdet of the float64 autodiff Jacobian, example by example."""
    assert x.dtype == tf.float64
    logdet0 = tf.zeros([x.shape[0]], x.dtype)
    _, logdet = maybe_traced(lambda a, b: layer(a, b), mode)(x, logdet0)
    expected = jacobian_logdet(lambda a: layer(a, logdet0)[0], x)
    np.testing.assert_allclose(logdet.numpy(), expected, rtol=rtol, atol=atol)
    return expected


def assert_flow_contract(layer, x):
    """The layer contract, eagerly and traced: reverse inverts call, and call's log-det is the float64
    autodiff Jacobian's. Returns the Jacobian log-dets, for the caller's check that they are not trivial."""
    for mode in MODES:
        assert_round_trip(layer, x, mode)
        expected = assert_logdet_matches_jacobian(layer, x, mode)
    return expected
