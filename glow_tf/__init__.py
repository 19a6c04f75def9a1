"""glow-tf: a faithful TensorFlow 2 port of OpenAI's Glow (Kingma & Dhariwal, 2018).

    from glow_tf import HParams, Glow
    model = Glow(HParams(image_size=16, n_levels=2, depth=2, width=16, flow_coupling=1, learntop=True))
    model.initialize(x)          # uint8 [B, H, W, 3]: data-dependent init
    bits = model.bits_x(x)       # [B] bits per subpixel
    z = model.encode(x); x2 = model.decode(z); s = model.sample(8, temperature=0.7)

Packages: the model core here (layers, model, hparams with its presets and flags); `glow_tf.training` (optimizer, Horovod,
checkpoints, the training loop); `glow_tf.tools` (one command-line tool per module).
"""

from glow_tf.hparams import HParams
from glow_tf.presets import PRESETS

__all__ = ["HParams", "Glow", "PRESETS"]


def __getattr__(name):
    # The model pulls in TensorFlow; importing the package for HParams alone should not.
    if name == "Glow":
        from glow_tf.model import Glow
        return Glow
    raise AttributeError(f"module 'glow_tf' has no attribute {name!r}")
