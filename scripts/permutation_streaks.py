#!/usr/bin/env python
"""How long a fixed channel permutation leaves channels untouched by the couplings, per level.

    python scripts/permutation_streaks.py --preset fashion_ablation_shuffle_additive --seeds 0 1 2

A coupling layer passes the first half of its channels through unchanged (openai/glow model.py,
revnet2d_step: z1 conditions z2). Reversing the channels before every coupling (--flow_permutation 0)
sends that half to the transformed side at the next step, so no channel goes untouched for two steps in
a row. A random shuffle (--flow_permutation 1) can keep a channel on the untouched side for several
steps. For each seed this builds the preset's model (the permutations come from the model's seeded
generator, as in training) and prints, per level, the longest run of consecutive steps in which some
channel is left untouched, the steps whose untouched half is the previous step's, and the fewest
steps that transform any one channel (reversal: half of them).
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from glow_tf.hparams import REVERSE, SHUFFLE
from glow_tf.model import Glow
from glow_tf.presets import PRESETS


def streaks(permutations: list[np.ndarray]) -> tuple[list[int], int, list[int]]:
    """Per channel the longest run of consecutive untouched steps; the steps repeating the previous
    untouched half; per channel the number of steps that transform it."""
    channels = len(permutations[0])
    position = np.arange(channels)  # position[i]: which input channel sits at position i
    run, longest, transformed, halves = np.zeros(channels, int), np.zeros(channels, int), np.zeros(channels, int), []
    for perm in permutations:
        position = position[perm]
        untouched = np.zeros(channels, bool)
        untouched[position[:channels // 2]] = True
        run = np.where(untouched, run + 1, 0)
        longest = np.maximum(longest, run)
        transformed += ~untouched
        halves.append(frozenset(position[:channels // 2].tolist()))
    return longest.tolist(), sum(a == b for a, b in zip(halves, halves[1:])), transformed.tolist()


def layer_permutation(layer, channels: int) -> np.ndarray:
    """The channel order a permutation layer produces, read by passing it the channel numbers."""
    probe = np.arange(channels, dtype="float32").reshape(1, 1, 1, channels)
    out, _ = layer.call(probe, np.zeros(1, "float32"))
    return np.asarray(out).reshape(-1).round().astype(int)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="fashion_ablation_shuffle_additive",
                        help="a preset with --flow_permutation 0 or 1 (default: %(default)s)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    if args.preset not in PRESETS:
        parser.error(f"--preset {args.preset!r} is not one of {', '.join(sorted(PRESETS))}")

    hps = PRESETS[args.preset]()
    if hps.flow_permutation not in (REVERSE, SHUFFLE):
        parser.error(f"--preset {args.preset}: flow_permutation {hps.flow_permutation} is not a fixed permutation "
                     f"(0 reverse or 1 shuffle)")
    print("| seed | level | channels | steps | longest untouched run, per channel | steps keeping the previous "
          "untouched half | fewest steps transforming a channel |")
    print("|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        model = Glow(dataclasses.replace(hps, seed=seed))
        for level, flows in enumerate(model.levels):
            channels = 4 * hps.image_shape[2] * 2 ** level  # squeeze x4, then split /2 and squeeze x4 per level
            perms = [layer_permutation(flow.permutation, channels) for flow in flows.flows]
            longest, repeats, transformed = streaks(perms)
            print(f"| {seed} | {level} | {channels} | {len(perms)} | {max(longest)} ({longest}) "
                  f"| {repeats} of {len(perms) - 1} | {min(transformed)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
