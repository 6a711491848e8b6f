"""Helpers shared by the subcommand modules: printing notes, the training flags of
``train`` and ``demo`` (:func:`add_config_flags`, :func:`resolve_config`), reaching the library.

The behaviour lives in the library (:mod:`astrovader.runs` for run directories, training,
evaluation, prediction, generation and export; :mod:`astrovader.data` for stamps); the
names below are re-exported for the subcommand modules.
"""

from __future__ import annotations

import argparse
import logging
import os

from astrovader.cli._flags import COUNT
from astrovader.config import RunConfig, load_config, load_preset
from astrovader.runs import Run, conform, data_config, labels_of, read_history

__all__ = ["notice", "load_stamps", "conform", "read_history", "load_run", "data_config", "labels_of", "Run",
           "add_config_flags", "resolve_config"]


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


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """Flags shared by ``train`` and ``demo``."""
    p.add_argument("--data", metavar="SPEC", help="stamps: a directory, CSV catalog, FITS, .npy/.npz, HDF5, "
                   "TFRecord shards or builtin:NAME (default: the preset's data.spec)")
    p.add_argument("--n", type=int, metavar="N", help="use only the first N stamps (built-in sets are generated with N)")
    p.add_argument("--epochs", type=int, metavar="N", help="total epochs; the recipe's phases are scaled to add up to N")
    p.add_argument("--batch-size", type=int, metavar="B", help="global batch size (default: the preset's)")
    p.add_argument("--learning-rate", type=float, metavar="LR", help="initial learning rate (default: the preset's)")
    p.add_argument("--clusters", type=int, metavar="K", help="number of mixture components K")
    p.add_argument("--latent-dim", type=int, metavar="J", help="latent dimension J")
    p.add_argument("--seed", type=int, metavar="S", help="seed for weights, shuffling and sampling")
    p.add_argument("--restarts", type=COUNT, metavar="R",
                   help="train R whole runs (seeds S, S+1000, ...) and keep the one whose clusters agree best "
                   "with the others'; no labels are read (default: the preset's train.restarts)")
    p.add_argument("--strategy", choices=("default", "mirrored", "multiworker", "auto"), default="auto",
                   help="tf.distribute strategy: default (one device), mirrored (all local GPUs/devices), "
                   "multiworker (MultiWorkerMirroredStrategy from TF_CONFIG), auto = mirrored when more "
                   "than one GPU is visible, else default (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in the output directory")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2,
                   help="Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch (default: %(default)s)")


def resolve_config(args) -> RunConfig:
    """Preset/config plus command-line overrides, validated (:func:`astrovader.runs.configure`)."""
    from astrovader.runs import configure

    if getattr(args, "config", None):
        cfg = load_config(args.config)
    else:
        cfg = load_preset(getattr(args, "preset", None) or "demo")
    return configure(cfg, data=args.data, n=args.n, epochs=args.epochs, batch_size=args.batch_size,
                     learning_rate=args.learning_rate, clusters=args.clusters, latent_dim=args.latent_dim,
                     seed=args.seed, restarts=args.restarts)
