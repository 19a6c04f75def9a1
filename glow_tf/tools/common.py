"""What every tool shares: its argument parser, the checkpoint argument, loading the model.

Every tool follows one convention: `python -m glow_tf.tools.<name> CHECKPOINT [flags]`, where CHECKPOINT
is a train.py logdir, its checkpoints/ or model_best_loss/ folder, or a checkpoint prefix; snake_case
flags like the original's; `--help` that stands alone; and one error path (glow_common.errors.run_cli): a
user error is one line `python -m glow_tf.tools.<name>: error: ...` with exit status 2, a bug keeps its
traceback.
"""

from __future__ import annotations

import argparse
from typing import Optional, Sequence

from glow_tf import flags
from glow_tf.errors import ConfigError


def parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """argparse whose description is the tool's module docstring."""
    return argparse.ArgumentParser(prog=prog, description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


# The tools that decode run the coupling networks in float32 unless told otherwise, and why.
FLOAT32_NETWORKS = ("float32", "whatever the model was trained in: float32 networks make decode the inverse of "
                    "encode to float32 round-off, while bfloat16 ones round the coupling's shift and scale to 8 "
                    "bits and the flow's round-off can move that rounding between encode and decode")

# The fields of a checkpoint's hparams that every model-loading tool lets the user override.
MODEL_OVERRIDES = ("nn_dtype",)


def add_checkpoint_args(p: argparse.ArgumentParser, nn_dtype: Optional[tuple] = FLOAT32_NETWORKS) -> None:
    """The checkpoint positional and the flags every model-loading tool shares: --ema, train.py's --seed
    (each rank draws from rank + size*seed) and --nn_dtype, an override of the checkpoint's precision
    whose default is `nn_dtype` (value, why), or the model's own when None (evaluate)."""
    p.add_argument("checkpoint", help="a train.py logdir, its checkpoints/ or model_best_loss/ folder, or a "
                                      "checkpoint prefix (the latest checkpoint is used, then the best)")
    p.add_argument("--ema", action="store_true",
                   help="use the Polyak-averaged weights (the original kept but never used them)")
    flags.add_flags(p, ("seed",))
    flags.add_flags(p, MODEL_OVERRIDES, overrides=True, defaults={"nn_dtype": nn_dtype} if nn_dtype else None)


def load(args, overrides: Sequence[str] = MODEL_OVERRIDES, rank: int = 0, size: int = 1):
    """(model, hps, checkpoint prefix) from the parsed checkpoint flags, with the `overrides` given applied
    to the checkpoint's hparams. Seeds TF, NumPy and Python first with this rank's seed, so that --seed
    fixes every draw."""
    import tensorflow as tf

    from data_loaders.common import rank_seed
    from glow_tf.training.checkpoints import load_model

    tf.keras.utils.set_random_seed(rank_seed(args.seed, rank, size))
    return load_model(args.checkpoint, ema=args.ema, **flags.overrides_of(args, overrides))


def check_label(hps, y: Optional[int]) -> Optional[int]:
    """--y, checked: a class of a ycond model, or None; refused for unconditional models."""
    if y is None:
        return None
    if not hps.ycond:
        raise ConfigError(f"--y {y}: this model is not class-conditional (ycond is off), so it takes no label")
    if not 0 <= y < hps.n_classes:
        raise ConfigError(f"--y {y} is out of range: the model has n_y = {hps.n_classes} classes "
                        f"(0 to {hps.n_classes - 1})")
    return y


def float_list(text: str) -> list:
    """'0,0.5,1' -> [0.0, 0.5, 1.0], for argparse."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values
