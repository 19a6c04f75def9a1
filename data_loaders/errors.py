"""The one exception type of the data package.

The original reported bad data with bare `assert`s and the `KeyError`/`IndexError` they led to (spec §3.1,
§7 issues #48 and #69). Here every bad input raises `DataError` with a one-line message that names the bad
value or file and says what was expected, so train.py can print it and stop.
"""


class DataError(ValueError):
    """A dataset, file or data flag that cannot be used; the message says which and why."""

    exit_code = 2  # the commands report it as one line and exit with this status
