"""export: the SavedModel, loaded by plain TensorFlow in a fresh process, computes what the Keras model does.

The loading process runs outside the repository with no PYTHONPATH, so glow_tf cannot be imported, and
checks that it was not. decode and temperature-0 sampling are deterministic and must match exactly;
encode is compared with the dequantisation noise fixed (encode_with_noise) and, with fresh noise,
through decode(encode(x)) == x.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from glow_common.errors import run_cli
from glow_tf import ops
from glow_tf.tools import export
from tests.images import imagenet_samples
from tests.tool_fixtures import TINY_HPS, assert_reconstructs, make_checkpoint

LOADER = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf

    saved, inputs, outputs = sys.argv[1:]
    m = tf.saved_model.load(saved)
    a = np.load(inputs)
    x, y, z, noise = a["x"], a["y"], a["z"], a["noise"]
    results = {
        "decode": m.decode(z, y),
        "sample_t0": m.sample(tf.zeros([len(y)]), y),
        "sample_t1": m.sample(tf.ones([len(y)]), y),
        "encode_with_noise": m.encode_with_noise(x, y, noise),
        "round_trip": m.decode(m.encode(x, y), y),
        "signature_decode": m.signatures["decode"](z=tf.constant(z), y=tf.constant(y))["x"],
        "image_shape": m.image_shape,
    }
    assert not [k for k in sys.modules if k.startswith("glow_tf")], "glow_tf was imported"
    np.savez(outputs, **{k: np.asarray(v) for k, v in results.items()})
""")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    model = make_checkpoint(root / "run")
    export.main([str(root / "run"), "--output", str(root / "saved")])
    return root, model


def test_saved_model_in_a_fresh_process_matches_the_keras_model(exported):
    root, model = exported
    rng = np.random.default_rng(0)
    x = imagenet_samples(8, n=3)
    y = np.zeros(3, np.int32)
    z = (0.7 * rng.standard_normal([3, model.n_dims])).astype(np.float32)
    noise = rng.uniform(0, 1, size=x.shape).astype(np.float32)
    np.savez(root / "inputs.npz", x=x, y=y, z=z, noise=noise)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-c", LOADER, str(root / "saved"), str(root / "inputs.npz"),
                    str(root / "outputs.npz")], cwd=root, env=env, check=True, timeout=600)
    out = np.load(root / "outputs.npz")

    np.testing.assert_array_equal(out["decode"], model.decode(z, y).numpy())
    np.testing.assert_array_equal(out["signature_decode"], out["decode"])
    np.testing.assert_array_equal(out["sample_t0"], model.sample(3, temperature=0.0).numpy())
    assert out["sample_t1"].dtype == np.uint8 and out["sample_t1"].shape == x.shape
    np.testing.assert_array_equal(out["image_shape"], TINY_HPS.image_shape)
    # The Keras model's encoder on the same dequantised input: preprocess + noise / n_bins.
    x_float = ops.preprocess(x, TINY_HPS.n_bits_x) + noise / TINY_HPS.n_bins
    expected = model.flatten_eps(model.encoder(tf.constant(x_float), tf.constant(y))[2]).numpy()
    np.testing.assert_allclose(out["encode_with_noise"], expected, rtol=1e-5, atol=1e-5)
    for reconstruction, image in zip(out["round_trip"], x):
        assert_reconstructs(reconstruction, image)


def test_export_refuses_to_overwrite_without_the_flag(exported, capsys):
    root, _ = exported
    argv = [str(root / "run"), "--output", str(root / "saved")]
    assert run_cli(export.PROG, export.main, argv) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    export.main(argv + ["--overwrite", "--no_check"])
    assert tf.saved_model.contains_saved_model(str(root / "saved"))


def test_export_of_a_missing_checkpoint_is_refused(tmp_path, capsys):
    code = run_cli(export.PROG, export.main, [str(tmp_path / "none"), "--output", str(tmp_path / "o")])
    assert code == 2 and "no checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
