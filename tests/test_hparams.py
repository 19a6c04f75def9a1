import dataclasses

import pytest

from glow_tf import HParams, presets
from glow_tf import hparams as H
from glow_tf.errors import ConfigError


def test_defaults_are_the_original_flags():
    hps = HParams()
    assert (hps.problem, hps.n_levels, hps.depth, hps.width) == ("cifar10", 3, 32, 512)
    assert (hps.flow_permutation, hps.flow_coupling, hps.optimizer, hps.lr) == (2, 0, "adamax", 0.001)
    assert (hps.n_batch_train, hps.n_batch_init, hps.n_train, hps.epochs_warmup) == (64, 256, 50000, 10)
    assert hps.gradient_checkpointing == 1 and not hps.learntop and hps.n_bits_x == 8


def test_derived_values():
    assert HParams(n_bits_x=5).n_bins == 32
    assert HParams(problem="celeba").image_shape == (256, 256, 3)
    assert presets.celeba256().local_batch_train() == 1 and presets.imagenet64().local_batch_train() == 16
    assert HParams().train_its(8) == 98 and HParams().train_its(40) == 20
    assert HParams().beta2(40) == pytest.approx(0.95)
    assert HParams(problem="imagenet-oord").n_classes == 1000 and HParams(problem="lsun").n_classes == 1


@pytest.mark.parametrize("overrides,message", [
    ({"image_size": 24, "n_levels": 4}, "image_size=24 is not divisible by 2\\*\\*n_levels=16"),
    ({"image_size": 8, "n_levels": 4}, "image_size=8 is not divisible"),
    ({"flow_permutation": 5}, "flow_permutation=5 is not one of"),
    ({"flow_coupling": 3}, "flow_coupling=3 is not one of"),
    ({"n_bits_x": 9}, "n_bits_x=9"),
    ({"n_levels": 0}, "n_levels=0"),
    ({"problem": "tfds:mnist"}, "image_size is required for problem 'tfds:mnist'"),
    ({"lr": float("inf")}, "lr=inf is not a finite number"),
    ({"epochs_warmup": float("nan")}, "epochs_warmup=nan is not a finite number"),
    ({"lr": 0.0}, "lr=0.0 must be positive"),
    ({"optimizer": "sgd"}, "optimizer='sgd' is not one of adamax, adam, adam2"),
    ({"save_interval_minutes": -1.0}, "save_interval_minutes=-1.0 must be >= 0"),
    ({"elastic_commit_steps": 0}, "elastic_commit_steps=0 must be >= 1"),
    ({"n_batch_init": 1, "image_size": 64, "problem": "celeba", "n_levels": 3}, "n_batch_init=1"),
])
def test_bad_values_raise_a_config_error_naming_them(overrides, message):
    with pytest.raises(ConfigError, match=message):  # a ValueError too, for library users
        HParams(**overrides)


def test_hparams_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        HParams().depth = 3


def test_model_signature_names_what_the_weights_depend_on():
    a, b = presets.tiny(), dataclasses.replace(presets.tiny(), lr=0.5, logdir="elsewhere")
    assert H.model_signature(a) == H.model_signature(b)
    assert H.model_signature(dataclasses.replace(a, depth=3))["depth"] == 3
    assert H.model_signature(dataclasses.replace(a, ycond=True, weight_y=0.01))["classifier"] is True
