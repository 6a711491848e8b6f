"""Shared helpers for the data_prep scripts: one-line errors instead of tracebacks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from astrovader.errors import AstrovaderError

__all__ = ["run_main", "refuse_existing"]


def refuse_existing(path: Path, overwrite: bool) -> None:
    """Raise a one-line error if ``path`` exists and ``--overwrite`` was not given."""
    from astrovader.errors import DataError

    if path.exists() and not overwrite:
        raise DataError(f"{path}: already exists; choose another output or pass --overwrite")


def run_main(fn: Callable[[], int]) -> int:
    """Run a script body, printing ``error: <message>`` and returning 2 on bad input."""
    try:
        return int(fn() or 0)
    except AstrovaderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
