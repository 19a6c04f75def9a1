"""--inference: encode then decode the validation set (openai/glow train.py, infer).

The original wrote x.npy (reconstructions) and z.npy (flat eps) to a hard-coded `logs/`; these go to the
logdir. Every rank encodes its shard of the validation set and rank 0 writes the gathered arrays.
"""

from __future__ import annotations

import os

import numpy as np

from data_loaders.damage import read_batch
from glow_common.files import atomic_path
from glow_tf.training.trainer import Trainer


def infer(plan, dist) -> dict:
    """Restore the model of `plan` (the logdir's checkpoint, or --restore_path), encode and decode."""
    hps = plan.hps
    trainer = Trainer(hps, dist, plan.splits)
    resume = None if plan.restore else plan.resume  # an explicit --restore_path wins for inference
    trainer.start(resume, plan.restore)
    xs, zs = [], []
    test_iter = iter(plan.splits.test)
    with trainer.ema.swapped(trainer.trainable, hps.eval_ema):
        for _ in range(plan.splits.test_its):
            x, y = read_batch(test_iter, plan.splits.test_files, "for --inference", skip_flag=None)
            z = trainer.model.encode(x, y)
            xs.append(np.asarray(trainer.model.decode(z, y)))
            zs.append(np.asarray(z))
    x_all = dist.allgather(np.concatenate(xs))
    z_all = dist.allgather(np.concatenate(zs))
    if dist.rank == 0:
        logdir = os.path.abspath(hps.logdir)
        for name, array in (("x.npy", x_all), ("z.npy", z_all)):
            with atomic_path(os.path.join(logdir, name), suffix=".npy") as tmp:
                np.save(tmp, array)
        print(f"inference: wrote {logdir}/x.npy {x_all.shape} and {logdir}/z.npy {z_all.shape}")
    return {"x": x_all, "z": z_all}
