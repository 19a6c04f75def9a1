"""convert_tf1: TF1 checkpoints written here with tf.compat.v1 under the original's names import exactly.

The checkpoint's variables and shapes are laid out from openai/glow model.py's variable scopes in this file, independently of
glow_tf, and the expected objective comes from a NumPy forward pass over those same TF1 arrays (read by
their original names with the primitives of tests/reference.py), so a wrong name map, a swapped pair of
same-shaped variables or a mis-ordered layer shows up as a different number.
"""

import contextlib
import dataclasses
import math

import numpy as np
import pytest
import tensorflow as tf

from glow_common.errors import run_cli
from glow_tf.errors import ConfigError
from glow_tf.hparams import HParams
from glow_tf.tools import convert_tf1
from glow_tf.training.checkpoints import load_model
from tests import reference

# One step per level, two levels: every kind of variable appears, and it builds in a fraction of a second.
BASE = HParams(problem="cifar10", image_size=8, n_levels=2, depth=1, width=6, learntop=True)


def tf1_shapes(hps):
    """{original name: shape} of openai/glow's variables for `hps` (model.py and tfops.py scopes)."""
    shapes = {}
    c = 4 * hps.n_channels  # after the squeeze before level 0
    for i in range(hps.n_levels):
        for j in range(hps.depth):
            s = f"model/{i}/{j}"
            shapes[f"{s}/actnorm_center/b"] = shapes[f"{s}/actnorm_scale/logs"] = [1, 1, 1, c]
            if hps.flow_permutation == 1:
                shapes[f"{s}/shuffle/indices"] = shapes[f"{s}/shuffle/indices_inverse"] = [c]
            elif hps.flow_permutation == 2:
                shapes[f"{s}/invconv/W"] = [c, c]
            elif hps.flow_permutation == 3:
                shapes.update({f"{s}/invconv/{k}": [c, c] for k in ("P", "L", "U")})
                shapes[f"{s}/invconv/sign_S"] = shapes[f"{s}/invconv/log_S"] = [c]
            n_out = c if hps.flow_coupling == 1 else c // 2
            for name, shape in (("l_1", [3, 3, c // 2 + 1, hps.width]), ("l_2", [1, 1, hps.width, hps.width])):
                shapes[f"{s}/f1/{name}/W"] = shape
                shapes[f"{s}/f1/{name}/actnorm_center/b"] = [1, 1, 1, hps.width]
                shapes[f"{s}/f1/{name}/actnorm_scale/logs"] = [1, 1, 1, hps.width]
            shapes.update(zeros_conv(f"{s}/f1/l_last", hps.width, n_out))
        if i < hps.n_levels - 1:
            shapes.update(zeros_conv(f"model/pool{i}/conv", c // 2, c))
            c *= 2  # keep half, squeeze: C/2 * 4
    if hps.learntop:
        shapes.update(zeros_conv("model/prior/p", 2 * c, 2 * c))
    if hps.ycond:
        shapes.update(zeros_linear("model/prior/y_emb", hps.n_classes, 2 * c))
        if hps.weight_y > 0:
            shapes.update(zeros_linear("model/classifier", c, hps.n_classes))
    return shapes


def zeros_conv(scope, c_in, c_out):
    return {f"{scope}/W": [3, 3, c_in + 1, c_out], f"{scope}/b": [1, 1, 1, c_out], f"{scope}/logs": [1, c_out]}


def zeros_linear(scope, n_in, n_out):
    return {f"{scope}/W": [n_in, n_out], f"{scope}/b": [1, n_out], f"{scope}/logs": [1, n_out]}


def random_values(shapes, seed=0):
    """Random values that keep the flow well-conditioned; non-trainable ones are valid permutations."""
    rng = np.random.default_rng(seed)
    values = {}
    for name, shape in shapes.items():
        leaf = name.rsplit("/", 1)[1]
        if leaf in ("indices", "indices_inverse"):
            continue
        if leaf == "W" and "/invconv/" in name:
            value = np.linalg.qr(rng.standard_normal(shape))[0] + 0.1 * rng.standard_normal(shape)
        elif leaf == "P":
            value = np.eye(shape[0])[rng.permutation(shape[0])]
        elif leaf == "sign_S":
            value = rng.choice([-1.0, 1.0], size=shape)
        elif leaf in ("L", "U"):  # the full matrices: the model must apply the triangular masks itself
            value = 0.3 * rng.standard_normal(shape)
        elif leaf == "W":
            value = 0.3 * rng.standard_normal(shape)
        else:  # b, logs, log_S: small, so that exp(3 * logs) stays moderate
            value = 0.1 * rng.standard_normal(shape)
        values[name] = value.astype(np.float32)
    for name in [n for n in shapes if n.endswith("/shuffle/indices")]:
        perm = rng.permutation(shapes[name][0]).astype(np.int32)
        values[name], values[name + "_inverse"] = perm, np.argsort(perm).astype(np.int32)
    return values


def write_tf1_checkpoint(prefix, values):
    """A tf.train.Saver checkpoint of graph-mode variables created under the original's scopes."""
    graph = tf.compat.v1.Graph()
    with graph.as_default():
        for name, value in values.items():
            *scopes, leaf = name.split("/")
            with contextlib.ExitStack() as stack:
                for scope in scopes:
                    stack.enter_context(tf.compat.v1.variable_scope(scope))
                trainable = leaf not in ("indices", "indices_inverse", "P", "sign_S")
                tf.compat.v1.get_variable(leaf, initializer=value, trainable=trainable)
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return saver.save(sess, prefix)


# ------------------------------------------------------------- NumPy forward pass over the TF1 arrays
def np_coupling_nn(v, s, z1):
    h = reference.conv(z1, v[f"{s}/l_1/W"])
    h = np.maximum(reference.actnorm(h, v[f"{s}/l_1/actnorm_center/b"], v[f"{s}/l_1/actnorm_scale/logs"])[0], 0)
    h = reference.conv(h, v[f"{s}/l_2/W"])
    h = np.maximum(reference.actnorm(h, v[f"{s}/l_2/actnorm_center/b"], v[f"{s}/l_2/actnorm_scale/logs"])[0], 0)
    return reference.conv2d_zeros(h, v[f"{s}/l_last/W"], v[f"{s}/l_last/b"], v[f"{s}/l_last/logs"])


def np_objective(v, hps, x, y):
    """(objective [B], eps list, logits or None) of the original's forward pass (model.py, model.encoder)."""
    v = {k: np.asarray(a, np.float64) if a.dtype != np.int32 else a for k, a in v.items()}
    objective = np.full(len(x), -math.log(hps.n_bins) * np.prod(x.shape[1:]))
    z, eps = reference.squeeze2d(np.asarray(x, np.float64)), []
    for i in range(hps.n_levels):
        for j in range(hps.depth):
            s = f"model/{i}/{j}"
            z, logdet = reference.actnorm(z, v[f"{s}/actnorm_center/b"], v[f"{s}/actnorm_scale/logs"])
            objective += logdet
            if hps.flow_permutation == 0:
                z = z[..., ::-1]
            elif hps.flow_permutation == 1:
                z = z[..., v[f"{s}/shuffle/indices"]]
            else:
                if hps.flow_permutation == 2:
                    w = v[f"{s}/invconv/W"]
                else:
                    lower = np.tril(v[f"{s}/invconv/L"], -1) + np.eye(z.shape[-1])
                    upper = np.triu(v[f"{s}/invconv/U"], 1) + np.diag(v[f"{s}/invconv/sign_S"]
                                                                     * np.exp(v[f"{s}/invconv/log_S"]))
                    w = v[f"{s}/invconv/P"] @ lower @ upper
                z = np.einsum("bhwc,co->bhwo", z, w)
                objective += reference.invconv_logdet(w, z.shape[1], z.shape[2])
            c = z.shape[-1]
            z1, z2 = z[..., : c // 2], z[..., c // 2:]
            h = np_coupling_nn(v, f"{s}/f1", z1)
            if hps.flow_coupling == 0:
                z2 = z2 + h
            else:
                shift, scale = h[..., 0::2], reference.sigmoid(h[..., 1::2] + 2.0)
                z2 = (z2 + shift) * scale
                objective += reference.flat_sum(np.log(scale))
            z = np.concatenate([z1, z2], -1)
        if i < hps.n_levels - 1:
            s = f"model/pool{i}/conv"
            c = z.shape[-1]
            z1, z2 = z[..., : c // 2], z[..., c // 2:]
            h = reference.conv2d_zeros(z1, v[f"{s}/W"], v[f"{s}/b"], v[f"{s}/logs"])
            mean, logs = h[..., 0::2], h[..., 1::2]
            objective += reference.flat_sum(reference.gaussian_logp(z2, mean, logs))
            eps.append((z2 - mean) / np.exp(logs))
            z = reference.squeeze2d(z1)
    b, height, width, c = z.shape
    h = np.zeros([b, height, width, 2 * c])
    if hps.learntop:
        h = reference.conv2d_zeros(h, v["model/prior/p/W"], v["model/prior/p/b"], v["model/prior/p/logs"])
    y_onehot = np.eye(hps.n_classes)[y]
    if hps.ycond:
        s = "model/prior/y_emb"
        h = h + reference.linear_zeros(y_onehot, v[f"{s}/W"], v[f"{s}/b"], v[f"{s}/logs"])[:, None, None]
    mean, logs = h[..., :c], h[..., c:]
    objective += reference.flat_sum(reference.gaussian_logp(z, mean, logs))
    eps.append((z - mean) / np.exp(logs))
    logits = None
    if hps.ycond and hps.weight_y > 0:
        s = "model/classifier"
        logits = reference.linear_zeros(z.mean(axis=(1, 2)), v[f"{s}/W"], v[f"{s}/b"], v[f"{s}/logs"])
    return objective, eps, logits


def hps_flags(hps):
    flags = [f"--{k}={getattr(hps, k)}" for k in ("problem", "image_size", "n_levels", "depth", "width",
                                                   "flow_permutation", "flow_coupling", "weight_y")]
    flags += ["--learntop"] * hps.learntop + ["--ycond", f"--n_y={hps.n_classes}"] * hps.ycond
    return flags


def continuous_input(hps, n=3, seed=5):
    """Random uint8 images, preprocessed, plus fixed dequantisation noise: the encoder's float input."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, *hps.image_shape)).astype(np.uint8)
    return reference.preprocess(x, hps.n_bits_x) + rng.uniform(0, 1.0 / hps.n_bins, size=x.shape)


def convert(tmp_path, hps, values=None, extra=(), seed=0):
    values = random_values(tf1_shapes(hps), seed) if values is None else values
    prefix = write_tf1_checkpoint(str(tmp_path / "tf1" / "model_best_loss.ckpt"), values)
    convert_tf1.main([prefix, "--output", str(tmp_path / "out"), *hps_flags(hps), *extra])
    return values


@pytest.mark.parametrize("coupling", [0, 1], ids=["additive", "affine"])
@pytest.mark.parametrize("permutation", [0, 1, 2, 3], ids=["reverse", "shuffle", "invconv", "invconv_lu"])
def test_imported_objective_matches_numpy_forward_pass_of_tf1_values(tmp_path, permutation, coupling):
    hps = dataclasses.replace(BASE, flow_permutation=permutation, flow_coupling=coupling)
    values = convert(tmp_path, hps)
    model, loaded_hps, _ = load_model(str(tmp_path / "out"))
    assert loaded_hps == hps and model.initialized
    x, y = continuous_input(hps), np.zeros(3, np.int64)
    expected, expected_eps, _ = np_objective(values, hps, x, y)
    _, objective, eps = model.encoder(tf.constant(x, tf.float32), tf.constant(y, tf.int32))
    np.testing.assert_allclose(objective.numpy(), expected, rtol=1e-5)
    for ours, theirs in zip(eps, expected_eps):
        np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-3, atol=1e-3)
    # bits_x = -objective / (D ln 2), the original's formula, on the same numbers.
    bits = -objective.numpy() / (np.prod(hps.image_shape) * math.log(2))
    np.testing.assert_allclose(bits, -expected / (np.prod(hps.image_shape) * math.log(2)), rtol=1e-5)


def test_class_conditional_prior_and_classifier_import(tmp_path):
    hps = dataclasses.replace(BASE, ycond=True, n_y=3, weight_y=0.01, flow_coupling=1)
    values = convert(tmp_path, hps, seed=3)
    model, _, _ = load_model(str(tmp_path / "out"))
    x, y = continuous_input(hps), np.array([0, 2, 1])
    expected, _, logits = np_objective(values, hps, x, y)
    z, objective, _ = model.encoder(tf.constant(x, tf.float32), tf.constant(y, tf.int32))
    np.testing.assert_allclose(objective.numpy(), expected, rtol=1e-5)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    bits_y, _ = model.classifier(z, tf.constant(y, tf.int32))
    np.testing.assert_allclose(bits_y.numpy(), -log_softmax[np.arange(3), y] / math.log(2), rtol=1e-4)


def test_ema_imports_the_polyak_averages_and_ignores_optimizer_slots(tmp_path):
    hps = BASE
    values = random_values(tf1_shapes(hps), seed=1)
    shadows = random_values(tf1_shapes(hps), seed=2)
    trainable = {k: v for k, v in shadows.items() if "/shuffle/" not in k}
    with_extras = {**values, **{k + "/ExponentialMovingAverage": v for k, v in trainable.items()},
                   "Variable_7": np.zeros([4], np.float32)}  # an Adamax slot, auto-named as in the original
    convert(tmp_path, hps, with_extras, extra=["--ema"])
    model, _, _ = load_model(str(tmp_path / "out"))
    np.testing.assert_array_equal(model.levels[1].flows[0].coupling.nn.l_2.W.numpy(),
                                  shadows["model/1/0/f1/l_2/W"])
    x = continuous_input(hps)
    _, objective, _ = model.encoder(tf.constant(x, tf.float32), tf.zeros([3], tf.int32))
    np.testing.assert_allclose(objective.numpy(), np_objective(shadows, hps, x, np.zeros(3, int))[0], rtol=1e-5)


# ------------------------------------------------------------------------------------------ refusals
def refusal(tmp_path, written, requested, capsys):
    prefix = write_tf1_checkpoint(str(tmp_path / "tf1" / "ckpt"), random_values(tf1_shapes(written)))
    code = run_cli(convert_tf1.PROG, convert_tf1.main,
                   [prefix, "--output", str(tmp_path / "out"), *hps_flags(requested)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert not (tmp_path / "out" / "checkpoints").exists()
    return err


def test_other_depth_is_refused_with_missing_names_and_a_description(tmp_path, capsys):
    err = refusal(tmp_path, BASE, dataclasses.replace(BASE, depth=2), capsys)
    assert "missing: model/0/1/actnorm_center/b" in err and "depth=1" in err


def test_other_width_is_refused_with_the_shapes(tmp_path, capsys):
    err = refusal(tmp_path, BASE, dataclasses.replace(BASE, width=8), capsys)
    assert "of another shape" in err and "model/0/0/f1/l_1/W [3, 3, 7, 6] (expected [3, 3, 7, 8])" in err


def test_unexplained_names_are_refused(tmp_path, capsys):
    err = refusal(tmp_path, BASE, dataclasses.replace(BASE, learntop=False), capsys)
    assert "unexpected: model/prior/p/W" in err and "learntop=True" in err


def test_other_permutation_is_refused(tmp_path, capsys):
    err = refusal(tmp_path, BASE, dataclasses.replace(BASE, flow_permutation=1), capsys)
    assert "model/0/0/shuffle/indices" in err and "model/0/0/invconv/W" in err and "flow_permutation=2" in err


def test_bad_paths_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="no TF1 checkpoint at .*nowhere"):
        convert_tf1.main([str(tmp_path / "nowhere"), "--output", str(tmp_path / "out")])
    ckpt = tf.train.Checkpoint(v=tf.Variable(1.0)).write(str(tmp_path / "tf2" / "ckpt"))
    with pytest.raises(ConfigError, match="TF2 object-based checkpoint"):
        convert_tf1.main([ckpt, "--output", str(tmp_path / "out")])


def test_existing_output_is_kept_unless_overwrite(tmp_path):
    convert(tmp_path, BASE)
    with pytest.raises(ConfigError, match="already holds a checkpoint"):
        convert(tmp_path, BASE)
    convert(tmp_path, BASE, extra=["--overwrite"])
