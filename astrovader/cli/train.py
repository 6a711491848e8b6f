"""``astrovader train``: train a preset or config on stamps into a run directory.

The run directory gets the resolved ``config.yaml``, ``history.csv`` (one row per epoch),
TensorBoard logs, Keras ``BackupAndRestore`` checkpoints (so ``--resume`` continues
after a crash or kill at the last finished epoch; the recipe callbacks set their weights
from the epoch number and the GMM initialisation lives in the model weights, so both are
restored) and finally ``model.keras``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import time

import numpy as np

from astrovader.cli._common import RunDir, conform, load_stamps, notice
from astrovader.config import RunConfig, TrainConfig, load_config, load_preset, preset_names, save_config
from astrovader.errors import AstrovaderError

__all__ = ["add_parser", "run", "resolve_config", "scale_epochs", "run_training"]


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


def scale_epochs(train: TrainConfig, total: int) -> TrainConfig:
    """Rescale the recipe's phase lengths so that they add up to ``total`` epochs.

    The proportions of the preset are kept as far as integers allow: e.g. s3VDC
    100 + 5 x (25 + 25) scaled to 20 epochs gives 6 + 2 x (3 + 4).
    """
    if total < 1:
        raise AstrovaderError("--epochs must be at least 1")
    t = TrainConfig(**{**train.__dict__})
    if t.recipe == "s3vdc":
        full = t.total_epochs()
        if total < 3:
            t.gamma_epochs, t.periods = total, 0
        else:
            gamma = max(1, round(total * t.gamma_epochs / full))
            rest = total - gamma
            periods = max(1, min(t.periods, rest // 2))
            per = rest // periods
            gamma += rest - per * periods
            anneal = min(per - 1, max(1, round(per * t.anneal_epochs / max(1, t.anneal_epochs + t.static_epochs))))
            t.gamma_epochs, t.periods, t.anneal_epochs, t.static_epochs = gamma, periods, anneal, per - anneal
    elif t.recipe == "classic":
        full = t.total_epochs()
        pre = round(total * t.pretrain_epochs / full) if total > 1 else 0
        t.pretrain_epochs = min(max(pre, 1 if total > 1 else 0), total - 1) if total > 1 else 0
        t.vade_epochs = total - t.pretrain_epochs
    elif t.recipe == "vade":
        t.vade_epochs = total
    else:
        t.vae_epochs = total
    assert t.total_epochs() == total, (t, total)
    return t


def resolve_config(args) -> RunConfig:
    """Preset/config plus command-line overrides, validated."""
    if getattr(args, "config", None):
        cfg = load_config(args.config)
    else:
        cfg = load_preset(getattr(args, "preset", None) or "demo")
    cfg = cfg.override("data", spec=args.data, n=args.n, seed=args.seed)
    if args.data is not None and args.n is None:
        cfg.data.n = None  # the preset's stamp count is for its built-in set: use all of the user's stamps
    cfg = cfg.override("model", n_clusters=args.clusters, latent_dim=args.latent_dim, seed=args.seed)
    cfg = cfg.override("train", batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed)
    if args.epochs is not None:
        cfg.train = scale_epochs(cfg.train, args.epochs)
        notice(f"schedule for {args.epochs} epoch(s): {describe_schedule(cfg.train)}")
    return cfg.validate()


def describe_schedule(t: TrainConfig) -> str:
    if t.recipe == "s3vdc" and t.periods == 0:
        return f"s3VDC: {t.gamma_epochs} gamma-training epoch(s) only (too few epochs for the VaDE phases)"
    if t.recipe == "s3vdc":
        return (f"s3VDC: {t.gamma_epochs} gamma-training + {t.periods} x ({t.anneal_epochs} annealing + "
                f"{t.static_epochs} static) = {t.total_epochs()} epochs")
    if t.recipe == "classic":
        return f"classic VaDE: {t.pretrain_epochs} {t.pretrain.upper()} pretraining + {t.vade_epochs} VaDE epochs"
    return f"{t.recipe}: {t.total_epochs()} epochs"


def _prepare_run_dir(rd: RunDir, resume: bool, overwrite: bool) -> None:
    if resume:
        if not rd.config.is_file():
            raise AstrovaderError(f"{rd.path}: nothing to resume (no config.yaml); drop --resume to start a new run")
        return
    if rd.model.is_file() or rd.backup.exists() or rd.history.is_file():
        if not overwrite:
            what = "a trained model" if rd.model.is_file() else "an unfinished run"
            raise AstrovaderError(
                f"{rd.path} already holds {what}; use --resume to continue it, --overwrite to replace it, "
                "or choose another --out"
            )
        notice(f"--overwrite: replacing the run in {rd.path}")
        for p in (rd.model, rd.history, rd.metrics, rd.report):
            p.unlink(missing_ok=True)
        for d in (rd.backup, rd.logs, rd.figures, rd.savedmodel):
            shutil.rmtree(d, ignore_errors=True)
    rd.path.mkdir(parents=True, exist_ok=True)


def _truncate_history(rd: RunDir) -> int:
    """Keep only history rows of epochs the checkpoint has finished; returns that epoch count."""
    meta = rd.backup / "training_metadata.json"
    done = 0
    if meta.is_file():
        try:
            done = int(json.loads(meta.read_text())["epoch"])
        except (ValueError, KeyError):
            done = 0
    if rd.history.is_file():
        with rd.history.open(newline="") as f:
            rows = list(csv.reader(f))
        if rows:
            header, body = rows[0], rows[1:]
            keep = [r for r in body if r and r[0].strip().isdigit() and int(r[0]) < done]
            tmp = rd.history.with_suffix(".csv.tmp")
            with tmp.open("w", newline="") as f:
                w = csv.writer(f)
                w.writerow(header)
                w.writerows(keep)
            os.replace(tmp, rd.history)
    return done


def _split(images: np.ndarray, fraction: float, seed: int):
    if fraction <= 0 or len(images) < 10:
        return images, None
    idx = np.random.default_rng(seed).permutation(len(images))
    n_val = max(1, int(round(fraction * len(images))))
    return images[np.sort(idx[n_val:])], images[np.sort(idx[:n_val])]


def run_training(cfg: RunConfig, out: str | os.PathLike, resume: bool = False, overwrite: bool = False,
                 strategy: str = "default", verbose: int = 2, stamps=None):
    """Train ``cfg`` into the run directory ``out``; returns ``(model, stamps, RunDir)``.

    Args:
        cfg: resolved configuration (ignored on ``resume``: RUN_DIR/config.yaml is used).
        out: run directory.
        resume: continue from RUN_DIR/backup.
        overwrite: replace an existing run.
        strategy: name for :func:`astrovader.training.get_strategy`.
        verbose: Keras fit verbosity.
        stamps: an already loaded StampSet (default: load ``cfg.data``).
    """
    import keras

    from astrovader.training import get_strategy, train

    # created before any TensorFlow op (data loading may resize with TF): a multi-worker
    # strategy must configure the collectives at program start-up
    dist = get_strategy(strategy)
    if strategy == "multiworker":  # every worker writes its own files; the chief writes `out`
        from astrovader.distributed import worker_run_dir

        out = worker_run_dir(out, dist)
    rd = RunDir(out)
    _prepare_run_dir(rd, resume, overwrite)
    if resume:
        cfg = load_config(rd.config)
        if rd.model.is_file() and not rd.backup.exists():
            notice(f"{rd.path}: training already finished ({cfg.train.total_epochs()} epochs); nothing to resume")
            return None, None, rd
        done = _truncate_history(rd)
        notice(f"resuming {rd.path} after epoch {done} of {cfg.train.total_epochs()}")
    if stamps is None:
        stamps = load_stamps(cfg.data)
    images = stamps.images
    if len(images) == 0:
        raise AstrovaderError(f"{cfg.data.spec}: no stamps to train on")
    shape = tuple(int(s) for s in images.shape[1:])
    if cfg.model.input_shape is None:
        cfg.model.input_shape = shape
        notice(f"building the network for the data's stamp shape {shape}")
    else:
        images = conform(images, cfg.model.input_shape)
    if len(images) < cfg.train.batch_size:
        notice(f"only {len(images)} stamps: batch size lowered from {cfg.train.batch_size} to {len(images)}")
        cfg.train.batch_size = len(images)
    save_config(cfg, rd.config)
    keras.utils.set_random_seed(int(cfg.train.seed))
    x_train, x_val = _split(images, float(cfg.train.validation_fraction), int(cfg.train.seed))
    callbacks = [
        keras.callbacks.CSVLogger(str(rd.history), append=True),
        keras.callbacks.BackupAndRestore(str(rd.backup), save_freq="epoch", delete_checkpoint=True),
        keras.callbacks.TensorBoard(log_dir=str(rd.logs), write_graph=False),
    ]
    notice(f"training on {len(x_train)} stamps of shape {tuple(images.shape[1:])}"
           + (f" ({len(x_val)} for validation)" if x_val is not None else "")
           + f"; {describe_schedule(cfg.train)}")
    t0 = time.time()
    model, _history = train(cfg, x_train, x_val, callbacks=callbacks, strategy=dist, verbose=verbose)
    model.save(rd.model)
    notice(f"trained in {time.time() - t0:.0f} s; wrote {rd.model}")
    return model, stamps, rd


def run(args) -> int:
    rd = RunDir(args.out)
    if args.resume:
        if args.preset or args.config:
            notice("--resume uses the run's own config.yaml; --preset/--config are ignored")
        cfg = None
    else:
        cfg = resolve_config(args)
    run_training(cfg, args.out, resume=args.resume, overwrite=args.overwrite, strategy=args.strategy,
                 verbose=args.verbose)
    print(f"run directory: {rd.path}")
    return 0
