"""The one exception type of the data package.

openai/glow reported bad data with bare `assert`s and the `KeyError`/`IndexError` they led to
(openai/glow#48 and #69). Here every bad input raises `DataError` with a one-line message that names
the bad value or file and says what was expected, so the command can print it and stop (a
glow_common UserError: exit status 2). It is not a ValueError: a ValueError from a bug is not mistaken
for bad input.
"""

from glow_common.errors import UserError


class DataError(UserError):
    """A dataset, file or data flag that cannot be used; the message says which and why."""
