"""Import an openai/glow TF1 checkpoint (tf.train.Saver, e.g. the released abl-*/lsun-rnvp-* models).

    python -m glow_tf.tools.convert_tf1 abl-1x1-aff/model_best_loss.ckpt --output logs/abl-1x1-aff \\
        --problem cifar10 --image_size 32 --n_levels 3 --depth 32 --flow_permutation 2 --flow_coupling 1 \\
        --learntop

The model flags are train.py's (the original's, so an openai command line carries over; `--preset`
starts from one of our presets). Every variable of the model is read by its original name (openai/glow model.py's variable scopes):

    model/<level>/<step>/actnorm_center/b, .../actnorm_scale/logs          flow-step actnorm
    model/<level>/<step>/invconv/W | invconv/{P,L,U,sign_S,log_S} | shuffle/indices[_inverse]
    model/<level>/<step>/f1/l_1/{W, actnorm_center/b, actnorm_scale/logs}, f1/l_2/..., f1/l_last/{W,b,logs}
    model/pool<i>/conv/{W,b,logs}, model/prior/p/..., model/prior/y_emb/..., model/classifier/{W,b,logs}

Shapes already agree with ours (3x3 kernels have C_in + 1 input channels for the edge-pad channel;
log-scales are stored divided by 3), so the import is a name map plus checks: a name the configuration
needs that the file lacks, a `model/` name the configuration does not explain, or a shape that differs
refuses the import, listing them, and describes the configuration the file looks like. Optimizer slots
(unnamed `Variable_N`) are ignored; `--ema` takes the Polyak averages (`.../ExponentialMovingAverage`)
the original saved but never used. The result is a model-only checkpoint in train.py's layout,
`<output>/checkpoints/ckpt-0` with its hparams.json, which every tool reads.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
from typing import Dict, Optional, Sequence

import numpy as np

from glow_common.errors import first_line, run_cli
from glow_tf import flags
from glow_tf.errors import ConfigError
from glow_tf.tools import common

PROG = "python -m glow_tf.tools.convert_tf1"
EMA_SUFFIX = "/ExponentialMovingAverage"
SHOWN = 8  # names listed per kind of problem in an error message
def variable_map(model) -> Dict[str, object]:
    """{original TF1 name: our variable} for every variable of `model` except the DDI flags."""
    from glow_tf.invconv import InvConv1x1, InvConv1x1LU, ShufflePermute

    names = {}

    def actnorm(scope, layer):
        names[f"{scope}/actnorm_center/b"] = layer.b
        names[f"{scope}/actnorm_scale/logs"] = layer.logs

    def zeros(scope, layer):  # conv2d_zeros and linear_zeros
        names.update({f"{scope}/W": layer.W, f"{scope}/b": layer.b, f"{scope}/logs": layer.logs})

    for i, level in enumerate(model.levels):
        for j, step in enumerate(level.flows):
            scope = f"model/{i}/{j}"
            actnorm(scope, step.actnorm)
            perm = step.permutation
            if isinstance(perm, InvConv1x1LU):  # a subclass of InvConv1x1, so test it first
                names.update({f"{scope}/invconv/{k}": getattr(perm, k) for k in ("P", "L", "U", "sign_S", "log_S")})
            elif isinstance(perm, InvConv1x1):
                names[f"{scope}/invconv/W"] = perm.W
            elif isinstance(perm, ShufflePermute):
                names[f"{scope}/shuffle/indices"] = perm.indices
                names[f"{scope}/shuffle/indices_inverse"] = perm.indices_inverse
            nn = step.coupling.nn
            for conv in ("l_1", "l_2"):
                names[f"{scope}/f1/{conv}/W"] = getattr(nn, conv).W
                actnorm(f"{scope}/f1/{conv}", getattr(nn, conv).actnorm)
            zeros(f"{scope}/f1/l_last", nn.l_last)
    for i, split in enumerate(model.splits):
        zeros(f"model/pool{i}/conv", split.conv)
    if model.prior.p is not None:
        zeros("model/prior/p", model.prior.p)
    if model.prior.y_emb is not None:
        zeros("model/prior/y_emb", model.prior.y_emb)
    if model.classifier is not None:
        zeros("model/classifier", model.classifier.logits)
    return names


def _listing(items: Sequence[str]) -> str:
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more


def describe(shapes: Dict[str, Sequence[int]]) -> str:
    """What configuration a TF1 checkpoint's names and shapes suggest (the image size cannot be seen)."""
    steps = collections.defaultdict(set)
    for name in shapes:
        match = re.match(r"model/(\d+)/(\d+)/", name)
        if match:
            steps[int(match[1])].add(int(match[2]))
    if not steps:
        return "no flow steps under model/<level>/<step>/"
    first = "model/0/0"
    parts = [f"n_levels={max(steps) + 1}", f"depth={max(steps[0]) + 1}"]
    if f"{first}/f1/l_1/W" in shapes:
        parts.append(f"width={shapes[f'{first}/f1/l_1/W'][-1]}")
    if f"{first}/actnorm_center/b" in shapes:
        parts.append(f"n_channels={shapes[f'{first}/actnorm_center/b'][-1] // 4}")
    perm = (3 if f"{first}/invconv/L" in shapes else 2 if f"{first}/invconv/W" in shapes
            else 1 if f"{first}/shuffle/indices" in shapes else 0)
    parts.append(f"flow_permutation={perm}")
    if f"{first}/f1/l_last/W" in shapes and f"{first}/actnorm_center/b" in shapes:
        affine = shapes[f"{first}/f1/l_last/W"][-1] == shapes[f"{first}/actnorm_center/b"][-1]
        parts.append(f"flow_coupling={int(affine)}")
    parts.append(f"learntop={'model/prior/p/W' in shapes}")
    if "model/prior/y_emb/W" in shapes:
        parts.append(f"ycond=True n_y={shapes['model/prior/y_emb/W'][0]}")
    else:
        parts.append("ycond=False")
    parts.append(f"classifier (weight_y > 0)={'model/classifier/W' in shapes}")
    return " ".join(parts)


