"""The ``astrovader`` command line (also ``python -m astrovader``).

Each subcommand lives in its own module with two functions::

    add_parser(subparsers) -> argparse.ArgumentParser   # registers flags, sets ``func=run``
    run(args) -> int | None                               # does the work

and is listed in :data:`SUBCOMMANDS`; adding one (e.g. ``tune``) means writing such a
module and appending its name. :func:`main` turns :class:`~astrovader.errors.AstrovaderError`
(bad configs, unreadable data, existing run directories...) into
``astrovader: error: <message>`` on stderr and exit code 2, with no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

__all__ = ["main", "build_parser", "SUBCOMMANDS"]

#: Subcommand modules under ``astrovader.cli``, in ``--help`` order.
SUBCOMMANDS = ["demo", "train", "tune", "evaluate", "generate", "predict", "export", "choose_k", "data"]

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


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered subcommand."""
    from astrovader import __version__

    parser = argparse.ArgumentParser(
        prog="astrovader",
        description="Unsupervised clustering and generation of astronomical image stamps "
        "with Variational Deep Embedding (VaDE).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"astrovader {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"astrovader.cli.{name}").add_parser(sub)
    return parser


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code.

    Args:
        argv: arguments without the program name (default ``sys.argv[1:]``).
    """
    _quiet_tensorflow()
    from astrovader.errors import AstrovaderError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = args.func(args)
    except AstrovaderError as exc:
        print(f"astrovader: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("astrovader: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)
