"""The failures of the model, training and tools that glow-tf reports to a user as one line.

Each is a `glow_common.errors.UserError`, the one contract of every command: `run_cli` prints it as
`<prog>: error: <message>` and exits with its `exit_code`; any other exception is a bug and keeps its
traceback.
"""

from __future__ import annotations

from glow_common.errors import UserError, WriteError

__all__ = ["GlowError", "ConfigError", "CheckpointError", "NonFiniteError", "WriteError"]


class GlowError(UserError):
    """Base of the model's, training's and tools' errors; exit status 2 (bad input) unless overridden."""


class ConfigError(GlowError, ValueError):
    """Flags, files or inputs that cannot be used; the message names the value and what is expected."""


class CheckpointError(GlowError, ValueError):
    """No usable checkpoint where one was asked for, or one that does not fit the model."""


class NonFiniteError(GlowError):
    """Training produced a NaN or infinite loss or weights; nothing non-finite was saved."""

    exit_code = 3
