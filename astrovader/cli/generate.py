"""``astrovader generate``: synthetic stamps from a trained run's mixture prior.

z = mu_k + T * sigma_k * eps (seed 004 sec. 5.3 steps 1-4), decoded; written as PNG
files, one ``.npy`` array or one FITS cube (:func:`astrovader.runs.generate_run`).
"""

from __future__ import annotations

import argparse

from astrovader.cli._flags import COUNT, COUNT0, POSITIVE, SEED, number

__all__ = ["add_parser", "run"]

FORMATS = ("png", "npy", "fits")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "generate", help="generate synthetic stamps from a trained run",
        description="Sample z from the learned Gaussian mixture (or one component) and decode it.",
    )
    p.add_argument("--run", required=True, metavar="RUN_DIR", help="run directory with model.keras")
    p.add_argument("--n", type=COUNT, required=True, metavar="N", help="number of stamps to generate")
    p.add_argument("--cluster", type=COUNT0, metavar="K", help="sample only from mixture component K (default: from the whole mixture)")
    p.add_argument("--temperature", type=POSITIVE, default=1.0, metavar="T",
                   help="scale of the component standard deviations; <1 gives more typical stamps (default: %(default)s)")
    p.add_argument("--min-gamma", type=number(0.0, 1.0, high_open=True), metavar="G",
                   help="keep a sample only when p(c = k | z) > G for its component k, so every stamp is "
                   "unambiguously of its cluster (e.g. 0.9; default: keep all)")
    p.add_argument("--seed", type=SEED, default=0, metavar="S", help="random seed (default: %(default)s)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--format", choices=FORMATS, default="png",
                   help="png: one 8-bit file per stamp (min-max scaled); npy: samples.npy (float32, N x H x W x C); "
                   "fits: samples.fits cube (default: %(default)s)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from astrovader.runs import generate_run

    paths = generate_run(args.run, args.n, args.out, args.format, cluster=args.cluster,
                         temperature=args.temperature, seed=args.seed, min_gamma=args.min_gamma)
    where = paths[0] if len(paths) == 1 else args.out
    print(f"wrote {args.n} stamp(s) to {where}")
    return 0
