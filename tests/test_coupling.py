import numpy as np
import pytest
import tensorflow as tf

from glow_tf.coupling import AdditiveCoupling, AffineCoupling
from glow_tf.nn import Conv2D, Conv2DZeros, LinearZeros
from glow_tf.step import FlowStep, make_coupling
from glow_tf.training.optim import tf_variable
from tests import flow_checks, reference

COUPLINGS = {"additive": AdditiveCoupling, "affine": AffineCoupling}


def make(name, channels=4):
    layer = COUPLINGS[name](channels, width=5, rng=np.random.default_rng(0), dtype="float64")
    flow_checks.randomize_weights(layer, scale=0.2)  # the zero conv would make it the identity
    return layer


@pytest.mark.parametrize("name", sorted(COUPLINGS))
def test_coupling_inverts_with_the_jacobians_logdet(name):
    logdets = flow_checks.assert_flow_contract(make(name), flow_checks.random_input())
    if name == "affine":
        assert len(set(np.round(logdets, 8))) == 3, "examples should have distinct log-dets"


@pytest.mark.parametrize("name", sorted(COUPLINGS))
def test_coupling_matches_reference(name):
    layer = make(name)
    x = flow_checks.random_input((2, 4, 3, 4))
    z, logdet = layer(x, tf.zeros([2], tf.float64))
    expected, expected_logdet = reference.coupling(layer, x.numpy(), affine=name == "affine")
    np.testing.assert_allclose(z.numpy(), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(logdet.numpy(), expected_logdet, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(z.numpy()[..., :2], x.numpy()[..., :2])  # z1 passes unchanged


def test_affine_coupling_at_init_scales_by_sigmoid_two():
    layer = AffineCoupling(4, width=5, rng=np.random.default_rng(0), dtype="float64")
    x = flow_checks.random_input()
    z, logdet = layer(x, tf.zeros([3], tf.float64))
    s = 1.0 / (1.0 + np.exp(-2.0))
    np.testing.assert_allclose(z.numpy()[..., 2:], x.numpy()[..., 2:] * s, rtol=1e-12)
    np.testing.assert_allclose(logdet.numpy(), 2 * 3 * 2 * np.log(s), rtol=1e-12)


@pytest.mark.parametrize("cls", [AdditiveCoupling, AffineCoupling])
def test_coupling_rejects_odd_channels(cls):
    with pytest.raises(ValueError, match="odd channel count 5"):
        cls(5, width=4)


def test_make_coupling_rejects_unknown_code():
    with pytest.raises(ValueError, match="flow_coupling=2"):
        make_coupling(2, 4, 4)


def test_edge_padded_convs_match_reference():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 4))
    conv = Conv2D(4, 6, 3, rng=rng, dtype="float64")
    flow_checks.randomize_weights(conv)
    assert conv.W.shape == (3, 3, 5, 6)  # C_in + 1: the border channel
    expected = reference.actnorm(reference.conv(x, conv.W.numpy()), conv.actnorm.b.numpy(),
                                 conv.actnorm.logs.numpy())[0]
    np.testing.assert_allclose(conv(tf.constant(x)).numpy(), expected, rtol=1e-10)
    pointwise = Conv2D(4, 6, 1, rng=rng, dtype="float64")
    assert pointwise.W.shape == (1, 1, 4, 6)  # no border channel for 1x1
    zeros = Conv2DZeros(4, 6, dtype="float64")
    flow_checks.randomize_weights(zeros)
    assert zeros.logs.shape == (1, 6)
    expected = reference.conv2d_zeros(x, zeros.W.numpy(), zeros.b.numpy(), zeros.logs.numpy())
    np.testing.assert_allclose(zeros(tf.constant(x)).numpy(), expected, rtol=1e-10)
    # The border channel matters: border outputs differ from a plain zero-padded conv.
    plain = tf.nn.conv2d(tf.constant(x), zeros.W.numpy()[:, :, :4], 1, "SAME").numpy()
    assert not np.allclose(zeros(tf.constant(x)).numpy(), (plain + zeros.b.numpy())
                           * np.exp(3 * zeros.logs.numpy().reshape(1, 1, 1, -1)))


