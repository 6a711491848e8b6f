"""Exceptions raised on bad user input; their messages are one line that says what to do."""

__all__ = ["AstrovaderError", "DataError", "TrainingError"]


class AstrovaderError(ValueError):
    """Base class: a user-facing error whose message names the file/field and the fix."""


class DataError(AstrovaderError):
    """Input stamps or catalogs are unreadable, malformed or inconsistent."""


class TrainingError(AstrovaderError):
    """Training diverged (NaN/Inf) or was configured inconsistently."""
