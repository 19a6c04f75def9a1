"""The failures glow-tf reports to a user as one line, each with the exit status its command returns.

A `GlowError` is an expected failure: bad flags, a missing or damaged file, a checkpoint of another
model, a full disk, a diverged run. The command-line entry points print it as `<prog>: error: <message>`
and exit with its `exit_code`; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class GlowError(Exception):
    """Base of the errors a command reports on one line; exit status 2 (bad input) unless overridden."""

    exit_code = 2


class ConfigError(GlowError, ValueError):
    """Flags, files or inputs that cannot be used; the message names the value and what is expected."""


class CheckpointError(GlowError, ValueError):
    """No usable checkpoint where one was asked for, or one that does not fit the model."""


class WriteError(GlowError):
    """A file could not be written (a full disk, permissions); what was written before is intact."""

    exit_code = 74  # sysexits.h EX_IOERR


class NonFiniteError(GlowError):
    """Training produced a NaN or infinite loss or weights; nothing non-finite was saved."""

    exit_code = 3


def is_user_error(err: BaseException) -> bool:
    """Whether `err` is a failure the user can fix: its class carries an integer `exit_code` (GlowError here;
    data_loaders.DataError and tfrecords_tools' ConversionError follow the same rule, without importing
    this package). Anything else is a bug."""
    return isinstance(getattr(type(err), "exit_code", None), int)


def warn(message: str) -> None:
    """A warning line on stderr: `warning: <message>`."""
    import sys

    print(f"warning: {message}", file=sys.stderr, flush=True)


def run_cli(prog: str, main, argv=None) -> int:
    """Run a command's `main(argv)` and return its exit status.

    A user's error (is_user_error) is printed as one line `<prog>: error: <message>` on stderr and its
    `exit_code` is returned. Everything else is a bug and propagates with its traceback.
    """
    import sys

    try:
        status = main(argv)
    except Exception as err:  # noqa: BLE001 - re-raised below unless it declares an exit code
        if not is_user_error(err):
            raise
        print(f"{prog}: error: {err}", file=sys.stderr)
        return err.exit_code
    return status if isinstance(status, int) else 0
