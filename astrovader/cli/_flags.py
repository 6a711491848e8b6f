"""Argument types for numeric flags: a nonsense value fails at parsing, before any work.

Each factory returns an ``argparse`` ``type=`` function that converts the text and checks
its range; a bad value raises :class:`argparse.ArgumentTypeError`, which the command line
prints as one line ``astrovader: error: SUBCOMMAND: argument --FLAG: ...`` (exit status 2)
saying what to give instead. The module imports nothing heavy so that building the
parser stays fast.
"""

from __future__ import annotations

import argparse
import math

__all__ = ["integer", "number", "COUNT", "COUNT0", "SEED", "FRACTION", "POSITIVE"]

SEED_MAX = 2**32 - 1


def integer(minimum: int | None = None, maximum: int | None = None, hint: str = ""):
    """A whole number in ``minimum..maximum`` (either end may be open-ended)."""
    if minimum is not None and maximum is not None:
        wanted = f"an integer in {minimum}..{maximum}"
    elif minimum is not None:
        wanted = f"an integer >= {minimum}"
    elif maximum is not None:
        wanted = f"an integer <= {maximum}"
    else:
        wanted = "an integer"
    return _parser("integer", int, "a whole number", wanted, hint, str,
                   lambda v: (minimum is None or v >= minimum) and (maximum is None or v <= maximum))


def number(low: float | None = None, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False, hint: str = ""):
    """A finite real number between ``low`` and ``high`` (``*_open``: that end excluded)."""
    if low is not None and high is not None:
        wanted = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        wanted = f"a number {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        wanted = f"a number {'<' if high_open else '<='} {high:g}"
    else:
        wanted = "a finite number"

    def in_range(value: float) -> bool:
        return math.isfinite(value) and not (
            (low is not None and (value <= low if low_open else value < low))
            or (high is not None and (value >= high if high_open else value > high)))

    return _parser("number", float, "a number", wanted, hint, lambda v: f"{v:g}", in_range)


def _parser(name: str, convert, what: str, wanted: str, hint: str, show, in_range):
    """The argparse ``type`` both :func:`integer` and :func:`number` return: ``convert`` the
    text (else "is not {what}"), then check ``in_range`` (else "is out of range")."""
    wanted += f" ({hint})" if hint else ""

    def parse(text: str):
        try:
            value = convert(str(text).strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}; give {wanted}") from None
        if not in_range(value):
            raise argparse.ArgumentTypeError(f"{show(value)} is out of range; give {wanted}")
        return value

    parse.__name__ = name
    return parse


#: 1, 2, 3... (a number of stamps, epochs, trials...).
COUNT = integer(1)
#: 0, 1, 2... (0 meaning none).
COUNT0 = integer(0)
#: A NumPy/TensorFlow seed.
SEED = integer(0, SEED_MAX)
#: A fraction strictly between 0 and 1.
FRACTION = number(0.0, 1.0, low_open=True, high_open=True)
#: A real number > 0.
POSITIVE = number(0.0, low_open=True)
