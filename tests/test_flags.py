"""glow_tf.flags: every HParams field is one flag, defined once, for train.py and every tool."""

import argparse
import dataclasses

import pytest

from glow_tf import HParams, flags, presets
from glow_tf.tools import common


def test_every_flag_has_help_and_the_original_spellings_parse():
    import argparse

    parser = argparse.ArgumentParser()
    flags.add_flags(parser)
    hps, rest = flags.parse_flags(parser, ["--n_level", "4", "--image_size", "-1", "--lr", "0.002", "--no-resume"])
    assert (hps.n_levels, hps.image_size, hps.lr, hps.resume) == (4, None, 0.002, False)
    assert vars(rest) == {"preset": None}
    assert all(f.metadata.get("help") for f in dataclasses.fields(HParams))
    assert flags.parse_flags(parser, ["--preset", "fashion_small", "--depth", "3"])[0] == \
        dataclasses.replace(presets.fashion_small(), depth=3)
    # A subset of the fields (what a tool that takes model flags adds); the rest keep their defaults.
    tool = argparse.ArgumentParser()
    flags.add_flags(tool, fields=("depth", "width"))
    assert flags.parse_flags(tool, ["--depth", "5"])[0] == dataclasses.replace(HParams(), depth=5)


def test_a_tool_takes_a_field_as_an_override_absent_unless_given():
    parser = argparse.ArgumentParser()
    names = flags.add_flags(parser, ("data_dir", "n_test"), overrides=True)
    assert names == ["data_dir", "n_test"]
    assert flags.overrides_of(parser.parse_args([]), names) == {}
    assert flags.overrides_of(parser.parse_args(["--n_test", "-1", "--data_dir", "d"]), names) == \
        {"data_dir": "d", "n_test": None}  # -1 is "the problem's", as in train.py
    with pytest.raises(SystemExit):
        parser.parse_args(["--preset", "tiny"])  # only train.py's full command line has presets


def test_the_tools_nn_dtype_and_seed_are_train_pys_flags_with_the_tools_defaults(capsys):
    """One definition per flag: a tool's --nn_dtype and --seed are the HParams fields' flags (same help, same
    choices), --nn_dtype with the tools' own default and its reason, or the checkpoint's for evaluate."""
    field = {f.name: f for f in dataclasses.fields(HParams)}
    decoding, evaluating = argparse.ArgumentParser(), argparse.ArgumentParser()
    common.add_checkpoint_args(decoding)
    common.add_checkpoint_args(evaluating, nn_dtype=None)
    for parser in (decoding, evaluating):
        options = {a.dest: a for a in parser._actions}
        assert options["nn_dtype"].help.startswith(field["nn_dtype"].metadata["help"])
        assert tuple(options["nn_dtype"].choices) == HParams.__dataclass_fields__["nn_dtype"].metadata["choices"]
        assert options["seed"].help == field["seed"].metadata["help"] and options["seed"].default == 0
        with pytest.raises(SystemExit):
            parser.parse_args(["ckpt", "--nn_dtype", "float64"])
    assert "invalid choice: 'float64'" in capsys.readouterr().err
    assert flags.overrides_of(decoding.parse_args(["ckpt"]), common.MODEL_OVERRIDES) == {"nn_dtype": "float32"}
    assert "(default here: float32, whatever the model was trained in" in {a.dest: a for a in decoding._actions}[
        "nn_dtype"].help
    assert flags.overrides_of(evaluating.parse_args(["ckpt"]), common.MODEL_OVERRIDES) == {}
    assert flags.overrides_of(evaluating.parse_args(["ckpt", "--nn_dtype", "bfloat16"]), common.MODEL_OVERRIDES) \
        == {"nn_dtype": "bfloat16"}
