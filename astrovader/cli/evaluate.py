"""``astrovader evaluate``: metrics.json and report.html (with PNG figures) for a run."""

from __future__ import annotations

import argparse
import time

import numpy as np
import yaml

from astrovader.cli._common import RunDir, conform, data_config, labels_of, load_run, load_stamps, notice, read_history

__all__ = ["add_parser", "run", "evaluate_run"]


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
    p.add_argument("--n", type=int, metavar="N", help="evaluate on at most N stamps (default: all)")
    p.add_argument("--samples", type=int, default=8, metavar="N",
                   help="generated samples per cluster in the report (default: %(default)s)")
    p.add_argument("--no-baseline", action="store_true",
                   help="skip the PCA+GMM baseline (it is computed when the stamps have labels)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed for galleries and samples (default: %(default)s)")
    p.set_defaults(func=run)
    return p


def _baseline(images: np.ndarray, y: np.ndarray, n_clusters: int, latent_dim: int, seed: int) -> dict:
    from astrovader.baselines import pca_gmm
    from astrovader.evaluation import hungarian_accuracy

    t0 = time.time()
    pred = pca_gmm(images, n_clusters=n_clusters, n_components=latent_dim, seed=seed)
    pred = getattr(pred, "labels", pred)
    if isinstance(pred, tuple):
        pred = pred[0]
    return {"acc_hungarian": hungarian_accuracy(y, np.asarray(pred)), "seconds": time.time() - t0,
            "n_components": latent_dim, "n_clusters": n_clusters}


def evaluate_run(run_dir, cfg, model, stamps, n_samples: int = 8, baseline: bool = True, seed: int = 0) -> dict:
    """Evaluate ``model`` on ``stamps``; write metrics.json, figures and report.html into ``run_dir``.

    Returns:
        The metrics dict (as written to metrics.json).
    """
    from astrovader.evaluation import evaluate_model, to_jsonable
    from astrovader.report import make_report, save_metrics

    rd = RunDir(run_dir)
    x = conform(stamps.images, cfg.model.input_shape)
    y = labels_of(stamps)
    t0 = time.time()
    is_vade = hasattr(model, "prior")
    if is_vade:
        res = evaluate_model(model, x, y, seed=seed)
        mu = res["latents"]
        gamma = res["gamma"]
    else:
        mu, _ = model.encode(x)
        gamma = None
        res = {"scores": {}}
    x_hat = model.decode(np.asarray(mu))
    mse = np.mean((x - x_hat).reshape(len(x), -1) ** 2, axis=1)
    metrics: dict = {"run": str(rd.path), "data": stamps.source or cfg.data.spec, "n_objects": int(len(x)),
                     "scores": res["scores"]}
    metrics["scores"].setdefault("mse_mean", float(mse.mean()))
    if is_vade:
        metrics["occupancy"] = res["occupancy"]
        metrics["confusion"] = res["confusion"]
        metrics["confusion_rows"] = res["confusion_rows"]
        if "accuracy_vs_variance" in res:
            metrics["accuracy_vs_variance"] = res["accuracy_vs_variance"]
        pi = np.asarray(model.prior.pi())
        metrics["pi"] = pi
    else:
        pi = None
    if baseline and y is not None and is_vade:
        try:
            metrics["baseline_pca_gmm"] = _baseline(x, y, cfg.model.n_clusters, cfg.model.latent_dim, seed)
        except ImportError:
            notice("astrovader.baselines is not available; skipping the PCA+GMM baseline")
    samples = protos = None
    if is_vade and n_samples > 0:
        samples = np.stack([model.sample(n_samples, cluster=k, seed=seed + k) for k in range(model.n_clusters)])
        protos = model.prototypes()
    elif n_samples > 0:
        samples = model.sample(n_samples * 4, seed=seed).reshape((4, n_samples) + tuple(x.shape[1:]))
    variance = res.get("variance") if is_vade and getattr(model, "variance_head", None) is not None else None
    metrics["seconds"] = time.time() - t0
    save_metrics(to_jsonable(metrics), rd.metrics)
    summary = {k: v for k, v in metrics["scores"].items() if isinstance(v, (int, float))}
    if "baseline_pca_gmm" in metrics:
        summary["baseline_pca_gmm_acc"] = metrics["baseline_pca_gmm"]["acc_hungarian"]
    confusion = None
    if is_vade:
        from astrovader.evaluation import mean_gamma_confusion

        confusion = mean_gamma_confusion(gamma, gamma.argmax(1), gamma.shape[1])
    make_report(
        rd.path, x=x, x_hat=x_hat, gamma=gamma, history=read_history(rd.history), labels=y,
        label_names=getattr(stamps, "label_names", None), samples=samples, protos=protos, pi=pi,
        decoder_variance=variance, metrics=summary, confusion=confusion,
        class_confusion=res.get("confusion") if is_vade and y is not None else None,
        title=f"astrovader report: {cfg.name} on {stamps.source or cfg.data.spec}",
        config_text=yaml.safe_dump(cfg.to_dict(), sort_keys=False), seed=seed,
    )
    return metrics


def run(args) -> int:
    cfg, model = load_run(args.run)
    stamps = load_stamps(data_config(cfg.data, spec=args.data, n=args.n))
    metrics = evaluate_run(args.run, cfg, model, stamps, n_samples=args.samples, baseline=not args.no_baseline,
                           seed=args.seed)
    rd = RunDir(args.run)
    for k, v in metrics["scores"].items():
        if isinstance(v, (int, float)):
            print(f"{k:>22s}: {v:.4f}" if isinstance(v, float) else f"{k:>22s}: {v}")
    if "baseline_pca_gmm" in metrics:
        print(f"{'PCA+GMM acc_hungarian':>22s}: {metrics['baseline_pca_gmm']['acc_hungarian']:.4f}")
    print(f"metrics: {rd.metrics}")
    print(f"report:  {rd.report}")
    return 0
