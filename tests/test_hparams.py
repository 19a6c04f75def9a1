import dataclasses

import pytest

from glow_tf import HParams
from glow_tf import hparams as H


def test_defaults_are_the_original_flags():
    hps = HParams()
    assert (hps.problem, hps.n_levels, hps.depth, hps.width) == ("cifar10", 3, 32, 512)
    assert (hps.flow_permutation, hps.flow_coupling, hps.optimizer, hps.lr) == (2, 0, "adamax", 0.001)
    assert (hps.n_batch_train, hps.n_batch_init, hps.n_train, hps.epochs_warmup) == (64, 256, 50000, 10)
    assert hps.gradient_checkpointing == 1 and not hps.learntop and hps.n_bits_x == 8


def test_derived_values():
    assert HParams(n_bits_x=5).n_bins == 32
    assert HParams(problem="celeba").image_shape == (256, 256, 3)
    assert H.celeba256().local_batch_train() == 1 and H.imagenet64().local_batch_train() == 16
    assert H.cifar10().top_shape == (4, 4, 48)
    assert H.celeba256().top_shape == (4, 4, 384)
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
])
def test_bad_values_raise_value_error_naming_them(overrides, message):
    with pytest.raises(ValueError, match=message):
        HParams(**overrides)


def test_hparams_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        HParams().depth = 3
