"""``astrovader train``: train a preset or config on stamps into a run directory.

The work is :func:`astrovader.runs.fit_run`: the run directory gets the resolved
``config.yaml``, ``history.csv`` (one row per epoch), TensorBoard logs, Keras
``BackupAndRestore`` checkpoints (so ``--resume`` continues after a crash or kill at the
last finished epoch) and finally ``model.keras``.
"""

from __future__ import annotations

import argparse

from astrovader.cli._common import notice
from astrovader.config import RunConfig, load_config, load_preset, preset_names

__all__ = ["add_parser", "run", "add_config_flags", "resolve_config"]


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
    p.add_argument("--strategy", choices=("default", "mirrored", "multiworker", "auto"), default="auto",
                   help="tf.distribute strategy: default (one device), mirrored (all local GPUs/devices), "
                   "multiworker (MultiWorkerMirroredStrategy from TF_CONFIG), auto = mirrored when more "
                   "than one GPU is visible, else default (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in the output directory")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2,
                   help="Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch (default: %(default)s)")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train", help="train a model into a run directory",
        description="Train a VaDE (or VAE) from a preset or YAML config into RUN_DIR: config.yaml, "
        "model.keras, history.csv, TensorBoard logs and checkpoints for --resume.",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", metavar="NAME", help=f"preset from models/ ({', '.join(preset_names())})")
    src.add_argument("--config", metavar="FILE", help="YAML run configuration (see models/*.yaml for the fields)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to write")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run in RUN_DIR from its last finished epoch (uses RUN_DIR/config.yaml)")
    add_config_flags(p)
    p.set_defaults(func=run)
    return p


def resolve_config(args) -> RunConfig:
    """Preset/config plus command-line overrides, validated (:func:`astrovader.runs.configure`)."""
    from astrovader.runs import configure

    if getattr(args, "config", None):
        cfg = load_config(args.config)
    else:
        cfg = load_preset(getattr(args, "preset", None) or "demo")
    return configure(cfg, data=args.data, n=args.n, epochs=args.epochs, batch_size=args.batch_size,
                     learning_rate=args.learning_rate, clusters=args.clusters, latent_dim=args.latent_dim,
                     seed=args.seed)


def run(args) -> int:
    from astrovader.runs import fit_run

    if args.resume:
        if args.preset or args.config:
            notice("--resume uses the run's own config.yaml; --preset/--config are ignored")
        cfg = None
    else:
        cfg = resolve_config(args)
    fit_run(cfg, args.out, resume=args.resume, overwrite=args.overwrite, strategy=args.strategy,
            verbose=args.verbose)
    print(f"run directory: {args.out}")
    return 0
