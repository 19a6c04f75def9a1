"""Command-line tools, one per module: `python -m glow_tf.tools.<name> CHECKPOINT [flags]` (see common.py)."""

import os

# These modules are programs: keep TensorFlow's C++ start-up banners out of their output unless the user
# asked for them. (Importing glow_tf itself leaves the environment alone.)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
