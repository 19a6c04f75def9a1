"""glow_tf.nn against the NumPy transcriptions of openai/glow tfops.py in tests/reference.py
(add_edge_padding, conv2d, conv2d_zeros, linear_zeros), which convolve kernel offset by kernel offset and
are independent of the layers' own arithmetic (which splits the border channel off, folds the actnorm
into the kernel, and runs 1x1 convolutions as matmuls)."""

import numpy as np
import pytest
import tensorflow as tf

from glow_tf import nn
from glow_tf.actnorm import ddi
from tests import flow_checks
from tests import reference as ref


def values(layer):
    return {v.path.split("/")[-1]: v.numpy().astype(np.float64) for v in layer.weights}


# ------------------------------------------------------------------------------------------ tests
def test_add_edge_padding_channel_is_one_on_the_padding_only():
    padded = ref.edge_pad(np.zeros([1, 2, 3, 1]), [3, 3])
    assert padded.shape == (1, 4, 5, 2)
    np.testing.assert_array_equal(padded[0, :, :, 1], nn.ops.edge_indicator(2, 3, tf.float64).numpy()[0, :, :, 0])


@pytest.mark.parametrize("kernel_size", [1, 3])
@pytest.mark.parametrize("relu", [False, True])
def test_conv2d_matches_tfops_conv2d(kernel_size, relu):
    rng = np.random.default_rng(kernel_size)
    layer = nn.Conv2D(3, 5, kernel_size, rng=rng, relu=relu, dtype="float64")
    flow_checks.randomize_weights(layer, scale=0.3)
    x = rng.standard_normal((2, 4, 6, 3))
    w = layer.W.numpy()
    assert w.shape == (kernel_size, kernel_size, 3 + (kernel_size == 3), 5)
    expected = ref.conv2d(x, w, layer.actnorm.b.numpy(), layer.actnorm.logs.numpy())
    if relu:
        expected = np.maximum(expected, 0.0)
        assert (expected == 0).any() and (expected > 0).any()
    for mode in flow_checks.MODES:
        got = flow_checks.maybe_traced(layer, mode)(tf.constant(x)).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_conv2d_border_outputs_depend_on_the_edge_channel():
    # Without the edge channel the border outputs would differ: its weights must reach the output.
    rng = np.random.default_rng(0)
    layer = nn.Conv2D(2, 3, 3, rng=rng, dtype="float64")
    flow_checks.randomize_weights(layer, scale=0.3)
    x = rng.standard_normal((1, 3, 4, 2))
    with_edge = layer(tf.constant(x)).numpy()
    w = layer.W.numpy().copy()
    w[:, :, 2:] = 0.0
    layer.W.assign(w)
    without = layer(tf.constant(x)).numpy()
    np.testing.assert_allclose(with_edge[:, 1:-1, 1:-1], without[:, 1:-1, 1:-1], rtol=1e-12)
    assert np.abs(with_edge - without)[:, 0].min() > 0


def test_conv2d_data_dependent_init_normalises_its_output():
    rng = np.random.default_rng(1)
    layer = nn.Conv2D(3, 4, 3, rng=rng, dtype="float64")
    x = tf.constant(rng.standard_normal((8, 5, 5, 3)) * 3.0 + 1.0)
    with ddi():
        out = layer(x).numpy()
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0.0, atol=1e-10)
    np.testing.assert_allclose(out.std(axis=(0, 1, 2)), 1.0, rtol=1e-5)
    # After init the folded path computes the same values from the assigned actnorm.
    np.testing.assert_allclose(layer(x).numpy(), out, rtol=1e-10, atol=1e-12)


def test_conv2d_computes_in_its_input_dtype():
    rng = np.random.default_rng(2)
    layer = nn.Conv2D(3, 4, 3, rng=rng)
    flow_checks.randomize_weights(layer, scale=0.1)
    x = rng.standard_normal((2, 4, 4, 3)).astype(np.float32)
    exact = layer(tf.constant(x)).numpy()
    low = layer(tf.constant(x, tf.bfloat16))
    assert low.dtype == tf.bfloat16 and layer.W.dtype == "float32"
    assert 0 < np.abs(low.numpy().astype(np.float32) - exact).max() < 0.1 * np.abs(exact).max()


