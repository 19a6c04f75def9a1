"""The training step the benchmarks time: train.py's own (glow_tf.training.steps.make_steps), built the
way train.py builds it: the model, the original's Adamax with its Polyak average, data-dependent init,
then the step (forward, backward, update, average) as one tf.function.

The reference configuration is the one every speed figure in the README uses: 32x32x3 images,
3 levels x 8 steps, width 128, batch 16, affine coupling, 1x1 convolution, learned top prior, no
gradient checkpointing (HParams' default, the original's, has it on).
Images are random uint8: the step's cost does not depend on their content.
"""

from __future__ import annotations

import os
import sys

# The checkout whose glow_tf the step is built from: this one, or another one named by
# $GLOW_TF_ROOT (bench/vs_pytorch.py --baseline times an older checkout beside this one).
ROOT = os.environ.get("GLOW_TF_ROOT") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # before any glow_tf import: this checkout's, not another install's
    sys.path.insert(0, ROOT)
REFERENCE = dict(image_size=32, n_levels=3, depth=8, width=128, n_batch_train=16)
# The benchmarks' two CPU thread layouts, as TF_NUM_INTRAOP_THREADS: TensorFlow's own pools (each op over
# one thread per core), and single-threaded ops with the batch as concurrent sub-batches (train.py's CPU
# default, glow_tf.training.distributed.cpu_thread_layout). Set before TensorFlow starts.
INTRAOP = {"default": "0", "parallel": "1"}


def reference_hps(**overrides):
    """HParams of the reference configuration, with `overrides` (any HParams field)."""
    from glow_tf.hparams import AFFINE, INVCONV, HParams

    fields = dict(problem="cifar10", flow_permutation=INVCONV, flow_coupling=AFFINE, learntop=True,
                  gradient_checkpointing=0, **REFERENCE)
    fields.update(overrides)
    return HParams(**fields)


class TrainStep:
    """train.py's training step on `hps`, initialised and ready: `run(n)` does n steps.

    Like train.py's loop, every step waits for its statistics (`.numpy()`), so n steps cost n full
    updates. Two fixed batches alternate, each step with its own noise seed.
    """

    def __init__(self, hps, seed: int = 0):
        import numpy as np
        import tensorflow as tf

        from glow_tf import Glow
        from glow_tf.training.distributed import configure_devices, init_distributed
        from glow_tf.training.optim import GlowOptimizer, PolyakAverage
        from glow_tf.training.steps import FLAGS, make_steps

        self.dist = init_distributed()
        configure_devices(self.dist)
        tf.keras.utils.set_random_seed(seed + self.dist.rank)
        self.hps = hps
        self.model = Glow(hps)
        trainable = list(self.model.trainable_variables)
        beta2 = hps.beta2(self.dist.size)
        self.optimizer = GlowOptimizer(trainable, "adamax", beta2=beta2,
                                       allreduce_mean=self.dist.allreduce_mean)
        self.ema = PolyakAverage(trainable, beta2)
        self.step, _ = make_steps(self.model, self.optimizer, self.ema, self.dist, hps)
        rng = np.random.default_rng(seed + self.dist.rank)
        batch = hps.n_batch_train
        self.batches = [(tf.constant(rng.integers(0, 256, (batch, *hps.image_shape), dtype=np.uint8)),
                         tf.zeros([batch], tf.int32)) for _ in range(2)]
        self.model.initialize(self.batches[0][0][:min(batch, 16)])
        self.dist.broadcast(self.model.variables + self.optimizer.variables + self.ema.variables)
        self.lr = tf.constant(1e-4)
        self.flags = tf.zeros([len(FLAGS)])  # no rank asks the others to stop or to save
        self._tf = tf
        self._i = 0

    @property
    def images_per_step(self) -> int:
        return self.dist.size * self.hps.n_batch_train

    def run(self, n: int) -> None:
        for _ in range(n):
            x, y = self.batches[self._i % 2]
            seed = self._tf.constant([self.dist.rank, self._i], self._tf.int64)
            self.step(x, y, self.lr, seed, self.flags).numpy()
            self._i += 1
