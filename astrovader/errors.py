"""Exceptions raised on bad user input; their messages are one line that says what to do.

Every error a user can cause (a bad config field, unreadable stamps, a run directory
that is in use...) is an :class:`AstrovaderError`; the command line prints it as
``astrovader: error: <message>`` and exits with status 2. Any other exception is a bug
in astrovader and is shown with its traceback and a request to report it.
"""

__all__ = ["AstrovaderError", "ConfigError", "DataError", "TrainingError", "LockedError"]


class AstrovaderError(ValueError):
    """Base class: a user-facing error whose message names the file/field and the fix."""


class ConfigError(AstrovaderError):
    """A configuration value is invalid; the message says which field and what to do."""


class DataError(AstrovaderError):
    """Input stamps or catalogs are unreadable, malformed or inconsistent."""


class TrainingError(AstrovaderError):
    """Training diverged (NaN/Inf) or was configured inconsistently."""


class LockedError(AstrovaderError):
    """Another process is writing the same run directory or output file."""
