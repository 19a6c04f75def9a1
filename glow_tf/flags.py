"""The command line of `HParams`: one flag per field, with the original's name, default and meaning.

Every flag is defined once, by its field (type, default, `--help` text in the field's metadata), and
this module turns fields into argparse flags for every command that takes them:
  * train.py and convert_tf1 take them all, plus `--preset` (glow_tf.presets);
  * a tool takes a few: as plain options with the field's default (`--seed`), or as overrides of the
    checkpoint's hparams (`overrides=True`: absent unless given, so the checkpoint's value holds), or
    with a default of the tool's own that beats the checkpoint's, given with its reason (the tools that
    decode run the coupling networks in float32: `--nn_dtype`).

Booleans are `--flag` / `--no-flag` (the original's store_true, plus a way to undo a preset's True);
`-1` means "the problem's default" (None) for the Optional fields, as it did in the original; the
original README's `--n_level` is an alias of `--n_levels`.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Dict, List, Optional, Sequence, Tuple

from glow_tf.hparams import HParams
from glow_tf.presets import PRESETS


def add_flags(parser, fields: Optional[Sequence[str]] = None, overrides: bool = False,
              defaults: Optional[Dict[str, Tuple[object, str]]] = None) -> List[str]:
    """Add a flag for every HParams field (then `--preset` too), or only for `fields`; returns their names.

    `overrides`: for a tool that changes a few fields of a checkpoint's hparams; a flag the user does not
    give is absent from the parsed arguments (`overrides_of`). `defaults`: {field: (value, why)}, a
    default of this command's own, instead of the field's (or of the checkpoint's), with the reason that
    ends its help.
    """
    if fields is None and not overrides:
        parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                            help="start from a preset configuration; explicit flags override it")
    hints = typing.get_type_hints(HParams)
    standard = HParams()
    defaults = defaults or {}
    added = []
    for field in dataclasses.fields(HParams):
        if fields is not None and field.name not in fields:
            continue
        names = [f"--{field.name}"] + (["--n_level"] if field.name == "n_levels" else [])
        kind, default, help_text = hints[field.name], getattr(standard, field.name), field.metadata["help"]
        if field.name in defaults:
            default, why = defaults[field.name]
            help_text += f" (default here: {default}, {why})"
        elif overrides:
            default, help_text = argparse.SUPPRESS, help_text + " (default: the checkpoint's)"
        choices = field.metadata.get("choices")
        if kind is bool:
            parser.add_argument(*names, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        else:
            base = next(a for a in typing.get_args(kind) if a is not type(None)) if typing.get_args(kind) else kind
            convert = _minus_one_is_none(base) if base is not kind else base
            parser.add_argument(*names, type=convert, default=default, choices=choices, help=help_text)
        added.append(field.name)
    return added


def _minus_one_is_none(base):
    def convert(text):
        value = base(text)
        return None if value == -1 else value
    convert.__name__ = base.__name__  # argparse names the type in its error messages
    return convert


def overrides_of(args: argparse.Namespace, names: Sequence[str]) -> dict:
    """The fields among `names` (as returned by `add_flags`) that the parsed `args` hold."""
    return {name: getattr(args, name) for name in names if hasattr(args, name)}


def parse_flags(parser: argparse.ArgumentParser, argv=None) -> tuple:
    """(HParams, the other arguments) from a parser built with `add_flags` over every field.

    The preset, when given, supplies the defaults, and every explicit flag overrides it.
    """
    # A first pass finds the preset; an unknown one is left to `parser`, whose error names the command.
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--preset", default=None)
    preset = PRESETS.get(pre.parse_known_args(argv)[0].preset)
    base = preset() if preset else HParams()
    if preset:
        parser.set_defaults(**dataclasses.asdict(base))
    args = vars(parser.parse_args(argv))
    names = {f.name for f in dataclasses.fields(HParams)}
    fields = {k: v for k, v in args.items() if k in names}
    rest = argparse.Namespace(**{k: v for k, v in args.items() if k not in names})
    return dataclasses.replace(base, **fields), rest
