"""The one exception type for user mistakes.

A `NasError` carries a one-line message that names the problem (file, line, field). The CLI turns it
into exit code 2; anything else is a bug and is allowed to raise with its traceback.
"""


class NasError(Exception):
    """A user-facing error: bad input, a missing file, an impossible setting."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def first_line(error: BaseException, limit: int = 300) -> str:
    """The first non-empty line of an exception's message (libraries append tracebacks), or its type name."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:limit]
