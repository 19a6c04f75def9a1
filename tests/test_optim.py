"""glow_tf.training.optim against NumPy transcriptions of openai/glow optim.py (adam, adamax, polyak)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

from glow_tf.training.optim import GlowOptimizer, PolyakAverage, warmup_lr

SHAPES = [(3, 3, 5, 4), (1, 4), (7,)]


def reference_updates(kind, ws, grads_per_step, lrs, beta1, beta2, wd, n_ranks=1, eps=1e-8):
    """NumPy transcription of optim.adam/adamax/adam2 for `len(grads_per_step)` steps.

    grads_per_step[s][r][i]: gradient of variable i on rank r at step s. Every rank applies the same update.
    """
    ws = [w.astype(np.float64) for w in ws]
    m1 = [np.zeros_like(w) for w in ws]
    m2 = [np.zeros_like(w) for w in ws]
    t = 1.0
    for grads, lr in zip(grads_per_step, lrs):
        alpha_t = lr * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
        for i in range(len(ws)):
            g = np.mean([grads[r][i] for r in range(n_ranks)], axis=0)  # Z.allreduce_mean
            if beta1 > 0:
                m1[i] = beta1 * m1[i] + (1 - beta1) * g
                mom1 = m1[i]
            else:
                mom1 = g
            if kind == "adamax":
                m2[i] = np.maximum(beta2 * m2[i], np.abs(g))
                delta = mom1 / (m2[i] + eps)
            elif kind == "adam":
                m2[i] = beta2 * m2[i] + (1 - beta2) * g ** 2
                delta = mom1 / (np.sqrt(m2[i]) + eps)
            else:  # adam2: the mean of the squares, not the square of the mean
                g2 = np.mean([grads[r][i] ** 2 for r in range(n_ranks)], axis=0)
                m2[i] = beta2 * m2[i] + (1 - beta2) * g2
                delta = mom1 / (np.sqrt(m2[i]) + eps)
            ws[i] = wd * ws[i] - alpha_t * delta
        t += 1
    return ws, m1, m2, t


def _random_problem(seed, n_steps, n_ranks=1):
    rng = np.random.default_rng(seed)
    ws = [rng.normal(size=s).astype(np.float32) for s in SHAPES]
    grads = [[[rng.normal(scale=0.1, size=s).astype(np.float32) for s in SHAPES] for _ in range(n_ranks)]
             for _ in range(n_steps)]
    return ws, grads


@pytest.mark.parametrize("kind, beta1, wd", [
    ("adamax", 0.9, 1.0), ("adam", 0.9, 1.0), ("adamax", 0.0, 1.0), ("adam", 0.5, 0.999),
    ("adamax", 0.9, 0.99), ("adam2", 0.9, 1.0)])
def test_update_matches_numpy_transcription(kind, beta1, wd):
    n_steps, n_ranks, beta2 = 6, 2, 1 - 1 / 20  # beta2 = 1 - 1/(train_its*polyak_epochs) with train_its=20
    ws, grads = _random_problem(0, n_steps, n_ranks)
    # lr 0 on the first step, then a warmup ramp, as the training loop feeds it.
    lrs = [warmup_lr(0.01, s * 64, 640, 1) for s in range(n_steps)]
    variables = [tf.Variable(w) for w in ws]
    # Two ranks emulated in one process: the optimizer is called with rank 0's local gradients, and the
    # stand-in for hvd.allreduce(op=Average) returns the mean of what every rank would pass: the gradients
    # on its first call of a step, and (adam2 only) their squares on the second.
    calls = []

    def allreduce_mean(tensors):
        power = 1 + len(calls) % (2 if kind == "adam2" else 1)
        calls.append(power)
        return [tf.constant(np.mean([grads[step][r][i] ** power for r in range(n_ranks)], axis=0))
                for i in range(len(tensors))]

    opt = GlowOptimizer(variables, kind, beta1=beta1, beta2=beta2, weight_decay=wd, allreduce_mean=allreduce_mean)
    for step in range(n_steps):
        opt.apply_gradients([tf.constant(g) for g in grads[step][0]], variables, lrs[step])
    assert len(calls) == n_steps * (2 if kind == "adam2" else 1)

    ref_w, ref_m1, ref_m2, ref_t = reference_updates(kind, ws, grads, lrs, beta1, beta2, wd, n_ranks)
    for v, w in zip(variables, ref_w):
        np.testing.assert_allclose(v.numpy(), w, rtol=2e-5, atol=2e-6)
    for slot, m in zip(opt.m2, ref_m2):
        np.testing.assert_allclose(slot.numpy(), m, rtol=2e-5, atol=1e-7)
    if beta1 > 0:
        for slot, m in zip(opt.m1, ref_m1):
            np.testing.assert_allclose(slot.numpy(), m, rtol=2e-5, atol=1e-7)
    else:
        assert opt.m1 == []  # the original keeps no first moment at beta1 = 0
    assert opt.t.numpy() == ref_t == n_steps + 1


def test_first_step_has_zero_learning_rate_and_warmup_is_linear():
    assert warmup_lr(1e-3, 0, 50000, 10) == 0.0
    assert warmup_lr(1e-3, 250000, 50000, 10) == pytest.approx(5e-4)
    assert warmup_lr(1e-3, 10 ** 9, 50000, 10) == 1e-3
    assert warmup_lr(1e-3, 0, 50000, 0) == 1e-3  # no warmup instead of a ZeroDivisionError
    # With lr 0 the weights only see weight decay (1.0 here: unchanged), but the moments move and t counts.
    v = tf.Variable([1.0, -2.0])
    opt = GlowOptimizer([v], "adamax", beta2=0.99)
    opt.apply_gradients([tf.constant([0.5, 0.5])], [v], 0.0)
    np.testing.assert_array_equal(v.numpy(), [1.0, -2.0])
    np.testing.assert_allclose(opt.m2[0].numpy(), [0.5, 0.5])
    assert opt.t.numpy() == 2.0


def test_update_runs_inside_tf_function_like_in_eager():
    ws, grads = _random_problem(1, 3)
    eager = [tf.Variable(w) for w in ws]
    traced = [tf.Variable(w) for w in ws]
    opt_e = GlowOptimizer(eager, "adam", beta2=0.95)
    opt_t = GlowOptimizer(traced, "adam", beta2=0.95)
    step = tf.function(lambda g, lr: opt_t.apply_gradients(g, traced, lr))
    for s in range(3):
        g = [tf.constant(x) for x in grads[s][0]]
        opt_e.apply_gradients(g, eager, 1e-2)
        step(g, tf.constant(1e-2))
    for a, b in zip(eager, traced):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


def test_polyak_matches_tf_exponential_moving_average():
    ws, grads = _random_problem(2, 5)
    decay = 1 - 1 / 7
    ours = [tf.Variable(w) for w in ws]
    theirs = [tf.Variable(w) for w in ws]
    ema_ours = PolyakAverage(ours, decay)
    ema_tf = tf.train.ExponentialMovingAverage(decay=decay, zero_debias=True)
    ema_tf.apply(theirs)  # creates the shadows from the current values (and takes one step: no change)
    for s in range(5):
        for a, b, g in zip(ours, theirs, grads[s][0]):
            a.assign_sub(g)
            b.assign_sub(g)
        ema_ours.apply(ours)
        ema_tf.apply(theirs)
    for shadow, v in zip(ema_ours.shadows, theirs):
        np.testing.assert_allclose(shadow.numpy(), ema_tf.average(v).numpy(), rtol=1e-6, atol=1e-7)


def test_polyak_shadow_starts_from_creation_value_and_swap_is_exact():
    v = tf.Variable([1.0, 2.0])
    ema = PolyakAverage([v], 0.5)
    v.assign([3.0, 6.0])  # e.g. data-dependent init after the shadows were made, as in the original
    ema.apply([v])
    np.testing.assert_allclose(ema.shadows[0].numpy(), [2.0, 4.0])
    with ema.swapped([v]):
        np.testing.assert_array_equal(v.numpy(), [2.0, 4.0])
    np.testing.assert_array_equal(v.numpy(), [3.0, 6.0])
    np.testing.assert_array_equal(ema.shadows[0].numpy(), [2.0, 4.0])
    with ema.swapped([v], enabled=False):
        np.testing.assert_array_equal(v.numpy(), [3.0, 6.0])


def test_state_round_trips_through_a_checkpoint(tmp_path):
    ws, grads = _random_problem(3, 4)
    a = [tf.Variable(w) for w in ws]
    opt_a, ema_a = GlowOptimizer(a, "adamax", beta2=0.9), PolyakAverage(a, 0.9)
    for s in range(2):
        opt_a.apply_gradients([tf.constant(g) for g in grads[s][0]], a, 1e-2)
        ema_a.apply(a)
    path = tf.train.Checkpoint(w=a, optimizer=opt_a, ema=ema_a).write(str(tmp_path / "ckpt"))
    b = [tf.Variable(tf.zeros_like(w)) for w in ws]
    opt_b, ema_b = GlowOptimizer(b, "adamax", beta2=0.9), PolyakAverage(b, 0.9)
    tf.train.Checkpoint(w=b, optimizer=opt_b, ema=ema_b).read(path).assert_consumed()
    for s in range(2, 4):
        for v, opt, ema in ((a, opt_a, ema_a), (b, opt_b, ema_b)):
            opt.apply_gradients([tf.constant(g) for g in grads[s][0]], v, 1e-2)
            ema.apply(v)
    for x, y in zip(a + opt_a.variables + ema_a.variables, b + opt_b.variables + ema_b.variables):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_bad_arguments_raise():
    v = [tf.Variable([1.0])]
    with pytest.raises(ValueError, match="optimizer="):
        GlowOptimizer(v, "sgd")
    with pytest.raises(ValueError, match="beta2="):
        GlowOptimizer(v, "adam", beta2=1.0)
    with pytest.raises(ValueError, match="gradients"):
        GlowOptimizer(v, "adam").apply_gradients([], v, 1e-3)


def reference_polyak(initial, weights_per_step, decay):
    """NumPy transcription of optim.polyak: tf.train.ExponentialMovingAverage(decay, zero_debias=True) over
    variables, whose shadows start at the variables' value and then take `s <- s - (1 - decay) * (s - w)`
    once per step, `w` being the weights that step's shadow update reads."""
    shadows = [w.astype(np.float64) for w in initial]
    for weights in weights_per_step:
        shadows = [s - (1 - decay) * (s - w) for s, w in zip(shadows, weights)]
    return shadows


