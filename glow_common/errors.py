"""The one error contract of every glow-tf command (train.py, the tools, the converters, verify).

A `UserError` is an expected failure that the user can fix: bad flags, a missing or damaged file, a
checkpoint of another model, a full disk, a diverged run. Each package derives its own classes from it
(glow_tf.errors, data_loaders.DataError, tfrecords_tools.errors). `run_cli` prints one as a single line
`<prog>: error: <message>` and returns its `exit_code`; any other exception is a bug and keeps its
traceback. The exit statuses follow sysexits.h where one fits.
"""

from __future__ import annotations

import re
import sys

EXIT_USAGE = 2  # bad input: flags, files, data (argparse's status too)
EXIT_IOERR = 74  # sysexits.h EX_IOERR: a file could not be written


class UserError(Exception):
    """A failure the user can fix; its message names the bad value and what is expected."""

    exit_code = EXIT_USAGE


class WriteError(UserError):
    """A file could not be written (a full disk, permissions); what was written before is intact."""

    exit_code = EXIT_IOERR


def first_line(error) -> str:
    """The first line of an error's message (TensorFlow's OpError `.message`, else str()), without
    TensorFlow's `{{node ...}}` prefixes; the class name when there is no message. Also takes a string."""
    text = error if isinstance(error, str) else (getattr(error, "message", None) or str(error))
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text).strip()
    if text:
        return text.splitlines()[0].strip()
    return "" if isinstance(error, str) else type(error).__name__


def warn(message: str) -> None:
    """A warning line on stderr: `warning: <message>`."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def run_cli(prog: str, main, argv=None) -> int:
    """Run a command's `main(argv)` and return its exit status.

    A UserError is printed as one line `<prog>: error: <message>` on stderr and its `exit_code` is
    returned; `main`'s integer result is the status otherwise (0 for anything else). Everything else is
    a bug and propagates with its traceback.
    """
    try:
        status = main(argv)
    except UserError as err:
        print(f"{prog}: error: {err}", file=sys.stderr, flush=True)
        return err.exit_code
    return status if isinstance(status, int) else 0
