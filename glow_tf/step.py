"""One step of flow (paper Fig. 2a; openai revnet2d_step): actnorm -> permutation -> coupling."""

from __future__ import annotations

from glow_tf.actnorm import ActNorm
from glow_tf.base import FlowSequence
from glow_tf.coupling import AdditiveCoupling, AffineCoupling
from glow_tf.hparams import ADDITIVE, AFFINE
from glow_tf.invconv import make_permutation


def make_coupling(code: int, channels: int, width: int, rng=None, **kwargs):
    """The coupling layer for a --flow_coupling code."""
    if code == ADDITIVE:
        return AdditiveCoupling(channels, width, rng=rng, **kwargs)
    if code == AFFINE:
        return AffineCoupling(channels, width, rng=rng, **kwargs)
    raise ValueError(f"flow_coupling={code!r} is not one of 0 (additive), 1 (affine)")


class FlowStep(FlowSequence):
    """actnorm, then the permutation, then the coupling; `reverse` undoes them in the opposite order."""

    def __init__(self, channels: int, width: int, permutation: int, coupling: int, rng=None, conv_dtype=None,
                 **kwargs):
        sub = {"dtype": kwargs.get("dtype")}
        self.actnorm = ActNorm(channels, **sub)
        self.permutation = make_permutation(permutation, channels, rng=rng, **sub)
        self.coupling = make_coupling(coupling, channels, width, rng=rng, conv_dtype=conv_dtype, **sub)
        super().__init__([self.actnorm, self.permutation, self.coupling], **kwargs)
