import numpy as np
import pytest
import tensorflow as tf

from glow_tf.hparams import INVCONV, INVCONV_LU, REVERSE, SHUFFLE
from glow_tf.invconv import InvConv1x1, InvConv1x1LU, ReversePermute, ShufflePermute, make_permutation
from tests import flow_checks, reference

LAYERS = {
    "reverse": lambda: ReversePermute(dtype="float64"),
    "shuffle": lambda: ShufflePermute(4, rng=np.random.default_rng(3), dtype="float64"),
    "invconv": lambda: InvConv1x1(4, rng=np.random.default_rng(3), dtype="float64"),
    "invconv_lu": lambda: InvConv1x1LU(4, rng=np.random.default_rng(3), dtype="float64"),
}


def make(name):
    layer = LAYERS[name]()
    # Move the matrix away from a rotation (|det| = 1 would hide a missing or wrong log-det).
    flow_checks.randomize_weights(layer, scale=0.3)
    return layer


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_permutation_inverts_with_the_jacobians_logdet(name):
    logdets = flow_checks.assert_flow_contract(make(name), flow_checks.random_input())
    if name.startswith("invconv"):
        assert np.all(np.abs(logdets) > 1e-3), "test is vacuous: |det W| is 1"


@pytest.mark.parametrize("name", ["invconv", "invconv_lu"])
def test_invconv_matches_reference_float64_logdet(name):
    layer = make(name)
    x = flow_checks.random_input((2, 3, 5, 4))
    z, logdet = layer(x, tf.zeros([2], tf.float64))
    w = layer.weight_matrix().numpy()
    np.testing.assert_allclose(z.numpy(), np.einsum("bhwc,co->bhwo", x.numpy(), w), rtol=1e-12)
    np.testing.assert_allclose(logdet.numpy(), reference.invconv_logdet(w, 3, 5), rtol=1e-12)


def test_invconv_logdet_is_float64_in_a_float32_layer():
    layer = InvConv1x1(48, rng=np.random.default_rng(0))
    w = np.random.default_rng(1).standard_normal((48, 48)) * 0.2 + np.eye(48)
    layer.W.assign(w.astype(np.float32))
    _, logdet = layer(tf.zeros([1, 16, 16, 48]), tf.zeros([1]))
    exact = reference.invconv_logdet(w.astype(np.float32), 16, 16)
    np.testing.assert_allclose(logdet.numpy()[0], exact, rtol=1e-6)


def test_lu_and_plain_invconv_agree_for_the_same_matrix():
    plain = InvConv1x1(6, rng=np.random.default_rng(5), dtype="float64")
    flow_checks.randomize_weights(plain, scale=0.3)
    lu = InvConv1x1LU(6, rng=np.random.default_rng(9), dtype="float64")
    lu.set_from_matrix(plain.W.numpy())
    x = flow_checks.random_input((2, 3, 5, 6))
    zero = tf.zeros([2], tf.float64)
    (z_a, ld_a), (z_b, ld_b) = plain(x, zero), lu(x, zero)
    np.testing.assert_allclose(z_b.numpy(), z_a.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ld_b.numpy(), ld_a.numpy(), rtol=1e-10)
    np.testing.assert_allclose(lu.reverse(z_b, ld_b)[0].numpy(), x.numpy(), atol=1e-10)


def test_lu_trains_only_L_U_and_log_S():
    lu = InvConv1x1LU(4, rng=np.random.default_rng(0))
    assert sorted(v.name for v in lu.trainable_variables) == ["L", "U", "log_S"]
    assert sorted(v.name for v in lu.non_trainable_variables) == ["P", "sign_S"]


def test_shuffle_is_seeded_and_stored():
    a = ShufflePermute(12, rng=np.random.default_rng(4))
    b = ShufflePermute(12, rng=np.random.default_rng(4))
    np.testing.assert_array_equal(a.indices.numpy(), b.indices.numpy())
    assert not np.array_equal(a.indices.numpy(), np.arange(12))
    assert a.trainable_variables == []
    np.testing.assert_array_equal(a.indices.numpy()[a.indices_inverse.numpy()], np.arange(12))


@pytest.mark.parametrize("code,cls", [(REVERSE, ReversePermute), (SHUFFLE, ShufflePermute),
                                      (INVCONV, InvConv1x1), (INVCONV_LU, InvConv1x1LU)])
def test_make_permutation_codes(code, cls):
    assert type(make_permutation(code, 4)) is cls


def test_make_permutation_rejects_unknown_code():
    with pytest.raises(ValueError, match="flow_permutation=7"):
        make_permutation(7, 4)
