"""``astrovader train``: train a preset or config on stamps into a run directory.

The work is :func:`astrovader.runs.fit_run`: the run directory gets the resolved
``config.yaml``, ``history.csv`` (one row per epoch), TensorBoard logs, Keras
``BackupAndRestore`` checkpoints (so ``--resume`` continues after a crash or kill at the
last finished epoch) and finally ``model.keras``.
"""

from __future__ import annotations

import argparse

from astrovader.cli._common import add_config_flags, notice, resolve_config
from astrovader.config import preset_names

__all__ = ["add_parser", "run"]


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
