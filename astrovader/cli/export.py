"""``astrovader export``: a TensorFlow SavedModel with named signatures.

Signatures (:func:`astrovader.export.export_saved_model`): ``encode``,
``cluster_probabilities``, ``decode`` and ``generate``; reload with
``tf.saved_model.load(DIR)`` without importing astrovader.
"""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export", help="export a run as a TensorFlow SavedModel",
        description="Write a SavedModel with the signatures encode, cluster_probabilities, decode and generate.",
    )
    p.add_argument("--run", required=True, metavar="RUN_DIR", help="run directory with model.keras")
    p.add_argument("--out", required=True, metavar="DIR", help="SavedModel folder to write")
    p.add_argument("--overwrite", action="store_true", help="replace DIR if it exists")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from astrovader.runs import export_run

    sigs = export_run(args.run, args.out, overwrite=args.overwrite)
    print(f"SavedModel: {args.out}" + (f" (signatures: {', '.join(sigs)})" if sigs else ""))
    return 0