def test_training_step_averages_the_weights_after_its_update():
    """The original grouped the update and ema.apply without ordering them (optim.py), so a TF1 step may
    average the weights of before or after its update; ours averages after it (training/steps.py). The
    real compiled step is checked against the transcription fed with the weights after each update, and
    the same transcription fed with the weights before each update (the other order) must not fit."""
    from glow_tf import Glow
    from glow_tf.presets import tiny
    from glow_tf.training.distributed import SingleProcess
    from glow_tf.training.steps import make_steps

    hps = tiny()
    tf.keras.utils.set_random_seed(0)
    model = Glow(hps)
    trainable = list(model.trainable_variables)
    decay = 0.5  # a short memory, so that one step's update weighs much in the shadows
    optimizer, ema = GlowOptimizer(trainable, "adamax", beta2=0.9), PolyakAverage(trainable, decay)
    initial = [np.array(v.numpy()) for v in trainable]  # the shadows' start: before data-dependent init
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(4, *hps.image_shape), dtype=np.uint8)
    model.initialize(x)
    train_step, _ = make_steps(model, optimizer, ema, SingleProcess(), hps)
    before, after = [], []
    for step in range(4):
        before.append([np.array(v.numpy()) for v in trainable])
        train_step(tf.constant(x), tf.zeros([4], tf.int32), tf.constant(1e-2), tf.constant([0, step], tf.int64),
                   tf.zeros([2]))
        after.append([np.array(v.numpy()) for v in trainable])
    ours = [s.numpy() for s in ema.shadows]
    for shadow, expected in zip(ours, reference_polyak(initial, after, decay)):
        np.testing.assert_allclose(shadow, expected, rtol=1e-5, atol=1e-6)
    other_order = reference_polyak(initial, before, decay)
    worst = max(np.max(np.abs(s - e)) for s, e in zip(ours, other_order))
    assert worst > 1e-3, f"the two orders differ by at most {worst:g}: the test could not tell them apart"
