"""The encoder's concurrent sub-batches (Glow.batch_parts): same values as the whole batch, same gradients."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from glow_tf import Glow, presets
from glow_tf import model as model_module
from tests import flow_checks, images


def tiny(**overrides):
    return dataclasses.replace(presets.tiny(), **overrides)


def pair(hps, parts, dtype="float64"):
    """Two models with the same weights, encoding in one batch and in `parts` sub-batches."""
    whole, split = Glow(hps, dtype=dtype), Glow(hps, dtype=dtype)
    flow_checks.randomize_weights(whole, scale=0.05)
    for a, b in zip(split.weights, whole.weights):
        a.assign(b)
    whole.batch_parts, split.batch_parts = 1, parts
    return whole, split


@pytest.mark.parametrize("parts", [2, 3])
def test_sub_batches_give_the_whole_batch_values(parts):
    hps = tiny(ycond=True, n_y=3, flow_permutation=3)
    whole, split = pair(hps, parts)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-0.5, 0.5, (5, *hps.image_shape)))  # 5 = 2 + 2 + 1 or 3 + 2
    y = tf.constant([0, 2, 1, 1, 0], tf.int32)
    expected, got = whole.encoder(x, y), split.encoder(x, y)
    np.testing.assert_allclose(got[0].numpy(), expected[0].numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[1].numpy(), expected[1].numpy(), rtol=1e-12)
    assert len(got[2]) == len(expected[2])
    for a, b in zip(got[2], expected[2]):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("checkpointing", [0, 1])
def test_sub_batches_give_the_whole_batch_gradients_in_a_graph(checkpointing):
    hps = tiny(gradient_checkpointing=checkpointing)
    whole, split = pair(hps, 2)
    x = tf.constant(images.cifar10_samples(4)[:, ::4, ::4])
    seed = tf.constant([1, 2], tf.int64)

    def grads(model):
        @tf.function
        def step():
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(model.objective_terms(x, training=True, noise_seed=seed)["loss"])
            return loss, tape.gradient(loss, model.trainable_variables)
        return step()

    (loss_a, grads_a), (loss_b, grads_b) = grads(whole), grads(split)
    np.testing.assert_allclose(loss_b.numpy(), loss_a.numpy(), rtol=1e-12)
    assert any(np.abs(g.numpy()).max() > 0 for g in grads_a)
    for a, b in zip(grads_a, grads_b):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-9, atol=1e-12)


def test_data_dependent_init_sees_the_whole_batch():
    hps = tiny()
    x = images.cifar10_samples(6)[:, ::4, ::4]
    whole, split = Glow(hps), Glow(hps)
    whole.batch_parts, split.batch_parts = 1, 3
    tf.keras.utils.set_random_seed(0)
    whole.initialize(x)
    tf.keras.utils.set_random_seed(0)
    split.initialize(x)
    for a, b in zip(whole.weights, split.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_concurrent_batch_parts_follows_the_thread_settings(monkeypatch):
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    monkeypatch.delenv("TF_NUM_INTEROP_THREADS", raising=False)
    if tf.config.threading.get_intra_op_parallelism_threads() not in (0,):
        pytest.skip("this process set its intra-op threads through tf.config")
    assert model_module.concurrent_batch_parts() == 1  # TF's default: multi-threaded ops, one batch
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "1")
    monkeypatch.setenv("TF_NUM_INTEROP_THREADS", "3")
    expected = 1 if tf.config.list_logical_devices("GPU") else 3
    assert model_module.concurrent_batch_parts() == expected
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "2")
    assert model_module.concurrent_batch_parts() == 1


def test_sub_batches_share_the_work_on_the_weights():
    """One log-determinant per 1x1 convolution in the graph, whatever the number of sub-batches."""
    hps = tiny(gradient_checkpointing=0)
    counts = {}
    for parts in (1, 3):
        model = Glow(hps)
        model.batch_parts = parts
        spec = tf.TensorSpec([6, *hps.image_shape], tf.uint8)
        graph = tf.function(lambda x, m=model: m.objective_terms(x)["loss"]).get_concrete_function(spec).graph
        ops = [op.type for op in graph.get_operations()]
        counts[parts] = {t: ops.count(t) for t in ("Qr", "Conv2D")}
    assert counts[1]["Qr"] == counts[3]["Qr"] == hps.n_levels * hps.depth
    # The data's convolutions run once per sub-batch; the learned top prior's (of zeros) once in all.
    assert counts[3]["Conv2D"] == 3 * (counts[1]["Conv2D"] - 1) + 1


LAYOUT_PROBE = """
import os, sys, json
import tensorflow as tf
from glow_tf.training.distributed import SingleProcess, configure_devices
from glow_tf.model import concurrent_batch_parts
line = configure_devices(SingleProcess())
print(json.dumps(dict(line=line, intra=tf.config.threading.get_intra_op_parallelism_threads(),
                      parts=concurrent_batch_parts(), cores=len(os.sched_getaffinity(0)),
                      gpu=bool(tf.config.list_physical_devices("GPU")))))
"""


@pytest.mark.parametrize("env", [None, "0", "2"])
def test_cpus_default_to_single_threaded_ops_unless_told(env):
    """train.py's CPU default (configure_devices): one thread per op and one sub-batch per core, unless
    TF_NUM_INTRAOP_THREADS says otherwise. A fresh process: the pools are fixed once TF has started."""
    import json
    import os
    import subprocess
    import sys

    from tests.runs import ROOT

    environ = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    environ.pop("TF_NUM_INTRAOP_THREADS", None)
    environ.pop("TF_NUM_INTEROP_THREADS", None)
    if env is not None:
        environ["TF_NUM_INTRAOP_THREADS"] = env
    out = subprocess.run([sys.executable, "-c", LAYOUT_PROBE], capture_output=True, text=True, env=environ,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    if got["gpu"]:
        assert got["line"] is None and got["parts"] == 1
    elif env is None:
        assert got["intra"] == 1 and got["parts"] == got["cores"]
        assert f"each batch as {got['cores']} concurrent sub-batches" in got["line"]
        assert "TF_NUM_INTRAOP_THREADS=0" in got["line"]
    else:
        assert got["line"] is None and got["intra"] == 0 and got["parts"] == 1
