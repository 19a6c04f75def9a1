import numpy as np
import pytest
import tensorflow as tf

from glow_tf import ops
from tests import reference


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_squeeze2d_matches_original_channel_order(channels):
    x = np.arange(2 * 4 * 6 * channels, dtype=np.float64).reshape(2, 4, 6, channels)
    np.testing.assert_array_equal(ops.squeeze2d(tf.constant(x)).numpy(), reference.squeeze2d(x))


def test_squeeze2d_is_not_space_to_depth_for_several_channels():
    x = tf.constant(np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3))
    assert not np.array_equal(ops.squeeze2d(x).numpy(), tf.nn.space_to_depth(x, 2).numpy())


def test_unsqueeze2d_inverts_squeeze2d():
    x = np.random.default_rng(0).standard_normal((2, 4, 6, 3))
    s = ops.squeeze2d(tf.constant(x))
    np.testing.assert_array_equal(ops.unsqueeze2d(s).numpy(), x)
    np.testing.assert_array_equal(ops.unsqueeze2d(tf.constant(reference.squeeze2d(x))).numpy(),
                                  reference.unsqueeze2d(reference.squeeze2d(x)))


def test_squeeze2d_rejects_odd_sizes():
    with pytest.raises(ValueError, match="divisible by 2"):
        ops.squeeze2d(tf.zeros([1, 3, 4, 1]))
    with pytest.raises(ValueError, match="divisible by 4"):
        ops.unsqueeze2d(tf.zeros([1, 2, 2, 6]))


@pytest.mark.parametrize("n_bits", [8, 5, 3])
def test_preprocess_and_postprocess_follow_the_original(n_bits):
    x = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    z = ops.preprocess(tf.constant(x), n_bits).numpy()
    np.testing.assert_allclose(z, reference.preprocess(x, n_bits), atol=1e-7)
    assert z.min() == -0.5 and z.max() == pytest.approx(0.5 - 1 / 2 ** n_bits)
    # Adding any noise below one bin keeps the bin: postprocess(preprocess(x) + u) quantises x.
    noisy = z + np.float32(0.999 / 2 ** n_bits)
    out = ops.postprocess(tf.constant(noisy), n_bits).numpy()
    np.testing.assert_array_equal(out, reference.postprocess(noisy.astype(np.float64), n_bits))
    np.testing.assert_array_equal(out, (x // 2 ** (8 - n_bits)) * 2 ** (8 - n_bits))


def test_edge_indicator_is_one_on_the_border_only():
    e = ops.edge_indicator(2, 3, tf.float32).numpy()[0, :, :, 0]
    assert e.shape == (4, 5)
    assert e[1:-1, 1:-1].sum() == 0 and e.sum() == 4 * 5 - 2 * 3


def test_gaussian_logp_matches_formula():
    rng = np.random.default_rng(0)
    x, mean, logs = rng.standard_normal((3, 5))
    np.testing.assert_allclose(ops.gaussian_logp(x, mean, logs).numpy(), reference.gaussian_logp(x, mean, logs),
                               rtol=1e-12)
