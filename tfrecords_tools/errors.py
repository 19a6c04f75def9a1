"""The error classes of tfrecords_tools.

Each command catches `ToolError` alone and prints it as one line, `<prog>: error: <message>`, with exit
status 2; any other exception is a bug and keeps its traceback.
"""


class ToolError(Exception):
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