def read_tf1(path: str):
    """(reader, {name: shape}) of a TF1 checkpoint given as a prefix or the folder holding it."""
    import tensorflow as tf

    prefix = tf.train.latest_checkpoint(path) if os.path.isdir(path) else path
    if not prefix or not tf.io.gfile.exists(prefix + ".index"):
        hint = " (no `checkpoint` file there names one)" if os.path.isdir(path) else ""
        raise ConfigError(f"no TF1 checkpoint at {path}{hint}: expected a prefix such as "
                        f"logdir/model_best_loss.ckpt (with .index and .data files next to it)")
    try:
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as err:
        raise ConfigError(f"{prefix}: unreadable checkpoint ({first_line(err)})") from None
    if "_CHECKPOINTABLE_OBJECT_GRAPH" in shapes:
        raise ConfigError(f"{prefix} is a TF2 object-based checkpoint (e.g. from our train.py), which the "
                        f"tools read directly; {PROG} converts openai/glow's TF1 checkpoints")
    return reader, {name: list(shape) for name, shape in shapes.items()}


def import_tf1(model, reader, shapes: Dict[str, list], ema: bool = False) -> None:
    """Assign every variable of `model` from the TF1 checkpoint, after checking names and shapes."""
    from glow_tf.actnorm import ActNorm

    expected = variable_map(model)
    missing = sorted(n for n in expected if n not in shapes)
    ours = {n for n in shapes if n.startswith("model/") and not n.endswith(EMA_SUFFIX)}
    unexpected = sorted(ours - set(expected))
    mismatched = sorted(f"{n} {shapes[n]} (expected {list(v.shape)})" for n, v in expected.items()
                        if n in shapes and list(v.shape) != shapes[n])
    problems = [f"{len(items)} {what}: {_listing(items)}" for what, items in
                (("missing", missing), ("unexpected", unexpected), ("of another shape", mismatched)) if items]
    if problems:
        raise ConfigError("the checkpoint does not match the configuration (" + "; ".join(problems) +
                        f"). The checkpoint looks like: {describe(shapes)}")
    if ema:
        lacking = sorted(n for n, v in expected.items() if v.trainable and n + EMA_SUFFIX not in shapes)
        if lacking:
            raise ConfigError(f"--ema: no Polyak average for {len(lacking)} trainable variables: {_listing(lacking)}")
    for name, variable in expected.items():
        source = name + EMA_SUFFIX if ema and variable.trainable else name
        variable.assign(np.asarray(reader.get_tensor(source)).astype(variable.dtype))
    for layer in model.levels:
        for step in layer.flows:
            perm = getattr(step.permutation, "indices", None)
            if perm is not None:
                indices, inverse = perm.numpy(), step.permutation.indices_inverse.numpy()
                if sorted(indices) != list(range(len(indices))) or not np.array_equal(inverse, np.argsort(indices)):
                    raise ConfigError(f"{layer.name}/{step.name}: shuffle/indices is not a permutation with "
                                    f"indices_inverse its inverse")
    # The original had no DDI flag: a saved model is an initialised one.
    for layer in model._flatten_layers():
        if isinstance(layer, ActNorm):
            layer.initialized.assign(True)


def save(model, hps, output: str, overwrite: bool = False) -> str:
    """Write `model` as <output>/checkpoints/ckpt-0 with hparams.json, the layout of train.py."""
    import tensorflow as tf

    from glow_tf.training import checkpoints

    folder = os.path.join(output, checkpoints.CHECKPOINT_DIR)
    if os.path.exists(output) and not os.path.isdir(output):
        raise ConfigError(f"--output {output} is a file, not a folder")
    if checkpoints.candidates(folder) and not overwrite:
        raise ConfigError(f"{folder} already holds a checkpoint; pass --overwrite or choose another --output")
    for where in (folder, output):
        checkpoints.save_hparams(where, hps)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), folder, max_to_keep=1,
                                         checkpoint_name=checkpoints.LATEST_NAME)
    return checkpoints.save(manager, checkpoints.LATEST_NAME, 0)


def build_parser() -> argparse.ArgumentParser:
    """The tool's flags plus train.py's model flags (the original's, with its defaults)."""
    p = common.parser(PROG, __doc__)
    p.add_argument("tf1_checkpoint", help="TF1 checkpoint prefix (e.g. logdir/model_best_loss.ckpt) or its folder")
    p.add_argument("--output", required=True, help="logdir to write <output>/checkpoints/ckpt-0 into")
    p.add_argument("--ema", action="store_true", help="import the Polyak averages instead of the raw weights")
    p.add_argument("--overwrite", action="store_true", help="replace a checkpoint already in --output")
    flags.add_flags(p.add_argument_group("model flags (train.py's, with the original's defaults)"))
    return p


def main(argv: Optional[Sequence[str]] = None):
    import tensorflow as tf

    from glow_tf.model import Glow

    hps, tool = flags.parse_flags(build_parser(), argv)
    reader, shapes = read_tf1(tool.tf1_checkpoint)
    tf.keras.utils.set_random_seed(0)  # only the (overwritten) initial values are random
    model = Glow(hps)
    import_tf1(model, reader, shapes, ema=tool.ema)
    prefix = save(model, hps, tool.output, tool.overwrite)
    print(f"wrote {prefix} ({len(variable_map(model))} variables from {tool.tf1_checkpoint})")
    return prefix


if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
