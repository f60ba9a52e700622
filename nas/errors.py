"""The one exception type for user mistakes.

A `NasError` carries a one-line message that names the problem (file, line, field). The CLI turns it
into exit code 2, and its subclass `NasRuntimeError` (the input was fine, the work failed) into exit code
1; anything else is a bug and is allowed to raise with its traceback.
"""

from __future__ import annotations

from collections.abc import Iterator


class NasError(Exception):
    """A user-facing error: bad input, a missing file, an impossible setting."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class NasRuntimeError(NasError):
    """The input was fine but the work could not be done (a Ray cluster that cannot be reached, a search in
    which no trial succeeded): one line, like a NasError, but the CLI exits with code 1, not 2."""


def first_line(error: BaseException, limit: int = 300) -> str:
    """The first non-empty line of an exception's message (libraries append tracebacks), or its type name."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:limit]


def exception_chain(exc: BaseException | None) -> Iterator[BaseException]:
    """`exc` and what caused it, outermost first (a library wraps an OS or database error in its own)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


class Terminated(KeyboardInterrupt):
    """SIGTERM (what `timeout`, Docker and systemd send), raised like Ctrl-C's KeyboardInterrupt so the same
    clean-up runs: results written, Ray shut down. The CLI exits with 143 (128 + SIGTERM)."""


_stop = {"signal": None}  # set by the CLI's Ctrl-C / SIGTERM handler


def on_stop_signal(signum, frame) -> None:
    """The CLI's handler of SIGINT and SIGTERM: remember the signal, then raise like Ctrl-C does."""
    import signal

    _stop["signal"] = signum
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def stop_signal() -> int | None:
    return _stop["signal"]


def raise_if_stopped() -> None:
    """Raise again a Ctrl-C or SIGTERM whose exception was lost: one raised inside a __del__ or weakref callback
    (a library's garbage collection) is only printed by Python, and the work would go on."""
    import signal

    if _stop["signal"] is not None:
        raise Terminated() if _stop["signal"] == signal.SIGTERM else KeyboardInterrupt()
