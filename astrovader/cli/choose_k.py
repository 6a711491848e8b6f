"""``astrovader choose-k``: the number of clusters from Dirichlet-process GMMs (seed 004 sec. 4.1).

Embeds the stamps with the run's encoder (posterior means mu), fits truncated
Dirichlet-process Bayesian GMMs on random mini-batches and reports the most frequent
number of components with non-negligible weight (:func:`astrovader.selection.choose_k`).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from astrovader.cli._flags import COUNT, FRACTION, SEED, integer
from astrovader.cli._common import Run, conform, data_config, load_stamps

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "choose-k", help="choose the number of clusters K with Dirichlet-process GMMs",
        description="Fit Dirichlet-process Bayesian GMMs to mini-batches of the run's latent means and "
        "report the stable number of components (seed 004 sec. 4.1); writes RUN_DIR/choose_k.json.",
    )
    p.add_argument("--run", required=True, metavar="RUN_DIR", help="run directory with model.keras (a VAE or VaDE)")
    p.add_argument("--data", metavar="SPEC", help="stamps to embed (default: the run's data.spec)")
    p.add_argument("--n", type=COUNT, metavar="N", help="embed at most N stamps")
    p.add_argument("--max-components", type=COUNT, default=20, metavar="K",
                   help="truncation level of the Dirichlet process; larger than the K you expect (default: %(default)s)")
    p.add_argument("--batches", type=COUNT, default=20, metavar="B", help="number of mini-batch fits (default: %(default)s)")
    p.add_argument("--batch-size", type=integer(2), default=1000, metavar="N", help="latents per mini-batch (default: %(default)s)")
    p.add_argument("--weight-threshold", type=FRACTION, default=0.01, metavar="W",
                   help="a component counts when its weight exceeds W, in (0, 1) (default: %(default)s)")
    p.add_argument("--covariance", choices=("full", "diag"), default="full",
                   help="covariance type of the DP-GMMs (default: %(default)s)")
    p.add_argument("--seed", type=SEED, default=0, metavar="S", help="random seed (default: %(default)s)")
    p.set_defaults(func=run, command_name="choose-k")
    return p


def run(args) -> int:
    from astrovader.selection import choose_k

    run = Run.open(args.run)
    stamps = load_stamps(data_config(run.cfg.data, spec=args.data, n=args.n))
    x = conform(stamps.images, run.cfg.model.input_shape)
    mu, _ = run.model.encode(x)
    sel = choose_k(np.asarray(mu), max_components=args.max_components, n_batches=args.batches,
                   batch_size=args.batch_size, weight_threshold=args.weight_threshold,
                   covariance_type=args.covariance, seed=args.seed)
    path = run.path / "choose_k.json"
    with run.lock():
        path.write_text(json.dumps(sel.to_dict(), indent=2))
    print(sel.summary())
    print(f"details: {path}")
    return 0
