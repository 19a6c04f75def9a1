"""The original's optimizers and Polyak averaging (openai/glow optim.py: adam, adamax, adam2, polyak).

Keras' Adam/Adamax do not reproduce the original update, so this is a direct port:

* `beta2 = 1 - 1/(train_its * polyak_epochs)` (0.9898 with 8 GPUs, 0.95 with 40), not 0.999; the same
  number is the decay of the Polyak average.
* `alpha_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)`, the Adam bias correction, for Adamax too.
* Adam: `w <- wd*w - alpha_t * m / (sqrt(v) + eps)`; Adamax: `u = max(beta2*u, |g|)`,
  `w <- wd*w - alpha_t * m / (u + eps)`: epsilon outside the root, weight decay multiplicative (1.0 = off).
* `adam2`: the original's "linearly scalable" variant that averages g and g^2 over ranks separately
  (its authors note it "doesn't seem to work"); kept for command-line compatibility.

Both classes are `tf.Module`s holding plain `tf.Variable`s, so a `tf.train.Checkpoint` saves their state and
Horovod can broadcast it. They work on the `tf.Variable`s that back Keras 3 variables (`v.value`), which is
also what Horovod 0.28 needs: it does not accept Keras 3 variables.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Sequence

import tensorflow as tf

from glow_tf.hparams import OPTIMIZERS

EPSILON = 1e-8  # optim.py's default; the original never overrode it


def tf_variable(v):
    """The `tf.Variable` behind a Keras 3 variable (or `v` itself when it already is one)."""
    return v if isinstance(v, tf.Variable) else v.value


def warmup_lr(lr: float, n_processed: int, n_train: int, epochs_warmup: float) -> float:
    """Learning rate for the next step (openai/glow train.py, the warmup in its training loop).

    Linear in the anchor-size images processed *before* the step, so the very first step runs with lr 0,
    as in the original. `epochs_warmup=0` (a ZeroDivisionError there) means no warmup.
    """
    if epochs_warmup <= 0:
        return lr
    return lr * min(1.0, n_processed / (n_train * epochs_warmup))


def _identity(tensors):
    return list(tensors)


class GlowOptimizer(tf.Module):
    """Port of optim.adamax / optim.adam / optim.adam2.

    `apply_gradients(grads, lr)` takes each rank's *local* gradients: like the original, the optimizer does
    the cross-rank averaging itself through `allreduce_mean` (a function from a list of tensors to their
    rank averages; the identity for one process), because adam2 must average g and g^2 separately.

    The step counter `t` is float32 and starts at 1, as there. The original incremented it in the same
    `tf.group` as the update with no ordering, so whether an update read t or t+1 was a race; here the
    update reads t, then t is incremented (plain Adam: the first update uses t = 1).
    """

    def __init__(self, variables: Sequence, optimizer: str = "adamax", beta1: float = 0.9,
                 beta2: float = 0.999, weight_decay: float = 1.0, epsilon: float = EPSILON,
                 allreduce_mean: Callable | None = None, name: str = "glow_optimizer"):
        super().__init__(name=name)
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        if not 0.0 <= beta1 < 1.0:
            raise ValueError(f"beta1={beta1} must be in [0, 1)")
        if not 0.0 <= beta2 < 1.0:
            raise ValueError(f"beta2={beta2} must be in [0, 1) (it is 1 - 1/(train_its*polyak_epochs))")
        self.kind = optimizer
        self.beta1 = float(beta1)
        self.beta2 = float(beta2)
        self.weight_decay = float(weight_decay)
        self.epsilon = float(epsilon)
        self._allreduce_mean = allreduce_mean or _identity
        variables = [tf_variable(v) for v in variables]
        with self.name_scope:
            self.t = tf.Variable(1.0, trainable=False, name="t")
            # The original named these '<w>_adam_m1' / '<w>_adam_m2' (the names ended up in tf.Variable's
            # `trainable` argument, so the slots were auto-named Variable_N); with beta1 = 0 it kept no first moment and used g directly.
            self.m1 = [self._slot(v, "m1") for v in variables] if self.beta1 > 0 else []
            self.m2 = [self._slot(v, "m2") for v in variables]

    @staticmethod
    def _slot(v: tf.Variable, kind: str) -> tf.Variable:
        name = v.name.split(":")[0].replace("/", "_")
        return tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False, name=f"{name}_adam_{kind}")

    @property
    def variables(self):
        """All optimizer state, in a fixed order (for broadcasting)."""
        return [self.t, *self.m1, *self.m2]

    def learning_rate_factor(self):
        """alpha_t / lr = sqrt(1 - beta2^t) / (1 - beta1^t), at the current t."""
        return tf.sqrt(1.0 - tf.pow(self.beta2, self.t)) / (1.0 - tf.pow(self.beta1, self.t))

    def apply_gradients(self, grads: Sequence[tf.Tensor], variables: Sequence, lr) -> None:
        """One update of `variables` (those given at construction, same order) from local `grads`."""
        if not len(grads) == len(variables) == len(self.m2):
            raise ValueError(f"got {len(grads)} gradients and {len(variables)} variables for an optimizer "
                             f"built for {len(self.m2)} variables")
        if self.kind == "adam2":
            g1s = self._allreduce_mean(grads)
            g2s = self._allreduce_mean([tf.square(g) for g in grads])
        else:
            g1s = self._allreduce_mean(grads)
            g2s = [None] * len(grads)

        lr = tf.cast(lr, tf.float32)
        if self.kind != "adam2" and self.beta1 > 0:
            self._apply_fused(g1s, variables, lr)
        else:
            self._apply_ops(g1s, g2s, variables, lr * self.learning_rate_factor())
        self.t.assign_add(1.0)

    def _apply_fused(self, grads, variables, lr):
        """Adam/Adamax through TF's fused training kernels: one op per variable instead of about twenty.

        Their arithmetic is the original's: ApplyAdam uses lr*sqrt(1-beta2^t)/(1-beta1^t) and
        m/(sqrt(v)+eps); ApplyAdaMax is given alpha_t with beta1_power=0 (so it divides by 1) and computes
        m/(u+eps). Only the rounding differs (m += (g-m)(1-beta1) instead of beta1*m + (1-beta1)*g). With
        far fewer ops, tracing, graph optimisation and every step get cheaper.
        """
        beta1, beta2, eps = (tf.constant(b, tf.float32) for b in (self.beta1, self.beta2, self.epsilon))
        beta1_power, beta2_power = tf.pow(beta1, self.t), tf.pow(beta2, self.t)
        alpha_t = lr * self.learning_rate_factor()
        for w, g, m1, m2 in zip(variables, grads, self.m1, self.m2):
            w = tf_variable(w)
            if self.weight_decay != 1.0:  # w <- wd*w - step: decay first, then the kernel subtracts the step
                w.assign(self.weight_decay * w)
            if self.kind == "adamax":
                tf.raw_ops.ResourceApplyAdaMax(var=w.handle, m=m1.handle, v=m2.handle, beta1_power=0.0,
                                               lr=alpha_t, beta1=beta1, beta2=beta2, epsilon=eps, grad=g)
            else:
                tf.raw_ops.ResourceApplyAdam(var=w.handle, m=m1.handle, v=m2.handle, beta1_power=beta1_power,
                                             beta2_power=beta2_power, lr=lr, beta1=beta1, beta2=beta2,
                                             epsilon=eps, grad=g)

    def _apply_ops(self, g1s, g2s, variables, alpha_t):
        """The update written out as in optim.py: adam2 (averaged g^2), and beta1 = 0 (no first moment)."""
        for i, (w, g, g2) in enumerate(zip(variables, g1s, g2s)):
            w = tf_variable(w)
            if self.beta1 > 0:
                m1 = self.m1[i].assign(self.beta1 * self.m1[i] + (1.0 - self.beta1) * g)
            else:
                m1 = g
            m2 = self.m2[i]
            if self.kind == "adamax":
                m2 = m2.assign(tf.maximum(self.beta2 * m2, tf.abs(g)))
                delta = m1 / (m2 + self.epsilon)
            else:
                sq = tf.square(g) if self.kind == "adam" else g2
                m2 = m2.assign(self.beta2 * m2 + (1.0 - self.beta2) * sq)
                delta = m1 / (tf.sqrt(m2) + self.epsilon)
            w.assign(self.weight_decay * w - alpha_t * delta)


class PolyakAverage(tf.Module):
    """Port of optim.polyak: `tf.train.ExponentialMovingAverage(decay=beta2, zero_debias=True)`

    For `tf.Variable`s that EMA never applies the zero-debias correction (it only debiases averages of
    plain tensors, which start at zero); each shadow starts from the variable's value when the average is
    created and then follows `shadow -= (1 - decay) * (shadow - w)` after every step. The original created
    the shadows before data-dependent init, so train.py builds this before `Glow.initialize` too.

    The original maintained and saved the average but never used it (both `polyak_swap()` calls are
    commented out); `swapped()` is its swap op, used by train.py only with --eval_ema.
    """

    def __init__(self, variables: Sequence, decay: float, name: str = "polyak"):
        super().__init__(name=name)
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay={decay} must be in [0, 1)")
        self.decay = float(decay)
        with self.name_scope:
            self.shadows = [
                tf.Variable(tf_variable(v).read_value(), trainable=False,
                            name=tf_variable(v).name.split(":")[0].replace("/", "_") + "_ExponentialMovingAverage")
                for v in variables]

    @property
    def variables(self):
        return list(self.shadows)

    def apply(self, variables: Sequence) -> None:
        """Move every shadow towards the current value of its variable (same order as at construction)."""
        # Same arithmetic as tf.compat.v1.assign_moving_average: 1 - decay in float32, then assign_sub.
        one_minus_decay = 1.0 - tf.constant(self.decay, tf.float32)
        for shadow, w in zip(self.shadows, variables, strict=True):
            shadow.assign_sub((shadow - tf_variable(w)) * one_minus_decay)

    def swap(self, variables: Sequence) -> None:
        """Exchange each variable with its shadow (the original's polyak_swap op); exact, no arithmetic."""
        for shadow, w in zip(self.shadows, variables, strict=True):
            w = tf_variable(w)
            tmp = shadow.read_value()
            shadow.assign(w)
            w.assign(tmp)

    @contextlib.contextmanager
    def swapped(self, variables: Sequence, enabled: bool = True):
        """Run the body with the averaged weights in place of `variables`, then swap the raw ones back."""
        if not enabled:
            yield
            return
        self.swap(variables)
        try:
            yield
        finally:
            self.swap(variables)
