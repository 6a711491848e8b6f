"""``astrovader predict-merge``: join the shard files of ``predict --shard I/N`` into one table.

Checks first that the N shards of one prediction are all there, each once, complete, and
that every input id appears exactly once; any problem is a one-line error and nothing is
written. The work is :func:`astrovader.runs.merge_predictions`.
"""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "predict-merge", help="join the shard files of `predict --shard I/N` (checks every id appears once)",
        description="Join the N shard files written by `astrovader predict --shard I/N` into one table, in "
        "catalogue order. Fails, writing nothing, unless all N shards of one prediction are given, each once, "
        "complete, with every input id exactly once.",
    )
    p.add_argument("parts", nargs="+", metavar="PART",
                   help="shard files (e.g. predictions.shard-*-of-8.csv; a .csv needs its .shard.json beside it)")
    p.add_argument("--out", required=True, metavar="FILE", help="merged table, of the shards' format (.csv or .npz)")
    p.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from astrovader.runs import merge_predictions

    n = merge_predictions(args.parts, args.out, overwrite=args.overwrite)
    print(f"merged {len(args.parts)} shards: {n} rows to {args.out}")
    return 0
