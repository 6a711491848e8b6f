"""``astrovader evaluate``: metrics.json and report.html (with PNG figures) for a run.

The work is :func:`astrovader.runs.evaluate_run`.
"""

from __future__ import annotations

import argparse

from astrovader.cli._flags import COUNT, COUNT0, SEED

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "evaluate", help="metrics.json and an HTML report for a run",
        description="Evaluate a trained run on stamps (default: its training data): clustering scores "
        "(Hungarian accuracy, NMI, ARI when labels exist; silhouette, Calinski-Harabasz), occupancy, "
        "mean-gamma confusion, reconstruction MSE; writes RUN_DIR/metrics.json and RUN_DIR/report.html "
        "with PNG figures in RUN_DIR/figures.",
    )
    p.add_argument("--run", required=True, metavar="RUN_DIR", help="run directory written by `astrovader train`")
    p.add_argument("--data", metavar="SPEC", help="stamps to evaluate on (default: the run's data.spec); "
                   "preprocessed with the run's data settings")
    p.add_argument("--n", type=COUNT, metavar="N", help="evaluate on at most N stamps (default: all)")
    p.add_argument("--samples", type=COUNT0, default=8, metavar="N",
                   help="generated samples per cluster in the report, 0 for none (default: %(default)s)")
    p.add_argument("--no-baseline", action="store_true",
                   help="skip the PCA+GMM baseline (it is computed when the stamps have labels)")
    p.add_argument("--seed", type=SEED, default=0, metavar="S", help="seed for galleries and samples (default: %(default)s)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from astrovader.runs import Run, evaluate_run

    rd = Run.open(args.run)
    metrics = evaluate_run(rd, args.data, args.n, n_samples=args.samples, baseline=not args.no_baseline,
                           seed=args.seed)
    for k, v in metrics["scores"].items():
        if isinstance(v, (int, float)):
            print(f"{k:>22s}: {v:.4f}" if isinstance(v, float) else f"{k:>22s}: {v}")
    if "baseline_pca_gmm" in metrics:
        key = metrics.get("headline", "acc_hungarian")
        print(f"{'PCA+GMM ' + key:>22s}: {metrics['baseline_pca_gmm'][key]:.4f}")
    print(f"metrics: {rd.metrics}")
    print(f"report:  {rd.report}")
    return 0
