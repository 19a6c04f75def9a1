"""The one exception type of the data package.

openai/glow reported bad data with bare `assert`s and the `KeyError`/`IndexError` they led to
(openai/glow#48 and #69). Here every bad input raises `DataError` with a one-line message that names
the bad value or file and says what was expected, so the caller can print it and stop. It is not a
ValueError: a ValueError from a bug is not mistaken for bad input.
"""


class DataError(Exception):
    """A dataset, file or data flag that cannot be used; the message says which and why."""

    exit_code = 2  # the commands report it as one line and exit with this status
