"""Sample grids at chosen temperatures: the original's draw_samples (train.py) as a stand-alone tool.

    python -m glow_tf.sample logs/cifar10 --output samples/
    python -m glow_tf.sample logs/cifar10 --output samples/ --temperatures 0.7 --n 16 --y 3

One PNG per temperature, `sample_<i>_t<T>.png`, each a grid of n images ceil(sqrt(n)) wide (graphics.py).
Temperature T scales every eps ~ N(0, 1) of every level, so T = 0 gives the prior means and the demo's
"random samples" are T = 0.7 (spec §2.12, §5). The defaults are the original's: temperatures
[0, .25, .5, .6, .7, .8, .9, 1], 10x10 grids up to 64 px and 4x4 above. For class-conditional (ycond)
models the label of each image is its column mod n_y, as in the original, unless --y fixes one class.
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

import numpy as np

from glow_tf import tools_common
from glow_tf.tools_common import ToolError

PROG = "glow_tf.sample"
TEMPERATURES = (0.0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # draw_samples (spec §3.8)


def default_n(hps) -> int:
    """The original's grid size: 100 images up to 64x64, 16 above."""
    return 100 if hps.image_shape[0] <= 64 else 16


def labels(hps, n: int, y: Optional[int] = None) -> np.ndarray:
    """int32 [n]: the fixed class `y`, or each image's grid column mod n_y (0 for unconditional models)."""
    if y is not None or not hps.ycond:
        return np.full([n], y or 0, np.int32)
    columns = int(np.ceil(np.sqrt(n)))
    return (np.arange(n) % columns % hps.n_classes).astype(np.int32)


def sample_grid(model, n: int, temperature: float, y: np.ndarray, batch: int) -> np.ndarray:
    """n uint8 samples [n, H, W, C] at one temperature, drawn `batch` at a time."""
    parts = [model.sample(len(y[i:i + batch]), temperature=temperature, y=y[i:i + batch])
             for i in range(0, n, batch)]
    return np.concatenate([np.asarray(p) for p in parts])


def main(argv: Optional[Sequence[str]] = None):
    p = tools_common.parser(PROG, __doc__)
    tools_common.add_checkpoint_args(p)
    p.add_argument("--output", required=True, help="folder for the PNG grids (created if needed)")
    p.add_argument("--temperatures", type=tools_common.float_list, default=list(TEMPERATURES),
                   help="comma-separated temperatures, one grid each (default %(default)s)")
    p.add_argument("--n", type=int, default=None,
                   help="images per grid (default 100 up to 64 px, 16 above, as the original)")
    p.add_argument("--y", type=int, default=None,
                   help="class of every image, for ycond models (default: column mod n_y)")
    p.add_argument("--batch", type=int, default=64, help="images drawn per call (default %(default)s)")
    args = p.parse_args(argv)
    if args.n is not None and args.n < 1:
        raise ToolError(f"--n {args.n}: need at least one image per grid")
    if args.batch < 1:
        raise ToolError(f"--batch {args.batch} must be at least 1")
    bad = [t for t in args.temperatures if t < 0]
    if bad:
        raise ToolError(f"--temperatures {bad[0]}: a temperature is a standard deviation, so it cannot be negative")

    model, hps = tools_common.load(args)
    y = labels(hps, args.n or default_n(hps), tools_common.check_label(hps, args.y))
    written = []
    for i, temperature in enumerate(args.temperatures):
        images = sample_grid(model, len(y), temperature, y, args.batch)
        path = os.path.join(args.output, f"sample_{i}_t{temperature:g}.png")
        written.append(tools_common.save_png(tools_common.grid(images), path))
    print(f"wrote {len(written)} grids of {len(y)} samples to {args.output}")
    return written


if __name__ == "__main__":
    sys.exit(tools_common.run(PROG, main))
