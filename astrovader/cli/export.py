"""``astrovader export``: a TensorFlow SavedModel with named signatures.

Signatures (:func:`astrovader.export.export_saved_model`): ``encode``,
``cluster_probabilities``, ``decode`` and ``generate``; reload with
``tf.saved_model.load(DIR)`` without importing astrovader.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from astrovader.cli._common import load_run
from astrovader.errors import AstrovaderError

__all__ = ["add_parser", "run", "export_run"]


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


def export_run(model, out, overwrite: bool = False):
    """Export ``model`` to ``out``; returns the signature names."""
    from astrovader.export import export_saved_model

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise AstrovaderError(f"{out} exists and is not empty; use --overwrite or another --out")
        shutil.rmtree(out)
    sigs = export_saved_model(model, str(out))
    return sorted(sigs) if sigs is not None else []


def run(args) -> int:
    _cfg, model = load_run(args.run)
    sigs = export_run(model, args.out, overwrite=args.overwrite)
    print(f"SavedModel: {args.out}" + (f" (signatures: {', '.join(sigs)})" if sigs else ""))
    return 0
