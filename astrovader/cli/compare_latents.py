"""``astrovader compare-latents``: DNMSE curves and latent-MLP ROC of runs vs linear baselines.

Seed 001 Fig. 2a and 2c: each run's latent space (and incremental PCA / online sparse
dictionary learning fitted on the same stamps) is judged by how input-similar the latent
neighbours of a labelled reference class are (DNMSE) and by the ROC of a one-hidden-layer
MLP trained on 75 % of the latents. The work is :func:`astrovader.compare.compare_latents`.
"""

from __future__ import annotations

import argparse

from astrovader.cli._flags import COUNT, SEED

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "compare-latents", help="DNMSE curves and latent-MLP ROC of runs vs IPCA / SDL (seed 001)",
        description="Compare the latent spaces of trained runs and of linear mini-batch baselines on a "
        "labelled set: DNMSE curves (seed 001 Fig. 2a) and ROC/AUC of an MLP on the latents (Fig. 2c). "
        "Writes OUT/dnmse.png, OUT/roc.png and OUT/compare_latents.json.",
    )
    p.add_argument("--runs", nargs="+", required=True, metavar="RUN_DIR", help="trained run directories to compare")
    p.add_argument("--baselines", default="ipca,sdl", metavar="NAMES",
                   help="comma-separated linear baselines: ipca (incremental PCA), sdl (online sparse "
                   "dictionary learning); empty for none (default: %(default)s)")
    p.add_argument("--data", metavar="SPEC", help="labelled stamps (default: the first run's data.spec), "
                   "preprocessed with the first run's data settings")
    p.add_argument("--n", type=COUNT, metavar="N", help="use at most N stamps")
    p.add_argument("--reference-label", type=int, default=1, metavar="L",
                   help="label of the reference class (seed 001: real transients) (default: %(default)s)")
    p.add_argument("--n-reference", type=COUNT, metavar="R",
                   help="size of the reference set drawn from that class (default: 10%% of it, at least 10)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: RUN_DIR/compare of the first run)")
    p.add_argument("--seed", type=SEED, default=0, metavar="S", help="seed for the reference draw, split and MLP "
                   "(default: %(default)s)")
    p.set_defaults(func=run, command_name="compare-latents")
    return p


def run(args) -> int:
    from pathlib import Path

    from astrovader.compare import compare_latents

    baselines = [b.strip() for b in (args.baselines or "").split(",") if b.strip()]
    out = args.out or str(Path(args.runs[0]) / "compare")
    res = compare_latents(args.runs, args.data, out, baselines=baselines, reference_label=args.reference_label,
                          n_reference=args.n_reference, n=args.n, seed=args.seed)
    print(f"{'method':<24} {'AUC':>7} {'DNMSE@100':>10}")
    for name, m in res["methods"].items():
        print(f"{name:<24} {m['auc']:7.3f} {m['dnmse_at_100']:10.4f}")
    print(f"wrote {out}/dnmse.png, roc.png, compare_latents.json")
    return 0
