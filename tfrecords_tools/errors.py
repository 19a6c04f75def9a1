"""The error classes of tfrecords_tools.

Each is a `glow_common.errors.UserError` (exit status 2), which every command prints as one line,
`<prog>: error: <message>`; a failed write is glow_common's WriteError (exit status 74); any other
exception is a bug and keeps its traceback.
"""

from glow_common.errors import UserError


class ToolError(UserError):
    """Bad flags, input or output of a tfrecords_tools command; the message names the value and the fix."""


class ConversionError(ToolError):
    """Input or output a converter cannot use."""


class FormatError(ToolError):
    """A file that does not follow the TFRecord format (tfrecords_tools.format)."""


class DamagedFile(FormatError):
    """A TFRecord file whose framing or checksums are wrong from record `index` (at byte `offset`) on."""

    def __init__(self, path: str, index: int, offset: int, reason: str):
        super().__init__(f"{path}: record {index} at byte {offset}: {reason}")
        self.path, self.index, self.offset, self.reason = path, index, offset, reason
