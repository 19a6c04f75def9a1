"""glow-tf: a faithful TensorFlow 2 port of OpenAI's Glow (Kingma & Dhariwal, 2018).

    from glow_tf import HParams, Glow
    model = Glow(HParams(image_size=16, n_levels=2, depth=2, width=16, flow_coupling=1, learntop=True))
    model.initialize(x)          # uint8 [B, H, W, 3]: data-dependent init
    bits = model.bits_x(x)       # [B] bits per subpixel
    z = model.encode(x); x2 = model.decode(z); s = model.sample(8, temperature=0.7)
"""

import os

# The command-line tools (python -m glow_tf.<tool>) import this package before their own code runs:
# keep TensorFlow's C++ start-up banners out of their output unless the user asked for them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from glow_tf.hparams import HParams, PRESETS  # noqa: E402
from glow_tf.model import Glow  # noqa: E402

__all__ = ["HParams", "Glow", "PRESETS"]
