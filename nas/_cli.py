"""Conventions every `nas` subcommand shares: exit codes, log level, signals, a closed stdout, `--json` / `--json-out`,
and the argument types and output checks of the model commands (validate, quantize, select, drift).

Exit codes: 0 done; 1 the command ran but failed (`NasRuntimeError`, a full disk); 2 a usage or input
error (`NasError`, argparse); 130 Ctrl-C; 141 stdout closed by its reader (`nas spaces --json | head -1`),
as for any command killed by SIGPIPE; 143 SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Any, Sequence

from nas import errors
from nas.errors import exception_chain, on_stop_signal

DONE, FAILED, USAGE, INTERRUPTED, CLOSED_PIPE, TERMINATED = 0, 1, 2, 130, 141, 143

LOGGER = "nas"
JSON_TO_STDOUT = "-"  # the value of a bare `--json`

log = logging.getLogger(LOGGER)


class _Formatter(logging.Formatter):
    """`nas: warning: ...`, as the command's other messages read."""

    def format(self, record: logging.LogRecord) -> str:
        return f"nas: {record.levelname.lower()}: {record.getMessage()}"


class _StderrHandler(logging.StreamHandler):
    """Writes to the sys.stderr of the moment (a test's capture replaces it between calls)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def add_verbosity_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more messages on stderr: -v info, -vv debug (the 'nas' logger)",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        dest="quiet_all",
        action="store_true",
        help="errors only: no progress bar or counters, no warnings",
    )


def start_logging(verbose: int, quiet: bool) -> logging.Handler:
    """The `nas` logger's level from -v/-q, its messages on stderr; returns the handler to remove after."""
    level = logging.ERROR if quiet else {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    handler = _StderrHandler()
    handler.setFormatter(_Formatter())
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False  # one line per message, not a second one from a root handler
    return handler


def stop_logging(handler: logging.Handler) -> None:
    log.removeHandler(handler)
    log.propagate = True
    log.setLevel(logging.NOTSET)


def warn(message: str) -> None:
    """`nas: warning: ...` on stderr, unless -q (the `nas` logger above WARNING) silenced warnings."""
    if log.isEnabledFor(logging.WARNING):
        print(f"nas: warning: {message}", file=sys.stderr)


def flush_stdout() -> None:
    """Write out what is buffered while a closed pipe can still be reported as such (not at exit)."""
    sys.stdout.flush()


def closed_stdout() -> int:
    """The reader of stdout went away (`| head`): nothing more can be shown, and that is not an error worth a
    traceback. Stdout is pointed at /dev/null so the interpreter's own flush at exit is quiet too."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # a stdout without a file descriptor (a test's capture)
        pass
    return CLOSED_PIPE


def disk_full(exc: BaseException) -> str | None:
    """What ran out of space, when `exc` (or what caused it: a database layer wraps the OS error) is a full
    disk; None otherwise."""
    import errno

    for cause in exception_chain(exc):
        if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:
            return (
                cause.filename
                if isinstance(cause.filename, str) and cause.filename
                else "a file being written"
            )
        if "database or disk is full" in str(cause):
            return "the study database"
    return None


def catch_stop_signals() -> dict:
    """SIGTERM handled like Ctrl-C (and Ctrl-C where it is not ignored), both remembered (nas.errors), so a stop
    whose exception a library's garbage collection swallowed is raised again by the search; that swallowed
    exception is not printed. Returns what to restore (main thread only: Python allows no other)."""
    import threading

    errors._stop["signal"] = None
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {"hook": sys.unraisablehook, signal.SIGTERM: signal.signal(signal.SIGTERM, on_stop_signal)}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, on_stop_signal)
    hook = sys.unraisablehook
    sys.unraisablehook = lambda u: None if isinstance(u.exc_value, KeyboardInterrupt) else hook(u)
    return previous


def restore_signals(previous: dict) -> None:
    errors._stop["signal"] = None
    for key, value in previous.items():
        if key == "hook":
            sys.unraisablehook = value
        elif value is not None:
            signal.signal(key, value)


def add_format_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """--format onnx|tflite for every command that writes model folders (`nas.export`'s formats)."""
    parser.add_argument(
        "--format",
        dest="export_format",
        default="onnx",
        metavar="{onnx,tflite}",
        help=f"tflite: also model.tflite (LiteRT, NHWC input) beside {what}; needs the litert extra",
    )


def add_json_arguments(parser: argparse.ArgumentParser, what: str, default_file: str) -> None:
    """`--json`: the result as JSON on stdout (the human-readable lines go to stderr); `--json-out FILE`: the
    same JSON written to a file. `--json FILE` is the older spelling of `--json-out FILE`, still accepted
    with a deprecation line."""
    parser.add_argument(
        "--json",
        nargs="?",
        const=JSON_TO_STDOUT,
        default=None,
        metavar="FILE",
        help=f"print {what} as JSON on stdout (tables and messages go to stderr); "
        "'--json FILE' is the deprecated spelling of --json-out FILE",
    )
    parser.add_argument(
        "--json-out",
        default=None,
        metavar="FILE",
        help=f"write {what} as JSON to FILE (default: {default_file})",
    )


def json_output(args: argparse.Namespace) -> tuple[bool, str | None, str]:
    """What `--json` / `--json-out` ask: (JSON on stdout?, the file to write or None, the flag that named the
    file, for messages). Both naming a file is a usage error."""
    from nas.errors import NasError

    given = getattr(args, "json", None)
    if given is None or given == JSON_TO_STDOUT:
        return given == JSON_TO_STDOUT, args.json_out, "--json-out"
    if args.json_out is not None:
        raise NasError("--json FILE and --json-out FILE both name the JSON file; give --json-out only")
    return False, given, "--json"


def warn_deprecated_json(args: argparse.Namespace) -> None:
    given = getattr(args, "json", None)
    if given not in (None, JSON_TO_STDOUT):
        warn(f"'--json {given}' is deprecated; use '--json-out {given}' (--json alone prints JSON on stdout)")


def print_json(value: Any) -> None:
    import json

    print(json.dumps(value, indent=2, default=str))


def messages(to_stdout: bool):
    """Where the human-readable lines go: stderr when stdout carries the JSON."""
    return (lambda line: print(line, file=sys.stderr)) if to_stdout else print


def check_outputs(args: argparse.Namespace, *flags: str) -> tuple[bool, str | None]:
    """Output files given on the command line can be written, checked before any model runs; returns
    whether JSON goes to stdout, and the JSON file asked for (--json-out)."""
    from nas._io import check_output_path

    to_stdout, json_file, json_flag = json_output(args)
    for flag in flags:
        path, name = (json_file, json_flag) if flag == "json" else (getattr(args, flag), f"--{flag}")
        if path:
            check_output_path(path, name, folder=False)
    warn_deprecated_json(args)
    return to_stdout, json_file


def int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 1,3,5, got {text!r}"
        ) from None


def corruption_families(text: str, known: Sequence[str]) -> tuple[str, ...]:
    """`--families`: 'all' (every family `known`: nas.validate.FAMILIES, passed in so that this shared
    module imports no nas.validate), 'none', or a comma-separated list whose names nas.validate checks."""
    if text == "all":
        return tuple(known)
    if text == "none":
        return ()
    return tuple(part.strip() for part in text.split(",") if part.strip())
