"""Hyperparameters: one frozen dataclass whose fields are openai/glow's train.py flags.

Field names, defaults and meanings follow the original's argparse flags (openai/glow train.py), so an
openai command line carries over unchanged; each field carries its own `--help` text, and `add_flags`
turns the fields into the command line of train.py and of every tool that takes model flags. The
original's `-1` sentinels become `None`; values the original derived and wrote back onto `hps` (n_bins,
n_y, image size, batch sizes) are read-only properties here. Bad values raise `ConfigError` (a
ValueError) naming the field.

Extensions, each off (or at the original's behaviour) by default:
  * `flow_permutation=3`: the LU-decomposed 1x1 convolution (dead code behind `if True:` in the original).
  * `n_channels`: image channels (the original always had 3; MNIST was tiled to 3).
  * `n_y`: number of classes; None picks the original's per-problem value.
  * `nn_dtype`: precision of the coupling networks' convolutions (bfloat16 or float16 where the hardware
    has fast kernels for them); the flow, its log-determinants and the weights stay float32.
  * training-loop options of train.py: `eval_ema`, `resume`, `max_steps`, `jit_compile`,
    `save_interval_minutes`, and `skip_corrupt_records` (training skips and counts the damaged records
    of TFRecord data instead of stopping; data_loaders.tfrecords).

Per-problem defaults (image size, classes) come from the problem registry, data_loaders.problems.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import typing
from typing import Optional, Sequence

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

def _flag(default, help_text: str):
    """A field whose command-line help lives beside it (read by `add_flags`)."""
    return dataclasses.field(default=default, metadata={"help": help_text})


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
    seed: int = _flag(0, "seed; each rank uses rank + size*seed")
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
                                     "bfloat16 or float16; the flow and its log-dets stay float32")
    save_interval_minutes: float = _flag(30.0, "also save a checkpoint when this many minutes passed since the "
                                               "last one (bounds what a kill -9 costs); 0: only every epoch")
    skip_corrupt_records: bool = _flag(False, "skip the damaged records of TFRecord training data (the rest of a "
                                              "damaged file) instead of stopping: each is printed on stderr and "
                                              "counted; validation still stops")

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


def model_signature(hps: HParams) -> dict:
    """MODEL_FIELDS as JSON values, plus whether the model has its class-prediction head."""
    signature = {name: getattr(hps, name) for name in MODEL_FIELDS}
    signature = {k: list(v) if isinstance(v, tuple) else v for k, v in signature.items()}
    signature["classifier"] = bool(hps.ycond and hps.weight_y > 0)
    return signature


# ---------------------------------------------------------------------------------------------------------
# Command line: one flag per field, with the original's name, default and meaning.

def add_flags(parser: argparse.ArgumentParser, fields: Optional[Sequence[str]] = None,
              overrides: bool = False) -> None:
    """Add `--preset` and a flag for every HParams field (or only `fields`) to `parser`.

    Booleans are `--flag` / `--no-flag` (the original's store_true, plus a way to undo a preset's True);
    `-1` means "the problem's default" (None) for the Optional fields, as it did in the original; the
    original README's `--n_level` is an alias of `--n_levels`.

    With `overrides` (for a tool that changes a few fields of a checkpoint's hparams) there is no
    `--preset` and a flag the user does not give is absent from the parsed arguments (`overrides_of`).
    """
    if not overrides:
        parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                            help="start from a preset configuration; explicit flags override it")
    hints = typing.get_type_hints(HParams)
    defaults = HParams()
    for field in dataclasses.fields(HParams):
        if fields is not None and field.name not in fields:
            continue
        names = [f"--{field.name}"] + (["--n_level"] if field.name == "n_levels" else [])
        kind, default, help_text = hints[field.name], getattr(defaults, field.name), field.metadata["help"]
        if overrides:
            default, help_text = argparse.SUPPRESS, help_text + " (default: the checkpoint's)"
        if kind is bool:
            parser.add_argument(*names, action=argparse.BooleanOptionalAction, default=default, help=help_text)
            continue
        base = next(a for a in typing.get_args(kind) if a is not type(None)) if typing.get_args(kind) else kind
        convert = _minus_one_is_none(base) if base is not kind else base
        parser.add_argument(*names, type=convert, default=default, help=help_text)


def _minus_one_is_none(base):
    def convert(text):
        value = base(text)
        return None if value == -1 else value
    convert.__name__ = base.__name__  # argparse names the type in its error messages
    return convert


def overrides_of(args: argparse.Namespace) -> dict:
    """The HParams fields a parser built with `add_flags(..., overrides=True)` was given."""
    names = {f.name for f in dataclasses.fields(HParams)}
    return {k: v for k, v in vars(args).items() if k in names}


def parse_flags(parser: argparse.ArgumentParser, argv=None) -> tuple:
    """(HParams, the other arguments) from a parser built with `add_flags`.

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


# Presets for the experiments of the paper and of the original README. Each is a plain function.

def cifar10() -> HParams:
    """CIFAR-10 quantitative run: 3.35 bits/dim in the paper; 8 GPUs x 64."""
    return HParams(problem="cifar10", image_size=32, n_levels=3, depth=32, width=512,
                   flow_permutation=INVCONV, flow_coupling=AFFINE, learntop=True, n_batch_train=64)


def imagenet32() -> HParams:
    """Downsampled ImageNet 32x32: 4.09 bits/dim; 8 GPUs x 64."""
    return HParams(problem="imagenet-oord", image_size=32, n_levels=3, depth=48, width=512,
                   flow_permutation=INVCONV, flow_coupling=AFFINE, learntop=True, n_batch_train=64)


def imagenet64() -> HParams:
    """Downsampled ImageNet 64x64: 3.81 bits/dim; 8 GPUs x 16 (anchor 32 -> 64*32^2//64^2)."""
    return HParams(problem="imagenet-oord", image_size=64, n_levels=4, depth=48, width=512,
                   flow_permutation=INVCONV, flow_coupling=AFFINE, learntop=True, n_batch_train=64)


def lsun64(category: str = "bedroom") -> HParams:
    """LSUN 64x64 (RealNVP protocol: random crops of images whose short side is 96)."""
    return HParams(problem="lsun_realnvp", category=category, image_size=64, n_levels=3, depth=48,
                   width=512, flow_permutation=INVCONV, flow_coupling=AFFINE, learntop=True,
                   n_batch_train=64)


def celeba256() -> HParams:
    """CelebA-HQ 256x256 at 5 bits, additive coupling; 40 GPUs x 1."""
    return HParams(problem="celeba", image_size=256, n_levels=6, depth=32, width=512,
                   flow_permutation=INVCONV, flow_coupling=ADDITIVE, n_bits_x=5, learntop=True,
                   n_batch_train=64)


def tiny() -> HParams:
    """A seconds-on-CPU model for tests: 8x8 images, 2 levels of 2 steps, width 8."""
    return HParams(problem="cifar10", image_size=8, n_levels=2, depth=2, width=8,
                   flow_permutation=INVCONV, flow_coupling=AFFINE, learntop=True, n_batch_train=4,
                   n_batch_init=4, n_train=16, n_test=8)


# --- the default run of `make train` ------------------------------------------------------------------------

def fashion_small() -> HParams:
    """`make train`: a small affine Glow on Fashion-MNIST that trains in minutes on two CPU cores.

    Native 28x28 grey images (image_size=28, n_channels=1), so test bits/dim compare directly with the
    README's reference figures for Fashion-MNIST; anchor_size=28 keeps the per-GPU batch at
    n_batch_train. 9 "epochs" of 6400 images (200 steps each), warmup over the first one, full
    validation at epochs 3, 6 and 9, samples at epochs 1, 3, 6 and 9; no augmentation and no gradient
    checkpointing (memory is no concern here and a short run underfits). The README gives the bits/dim it
    reaches and how much the last validation of so short a run moves with the seed.
    """

    return HParams(problem="fashion_mnist", image_size=28, n_channels=1, anchor_size=28, n_levels=2,
                   depth=8, width=64, flow_permutation=INVCONV, flow_coupling=AFFINE, learntop=True,
                   n_batch_train=32, n_batch_init=256, n_train=6400, epochs=10, epochs_warmup=1,
                   epochs_full_valid=3, epochs_full_sample=3, dal=0, gradient_checkpointing=0)


# --- the remaining experiments of the original README ---------------------------------

def lsun64_bedroom() -> HParams:
    """LSUN bedroom 64x64: 2.38 bits/dim; 8 GPUs x 16."""
    return lsun64("bedroom")


def lsun64_tower() -> HParams:
    """LSUN tower 64x64: 2.46 bits/dim; 8 GPUs x 16."""
    return lsun64("tower")


def lsun64_church_outdoor() -> HParams:
    """LSUN church outdoor 64x64: 2.67 bits/dim; 8 GPUs x 16."""
    return lsun64("church_outdoor")


def lsun96(category: str = "bedroom") -> HParams:
    """Qualitative LSUN 96x96, 5 bits, additive; 40 GPUs x 7. The original could not run it (KeyError 7, and a
    power-of-two assert); here the reader downscales the 256x256 shards and the test batch is 6."""
    return HParams(problem="lsun", category=category, image_size=96, n_levels=5, depth=64, width=512,
                   flow_permutation=INVCONV, flow_coupling=ADDITIVE, n_bits_x=5, learntop=True,
                   n_batch_train=64)


def lsun128(category: str = "bedroom") -> HParams:
    """Qualitative LSUN 128x128, 5 bits, additive; 40 GPUs x 4 (read from the 256x256 shards)."""
    return dataclasses.replace(lsun96(category), image_size=128)


def cifar10_conditional() -> HParams:
    """Class-conditional CIFAR-10: 5 bits, additive, ycond with weight_y 0.01; 8 GPUs x 64."""
    return HParams(problem="cifar10", image_size=32, n_levels=3, depth=32, width=512,
                   flow_permutation=INVCONV, flow_coupling=ADDITIVE, n_bits_x=5, learntop=True,
                   ycond=True, weight_y=0.01, n_batch_train=64)


def imagenet32_conditional() -> HParams:
    """Class-conditional ImageNet 32x32 (the labelled `imagenet` TFRecords): 5 bits, additive, ycond."""
    return HParams(problem="imagenet", image_size=32, n_levels=3, depth=48, width=512,
                   flow_permutation=INVCONV, flow_coupling=ADDITIVE, n_bits_x=5, learntop=True,
                   ycond=True, weight_y=0.01, n_batch_train=64)


def ablation(permutation: int, coupling: int, seed: int = 0) -> HParams:
    """Figure 3's ablation on CIFAR-10: L=3, K=32, learntop, lr 1e-3, seeds 0/1/2; 8 GPUs x 64."""
    return dataclasses.replace(cifar10(), flow_permutation=permutation, flow_coupling=coupling, seed=seed)


# --- the runs behind the README's "Our results" (Fashion-MNIST on CPU) --------------

def fashion_glow() -> HParams:
    """Fashion-MNIST at its native 28x28x1: the run behind the README's reported test bits/dim.

    2 levels of 12 steps, width 96, affine, 1x1 conv, learntop; 27 "epochs" of 12,800 images (345,600
    images, 5.8 passes over the training set), validation on 2,000 test images every 2 epochs (the
    reported figure comes from glow_tf.tools.evaluate on all 10,000).
    """
    return HParams(problem="fashion_mnist", image_size=28, n_channels=1, anchor_size=28, n_levels=2,
                   depth=12, width=96, flow_permutation=INVCONV, flow_coupling=AFFINE, learntop=True,
                   n_batch_train=32, n_batch_init=256, n_train=12800, n_test=2000, epochs=28,
                   epochs_warmup=1, epochs_full_valid=2, epochs_full_sample=10, dal=0,
                   gradient_checkpointing=0)


def fashion_ablation(permutation: int, coupling: int, seed: int = 0) -> HParams:
    """Figure 3 at small scale on Fashion-MNIST: 2 levels of 8 steps, width 64, 11 epochs of 12,800 images."""
    return HParams(problem="fashion_mnist", image_size=28, n_channels=1, anchor_size=28, n_levels=2,
                   depth=8, width=64, flow_permutation=permutation, flow_coupling=coupling, learntop=True,
                   n_batch_train=32, n_batch_init=256, n_train=12800, n_test=2000, epochs=12,
                   epochs_warmup=1, epochs_full_valid=1, epochs_full_sample=100, dal=0,
                   gradient_checkpointing=0, seed=seed)


def _variant_presets(prefix: str, factory) -> dict:
    names = {REVERSE: "reverse", SHUFFLE: "shuffle", INVCONV: "1x1"}
    kinds = {ADDITIVE: "additive", AFFINE: "affine"}
    return {f"{prefix}_{names[p]}_{kinds[c]}": functools.partial(factory, p, c) for c in kinds for p in names}


PRESETS = {
    "cifar10": cifar10, "imagenet32": imagenet32, "imagenet64": imagenet64,
    "lsun64_bedroom": lsun64_bedroom, "lsun64_tower": lsun64_tower,
    "lsun64_church_outdoor": lsun64_church_outdoor, "lsun96": lsun96, "lsun128": lsun128,
    "celeba256": celeba256, "cifar10_conditional": cifar10_conditional,
    "imagenet32_conditional": imagenet32_conditional, **_variant_presets("ablation", ablation),
    "tiny": tiny, "fashion_small": fashion_small, "fashion_glow": fashion_glow,
    **_variant_presets("fashion_ablation", fashion_ablation),
}
