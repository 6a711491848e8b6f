"""``astrovader tune``: keras-tuner hyperparameter search around a preset or config.

Writes into OUT_DIR::

    OUT_DIR/search/       keras-tuner trials (resumed when the command is run again)
    OUT_DIR/best.yaml     best configuration, for `astrovader train --config OUT_DIR/best.yaml`
    OUT_DIR/summary.md    ranked table of the trials
    OUT_DIR/trials.csv    the same as CSV
    OUT_DIR/space.yaml    the search space used

Distributed search: run the same command in one chief and N worker processes with
``KERASTUNER_TUNER_ID`` (``chief`` / ``tuner0``, ``tuner1``...), ``KERASTUNER_ORACLE_IP`` and
``KERASTUNER_ORACLE_PORT`` set (see README "Running on a cluster"); OUT_DIR must be on a
shared file system. The chief waits until the workers have run every trial.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import yaml

from astrovader.cli._common import conform, load_stamps, notice
from astrovader.cli._flags import COUNT, FRACTION, SEED
from astrovader.config import ConfigError, load_config, load_preset, preset_names, read_yaml

__all__ = ["add_parser", "run"]


#: Same as :data:`astrovader.tuning.TUNERS` / ``OBJECTIVES`` (kept here so that ``--help``
#: does not import TensorFlow).
TUNERS = ("bayesian", "hyperband", "random")
OBJECTIVES = ("elbo", "calinski_harabasz", "silhouette")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "tune", help="search hyperparameters with keras-tuner (local or distributed)",
        description="Search architecture, latent size, learning rate, beta and schedule lengths with "
        "keras-tuner; writes the trials, summary.md, trials.csv and best.yaml (for `train --config`) "
        "to OUT_DIR. Distributed when KERASTUNER_TUNER_ID/ORACLE_IP/ORACLE_PORT are set.",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", metavar="NAME", help=f"base preset ({', '.join(preset_names())})")
    src.add_argument("--config", metavar="FILE", help="base YAML run configuration")
    p.add_argument("--data", metavar="SPEC", help="stamps (default: the preset's data.spec)")
    p.add_argument("--n", type=COUNT, metavar="N", help="use only the first N stamps")
    p.add_argument("--out", required=True, metavar="OUT_DIR", help="output folder (shared by all processes of a distributed search)")
    p.add_argument("--tuner", choices=TUNERS, default="bayesian", help="search algorithm (default: %(default)s)")
    p.add_argument("--max-trials", type=COUNT, default=10, metavar="N", help="number of trials (default: %(default)s)")
    p.add_argument("--objective", choices=OBJECTIVES, default="elbo",
                   help="maximised on the validation stamps: elbo, or the calinski_harabasz / silhouette "
                   "score of the cluster assignments (labels are never used) (default: %(default)s)")
    p.add_argument("--space", metavar="FILE", help="YAML search space (default: one centred on the preset; "
                   "see OUT_DIR/space.yaml after a run for the format)")
    p.add_argument("--tune-k", action="store_true", help="also search the number of clusters K (K/2..2K)")
    p.add_argument("--epochs", type=COUNT, metavar="N", help="scale the base recipe to N epochs per trial")
    p.add_argument("--validation-fraction", type=FRACTION, default=0.1, metavar="F",
                   help="fraction of the stamps held out for the objective (default: %(default)s)")
    p.add_argument("--seed", type=SEED, default=0, metavar="S", help="seed of the tuner and the split (default: %(default)s)")
    p.add_argument("--strategy", choices=("default", "mirrored", "auto"), default="auto",
                   help="tf.distribute strategy of each trial: default (one device), mirrored (all local "
                   "GPUs), auto = mirrored when more than one GPU is visible (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="discard an earlier search in OUT_DIR instead of resuming it")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=0, help="Keras fit verbosity per trial (default: %(default)s)")
    p.set_defaults(func=run)
    return p


def _base_config(args):
    cfg = load_config(args.config) if args.config else load_preset(args.preset or "demo")
    cfg = cfg.override("data", spec=args.data, n=args.n)
    if args.epochs is not None:
        from astrovader.runs import scale_epochs

        cfg.train = scale_epochs(cfg.train, args.epochs)
    return cfg.validate()


def _load_space(path: str | None):
    if path is None:
        return None
    space = read_yaml(path, "search-space file not found")
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"{path}: expected a mapping of 'section.field' names to choices or ranges")
    return space


def _strategy(name: str, get_strategy):
    """``None`` for one device (keras-tuner's default), else the named strategy."""
    strategy = get_strategy(name)
    return None if name == "default" or strategy.num_replicas_in_sync == 1 else strategy


def run(args) -> int:
    from astrovader.training import get_strategy
    from astrovader.tuning import default_search_space, is_worker, run_search

    if not 0.0 < args.validation_fraction < 1.0:
        raise ConfigError("--validation-fraction must be in (0, 1)")
    cfg = _base_config(args)
    space = _load_space(args.space)
    stamps = load_stamps(cfg.data)
    images = conform(stamps.images, cfg.model.input_shape)
    if len(images) < 10:
        raise ConfigError(f"{cfg.data.spec}: {len(images)} stamps are too few for a search (need 10 or more)")
    cfg.model.input_shape = tuple(int(s) for s in images.shape[1:])
    cfg.train.batch_size = min(cfg.train.batch_size, len(images))
    if space is None:
        space = default_search_space(cfg, include_k=args.tune_k)
    elif args.tune_k and "model.n_clusters" not in space:
        space["model.n_clusters"] = default_search_space(cfg, include_k=True)["model.n_clusters"]
    out = Path(args.out)
    role = os.environ.get("KERASTUNER_TUNER_ID")
    if not is_worker():
        out.mkdir(parents=True, exist_ok=True)
        (out / "space.yaml").write_text(yaml.safe_dump(space, sort_keys=False))
    notice(f"{args.tuner} search, {args.max_trials} trial(s), objective {args.objective}, "
           f"{len(images)} stamps" + (f"; distributed role {role}" if role and "KERASTUNER_ORACLE_IP" in os.environ else ""))
    run_search(cfg, images, tuner=args.tuner, max_trials=args.max_trials, out_dir=out, search_space=space,
               objective=args.objective, overwrite=args.overwrite, verbose=args.verbose, seed=args.seed,
               validation_fraction=args.validation_fraction, strategy=_strategy(args.strategy, get_strategy))
    if is_worker():
        notice(f"worker {role} finished its trials")
        return 0
    print((out / "summary.md").read_text())
    print(f"best configuration: {out / 'best.yaml'} (train it with `astrovader train --config {out / 'best.yaml'}`)")
    return 0
