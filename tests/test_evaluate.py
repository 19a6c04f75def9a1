"""glow_tf.tools.evaluate: agrees with train.py's validation, and its Monte Carlo error behaves."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

import train
from data_loaders import get_data
from glow_common.errors import run_cli
from glow_tf.tools import evaluate
from glow_tf.training import checkpoints
from tests.data_fixtures import needs_fashion

pytestmark = needs_fashion

# 8x8 Fashion-MNIST, 2 levels of 2 steps, width 8: two epochs of 8 steps, validation on 40 test images.
ARGS = ["--preset", "tiny", "--problem", "fashion_mnist", "--anchor_size", "8", "--n_train", "32",
        "--n_test", "40", "--epochs_warmup", "1", "--epochs_full_valid", "1", "--epochs", "3"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    logdir = str(tmp_path_factory.mktemp("run"))
    assert train.main(ARGS + ["--logdir", logdir]) == 0
    return logdir


def test_matches_the_training_loops_validation(trained):
    with open(os.path.join(trained, "test.txt")) as f:
        last = [json.loads(line) for line in f if line.strip()][-1]
    model, hps, _ = checkpoints.load_model(os.path.join(trained, "checkpoints"))
    splits = get_data(hps)
    tf.random.set_seed(1)
    result = evaluate.evaluate(model, splits.test, splits.test_its, draws=8)
    assert result["n_images"] == 40
    # The loop's value is one draw per image; ours averages 8, so they differ by the draw noise only.
    assert abs(result["bits_x"] - float(last["bits_x"])) < 5 * result["se_draws"] * np.sqrt(8) + 1e-4
    assert result["recon_max_abs"] < 1e-4 and result["recon_changed_fraction"] < 1e-3


def test_standard_error_of_the_draws_shrinks_with_more_draws(trained):
    model, hps, _ = checkpoints.load_model(trained)
    splits = get_data(hps)
    tf.random.set_seed(2)
    many = evaluate.evaluate(model, splits.test, splits.test_its, draws=64, reconstruct=False)
    per_draw = np.asarray(many["per_draw"])
    assert many["bits_x"] == pytest.approx(per_draw.mean())
    assert many["se_draws"] == pytest.approx(per_draw.std(ddof=1) / 8.0)
    # The same draws taken 4 at a time: their standard errors are about sqrt(64/4) = 4 times larger.
    se_4 = np.mean([g.std(ddof=1) / 2.0 for g in per_draw.reshape(16, 4)])
    assert 2.0 < se_4 / many["se_draws"] < 8.0
    few = evaluate.evaluate(model, splits.test, splits.test_its, draws=4, reconstruct=False)
    # The test-set error does not depend on the number of draws.
    assert few["se_images"] == pytest.approx(many["se_images"], rel=0.05)


def test_cli_writes_json_and_polyak_weights_differ(trained, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert run_cli(evaluate.PROG, evaluate.main, [trained, "--draws", "2", "--output", str(out)]) == 0
    raw = json.loads(out.read_text())
    assert raw["weights"] == "raw" and raw["n_images"] == 40 and "bits/dim" in capsys.readouterr().out
    assert run_cli(evaluate.PROG, evaluate.main, [trained, "--draws", "2", "--ema", "--output", str(out)]) == 0
    polyak = json.loads(out.read_text())
    assert polyak["weights"] == "polyak" and polyak["bits_x"] != raw["bits_x"]


def test_a_float32_model_evaluated_with_bfloat16_networks(trained, tmp_path):
    out = tmp_path / "eval.json"
    results = {}
    for dtype in ("float32", "bfloat16"):
        argv = [trained, "--draws", "1", "--seed", "3", "--nn_dtype", dtype, "--output", str(out)]
        assert run_cli(evaluate.PROG, evaluate.main, argv) == 0
        results[dtype] = json.loads(out.read_text())
        assert results[dtype]["nn_dtype"] == dtype
    full, half = results["float32"], results["bfloat16"]
    # Same weights, same noise: only the coupling networks' rounding differs, a little.
    assert half["bits_x"] != full["bits_x"] and abs(half["bits_x"] - full["bits_x"]) < 0.05


@pytest.mark.parametrize("args,message", [
    (["/nonexistent/run"], "no checkpoint at /nonexistent/run"),
    (["--draws", "0"], "--draws 0 must be at least 1"),
])
def test_bad_input_is_one_clear_error(trained, args, message, capsys):
    argv = args if not args[0].startswith("--") else [trained] + args
    assert run_cli(evaluate.PROG, evaluate.main, argv) == 2
    assert message in capsys.readouterr().err


def test_non_finite_reconstructions_are_counted_not_averaged(trained, monkeypatch):
    model, hps, _ = checkpoints.load_model(trained)
    splits = get_data(hps)
    decoder = model.decoder

    def broken_first_image(y, eps=None, temperature=None):  # as when z2 / sigmoid(h + 2) overflows
        x = decoder(y, eps=eps, temperature=temperature)
        return tf.concat([x[:1] * np.inf, x[1:]], axis=0)

    monkeypatch.setattr(model, "decoder", broken_first_image)
    result = evaluate.evaluate(model, splits.test, splits.test_its, draws=1)
    assert result["recon_nonfinite_images"] == splits.test_its  # the first image of every batch
    assert np.isfinite(result["recon_mean_abs"]) and result["recon_max_abs"] < 1e-4
