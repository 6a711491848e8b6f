"""Clustering-quality benchmarks that mirror the seed papers' tables.

Experiments (pick with ``--experiments``; each writes ``benchmarks/results/<name>.json``):

* ``clustering_<set>`` (``mnist5k``, ``galaxies``, ``transients``, ``demo``) -- the shipped
  preset of each built-in set through the CLI's code path (``runs.fit_run``), several seeds,
  beside PCA/DL/VAE + GMM, k-means, N2D and AE + k-means (issue 9); ``--methods`` picks rows.
* ``transients`` -- seed 000 Table I analogues on simulated 21x21 HiTS-like stamps
  (``hits-vade-ar`` preset, shortened): ACC vs K at J = 21 (``k``), ACC vs J at K = 10
  (``j``), VaDE vs PCA/DL/VAE/k-means baselines (``baselines``), auto-regularisation on vs
  off (``ar``), and a beta-annealed VAE + GMM (``beta``). Pick parts with ``--parts``.
* ``galaxies`` -- simulated galaxy stamps: VaDE vs baselines (ACC/NMI) and the K chosen by
  the Dirichlet-process method of seed 004 sec. 4.1.

Labels are only used for scoring. ``python -m benchmarks.quality --help`` lists the options;
``--quick`` runs everything on tiny data for 1 epoch (a smoke test, results not kept).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

if __package__ in (None, ""):  # allow `python benchmarks/quality.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _common as C  # noqa: E402
from benchmarks.tables import PROBE  # noqa: E402

__all__ = ["main", "EXPERIMENTS"]


# ----------------------------------------------------------------------------- one VaDE run
_RUN_CACHE: dict[str, dict[str, Any]] = {}


def _vade_run(cfg, x, y, seed: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Train one model from ``cfg`` with ``seed`` and score it (labels only for scoring).

    Identical (config, seed, data) runs within one invocation are trained once (e.g. K = 10,
    J = 21 appears in the K grid, the J grid, the baselines and the AR comparison).
    """
    key = json.dumps([cfg.to_dict(), seed, x.shape, float(x[:50].sum())], sort_keys=True, default=str)
    if key in _RUN_CACHE:
        log(f"    seed {seed}: same run as before, reusing its scores")
        return dict(_RUN_CACHE[key])
    out = _train_and_score(cfg, x, y, seed, log)
    _RUN_CACHE[key] = out
    return dict(out)


def _train_and_score(cfg, x, y, seed: int, log: Callable[[str], None]) -> dict[str, Any]:
    import keras

    from astrovader.errors import TrainingError
    from astrovader.evaluation import accuracy_vs_variance, clustering_scores, reconstruction_mse
    from astrovader.training import train

    cfg = cfg.override("model", seed=seed).override("train", seed=seed)
    keras.utils.set_random_seed(seed)
    t0 = time.perf_counter()
    out: dict[str, Any] = {"seed": seed, "nan": False}
    try:
        model, hist = train(cfg, x, verbose=0)
    except TrainingError as exc:
        out.update(nan=True, error=str(exc), train_seconds=time.perf_counter() - t0)
        log(f"    seed {seed}: NaN ({exc})")
        return out
    out["train_seconds"] = time.perf_counter() - t0
    out["epochs"] = len(hist.history.get("loss", []))
    out["final_loss"] = float(hist.history["loss"][-1])
    t1 = time.perf_counter()
    gamma = model.cluster_probabilities(x)
    mu, _ = model.encode(x)
    out["predict_seconds"] = time.perf_counter() - t1
    if not (np.all(np.isfinite(gamma)) and np.all(np.isfinite(mu))):
        out["nan"] = True
        log(f"    seed {seed}: NaN in gamma/latents")
        return out
    labels = gamma.argmax(1)
    out.update(clustering_scores(y, labels, mu, max_silhouette=3000, seed=seed))
    x_hat = model.decode(mu)
    out["mse"] = float(reconstruction_mse(x, x_hat).mean())
    var = model.decoder_variance(x)
    out["decoder_variance_mean"] = float(np.mean(var))
    if cfg.model.decoder_variance and y is not None:
        out["accuracy_vs_variance"] = accuracy_vs_variance(y, labels, var, n_bins=10)
    out["occupancy"] = np.bincount(labels, minlength=cfg.model.n_clusters).tolist()
    out["_model"] = model
    log(
        f"    seed {seed}: acc_h={out.get('acc_hungarian', float('nan')):.4f} "
        f"acc_maj={out.get('acc_majority', float('nan')):.4f} nmi={out.get('nmi', float('nan')):.4f} "
        f"mse={out['mse']:.4g} ({out['train_seconds']:.0f}s)"
    )
    return out


def _strip(run: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if not k.startswith("_")}


