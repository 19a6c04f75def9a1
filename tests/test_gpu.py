"""The model on a GPU (skipped without one): the same numbers as on the CPU, exact inverses, and no
CPU-only batch splitting. `bench/gpu_check.sh` runs these on a GPU machine."""

import numpy as np
import pytest
import tensorflow as tf

from glow_tf import Glow
from glow_tf.model import concurrent_batch_parts
from glow_tf.presets import tiny
from tests import flow_checks, images

pytestmark = pytest.mark.skipif(not tf.config.list_physical_devices("GPU"), reason="needs a GPU")


def models(**overrides):
    """The same weights on the CPU and on the GPU."""
    import dataclasses

    hps = dataclasses.replace(tiny(), **overrides)
    with tf.device("/CPU:0"):
        cpu = Glow(hps)
        flow_checks.randomize_weights(cpu, scale=0.05)
    with tf.device("/GPU:0"):
        gpu = Glow(hps)
        for a, b in zip(gpu.weights, cpu.weights):
            a.assign(b.numpy())
    return cpu, gpu


def test_gpu_objective_and_gradients_match_the_cpu():
    cpu, gpu = models()
    x = tf.constant(images.cifar10_samples(4)[:, ::4, ::4])
    seed = tf.constant([3, 4], tf.int64)
    results = []
    for device, model in (("/CPU:0", cpu), ("/GPU:0", gpu)):
        with tf.device(device):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(model.objective_terms(x, training=True, noise_seed=seed)["loss"])
            grads = tape.gradient(loss, model.trainable_variables)
        if device == "/GPU:0":
            assert "GPU" in loss.device
        results.append((loss.numpy(), [g.numpy() for g in grads]))
    (loss_cpu, grads_cpu), (loss_gpu, grads_gpu) = results
    np.testing.assert_allclose(loss_gpu, loss_cpu, rtol=1e-5)
    for a, b in zip(grads_cpu, grads_gpu):
        np.testing.assert_allclose(b, a, rtol=2e-3, atol=1e-5)


@pytest.mark.parametrize("nn_dtype", ["float32", "bfloat16"])
def test_gpu_decode_inverts_encode(nn_dtype):
    _, gpu = models(nn_dtype=nn_dtype)
    x = images.cifar10_samples(4)[:, ::4, ::4]
    with tf.device("/GPU:0"):
        back = gpu.decode(gpu.encode(x)).numpy()
    # 8-bit model: decode(encode(x)) is x, but for a pixel whose noise fell within round-off of a bin edge.
    diff = np.abs(back.astype(int) - x.astype(int))
    assert diff.max() <= 1 and diff.astype(bool).mean() < 0.01


def test_gpu_keeps_the_batch_whole():
    assert concurrent_batch_parts() == 1
