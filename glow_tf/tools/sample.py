"""Sample grids at chosen temperatures: the original's draw_samples (train.py) as a stand-alone tool.

    python -m glow_tf.tools.sample logs/cifar10 --output samples/
    python -m glow_tf.tools.sample logs/cifar10 --output samples/ --temperatures 0.7 --n 16 --y 3

One PNG per temperature, `sample_<i>_t<T>.png`, each a grid of n images ceil(sqrt(n)) wide (graphics.py).
Temperature T scales every eps ~ N(0, 1) of every level (model.py, sample), so T = 0 gives the prior means
and the demo's "random samples" are T = 0.7. The defaults are the original's: temperatures
[0, .25, .5, .6, .7, .8, .9, 1], 10x10 grids up to 64 px and 4x4 above. For class-conditional (ycond)
models the label of each image is its column mod n_y, as in the original, unless --y fixes one class.
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

from glow_common.errors import run_cli
from glow_tf import samples
from glow_tf.errors import ConfigError
from glow_tf.images import save_grid
from glow_tf.tools import common

PROG = "python -m glow_tf.tools.sample"


def main(argv: Optional[Sequence[str]] = None):
    p = common.parser(PROG, __doc__)
    common.add_checkpoint_args(p)
    p.add_argument("--output", required=True, help="folder for the PNG grids (created if needed)")
    p.add_argument("--temperatures", type=common.float_list, default=list(samples.TEMPERATURES),
                   help="comma-separated temperatures, one grid each (default %(default)s)")
    p.add_argument("--n", type=int, default=None,
                   help="images per grid (default 100 up to 64 px, 16 above, as the original)")
    p.add_argument("--y", type=int, default=None,
                   help="class of every image, for ycond models (default: column mod n_y)")
    p.add_argument("--batch", type=int, default=64, help="images drawn per call (default %(default)s)")
    args = p.parse_args(argv)
    if args.n is not None and args.n < 1:
        raise ConfigError(f"--n {args.n}: need at least one image per grid")
    if args.batch < 1:
        raise ConfigError(f"--batch {args.batch} must be at least 1")
    bad = [t for t in args.temperatures if t < 0]
    if bad:
        raise ConfigError(f"--temperatures {bad[0]}: a temperature is a standard deviation, so it cannot be negative")

    model, hps, _ = common.load(args)
    labels = samples.grid_labels(hps, args.n or samples.grid_size(hps), common.check_label(hps, args.y))
    written = []
    for i, temperature in enumerate(args.temperatures):
        images = samples.draw(model, temperature, labels, args.batch)
        written.append(save_grid(images, os.path.join(args.output, f"sample_{i}_t{temperature:g}.png")))
    print(f"wrote {len(written)} grids of {len(labels)} samples to {args.output}")
    return written


if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
