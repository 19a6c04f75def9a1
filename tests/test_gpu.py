"""The model on a GPU: the same numbers as on the CPU, exact inverses, and no CPU-only batch splitting
(skipped without a GPU; `bench/gpu_check.sh` runs them on a GPU machine). Then the GPU code paths a CPU
can check: one GPU per rank with memory growth, devices configured before TensorFlow starts, bfloat16
refused before Ampere (a faked compute capability), sub-batches off, the float64 log-det's GPU kernels."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from glow_tf import Glow
from glow_tf import model as model_module
from glow_tf.errors import ConfigError
from glow_tf.model import concurrent_batch_parts
from glow_tf.presets import tiny
from glow_tf.training import distributed
from tests import flow_checks, images
from tests.runs import ROOT

needs_gpu = pytest.mark.skipif(not tf.config.list_physical_devices("GPU"), reason="needs a GPU")


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


@needs_gpu
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


@needs_gpu
@pytest.mark.parametrize("nn_dtype", ["float32", "bfloat16"])
def test_gpu_decode_inverts_encode(nn_dtype):
    _, gpu = models(nn_dtype=nn_dtype)
    x = images.cifar10_samples(4)[:, ::4, ::4]
    with tf.device("/GPU:0"):
        back = gpu.decode(gpu.encode(x)).numpy()
    # 8-bit model: decode(encode(x)) is x, but for a pixel whose noise fell within round-off of a bin edge.
    diff = np.abs(back.astype(int) - x.astype(int))
    assert diff.max() <= 1 and diff.astype(bool).mean() < 0.01


@needs_gpu
def test_gpu_keeps_the_batch_whole():
    assert concurrent_batch_parts() == 1


# ------------------------------------------------------------------------- GPU code paths, checked on a CPU
FAKE_GPUS = [tf.config.PhysicalDevice(name=f"/physical_device:GPU:{i}", device_type="GPU") for i in range(2)]


def fake_gpu(monkeypatch, capability, name="Tesla V100-SXM2-16GB"):
    monkeypatch.setattr(tf.config, "get_visible_devices",
                        lambda kind=None: FAKE_GPUS[:1] if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "get_device_details",
                        lambda device: {"compute_capability": capability, "device_name": name})


def test_bfloat16_is_refused_on_a_gpu_before_ampere(monkeypatch):
    import dataclasses

    fake_gpu(monkeypatch, (7, 0))
    with pytest.raises(ConfigError) as err:
        Glow(dataclasses.replace(tiny(), nn_dtype="bfloat16"))
    message = str(err.value)
    assert "\n" not in message
    assert "--nn_dtype bfloat16" in message and "Tesla V100-SXM2-16GB is 7.0" in message and "8.0" in message
    model_module.check_nn_dtype_on_gpus("float16")  # V100 has float16 tensor cores
    model_module.check_nn_dtype_on_gpus("float32")
    fake_gpu(monkeypatch, (8, 0), "NVIDIA A100-SXM4-40GB")
    model_module.check_nn_dtype_on_gpus("bfloat16")


class _Rank:
    def __init__(self, local_rank):
        self.local_rank = local_rank


def test_each_rank_takes_its_own_gpu_and_grows_its_memory(monkeypatch):
    calls = []
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: FAKE_GPUS if kind == "GPU" else [])
    monkeypatch.setattr(tf.config, "set_visible_devices", lambda dev, kind=None: calls.append(("visible", dev, kind)))
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", lambda dev, on: calls.append(("growth", dev, on)))
    distributed.configure_devices(_Rank(3))  # local rank 3 of a node with 2 GPUs: GPU 1
    assert calls == [("visible", FAKE_GPUS[1], "GPU"), ("growth", FAKE_GPUS[1], True)]


def test_train_configures_the_devices_before_tensorflow_starts():
    """set_visible_devices and set_memory_growth raise once TF's runtime has started: nothing train.py
    imports or does before configure_devices may start it."""
    code = ("import tensorflow as tf, train\n"
            "from glow_tf.training import loop, inference, preemption\n"
            "from glow_tf.training.distributed import init_distributed\n"
            "dist = init_distributed()\n"
            "tf.config.set_visible_devices(tf.config.list_physical_devices('CPU'), 'CPU')\n"
            "print('configurable')\n")
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "configurable", proc.stderr[-2000:]


def test_sub_batches_are_off_when_a_gpu_is_visible(monkeypatch):
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "1")
    monkeypatch.setenv("TF_NUM_INTEROP_THREADS", "2")
    monkeypatch.setattr(tf.config, "list_logical_devices",
                        lambda kind=None: [tf.config.LogicalDevice("/device:GPU:0", "GPU")] if kind == "GPU" else [])
    assert concurrent_batch_parts() == 1


@pytest.mark.skipif(not tf.test.is_built_with_cuda(), reason="needs the CUDA build of TensorFlow")
@pytest.mark.parametrize("op", ["Qr", "MatrixTriangularSolve", "MatrixInverse"])
def test_the_float64_log_det_runs_on_the_gpu(op):
    """invconv.log_abs_det (QR, its triangular-solve gradient) and the reverse's inverse have float64 GPU
    kernels in the CUDA build, so with a GPU they stay on it, as the original's float64 determinant did."""
    from tensorflow.python.framework import kernels

    gpu_types = set()
    for kernel in kernels.get_registered_kernels_for_op(op).kernel:
        if kernel.device_type == "GPU":
            for constraint in kernel.constraint:
                if constraint.name == "T":
                    gpu_types.update(constraint.allowed_values.list.type)
    assert tf.float64.as_datatype_enum in gpu_types
