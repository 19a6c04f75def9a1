"""Command-line tools, one module per command: `python -m glow_tf.tools.<name> CHECKPOINT ...`."""