def test_linear_zeros_matches_reference():
    layer = LinearZeros(5, 3, dtype="float64")
    flow_checks.randomize_weights(layer)
    x = np.random.default_rng(0).standard_normal((4, 5))
    np.testing.assert_allclose(layer(tf.constant(x)).numpy(),
                               reference.linear_zeros(x, layer.W.numpy(), layer.b.numpy(), layer.logs.numpy()),
                               rtol=1e-12)


def test_conv_weights_are_normal_with_std_005():
    conv = Conv2D(64, 128, 3, rng=np.random.default_rng(0))
    w = conv.W.numpy()
    assert abs(w.mean()) < 2e-3 and abs(w.std() - 0.05) < 1e-3


@pytest.mark.parametrize("mode", flow_checks.MODES)
@pytest.mark.parametrize("permutation", [0, 1, 2, 3])
@pytest.mark.parametrize("coupling", [0, 1])
def test_flow_step_round_trip_and_logdet(permutation, coupling, mode):
    step = FlowStep(4, 5, permutation, coupling, rng=np.random.default_rng(1), dtype="float64")
    flow_checks.randomize_weights(step, scale=0.2)
    x = flow_checks.random_input()
    flow_checks.assert_round_trip(step, x, mode)
    flow_checks.assert_logdet_matches_jacobian(step, x, mode)
    z, logdet = step(x, tf.zeros([3], tf.float64))
    expected, expected_logdet = reference.flow_step(step, x.numpy(), affine=coupling == 1)
    np.testing.assert_allclose(z.numpy(), expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(logdet.numpy(), expected_logdet, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", sorted(COUPLINGS))
def test_coupling_with_bfloat16_network_stays_exactly_invertible(name):
    layer = COUPLINGS[name](4, width=5, rng=np.random.default_rng(0), conv_dtype="bfloat16", dtype="float64")
    flow_checks.randomize_weights(layer, scale=0.2)
    x = flow_checks.random_input()
    flow_checks.assert_round_trip(layer, x, atol=1e-12)
    flow_checks.assert_logdet_matches_jacobian(layer, x)
    exact = COUPLINGS[name](4, width=5, rng=np.random.default_rng(0), dtype="float64")
    for a, b in zip(exact.weights, layer.weights):
        a.assign(b)
    z_bf16 = layer(x, tf.zeros([3], tf.float64))[0].numpy()
    z_exact = exact(x, tf.zeros([3], tf.float64))[0].numpy()
    assert 0 < np.abs(z_bf16 - z_exact).max() < 0.05  # computed in lower precision, close to the exact map


def _ancestors(op):
    seen, stack = set(), [op]
    while stack:
        current = stack.pop()
        for parent in [t.op for t in current.inputs] + list(current.control_inputs):
            if parent.name not in seen:
                seen.add(parent.name)
                stack.append(parent)
    return seen


@pytest.mark.parametrize("direction", ["call", "reverse"])
@pytest.mark.parametrize("coupling", [0, 1])
def test_coupling_kernels_are_read_only_once_the_step_input_exists(coupling, direction):
    # In a graph an op with no data input runs when the graph starts, so without an ordering every
    # layer's kernel work would be done at once and held until the layer runs (see _EdgePaddedConv).
    step = FlowStep(4, 8, 2, coupling, rng=np.random.default_rng(1))
    x = tf.TensorSpec([2, 4, 4, 4], tf.float32)
    graph = tf.function(getattr(step, direction)).get_concrete_function(x, tf.TensorSpec([2])).graph
    inputs = {t.op.name for t in graph.inputs[:2]}
    kernels = [tf_variable(layer.W).handle for layer in step._flatten_layers()
               if isinstance(layer, (Conv2D, Conv2DZeros))]
    handles = {inner.op.name for outer, inner in graph.captures if any(outer is h for h in kernels)}
    reads = [op for op in graph.get_operations()
             if op.type == "ReadVariableOp" and op.inputs[0].op.name in handles]
    assert len(reads) == len(kernels)
    for op in reads:
        assert inputs & _ancestors(op), f"{op.name} does not wait for the step's input"
