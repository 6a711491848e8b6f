"""``astrovader predict``: per-object clusters, gamma, latents, decoder variance and MSE.

Stamps are streamed in batches (the catalogue never has to fit in memory) and results
are written in parts to ``OUT.parts/part-<first row>.npz``, each atomically (temporary
file + rename). A killed run started again with the same arguments continues after
the last complete part, so no row is lost or written twice; when every batch is done
the parts are joined into ``OUT`` (CSV, or ``.npz`` with one array per column), checked to
hold exactly one row per input stamp, and the parts folder is removed. ``OUT`` is locked
while it is written: a second ``predict`` on the same ``--out`` stops with an error.

``--shard I/N`` predicts only the I-th of N contiguous blocks of the catalogue into
``OUT``'s stem + ``.shard-I-of-N`` + suffix (its own parts folder and lock), for the N workers
of a scheduler array job; ``astrovader predict-merge`` joins the N files. The work is
:func:`astrovader.runs.predict_run`.
"""

from __future__ import annotations

import argparse

from astrovader.cli._flags import COUNT, COUNT0

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "predict", help="cluster, gamma and latents for every stamp of a catalogue (resumable)",
        description="Write one row per stamp: id, cluster, gamma_0..gamma_{K-1}, mu_0..mu_{J-1}, "
        "decoder_variance, mse. Streams in batches with a progress bar; an interrupted run continues "
        "where it stopped when started again with the same arguments.",
    )
    p.add_argument("--run", required=True, metavar="RUN_DIR", help="run directory with model.keras")
    p.add_argument("--data", required=True, metavar="SPEC", help="stamps to predict (preprocessed with the run's data settings)")
    p.add_argument("--out", required=True, metavar="FILE", help="output table: .csv (default) or .npz")
    p.add_argument("--batch-size", type=COUNT, default=256, metavar="B", help="stamps per model call (default: %(default)s)")
    p.add_argument("--part-size", type=COUNT, default=10000, metavar="R",
                   help="rows per checkpointed part; a restart loses at most this much work (default: %(default)s)")
    p.add_argument("--mc-samples", type=COUNT0, metavar="L",
                   help="Monte-Carlo samples of z averaged for gamma (default: the model's, seed 000 uses 10)")
    p.add_argument("--shard", metavar="I/N",
                   help="predict only block I of N (0 <= I < N) into FILE's stem + .shard-I-of-N, for array jobs "
                   "(e.g. --shard $SLURM_ARRAY_TASK_ID/8); join the N files with `astrovader predict-merge`")
    p.add_argument("--overwrite", action="store_true", help="replace FILE and discard unfinished parts")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from astrovader.runs import parse_shard, predict_run, shard_path

    shard = parse_shard(args.shard) if args.shard is not None else None
    out = shard_path(args.out, *shard) if shard else args.out
    n = predict_run(args.run, args.data, args.out, batch_size=args.batch_size, part_size=args.part_size,
                    mc_samples=args.mc_samples, overwrite=args.overwrite, progress=not args.no_progress,
                    shard=shard)
    print(f"wrote {n} rows to {out}")
    return 0