def test_conv2d_zeros_matches_tfops_conv2d_zeros():
    rng = np.random.default_rng(3)
    layer = nn.Conv2DZeros(4, 6, dtype="float64")
    assert not np.any(layer(tf.constant(rng.standard_normal((1, 3, 3, 4)))).numpy())  # zero-initialised
    flow_checks.randomize_weights(layer, scale=0.3)
    p = values(layer)
    assert p["W"].shape == (3, 3, 5, 6) and p["b"].shape == (1, 1, 1, 6) and p["logs"].shape == (1, 6)
    x = rng.standard_normal((2, 3, 5, 4))
    expected = ref.conv2d_zeros(x, p["W"], p["b"], p["logs"])
    for mode in flow_checks.MODES:
        got = flow_checks.maybe_traced(layer, mode)(tf.constant(x)).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    evens, odds = layer.interleaved_halves(tf.constant(x))
    np.testing.assert_allclose(evens.numpy(), expected[..., 0::2], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(odds.numpy(), expected[..., 1::2], rtol=1e-10, atol=1e-12)


def test_conv2d_zeros_on_zeros_is_a_learned_border_aware_map():
    # The learned top prior: conv2d_zeros of an all-zero input differs between border and interior.
    layer = nn.Conv2DZeros(2, 2, dtype="float64")
    flow_checks.randomize_weights(layer, scale=0.5)
    p = values(layer)
    out = layer(tf.zeros([1, 4, 4, 2], tf.float64)).numpy()
    np.testing.assert_allclose(out, ref.conv2d_zeros(np.zeros([1, 4, 4, 2]), p["W"], p["b"], p["logs"]), rtol=1e-12)
    assert not np.allclose(out[0, 0, 0], out[0, 1, 1])
    np.testing.assert_allclose(out[0, 1, 1], out[0, 2, 2], rtol=1e-12)  # the interior sees no border


def test_edge_padded_conv_gradients_match_the_transcription():
    """The kernel gradient reaches the border channel's weights as the padded form's would."""
    rng = np.random.default_rng(4)
    layer = nn.Conv2DZeros(3, 4, dtype="float64")
    flow_checks.randomize_weights(layer, scale=0.3)
    x = tf.constant(rng.standard_normal((2, 3, 4, 3)))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.sin(layer(x)))
    grad_w = tape.gradient(loss, layer.W).numpy()
    p = values(layer)

    def numpy_loss(w):
        return np.sin(ref.conv2d_zeros(x.numpy(), w, p["b"], p["logs"])).sum()

    numeric = np.zeros_like(p["W"])
    for idx in np.ndindex(*p["W"].shape):
        step = np.zeros_like(p["W"])
        step[idx] = 1e-6
        numeric[idx] = (numpy_loss(p["W"] + step) - numpy_loss(p["W"] - step)) / 2e-6
    np.testing.assert_allclose(grad_w, numeric, rtol=1e-5, atol=1e-7)
    assert np.abs(grad_w[:, :, 3]).max() > 0  # the border channel's weights are trained


def test_linear_zeros_matches_tfops_linear_zeros():
    rng = np.random.default_rng(5)
    layer = nn.LinearZeros(5, 3, dtype="float64")
    assert not np.any(layer(tf.constant(rng.standard_normal((2, 5)))).numpy())
    flow_checks.randomize_weights(layer, scale=0.3)
    p = values(layer)
    x = rng.standard_normal((4, 5))
    np.testing.assert_allclose(layer(tf.constant(x)).numpy(), ref.linear_zeros(x, p["W"], p["b"], p["logs"]),
                               rtol=1e-12)


def test_pointwise_is_a_1x1_convolution():
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((5, 7))
    expected = ref.conv_valid(x, w.reshape(1, 1, 5, 7))
    np.testing.assert_allclose(nn.pointwise(tf.constant(x), tf.constant(w)).numpy(), expected, rtol=1e-12)


def test_edge_term_is_the_border_channel_convolved():
    rng = np.random.default_rng(7)
    kernel = rng.standard_normal((3, 3, 1, 4))
    border = ref.edge_pad(np.zeros([1, 3, 5, 0]), [3, 3])  # the padding channel alone
    np.testing.assert_allclose(nn.edge_term(3, 5, tf.constant(kernel)).numpy(), ref.conv_valid(border, kernel),
                               rtol=1e-12)


def test_conv_kernel_size_must_be_the_originals():
    with pytest.raises(ValueError, match="kernel_size=5"):
        nn.Conv2D(3, 4, 5)


def test_bfloat16_coupling_network_convolves_in_bfloat16_throughout():
    # Keras casts a layer's input to the layer's dtype unless told not to; the network's convolutions
    # and the wide activations between them must stay in bfloat16, its output in float32.
    from glow_tf.coupling import CouplingNN

    net = CouplingNN(2, 4, 8, rng=np.random.default_rng(0), conv_dtype="bfloat16")
    graph = tf.function(net.interleaved_halves).get_concrete_function(tf.TensorSpec([2, 4, 4, 2])).graph
    heavy = [op for op in graph.get_operations() if op.type in ("Conv2D", "MatMul")]
    # The border term of the zero conv depends on the weights alone: a float32 matmul of constant patches.
    data = [op for op in heavy if not any(t.op.type == "Const" for t in op.inputs)]
    assert len(heavy) == 4 and len(data) == 3  # 3x3 conv, 1x1 matmul, zero conv; and the border term
    assert all(op.outputs[0].dtype == tf.bfloat16 for op in data), [(op.type, op.outputs[0].dtype) for op in data]
    assert all(t.dtype == tf.float32 for t in graph.outputs)
