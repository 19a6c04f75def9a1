#!/usr/bin/env python
"""Train Glow: the command line of openai/glow train.py, on TensorFlow 2 and Horovod.

    python train.py --problem fashion_mnist --preset fashion_small --logdir logs/fashion_small
    horovodrun -np 8 python train.py --problem cifar10 --n_level 3 --depth 32 --flow_coupling 1 --learntop

Every flag of the original keeps its name, default and meaning (glow_tf.hparams.HParams; their command line: glow_tf.flags); `--preset NAME`
starts from a preset and explicit flags override it. The steps: parse the flags, prepare (every check of
flags, logdir, checkpoints and data, before anything is written), fit (glow_tf.training.loop), report.

On CPUs every op runs on one thread and each batch as concurrent sub-batches, one per core: the same
values, in less time (README, "Threads"). TF_NUM_INTRAOP_THREADS=0 gives TensorFlow's default pools.

Exit status: 0 done; 2 bad input (one line says what and why); 3 the loss or the weights became
non-finite (nothing non-finite was saved); 74 a file could not be written (a full disk); 75 stopped by
SIGTERM or Ctrl-C after writing a checkpoint (run the same command to continue); 69 a rank of a
multi-host job was lost (one line names its host; the same command resumes); 130 a second Ctrl-C
stopped it at once. Under an elastic horovodrun (--min-np/--max-np/--host-discovery-script) training
carries on instead when workers come and go (README, "Many machines"; --elastic_commit_steps).
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # a program may quiet TF's C++ banners; the library does not

from glow_common.errors import run_cli  # noqa: E402
from glow_tf import flags  # noqa: E402

EXIT_INTERRUPTED = 130


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in every flag's help; the closing paragraphs as written."""


def parse(argv=None):
    parser = argparse.ArgumentParser(prog="train.py", description="Train Glow (a TensorFlow 2 port of openai/glow).",
                                     formatter_class=_HelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[-2:]))
    flags.add_flags(parser)
    hps, _ = flags.parse_flags(parser, argv)
    return hps


def main(argv=None) -> int:
    """train.py's exit status for `argv`: bad input and the like are one line on stderr (run_cli)."""
    try:
        return run_cli("train.py", train, argv)
    except KeyboardInterrupt:  # Ctrl-C before training started, or a second one during it
        print("train.py: interrupted; whatever the last checkpoint holds is intact, and the same command "
              "resumes from it", file=sys.stderr)
        return EXIT_INTERRUPTED


def train(argv=None) -> int:
    hps = parse(argv)  # first: --help and flag errors need no TensorFlow

    import tensorflow as tf

    from data_loaders.common import rank_seed
    from glow_tf.training import distributed, loop
    from glow_tf.training.inference import infer
    from glow_tf.training.preemption import EXIT_PREEMPTED

    dist = distributed.init_distributed()
    layout = distributed.configure_devices(dist)
    if layout and dist.rank == 0:
        print(layout, flush=True)
    # The original's per-rank seed for TF and NumPy (and here Python and Keras too).
    tf.keras.utils.set_random_seed(rank_seed(hps.seed, dist.rank, dist.size))
    plan = loop.prepare(hps, dist)
    try:
        if hps.inference:
            infer(plan, dist)
            return 0
        outcome = loop.fit(plan, dist)
    except Exception as err:
        lost = distributed.lost_rank(err, dist)  # another host's ranks went away: one line, not a traceback
        if lost:
            raise lost from None
        raise
    finally:
        plan.release()
    if outcome.stopped_by:
        return EXIT_PREEMPTED
    if dist.rank == 0:
        print(loop.summary(outcome, hps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