def _summary(runs: list[dict[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    ok = [r for r in runs if not r.get("nan")]
    s: dict[str, Any] = {"n_runs": len(runs), "n_nan": len(runs) - len(ok)}
    for k in keys:
        m, sd = C.mean_sd([r.get(k, float("nan")) for r in ok])
        s[k] = {"mean": m, "sd": sd, "values": [r.get(k) for r in ok]}
    return s


def _shorten(cfg, args, **train_over):
    over = {k: v for k, v in dict(
        pretrain_epochs=args.pretrain_epochs, vade_epochs=args.vade_epochs,
        vae_epochs=args.vae_epochs, learning_rate=args.learning_rate,
        gamma_epochs=args.gamma_epochs, periods=args.periods,
        anneal_epochs=args.anneal_epochs, static_epochs=args.static_epochs,
        batch_size=args.batch_size,
    ).items() if v is not None}
    if args.pretrain_epochs is not None:
        over["pretrain_updates"] = 0  # the length asked for, not raised to the preset's minimum
    if {"gamma_epochs", "periods", "anneal_epochs", "static_epochs"} & over.keys():
        over["schedule_updates"] = 0
    over.update(train_over)
    cfg = cfg.override("train", **over)
    if args.learning_rate is not None:
        cfg.train.final_learning_rate = None
    return cfg


# ----------------------------------------------------------------------------- transients
TRANSIENT_PARTS = ("k", "j", "baselines", "ar", "beta")


def _baseline_runs(x, y, j: int, k: int, seeds, log, include_vae: bool, vae_cfg=None, vae_epochs=None):
    from astrovader import baselines as B
    from astrovader.evaluation import clustering_scores

    runs = []
    fns = [("pca+gmm", lambda s: B.pca_gmm(x, j, k, seed=s)),
           ("dl+gmm", lambda s: B.dictionary_gmm(x, j, k, seed=s)),
           ("kmeans", lambda s: B.kmeans_pixels(x, k, seed=s))]
    if include_vae:
        fns.append(("vae+gmm", lambda s: B.vae_gmm(x, vae_cfg, k, epochs=vae_epochs, seed=s)))
    for name, fn in fns:
        for s in seeds:
            try:
                r = fn(s)
            except Exception as exc:  # a failed baseline is reported, not fatal
                runs.append({"method": name, "seed": s, "nan": True, "error": str(exc)})
                log(f"    {name} seed {s}: failed ({exc})")
                continue
            z = None if name == "kmeans" else r.latents
            sc = clustering_scores(y, r.labels, z, max_silhouette=3000, seed=s)
            runs.append({"method": name, "seed": s, "nan": False, "seconds": r.seconds, **sc})
            log(f"    {name} seed {s}: acc_h={sc['acc_hungarian']:.4f} acc_maj={sc['acc_majority']:.4f} ({r.seconds:.0f}s)")
    return runs


def run_transients(args, log, spec: str = "builtin:transients", name: str = "transients") -> list[str]:
    from astrovader.config import load_preset

    base = _shorten(load_preset(args.preset or "hits-vade-ar"), args, validation_fraction=0.0)
    # the preset's per-stamp scaling (hits-vade-ar: CHASE median / abs-max, seed 001)
    x, y = C.load_stamps(spec, n=args.n, seed=0, scaling=base.data.scaling)
    written = []
    log(f"{name}: {x.shape}, classes={np.bincount(y).tolist()}, epochs={base.train.total_epochs()}")
    common = {
        "data": {"spec": spec, "n": int(len(x)), "shape": list(x.shape[1:]),
                 "class_counts": np.bincount(y).tolist()},
        "config": base.to_dict(),
        "environment": C.environment(),
    }
    seeds = args.seeds
    for part in args.parts:
        t0 = time.perf_counter()
        rows: list[dict[str, Any]] = []
        if part == "k":
            for k in args.k_grid:
                log(f"  K={k} J=21")
                cfg = base.override("model", n_clusters=k, latent_dim=21)
                rows += [{"K": k, "J": 21, **_strip(_vade_run(cfg, x, y, s, log))} for s in seeds]
        elif part == "j":
            for j in args.j_grid:
                log(f"  J={j} K=10")
                cfg = base.override("model", n_clusters=10, latent_dim=j)
                rows += [{"K": 10, "J": j, **_strip(_vade_run(cfg, x, y, s, log))} for s in seeds]
        elif part == "ar":
            for ar in (True, False):
                log(f"  auto-regularisation {'on' if ar else 'off'}")
                over = dict(decoder_variance=ar, reconstruction="gaussian" if ar else "mse")
                cfg = base.override("model", n_clusters=10, latent_dim=21, **over)
                rows += [{"auto_regularisation": ar, **_strip(_vade_run(cfg, x, y, s, log))} for s in seeds]
        elif part == "baselines":
            log("  VaDE J=21 K=10 and baselines")
            cfg = base.override("model", n_clusters=10, latent_dim=21)
            rows += [{"method": "vade", **_strip(_vade_run(cfg, x, y, s, log))} for s in seeds]
            vae_cfg = base.override("model", decoder_variance=False, reconstruction="mse")
            rows += _baseline_runs(x, y, 21, 10, seeds, log, True, vae_cfg,
                                   base.train.pretrain_epochs + base.train.vade_epochs)
        elif part == "beta":
            from astrovader import baselines as B
            from astrovader.evaluation import clustering_scores

            log("  beta-annealed VAE + GMM (seed 000 sec. VII, ref. [10])")
            vae_cfg = base.override("model", decoder_variance=False, reconstruction="mse")
            epochs = base.train.pretrain_epochs + base.train.vade_epochs
            vae_cfg = vae_cfg.override("train", anneal_epochs=max(1, epochs // 2))
            for s in seeds:
                r = B.vae_gmm(x, vae_cfg, 10, epochs=epochs, seed=s, recipe="kl_annealing")
                sc = clustering_scores(y, r.labels, r.latents, max_silhouette=3000, seed=s)
                rows.append({"method": "kl-vae+gmm", "seed": s, "nan": False, "seconds": r.seconds, **sc})
                log(f"    kl-vae+gmm seed {s}: acc_maj={sc['acc_majority']:.4f}")
        else:
            raise SystemExit(f"error: unknown transients part {part!r}; choose from {', '.join(TRANSIENT_PARTS)}")
        payload = {"experiment": f"{name}_{part}", "part": part, "runs": rows,
                   "wall_seconds": time.perf_counter() - t0, "seeds": list(seeds), **common}
        written.append(str(C.save_json(f"{args.prefix}{name}_{part}", payload, args.results_dir)))
    return written


# ----------------------------------------------------------------------------- galaxies
def run_galaxies(args, log) -> list[str]:
    from astrovader.config import load_preset
    from astrovader.selection import choose_k

    t0 = time.perf_counter()
    preset = args.preset or "astrovader"
    base = _shorten(load_preset(preset), args, validation_fraction=0.0)
    # the preset's per-stamp scaling (seed 004: min-max to [0, 1]); no resize to 128 px
    x, y = C.load_stamps("builtin:galaxies", n=args.n, seed=0, scaling=base.data.scaling)
    n_classes = int(len(np.unique(y)))
    j = base.model.latent_dim
    k = args.galaxies_k or n_classes
    base = base.override("model", n_clusters=k)
    log(f"galaxies: {x.shape}, classes={np.bincount(y).tolist()}, preset={preset}, J={j}, K={k}")
    rows = []
    kchoice = []
    for s in args.seeds:
        run = _vade_run(base, x, y, s, log)
        model = run.pop("_model", None)
        rows.append({"method": "vade", **_strip(run)})
        if model is not None:
            mu, _ = model.encode(x)
            sel = choose_k(mu, max_components=max(20, 2 * k), n_batches=20,
                           batch_size=min(1000, len(x)), covariance_type="diag", seed=s)
            kchoice.append({"seed": s, "embedding": "vade mu", **sel.to_dict()})
            log(f"    choose_k on VaDE latents: {sel.summary()}")
    vae_cfg = base.override("model", decoder_variance=False)
    rows += _baseline_runs(x, y, j, k, args.seeds, log, not args.no_vae_baseline, vae_cfg,
                           base.train.total_epochs())
    payload = {
        "experiment": "galaxies",
        "data": {"spec": "builtin:galaxies", "n": int(len(x)), "shape": list(x.shape[1:]),
                 "class_counts": np.bincount(y).tolist()},
        "config": base.to_dict(), "runs": rows, "choose_k": kchoice, "n_classes": n_classes,
        "wall_seconds": time.perf_counter() - t0, "environment": C.environment(),
    }
    return [str(C.save_json(args.prefix + "galaxies", payload, args.results_dir))]


# ----------------------------------------------------------------------------- clustering
#: The shipped presets on their built-in sets (issue 9): data, score and targets.
CLUSTERING_SETS: dict[str, dict[str, Any]] = {
    "mnist5k": {"preset": "mnist-vade", "score": "acc_hungarian",
                "targets": {"acc_mean": 0.90, "acc_sd": 0.02, "nan_runs": 0, "train_minutes": 20}},
    "galaxies": {"preset": "galaxies", "score": "acc_hungarian",
                 "targets": {"margin": 0.05, "nmi": 0.40, "nan_runs": 0}},
    "transients": {"preset": "hits-vade-ar", "score": "acc_majority",
                   "targets": {"acc_mean": 0.96, "margin": 0.02, "nan_runs": 0}},
    "demo": {"preset": "demo", "score": "acc_majority",
             "targets": {"acc_mean": 0.96, "margin": 0.02, "nan_runs": 0}},
}
CLUSTERING_METHODS = ("vade", "pca+gmm", "dl+gmm", "kmeans", "vae+gmm", "n2d", "ae+kmeans", "pca+n2d")


def _init_epoch(t) -> int | None:
    """First epoch after pretraining, when the recipe initialises the mixture."""
    return {"classic": t.pretrain_epochs, "s3vdc": t.gamma_epochs}.get(t.recipe)


def _snapshot_callback(x, y, epoch: int, seed: int, n_clusters: int, umap: dict, store: dict):
    """Keras callback: at ``epoch`` (the mixture initialisation), cluster the pretrained latents.

    Gives the N2D and AE + k-means scores of the VaDE run's *own* pretrained network
    (``n2d [same AE]``) and the initialised prior's clusters (``vade at init``), i.e. what
    the VaDE phase adds on top of its initialisation, and how much of the classes those codes
    hold (``labelled probe [same AE]``, :func:`_probe_labels`). Runs after the recipe's callback.
    """
    import keras

    from astrovader.mixture_init import cluster_latents
    from sklearn.cluster import KMeans

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_begin(self, e, logs=None):
            if e != epoch:
                return
            mu = np.asarray(self.model.encode(x)[0], dtype=np.float64)
            if not np.all(np.isfinite(mu)):
                return
            t0 = time.perf_counter()
            store["n2d [same AE]"] = (cluster_latents(mu, n_clusters, "umap", seed=seed, **umap).labels(), mu,
                                      time.perf_counter() - t0)
            t0 = time.perf_counter()
            km = KMeans(n_clusters, n_init=10, random_state=seed).fit_predict(mu)
            store["ae+kmeans [same AE]"] = (km, mu, time.perf_counter() - t0)
            t0 = time.perf_counter()
            store[PROBE + " [same AE]"] = (_probe_labels(mu, y, seed), mu, time.perf_counter() - t0)
            if float(self.model.prior.initialized.numpy()) > 0.5:  # the recipe initialised it just before
                t0 = time.perf_counter()
                store["vade at init [same AE]"] = (self.model.predict_clusters(x), mu, time.perf_counter() - t0)
                if self.model.mc_samples > 0:  # how much of that is the width of q(z|x), not the prior
                    store["vade at init, γ at mean [same AE]"] = (self.model.predict_clusters(x, mc_samples=0), mu, 0.0)

    return Snapshot()


def _probe_labels(z: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Out-of-fold class predictions of a logistic regression on the codes ``z`` *with* the labels.

    A reference, not a method: 5-fold (stratified) cross-validated accuracy of a linear classifier
    on standardised codes says how much of the classes the codes hold, so a clustering of those
    codes can be read against it. Labels train only this probe; nothing of it reaches VaDE.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    z, y = np.asarray(z, dtype=np.float64), np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        return y.copy()
    folds = StratifiedKFold(n_splits=int(np.clip(counts.min(), 2, 5)), shuffle=True, random_state=seed)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    return cross_val_predict(clf, z, y, cv=folds)


def _score_row(method: str, seed: int, y, labels, latents, seconds: float, **extra) -> dict[str, Any]:
    from astrovader.evaluation import clustering_scores

    return {"method": method, "seed": seed, "nan": False, "seconds": seconds,
            **clustering_scores(y, labels, latents, max_silhouette=3000, seed=seed), **extra}


def _vade_clustering_run(cfg, stamps, seed: int, log, workdir: Path) -> list[dict[str, Any]]:
    """One seed of a preset through the CLI's code path (``runs.fit_run``), scored with labels."""
    from astrovader import runs
    from astrovader.errors import TrainingError
    from astrovader.evaluation import reconstruction_mse

    cfg = cfg.override("model", seed=seed).override("train", seed=seed)
    # the network's view of the stamps (a preset with a fixed input shape resizes others, as fit_run does)
    x, y = runs.conform(stamps.images, cfg.model.input_shape, quiet=True), stamps.labels
    store: dict[str, Any] = {}
    t = cfg.train
    cbs = []
    if _init_epoch(t) is not None and int(t.restarts) == 1:  # (with restarts the snapshot would be the last one's)
        umap = dict(umap_neighbors=t.umap_neighbors, umap_components=t.umap_components)
        cbs.append(_snapshot_callback(x, y, _init_epoch(t), seed, cfg.model.n_clusters, umap, store))
    t0 = time.perf_counter()
    try:
        model, _, run = runs.fit_run(cfg, workdir / f"seed{seed}", overwrite=True, verbose=0, stamps=stamps,
                                     callbacks=cbs)
    except TrainingError as exc:
        log(f"    vade seed {seed}: NaN ({exc})")
        return [{"method": "vade", "seed": seed, "nan": True, "error": str(exc),
                 "train_seconds": time.perf_counter() - t0}]
    train_s = time.perf_counter() - t0
    hist = runs.read_history(run.history)
    gamma = model.cluster_probabilities(x)
    mu = model.encode(x)[0]
    if not (np.all(np.isfinite(gamma)) and np.all(np.isfinite(mu))):
        log(f"    vade seed {seed}: NaN in gamma/latents")
        return [{"method": "vade", "seed": seed, "nan": True, "train_seconds": train_s}]
    labels = gamma.argmax(1)
    row = _score_row("vade", seed, y, labels, mu, train_s, train_seconds=train_s,
                     epochs=len(hist.get("loss", [])), final_loss=float(hist["loss"][-1]),
                     mse=float(reconstruction_mse(x, model.decode(mu)).mean()),
                     decoder_variance_mean=float(np.mean(model.decoder_variance(x))),
                     occupancy=np.bincount(labels, minlength=cfg.model.n_clusters).tolist(),
                     prior_agreement=getattr(getattr(model, "mixture_init", None), "prior_agreement", None))
    rows = [row]
    if run.restarts.is_dir():  # train.restarts: every restart scored (the kept one is the `vade` row)
        chosen = json.loads((run.restarts / "chosen.json").read_text())
        row["restart_chosen"] = chosen["chosen"]
        for r in chosen["restarts"]:
            sub = runs.Run.open(run.path / r["path"]).model
            store[f"vade, restart {r['index']} [same seed]"] = (sub.cluster_probabilities(x).argmax(1),
                                                                 sub.encode(x)[0], 0.0)
            row.setdefault("restart_negative_elbo", []).append(r["negative_elbo"])
            row.setdefault("restart_agreement", []).append(r["agreement"])
    if model.mc_samples > 0:  # the same run's clusters with gamma at the posterior mean (diagnostic)
        store["vade, γ at mean [same run]"] = (model.cluster_probabilities(x, mc_samples=0).argmax(1), mu, 0.0)
    t0 = time.perf_counter()
    store[PROBE + " [same run]"] = (_probe_labels(mu, y, seed), mu, time.perf_counter() - t0)
    for name, (lab, z, sec) in store.items():
        rows.append(_score_row(name, seed, y, lab, z, sec))
    for r in rows:
        log(f"    {r['method']} seed {seed}: acc_h={r.get('acc_hungarian', float('nan')):.4f} "
            f"acc_maj={r.get('acc_majority', float('nan')):.4f} nmi={r.get('nmi', float('nan')):.4f} "
            f"({r['seconds']:.0f}s)")
    return rows


def _plain(cfg):
    """The preset's network without astrovader's invariances: what a user of N2D/VAE would train."""
    cfg = cfg.override("model", rotation_invariant=False, mirror_invariant=False, profile_weight=0.0)
    cfg = cfg.override("data", shift=0.0, shift_fraction=0.0, rotate=0.0, flips=False, rot90=False)
    return cfg


def _baseline_rows(method: str, cfg, x, y, seed: int, log) -> list[dict[str, Any]]:
    from astrovader import baselines as B

    j, k = cfg.model.latent_dim, cfg.model.n_clusters
    pre = _init_epoch(cfg.train) or cfg.train.total_epochs()
    try:
        if method == "pca+gmm":
            res = [B.pca_gmm(x, j, k, seed=seed)]
        elif method == "pca+n2d":
            res = [B.pca_n2d(x, j, k, seed=seed, umap_neighbors=cfg.train.umap_neighbors,
                             umap_components=cfg.train.umap_components)]
        elif method == "dl+gmm":
            res = [B.dictionary_gmm(x, j, k, seed=seed)]
        elif method == "kmeans":
            res = [B.kmeans_pixels(x, k, seed=seed)]
        elif method == "vae+gmm":
            vcfg = _plain(cfg).override("model", decoder_variance=False,
                                        reconstruction="mse" if cfg.model.reconstruction == "gaussian"
                                        else cfg.model.reconstruction)
            res = [B.vae_gmm(x, vcfg, k, epochs=pre, seed=seed)]
        elif method in ("n2d", "ae+kmeans"):
            t = cfg.train
            res = [r for r in B.autoencoder_baselines(x, _plain(cfg), k, epochs=pre, seed=seed,
                                                      umap_neighbors=t.umap_neighbors,
                                                      umap_components=t.umap_components)]
        else:
            raise SystemExit(f"error: unknown method {method!r}; choose from {', '.join(CLUSTERING_METHODS)}")
    except Exception as exc:  # a failed baseline is reported, not fatal
        log(f"    {method} seed {seed}: failed ({exc})")
        return [{"method": method, "seed": seed, "nan": True, "error": str(exc)}]
    rows = []
    for r in res:
        z = None if r.name == "kmeans" else r.latents
        rows.append(_score_row(r.name, seed, y, r.labels, z, r.seconds))
        log(f"    {r.name} seed {seed}: acc_h={rows[-1]['acc_hungarian']:.4f} "
            f"acc_maj={rows[-1]['acc_majority']:.4f} nmi={rows[-1]['nmi']:.4f} ({r.seconds:.0f}s)")
    return rows


def _keep_class_fractions(stamps, fractions: list[float]):
    """The first ``fractions[c]`` of each class c (in a fixed random order, seed 0): an
    imbalanced set from a balanced one, as survey stamps are (most candidates are bogus)."""
    y = np.asarray(stamps.labels)
    if len(fractions) != y.max() + 1 or not all(0 < f <= 1 for f in fractions):
        raise SystemExit(f"error: --class-fractions needs one fraction in (0, 1] per class ({y.max() + 1})")
    order = np.random.default_rng(0).permutation(len(y))
    keep = [i for c, f in enumerate(fractions) for i in order[y[order] == c][:max(1, round(f * np.sum(y == c)))]]
    return stamps.subset(np.sort(keep))


def resolve_for_stamps(cfg, images: np.ndarray):
    """``cfg`` (in place) as ``fit_run`` will train it on ``images``: the network built for their
    shape when the preset leaves it open, and the pretraining length in epochs for the preset's
    minimum number of updates -- so that the snapshot of the pretrained codes and the autoencoder
    baselines train exactly as long as VaDE's, and the recorded config says what ran."""
    from astrovader.runs import split_validation

    if cfg.model.input_shape is None:
        cfg.model.input_shape = tuple(int(s) for s in images.shape[1:])
    _, x_val = split_validation(images, float(cfg.train.validation_fraction), 0)
    n_train = len(images) - (0 if x_val is None else len(x_val))
    cfg.train.resolve_updates(cfg.train.steps_per_epoch(n_train))
    return cfg


def settings_clash(result: dict[str, Any], config: dict[str, Any], data: dict[str, Any]) -> str | None:
    """The first setting in which a clustering result file's rows differ from a job's ``config``
    (a preset's ``to_dict()``) and ``data`` (the stamps' description), as ``"section.field:
    recorded -> this job"``, or None. Fields only one side has (added to the code since) are not
    compared, nor the preset's name and description, nor the minimum numbers of updates
    (``train.pretrain_updates``, ``train.schedule_updates``): both configs are resolved on their
    stamps (:func:`resolve_for_stamps`), so the epochs those minima set are what is compared.
    Likewise the training shift is compared in pixels on the stamps, whether it was given as
    ``data.shift`` or ``data.shift_fraction``."""
    def same(a, b) -> bool:
        return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)

    def pixels(d: dict, stamps: dict) -> float:  # the shift of a recorded config on its stamps
        from astrovader.config import DataConfig

        cfg = DataConfig(shift=float(d.get("shift") or 0.0), shift_fraction=float(d.get("shift_fraction") or 0.0))
        return round(cfg.shift_pixels(stamps.get("shape") or (0, 0)), 9)

    recorded, old_data = result.get("config", {}), result.get("data", {})
    resolved = {"train": {"pretrain_updates", "schedule_updates"}, "data": {"shift", "shift_fraction"}}
    for section in ("model", "train", "data"):
        old, new = recorded.get(section, {}), config.get(section, {})
        for key in sorted(set(old) & set(new) - resolved.get(section, set())):
            if not same(old[key], new[key]):
                return f"{section}.{key}: {old[key]!r} -> {new[key]!r}"
    shifts = pixels(recorded.get("data", {}), old_data), pixels(config.get("data", {}), data)
    if shifts[0] != shifts[1]:
        return f"data.shift: {shifts[0]:g} px -> {shifts[1]:g} px"
    for key in ("spec", "n", "shape", "class_counts", "class_fractions"):
        if not same(old_data.get(key), data.get(key)):
            return f"stamps {key}: {old_data.get(key)!r} -> {data.get(key)!r}"
    return None


def run_clustering(args, log, set_name: str) -> list[str]:
    """VaDE (the shipped preset, CLI code path) beside every baseline on a built-in set.

    Results go to ``clustering_<set>.json``; rows of methods or seeds not run now are kept
    from an existing file, so VaDE and the baselines, or different seeds, can run as
    separate (parallel) jobs -- of the same settings: a job whose preset or stamps differ from
    the rows in the file stops before training (:func:`settings_clash`).
    """
    import tempfile

    from astrovader.config import load_preset
    from astrovader.data import load

    spec = CLUSTERING_SETS[set_name]
    t0 = time.perf_counter()
    cfg = _shorten(load_preset(args.preset or spec["preset"]), args)
    if args.n is not None:
        cfg = cfg.override("data", n=args.n)
    stamps = load(cfg.data)
    if stamps.labels is None:
        raise SystemExit(f"error: {cfg.data.spec} has no labels to score with")
    if args.class_fractions:
        stamps = _keep_class_fractions(stamps, args.class_fractions)
    x, y = stamps.images, np.asarray(stamps.labels)
    resolve_for_stamps(cfg, x)
    methods = args.methods or list(CLUSTERING_METHODS)
    log(f"{set_name}: {x.shape}, classes={np.bincount(y).tolist()}, preset={cfg.name}, "
        f"epochs={cfg.train.total_epochs()}, methods={methods}")
    name = f"{args.prefix}clustering_{set_name}"
    path = args.results_dir / f"{name}.json"
    data = {"spec": cfg.data.spec, "n": int(len(x)), "shape": list(x.shape[1:]),
            "class_counts": np.bincount(y).tolist(), "label_names": list(stamps.label_names or []),
            **({"class_fractions": args.class_fractions} if args.class_fractions else {})}
    if path.exists() and not args.quick:
        clash = settings_clash(json.loads(path.read_text()), cfg.to_dict(), data)
        if clash:
            raise SystemExit(f"error: {path} holds rows run with other settings ({clash}); "
                             "give this job another --results-dir or --prefix")
    rows: list[dict[str, Any]] = []

    def save() -> str:  # after every seed, so an interrupted job keeps what it measured
        # re-read: a parallel job may have written other methods' or seeds' rows meanwhile
        old = json.loads(path.read_text()).get("runs", []) if path.exists() and not args.quick else []
        ran = {r["method"] for r in rows} | set(methods)

        def rerun(r) -> bool:  # a row this job replaces: a method it runs (with VaDE, its companion rows), a seed it runs
            companion = "vade" in ran and r["method"].endswith(("[same AE]", "[same run]", "[same seed]"))
            return r["seed"] in args.seeds and (r["method"] in ran or companion)

        kept = [r for r in old if not rerun(r)]  # other jobs' rows
        payload = {
            "experiment": f"clustering_{set_name}", "set": set_name, "score": spec["score"],
            "targets": spec["targets"],
            "data": data, "config": cfg.to_dict(), "seeds": sorted({r["seed"] for r in kept + rows}),
            "runs": kept + rows,
            "wall_seconds": time.perf_counter() - t0, "environment": C.environment(),
        }
        return str(C.save_json(name, payload, args.results_dir))

    with tempfile.TemporaryDirectory(prefix="astrovader-bench-") as tmp:
        for s in args.seeds:
            for m in methods:
                if m == "vade":
                    rows += _vade_clustering_run(cfg, stamps, s, log, Path(tmp))
                elif m == "ae+kmeans" and "n2d" in methods:
                    continue  # one autoencoder gives both rows (baselines.autoencoder_baselines)
                else:
                    rows += _baseline_rows(m, cfg, x, y, s, log)
            written = save()
    return [written]


# ----------------------------------------------------------------------------- supervised ceilings
def _shape_features(x: np.ndarray) -> np.ndarray:
    """Rotation-invariant shape features of single-band stamps: the azimuthal mean profile in
    1-pixel rings about the stamp centre, the second-moment ellipticity and size of the central
    light, and the brightest pixel outside the core (a companion)."""
    img = x.mean(axis=-1)
    n, h, w = img.shape
    yy, xx = np.mgrid[:h, :w] - (np.array([h, w])[:, None, None] - 1) / 2
    r = np.hypot(yy, xx)
    ring = np.floor(r).astype(int)
    prof = np.stack([img[:, ring == b].mean(axis=1) for b in range(int(min(h, w) // 2))], axis=1)
    wgt = np.clip(img, 0, None) * (r < min(h, w) / 4)
    tot = wgt.sum(axis=(1, 2)) + 1e-9
    qxx, qyy, qxy = ((wgt * q).sum(axis=(1, 2)) / tot for q in (xx * xx, yy * yy, xx * yy))
    size = qxx + qyy + 1e-9
    ell = np.hypot(qxx - qyy, 2 * qxy) / size
    outer = (np.clip(img, 0, None) * (r >= min(h, w) / 5)).max(axis=(1, 2))
    return np.column_stack([prof, ell, size, outer])


def run_ceiling(args, log, set_name: str) -> list[str]:
    """How separable the classes of a built-in set are *with* labels: the reference an
    unsupervised score can be read against (no clustering can beat the Bayes rate).

    A HistGradientBoosting classifier on the preset's preprocessed stamps -- raw pixels, and
    rotation-invariant shape features (:func:`_shape_features`) -- (a) in 5-fold CV on the
    benchmark set itself and (b) trained on ``--n-fresh`` freshly simulated labelled stamps
    (same generator, seed 101) and scored on the benchmark set. Labels train here by design:
    this is the supervised reference, not a clustering method.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from astrovader.config import load_preset
    from astrovader.data import load

    spec = CLUSTERING_SETS[set_name]
    t0 = time.perf_counter()
    cfg = load_preset(args.preset or spec["preset"])
    n_fresh = 300 if args.quick else args.n_fresh
    bench = load(cfg.data, n=args.n)
    if not str(cfg.data.spec).startswith("builtin:") or bench.labels is None:
        raise SystemExit(f"error: ceiling_{set_name} needs a labelled built-in set, not {cfg.data.spec}")
    fresh = load(cfg.data, n=n_fresh, seed=101)
    y, yf = np.asarray(bench.labels), np.asarray(fresh.labels)
    log(f"ceiling {set_name}: benchmark {bench.images.shape}, fresh {fresh.images.shape}, scaling {cfg.data.scaling}")
    stamps = {cfg.data.scaling: (bench.images, fresh.images),  # the preset's preprocessing, and the raw pixels
              "none": (load(cfg.data, n=args.n, preprocess=False).images,
                       load(cfg.data, n=n_fresh, seed=101, preprocess=False).images)}
    rows = []
    for scaling, (xb, xf) in stamps.items():
        for feat_name, feat in (("pixels", lambda a: a.reshape(len(a), -1)), ("shape features", _shape_features)):
            fx, ff = feat(xb), feat(xf)
            clf = HistGradientBoostingClassifier(max_iter=50 if args.quick else 500, learning_rate=0.05,
                                                 random_state=0)
            t1 = time.perf_counter()
            cv = cross_val_predict(clf, fx, y, cv=StratifiedKFold(5, shuffle=True, random_state=0))
            fit = clf.fit(ff, yf).predict(fx)
            rows.append({"features": feat_name, "scaling": scaling, "n_features": int(fx.shape[1]),
                         "acc_cv5_benchmark_set": float(np.mean(cv == y)),
                         "acc_trained_on_fresh": float(np.mean(fit == y)),
                         "confusion_fresh": [[int(np.sum((y == a) & (fit == b))) for b in np.unique(y)]
                                             for a in np.unique(y)],
                         "seconds": time.perf_counter() - t1})
            log(f"    hgb on {feat_name} ({scaling}): 5-fold CV {rows[-1]['acc_cv5_benchmark_set']:.4f}, "
                f"trained on {n_fresh} fresh {rows[-1]['acc_trained_on_fresh']:.4f}")
    payload = {"experiment": f"ceiling_{set_name}", "set": set_name, "preset": cfg.name,
               "data": {"spec": cfg.data.spec, "n": int(len(y)), "n_fresh": int(len(yf)), "fresh_seed": 101,
                        "scaling": cfg.data.scaling, "class_counts": np.bincount(y).tolist(),
                        "label_names": list(bench.label_names or [])},
               "runs": rows, "wall_seconds": time.perf_counter() - t0, "environment": C.environment()}
    return [str(C.save_json(f"{args.prefix}ceiling_{set_name}", payload, args.results_dir))]


EXPERIMENTS: dict[str, Callable] = {
    **{f"clustering_{k}": (lambda args, log, _k=k: run_clustering(args, log, _k)) for k in CLUSTERING_SETS},
    "transients": run_transients,
    "galaxies": run_galaxies,
    **{f"ceiling_{k}": (lambda args, log, _k=k: run_ceiling(args, log, _k)) for k in ("galaxies", "transients", "demo")},
}


# ----------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.quality",
        description="Clustering-quality benchmarks (seed 000 Table I, seed 004 sec. 4.1); "
        "writes benchmarks/results/<name>.json and regenerates benchmarks/RESULTS.md.",
    )
    p.add_argument("--experiments", type=C.str_list, default="clustering_mnist5k",
                   help=f"comma-separated experiments: {', '.join(EXPERIMENTS)} (default clustering_mnist5k)")
    p.add_argument("--methods", type=C.str_list, default=None,
                   help=f"clustering_*: comma-separated methods to run ({', '.join(CLUSTERING_METHODS)}; "
                   "default all); rows of the others are kept from an existing result file")
    p.add_argument("--parts", type=C.str_list, default=",".join(TRANSIENT_PARTS),
                   help=f"transients parts to run: {', '.join(TRANSIENT_PARTS)} (default all)")
    p.add_argument("--seeds", type=C.int_list, default=[0, 1, 2, 3, 4],
                   help="comma-separated seeds; one training run per seed (default 0,1,2,3,4)")
    p.add_argument("--n", type=int, default=None, help="number of stamps (default: the data set's default)")
    p.add_argument("--class-fractions", type=C.float_list, default=None,
                   help="clustering_*: keep this fraction of each class (e.g. 1,0.25: every bogus stamp, a "
                        "quarter of the real ones), for an imbalanced set")
    p.add_argument("--preset", default=None,
                   help="preset for transients/galaxies (default hits-vade-ar / astrovader)")
    p.add_argument("--pretrain-epochs", type=int, default=None, help="override train.pretrain_epochs")
    p.add_argument("--vade-epochs", type=int, default=None, help="override train.vade_epochs")
    p.add_argument("--vae-epochs", type=int, default=None, help="override train.vae_epochs")
    p.add_argument("--gamma-epochs", type=int, default=None, help="override train.gamma_epochs (s3VDC)")
    p.add_argument("--periods", type=int, default=None, help="override train.periods (s3VDC)")
    p.add_argument("--anneal-epochs", type=int, default=None, help="override train.anneal_epochs")
    p.add_argument("--static-epochs", type=int, default=None, help="override train.static_epochs (s3VDC)")
    p.add_argument("--learning-rate", type=float, default=None,
                   help="override train.learning_rate (and drop the decay to final_learning_rate)")
    p.add_argument("--batch-size", type=int, default=None, help="override train.batch_size")
    p.add_argument("--n-fresh", type=int, default=24000,
                   help="ceiling_*: freshly simulated labelled stamps to train the supervised reference on")
    p.add_argument("--k-grid", type=C.int_list, default=[2, 6, 10, 20], help="K values for transients part k")
    p.add_argument("--j-grid", type=C.int_list, default=[2, 5, 10, 21], help="J values for transients part j")
    p.add_argument("--galaxies-k", type=int, default=None,
                   help="K for galaxies (default: number of simulated classes)")
    p.add_argument("--no-vae-baseline", action="store_true",
                   help="galaxies: skip the VAE + GMM baseline (saves one network training)")
    p.add_argument("--results-dir", type=Path, default=C.RESULTS_DIR, help="where JSON results go")
    p.add_argument("--prefix", default="", help="prefix for result names (e.g. 'quick_')")
    p.add_argument("--no-markdown", action="store_true", help="do not regenerate RESULTS.md")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 1 seed, 1+1 epochs, 300 stamps, results under a temp prefix")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.methods:
        bad = [m for m in args.methods if m not in CLUSTERING_METHODS]
        if bad:
            print(f"error: unknown method(s) {bad}; choose from {', '.join(CLUSTERING_METHODS)}", file=sys.stderr)
            return 2
    bad = [e for e in args.experiments if e not in EXPERIMENTS]
    if bad:
        print(f"error: unknown experiment(s) {bad}; choose from {', '.join(EXPERIMENTS)}", file=sys.stderr)
        return 2
    if args.quick:
        args.seeds = args.seeds[:1]
        args.n = args.n or 300
        args.pretrain_epochs = args.pretrain_epochs or 1
        args.vade_epochs = args.vade_epochs or 1
        args.vae_epochs = args.vae_epochs or 1
        args.gamma_epochs = args.gamma_epochs or 1
        args.periods = args.periods or 1
        args.anneal_epochs = args.anneal_epochs or 1
        args.static_epochs = args.static_epochs or 1
        args.k_grid, args.j_grid = args.k_grid[:1], args.j_grid[:1]
        args.prefix = args.prefix or "quick_"

    def log(msg: str) -> None:
        print(msg, flush=True)

    t0 = time.perf_counter()
    written = []
    for e in args.experiments:
        written += EXPERIMENTS[e](args, log)
    if not args.no_markdown and args.results_dir == C.RESULTS_DIR and not args.quick:
        written.append(str(C.write_results_md()))
    log(f"done in {time.perf_counter() - t0:.0f}s: " + ", ".join(written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
