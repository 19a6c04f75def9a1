"""Hyperparameters: one frozen dataclass whose fields are openai/glow's train.py flags, and their checks.

Field names, defaults and meanings follow the original's argparse flags (openai/glow train.py), so an
openai command line carries over unchanged; each field carries its own `--help` text, which
glow_tf.flags turns into the command line of train.py and of every tool (the presets are in
glow_tf.presets). The original's `-1` sentinels become `None`; values the original derived and wrote
back onto `hps` (n_bins, n_y, image size, batch sizes) are read-only properties here. Bad values raise
`ConfigError` (a ValueError) naming the field.

Extensions, each off (or at the original's behaviour) by default:
  * `flow_permutation=3`: the LU-decomposed 1x1 convolution (dead code behind `if True:` in the original).
  * `n_channels`: image channels (the original always had 3; MNIST was tiled to 3).
  * `n_y`: number of classes; None picks the original's per-problem value.
  * `nn_dtype`: precision of the coupling networks' convolutions (bfloat16 or float16 where the hardware
    has fast kernels for them); the flow, its log-determinants and the weights stay float32.
  * training-loop options of train.py: `eval_ema`, `resume`, `max_steps`, `jit_compile`,
    `save_interval_minutes`, `skip_corrupt_records` (training skips and counts the damaged records
    of TFRecord data instead of stopping; data_loaders.tfrecords) and `elastic_commit_steps` (how often an
    elastic job commits its state; glow_tf.training.elastic).

Per-problem defaults (image size, classes) come from the problem registry, data_loaders.problems.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

from data_loaders import problems
from glow_tf.errors import ConfigError

# --flow_permutation codes (the original's 0/1/2, plus our LU variant).
REVERSE = 0
SHUFFLE = 1
INVCONV = 2
INVCONV_LU = 3
PERMUTATIONS = {REVERSE: "reverse", SHUFFLE: "shuffle", INVCONV: "1x1 conv", INVCONV_LU: "1x1 conv (LU)"}

# --flow_coupling codes.
ADDITIVE = 0
AFFINE = 1
COUPLINGS = {ADDITIVE: "additive", AFFINE: "affine"}

# --optimizer values: the original's optim.py adamax (the paper's), adam and adam2.
OPTIMIZERS = ("adamax", "adam", "adam2")

# Compute precisions of the coupling networks' convolutions (--nn_dtype); the flow stays float32.
NN_DTYPES = ("float32", "bfloat16", "float16")

# The original's multiplicative reparameterisation of every log-scale parameter: logs = 3 * stored.
LOGSCALE_FACTOR = 3.0

def _flag(default, help_text: str, choices: Optional[tuple] = None):
    """A field whose command-line definition lives beside it (glow_tf.flags reads it)."""
    return dataclasses.field(default=default, metadata={"help": help_text, "choices": choices})


@dataclasses.dataclass(frozen=True)
class HParams:
    """All flags of openai/glow's train.py, with their defaults, then this port's extensions."""

    # Logging and I/O.
    verbose: bool = _flag(False, "rank 0 prints n_processed, step time and the stats every step")
    restore_path: str = _flag("", "checkpoint (prefix, folder or logdir) to start from: weights, optimizer and "
                                  "Polyak average are restored, counters restart, data-dependent init is skipped")
    inference: bool = _flag(False, "encode and decode the validation set, write x.npy and z.npy to the logdir, "
                                   "and exit")
    logdir: str = _flag("./logs", "where train.txt, test.txt, TensorBoard events, checkpoints and samples go")
    # Data.
    problem: str = _flag("cifar10", f"dataset: {', '.join(problems.names())}")
    category: str = _flag("", "LSUN category (appended to data_dir)")
    data_dir: str = _flag("", "data location; empty: the problem's default")
    dal: int = _flag(1, "data augmentation level for mnist/cifar10: 0 none, 1 shifts, 2 extra")
    fmap: int = _flag(1, "TFRecord files read in parallel")
    pmap: int = _flag(16, "parallel calls of the parse map")
    n_train: int = _flag(50000, "images (at anchor_size) per 'epoch'; the same for every problem")
    n_test: Optional[int] = _flag(None, "validation images; -1: the problem's validation set")
    n_batch_train: int = _flag(64, "per-GPU batch at anchor_size")
    n_batch_test: int = _flag(50, "unused (as in the original)")
    n_batch_init: int = _flag(256, "per-GPU data-dependent-init batch at anchor_size")
    # Optimisation.
    optimizer: str = _flag("adamax", "adamax (the paper's), adam or adam2")
    lr: float = _flag(0.001, "base learning rate (not scaled by the number of GPUs)")
    beta1: float = _flag(0.9, "first-moment decay")
    polyak_epochs: float = _flag(1, "beta2 and the Polyak decay are 1 - 1/(train_its*polyak_epochs)")
    weight_decay: float = _flag(1.0, "multiplicative weight decay, w <- wd*w - step; 1.0 is off")
    epochs: int = _flag(1000000, "training runs epochs 1 .. epochs-1, as in the original")
    epochs_warmup: float = _flag(10, "linear learning-rate warmup, in epochs of n_train images")
    epochs_full_valid: int = _flag(50, "full validation (and best-loss checkpoint) every N epochs")
    gradient_checkpointing: int = _flag(1, "1: recompute each flow step in the backward pass (tf.recompute_grad)")
    # Model.
    image_size: Optional[int] = _flag(None, "image side; -1: the problem's")
    anchor_size: int = _flag(32, "per-GPU batch = n_batch_train * anchor_size^2 // image_size^2")
    width: int = _flag(512, "hidden channels of the coupling network")
    depth: int = _flag(32, "flow steps per level")
    weight_y: float = _flag(0.0, "weight of the class-prediction loss (with --ycond)")
    n_bits_x: int = _flag(8, "bits per subpixel")
    n_levels: int = _flag(3, "levels of the multi-scale flow (the original README's --n_level works too)")
    n_sample: int = _flag(1, "unused (as in the original)")
    epochs_full_sample: int = _flag(50, "sample grids every N epochs")
    learntop: bool = _flag(False, "learned top prior")
    ycond: bool = _flag(False, "class-conditional top prior")
    seed: int = _flag(0, "seed of the random draws (initial weights, data order, dequantisation noise, samples); "
                         "each rank uses rank + size*seed")
    flow_permutation: int = _flag(INVCONV, "0 reverse, 1 shuffle, 2 invertible 1x1 conv, 3 its LU form")
    flow_coupling: int = _flag(ADDITIVE, "0 additive, 1 affine")
    # Extensions (see the module docstring).
    n_channels: int = _flag(3, "image channels")
    n_y: Optional[int] = _flag(None, "number of classes; -1: the problem's")
    eval_ema: bool = _flag(False, "validate and sample with the Polyak average instead of the raw weights")
    resume: bool = _flag(True, "continue from the logdir's newest readable checkpoint if it has one "
                               "(--no-resume: start afresh; the old run is moved aside and deleted once the "
                               "new run's first checkpoint is written)")
    max_steps: Optional[int] = _flag(None, "stop after this many training steps in total")
    jit_compile: bool = _flag(False, "XLA-compile the forward/backward pass (the cross-rank averaging stays "
                                     "outside)")
    nn_dtype: str = _flag("float32", "precision of the coupling networks' convolutions: float32 (the original), "
                                     "bfloat16 or float16; the flow and its log-dets stay float32", NN_DTYPES)
    save_interval_minutes: float = _flag(30.0, "also save a checkpoint when this many minutes passed since the "
                                               "last one (bounds what a kill -9 costs); 0: only every epoch")
    skip_corrupt_records: bool = _flag(False, "skip the damaged records of TFRecord training data (the rest of a "
                                              "damaged file) instead of stopping: each is printed on stderr and "
                                              "counted; validation still stops")
    elastic_commit_steps: int = _flag(50, "under an elastic horovodrun: commit the training state to memory "
                                          "every N steps (what a lost worker costs at most; each commit "
                                          "copies the weights, optimizer slots and Polyak shadows)")

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{field.name}={value} is not a finite number")
        self._check_model()
        self._check_training()

    def _check_model(self):
        if self.flow_permutation not in PERMUTATIONS:
            raise ConfigError(f"flow_permutation={self.flow_permutation!r} is not one of "
                              f"{sorted(PERMUTATIONS)} ({', '.join(f'{k} {v}' for k, v in PERMUTATIONS.items())})")
        if self.flow_coupling not in COUPLINGS:
            raise ConfigError(f"flow_coupling={self.flow_coupling!r} is not one of "
                              f"{sorted(COUPLINGS)} ({', '.join(f'{k} {v}' for k, v in COUPLINGS.items())})")
        if not 1 <= self.n_bits_x <= 8:
            raise ConfigError(f"n_bits_x={self.n_bits_x} must be between 1 and 8")
        if self.n_levels < 1:
            raise ConfigError(f"n_levels={self.n_levels} must be at least 1")
        if self.depth < 1 or self.width < 1:
            raise ConfigError(f"depth={self.depth} and width={self.width} must both be at least 1")
        if self.nn_dtype not in NN_DTYPES:
            raise ConfigError(f"nn_dtype={self.nn_dtype!r} is not one of {', '.join(NN_DTYPES)}")
        if self.n_channels < 1:
            raise ConfigError(f"n_channels={self.n_channels} must be at least 1")
        if self.image_size is None and not self._problem_known:
            raise ConfigError(f"image_size is required for problem {self.problem!r}, which has no default "
                              f"(defaults exist for {', '.join(problems.with_default_size())})")
        size = self.image_shape[0]
        if size % 2 ** self.n_levels:
            raise ConfigError(f"image_size={size} is not divisible by 2**n_levels={2 ** self.n_levels} "
                              f"(n_levels={self.n_levels}); every level halves the resolution")
        if self.ycond and self.n_classes < 1:
            raise ConfigError(f"ycond needs at least one class, got n_y={self.n_y}")

    def _check_training(self):
        checks = [
            (self.lr > 0, f"lr={self.lr} must be positive"),
            (self.optimizer in OPTIMIZERS, f"optimizer={self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}"),
            (0 <= self.beta1 < 1, f"beta1={self.beta1} must be in [0, 1)"),
            (self.polyak_epochs > 0, f"polyak_epochs={self.polyak_epochs} must be positive"),
            (self.weight_decay > 0, f"weight_decay={self.weight_decay} must be positive (1.0 is off)"),
            (self.n_train > 0, f"n_train={self.n_train} must be positive"),
            (self.epochs_warmup >= 0, f"epochs_warmup={self.epochs_warmup} must be >= 0"),
            (self.epochs_full_valid > 0, f"epochs_full_valid={self.epochs_full_valid} must be positive"),
            (self.epochs_full_sample > 0, f"epochs_full_sample={self.epochs_full_sample} must be positive"),
            (self.weight_y >= 0, f"weight_y={self.weight_y} must be >= 0"),
            (self.max_steps is None or self.max_steps > 0, f"max_steps={self.max_steps} must be positive"),
            (self.anchor_size > 0, f"anchor_size={self.anchor_size} must be positive"),
            (self.elastic_commit_steps >= 1,
             f"elastic_commit_steps={self.elastic_commit_steps} must be >= 1"),
            (self.save_interval_minutes >= 0,
             f"save_interval_minutes={self.save_interval_minutes} must be >= 0 (0: save every epoch only)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        if self.local_batch_init() < 1:
            raise ConfigError(f"n_batch_init={self.n_batch_init} at anchor_size={self.anchor_size} gives "
                              f"{self.n_batch_init} * {self.anchor_size}^2 // {self.image_shape[0]}^2 = 0 "
                              f"images for data-dependent init; raise n_batch_init")

    @property
    def _problem_known(self) -> bool:
        problem = problems.find(self.problem)
        return problem is not None and problem.image_size is not None

    # Derived values (the original assigned these back onto hps).
    @property
    def n_bins(self) -> int:
        return 2 ** self.n_bits_x

    @property
    def image_shape(self) -> tuple:
        """(H, W, C) of the images the model sees."""
        size = self.image_size if self.image_size is not None else problems.find(self.problem).image_size
        return (size, size, self.n_channels)

    @property
    def n_classes(self) -> int:
        """The original's hps.n_y: class count of the problem, 1 for unlabelled data."""
        if self.n_y is not None:
            return self.n_y
        problem = problems.find(self.problem)
        return problem.n_classes if problem is not None else 1

    def local_batch_train(self) -> int:
        """Per-GPU training batch: n_batch_train images at anchor_size, scaled by area (openai/glow train.py)."""
        return self.n_batch_train * self.anchor_size ** 2 // self.image_shape[0] ** 2

    def local_batch_init(self) -> int:
        return self.n_batch_init * self.anchor_size ** 2 // self.image_shape[0] ** 2

    def train_its(self, size: int = 1) -> int:
        """Steps in one "epoch" of n_train anchor-size images over `size` ranks (openai/glow train.py)."""
        return int(math.ceil(self.n_train / (self.n_batch_train * size)))

    def beta2(self, size: int = 1) -> float:
        """The original's Adam/Adamax beta2 and Polyak decay: 1 - 1/(train_its*polyak_epochs)."""
        return 1.0 - 1.0 / (self.train_its(size) * self.polyak_epochs)


# The fields that decide a model's variables and what its latents mean: a checkpoint, or a file of
# directions in latent space, fits a model only when these agree.
MODEL_FIELDS = ("image_shape", "n_levels", "depth", "width", "flow_permutation", "flow_coupling", "n_bits_x",
                "learntop", "ycond", "n_classes")


# The fields that define a rank's training stream: a saved stream position (data_loaders.position) is only
# restored when these agree.
DATA_FIELDS = ("problem", "category", "data_dir", "dal", "fmap", "pmap", "n_train", "n_batch_train",
               "anchor_size", "image_shape", "n_channels", "seed")


def model_signature(hps: HParams) -> dict:
    """MODEL_FIELDS as JSON values, plus whether the model has its class-prediction head."""
    signature = {name: getattr(hps, name) for name in MODEL_FIELDS}
    signature = {k: list(v) if isinstance(v, tuple) else v for k, v in signature.items()}
    signature["classifier"] = bool(hps.ycond and hps.weight_y > 0)
    return signature
