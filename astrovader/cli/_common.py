"""Helpers shared by the subcommand modules: printing notes and reaching the library.

The behaviour lives in the library (:mod:`astrovader.runs` for run directories, training,
evaluation, prediction, generation and export; :mod:`astrovader.data` for stamps); the
names below are re-exported for the subcommand modules.
"""

from __future__ import annotations

import logging
import os

from astrovader.runs import Run, conform, data_config, labels_of, read_history

__all__ = ["notice", "load_stamps", "conform", "read_history", "load_run", "data_config", "labels_of", "Run"]


def notice(message: str) -> None:
    """An informational line on stderr (``astrovader: <message>``; stdout stays for results)."""
    logging.getLogger("astrovader").info(message)


def load_stamps(cfg_data):
    """Load a :class:`~astrovader.data.StampSet` with the data layer (errors are DataError)."""
    from astrovader.data import load

    return load(cfg_data)


def load_run(run_dir: str | os.PathLike):
    """``(config, model)`` of a finished run (see :meth:`astrovader.runs.Run.open`)."""
    run = Run.open(run_dir)
    return run.cfg, run.model
