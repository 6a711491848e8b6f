"""The ``astrovader`` command line (also ``python -m astrovader``).

Each subcommand lives in its own module with two functions::

    add_parser(subparsers) -> argparse.ArgumentParser   # registers flags, sets ``func=run``
    run(args) -> int | None                               # does the work

and is listed in :data:`SUBCOMMANDS`; adding one (e.g. ``tune``) means writing such a
module and appending its name. A subcommand module only parses flags, calls the library
(:mod:`astrovader.runs`, :mod:`astrovader.data`...) and prints; no library module imports
from here. :func:`main` turns :class:`~astrovader.errors.AstrovaderError` (bad configs,
unreadable data, run directories in use...) into ``astrovader: error: <message>`` on
stderr and exit code 2, with no traceback; other exceptions are bugs and get a traceback
and a request to report them.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys
import traceback
from typing import Sequence

__all__ = ["main", "build_parser", "SUBCOMMANDS"]

#: Subcommand modules under ``astrovader.cli``, in ``--help`` order.
SUBCOMMANDS = ["demo", "train", "tune", "evaluate", "generate", "predict", "predict_merge", "export", "choose_k", "explore", "compare_latents", "segment", "data"]

_EPILOG = """\
examples:
  astrovader demo
  astrovader train --preset hits-vade-ar --data stamps/ --out runs/hits
  astrovader evaluate --run runs/hits
  astrovader generate --run runs/hits --n 64 --cluster 3 --out samples --format fits
  astrovader predict --run runs/hits --data catalog.csv --out predictions.csv
  astrovader export --run runs/hits --out runs/hits/savedmodel

Run `astrovader SUBCOMMAND --help` for the flags of each subcommand.
"""


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line ``astrovader: error: ...`` (exit status 2).

    argparse's own format (the usage block, then ``astrovader train: error: ...``) is replaced
    by the line every other user error gets, naming the subcommand and pointing to its
    ``--help``; subparsers inherit the class.
    """

    def error(self, message: str):
        where = self.prog[len("astrovader "):] if self.prog.startswith("astrovader ") else ""
        print(f"astrovader: error: {where + ': ' if where else ''}{message} (see `{self.prog} --help`)",
              file=sys.stderr)
        self.exit(2)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered subcommand."""
    from astrovader import __version__

    parser = _Parser(
        prog="astrovader",
        description="Unsupervised clustering and generation of astronomical image stamps "
        "with Variational Deep Embedding (VaDE).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"astrovader {__version__}")
    parser.add_argument("--verbose", action="store_true", dest="debug",
                        help="show TensorFlow's start-up messages and the traceback of every error "
                        "(same as ASTROVADER_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"astrovader.cli.{name}").add_parser(sub)
    return parser


class _NoticeHandler(logging.Handler):
    """Prints the ``astrovader`` logger's notes as ``astrovader: <message>`` to the current stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(f"astrovader: {record.getMessage()}", file=sys.stderr, flush=True)
        except Exception:  # noqa: BLE001 -- logging must never raise
            self.handleError(record)


def _setup_logging() -> None:
    logger = logging.getLogger("astrovader")
    if not any(isinstance(h, _NoticeHandler) for h in logger.handlers):
        logger.addHandler(_NoticeHandler())
    logger.setLevel(logging.INFO)


def _quiet_tensorflow(debug: bool) -> None:
    """Silence TensorFlow's C++ and absl start-up warnings (CUDA probing, oneDNN...) unless ``debug``."""
    if debug:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    try:  # absl (pulled in by TensorFlow) warns "All log messages before absl::InitializeLog()..."
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass
    for name in ("tensorflow", "absl", "keras_tuner"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow with file descriptor 2 sent to /dev/null.

    Its C++ libraries write "Could not find cuda drivers", "oneDNN custom operations are
    on" and absl's "All log messages before absl::InitializeLog()" straight to stderr while
    they load, before ``TF_CPP_MIN_LOG_LEVEL`` applies; Python exceptions still propagate.
    """
    if "tensorflow" in sys.modules:
        return
    try:
        sys.stderr.flush()
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except (OSError, ValueError):  # no real stderr (embedded interpreters)
        return
    os.dup2(null, 2)
    try:
        import tensorflow  # noqa: F401
        import keras  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _end_progress_line() -> None:
    """A progress bar may have left the cursor mid-line: start the error on a fresh line."""
    try:
        sys.stdout.flush()
        if sys.stderr.isatty():
            sys.stderr.write("\n")
    except (OSError, ValueError):
        pass


def _user_error(exc: BaseException) -> str | None:
    """The one-line message for a user's mistake that is not an AstrovaderError, else None."""
    if isinstance(exc, OSError) and exc.filename is not None and isinstance(
            exc, (PermissionError, FileNotFoundError, IsADirectoryError, NotADirectoryError, FileExistsError)):
        return (f"{exc.filename}: {exc.strerror or type(exc).__name__}; check the path and its permissions "
                "or choose another location")
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"{exc.filename or 'output'}: no space left on the device; free some space or choose another --out"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code.

    A user's mistake (:class:`~astrovader.errors.AstrovaderError`, or a path that cannot
    be written) is printed as one line ``astrovader: error: ...`` with exit status 2. Any
    other exception is a bug: its traceback is printed with a request to report it, exit
    status 1. ``--verbose`` (before the subcommand) or ``ASTROVADER_DEBUG=1`` keeps
    TensorFlow's start-up messages and shows tracebacks for user errors too.

    Args:
        argv: arguments without the program name (default ``sys.argv[1:]``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = bool(os.environ.get("ASTROVADER_DEBUG")) or (bool(argv) and argv[0] == "--verbose")
    _quiet_tensorflow(debug)
    _setup_logging()
    from astrovader.errors import AstrovaderError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help / --version exit 0 as usual; a bad flag was printed as one line
        if exc.code == 2:
            return 2
        raise
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        if not debug and args.command != "data":  # `data` rarely needs TensorFlow: keep it fast
            _import_tensorflow_quietly()
        code = args.func(args)
    except AstrovaderError as exc:
        _end_progress_line()
        if debug:
            traceback.print_exc()
        print(f"astrovader: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _end_progress_line()
        print("astrovader: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 -- the last line of defence
        _end_progress_line()
        message = _user_error(exc)
        if message is not None:
            if debug:
                traceback.print_exc()
            print(f"astrovader: error: {message}", file=sys.stderr)
            return 2
        traceback.print_exc()
        print(f"astrovader: internal error ({type(exc).__name__}): this is a bug in astrovader {_version()}; "
              f"please report it with the command line and the traceback above "
              f"(ASTROVADER_DEBUG=1 shows more)", file=sys.stderr)
        return 1
    return int(code or 0)


def _version() -> str:
    from astrovader import __version__

    return __version__
