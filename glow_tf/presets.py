"""Presets: the configurations of the paper's experiments, of the original README and of our own runs.

Each is a plain function returning an `HParams`; a variant builds on a base with `dataclasses.replace`.
`--preset NAME` (glow_tf.flags) starts from one and explicit flags override it. The GPU counts and
per-GPU batches in the docstrings are the paper's and the original README's.
"""

from __future__ import annotations

import dataclasses
import functools

from glow_tf.hparams import ADDITIVE, AFFINE, INVCONV, REVERSE, SHUFFLE, HParams


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
