"""Comparing latent spaces: DNMSE curves, latent-MLP ROC and the manifold 1-D baseline.

* :func:`dnmse_curve` -- seed 001 Fig. 2a. A small labelled *reference* set (CHASE's 315
  asteroids; here real transients) is embedded with the other candidates; candidates are
  ranked by their latent distance to the reference set (nearest reference, Euclidean), and
  for the top n the discrimination normalised MSE in *input* space is averaged::

      DNMSE(c) = mean_r ||x_c - x_r||^2 / mean_r ||x_r||^2        (r over the reference set)
      curve(n) = mean of DNMSE(c) over the n candidates nearest the reference set in latent space

  Lower is better: the latent neighbours of real transients look like real transients.
* :func:`latent_roc` -- seed 001 Fig. 2c: an MLP with one hidden layer (scikit-learn
  ``MLPClassifier``) trained on the standardised latents of 75 % of a labelled set; ROC
  curve and AUC on the other 25 %.
* :func:`manifold_scores` / :func:`threshold_scores` -- seed 002 sec. 3.1.1 (V+M):
  latents -> Isomap or t-SNE to one dimension -> a threshold placed so that the known
  class proportion falls on one side; the ROC over all thresholds gives the AUC.
* :func:`latent_baselines` -- the linear mini-batch baselines of seed 001: incremental PCA
  and online sparse dictionary learning, fitted in mini-batches on the same stamps.
* :func:`compare_latents` -- all of the above for trained runs and baselines on one data
  set, writing ``dnmse.png``, ``roc.png`` and ``compare_latents.json`` (the
  ``astrovader compare-latents`` subcommand).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from astrovader.errors import ConfigError, DataError

__all__ = [
    "dnmse_curve",
    "latent_roc",
    "latent_baselines",
    "manifold_scores",
    "threshold_scores",
    "compare_latents",
    "BASELINES",
]

BASELINES = ("ipca", "sdl")


def _flat(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(len(x), -1)


def dnmse_curve(latents: np.ndarray, images: np.ndarray, reference: np.ndarray,
                ns: list[int] | np.ndarray | None = None) -> dict:
    """DNMSE of the top-n candidates nearest to the reference set in latent space (seed 001 Fig. 2a).

    Args:
        latents: ``(N, J)`` latent codes of every object.
        images: ``(N, ...)`` the objects in input space (the same preprocessing for every method).
        reference: boolean mask ``(N,)`` of the reference set; the others are the candidates.
        ns: the n at which to report the curve (default: 1..N_candidates, 50 log-spaced points).

    Returns:
        ``{"n": [...], "dnmse": [...], "order": candidate indices nearest first,
        "distance": their latent distances}``.

    Raises:
        DataError: an empty reference or candidate set.
    """
    reference = np.asarray(reference, bool)
    if reference.sum() == 0 or (~reference).sum() == 0:
        raise DataError("dnmse_curve needs a non-empty reference set and at least one candidate: "
                        "check --reference-label and --n-reference")
    z = np.asarray(latents, np.float64)
    x = _flat(images)
    ref_z, ref_x = z[reference], x[reference]
    cand = np.flatnonzero(~reference)
    d2 = (np.sum(z[cand] ** 2, 1)[:, None] - 2 * z[cand] @ ref_z.T + np.sum(ref_z ** 2, 1)[None])
    dist = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    order = np.argsort(dist, kind="stable")
    # mean_r ||x_c - x_r||^2 without the (C, R, D) array: ||x_c||^2 - 2 x_c . mean(x_r) + mean ||x_r||^2
    ref_energy = float(np.mean(np.sum(ref_x ** 2, 1)))
    per = (np.sum(x[cand] ** 2, 1) - 2 * x[cand] @ ref_x.mean(0) + ref_energy) / max(ref_energy, 1e-12)
    per_sorted = per[order]
    cum = np.cumsum(per_sorted) / np.arange(1, len(per_sorted) + 1)
    if ns is None:
        ns = np.unique(np.geomspace(1, len(cand), 50).astype(int))
    ns = [int(n) for n in ns if 1 <= int(n) <= len(cand)]
    return {"n": ns, "dnmse": [float(cum[n - 1]) for n in ns], "order": cand[order], "distance": dist[order]}


def latent_roc(latents: np.ndarray, labels: np.ndarray, positive=1, train_fraction: float = 0.75,
               hidden: int = 50, seed: int = 0) -> dict:
    """ROC/AUC of a one-hidden-layer MLP on the latents (seed 001 Fig. 2c).

    Args:
        latents: ``(N, J)``.
        labels: ``(N,)`` class labels; ``positive`` is the class scored.
        train_fraction: share of the objects the MLP is trained on (stratified split).
        hidden: hidden units.
        seed: split and initialisation seed.

    Returns:
        ``{"auc", "fpr", "tpr", "n_train", "n_test"}``.
    """
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler
    from sklearn.metrics import roc_auc_score, roc_curve

    y = (np.asarray(labels) == positive).astype(int)
    if y.min() == y.max():
        raise DataError("latent_roc needs both classes in the labels: use labelled stamps with the reference "
                        "class (--reference-label) and at least one other")
    z = np.asarray(latents, np.float64)
    z_tr, z_te, y_tr, y_te = train_test_split(z, y, train_size=train_fraction, random_state=seed, stratify=y)
    scaler = StandardScaler().fit(z_tr)
    clf = MLPClassifier(hidden_layer_sizes=(int(hidden),), max_iter=1000, early_stopping=False, random_state=seed)
    clf.fit(scaler.transform(z_tr), y_tr)
    p = clf.predict_proba(scaler.transform(z_te))[:, 1]
    fpr, tpr, _ = roc_curve(y_te, p)
    return {"auc": float(roc_auc_score(y_te, p)), "fpr": fpr.tolist(), "tpr": tpr.tolist(),
            "n_train": int(len(y_tr)), "n_test": int(len(y_te))}


def latent_baselines(images: np.ndarray, n_components: int, names=BASELINES, batch_size: int = 256,
                     seed: int = 0, fit_on: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Latent codes from the mini-batch linear baselines of seed 001 sec. 3.

    ``ipca``: :class:`sklearn.decomposition.IncrementalPCA` fitted batch by batch
    (``partial_fit``); ``sdl``: :class:`sklearn.decomposition.MiniBatchDictionaryLearning`
    (online sparse dictionary learning, Mairal et al. 2009), codes by LASSO-LARS.

    Args:
        fit_on: stamps to fit the baselines on (default: ``images``); ``images`` are then encoded.

    Returns:
        ``{name: (N, n_components) codes}`` of ``images``.
    """
    from sklearn.decomposition import IncrementalPCA, MiniBatchDictionaryLearning

    xe = _flat(images).astype(np.float32)
    x = xe if fit_on is None else _flat(fit_on).astype(np.float32)
    out = {}
    for name in names:
        if name == "ipca":
            bs = max(int(batch_size), int(n_components))
            pca = IncrementalPCA(n_components=int(n_components), batch_size=bs)
            for i in range(0, len(x) - bs + 1, bs):  # every batch needs >= n_components rows
                pca.partial_fit(x[i:i + bs])
            if not hasattr(pca, "components_"):
                pca.fit(x)
            out[name] = pca.transform(xe)
        elif name == "sdl":
            dl = MiniBatchDictionaryLearning(n_components=int(n_components), alpha=0.1, batch_size=int(batch_size),
                                             max_iter=20, random_state=seed, transform_algorithm="lasso_lars",
                                             transform_alpha=0.1)
            out[name] = dl.fit(x).transform(xe)
        else:
            raise ConfigError(f"unknown baseline {name!r} (--baselines): choose from {', '.join(BASELINES)}")
    return out


def manifold_scores(latents: np.ndarray, method: str = "isomap", n_neighbors: int = 15, seed: int = 0,
                    standardize: bool = False) -> np.ndarray:
    """One-dimensional manifold embedding of the latents (seed 002 sec. 3.1.1): ``(N,)``.

    The latents are used as they are by default: a VAE's codes are already in the units of
    its prior, and a latent the VAE left unused (posterior collapse: its means barely vary)
    carries only noise. Standardising each latent to unit variance would blow that noise up
    to the weight of the informative latents and blur the neighbour graph Isomap and t-SNE
    work on (on ``stargal5`` a V+M run with one collapsed latent of 2: AUC 0.984 raw, 0.967
    standardised).

    Args:
        method: ``"isomap"`` or ``"tsne"``; 1-D latents are returned unchanged.
        standardize: scale each latent to zero mean and unit variance first (for codes
            whose dimensions have unrelated units).
    """
    z = np.asarray(latents, np.float64)
    if z.shape[1] == 1:
        return z[:, 0]
    if standardize:
        from sklearn.preprocessing import StandardScaler

        z = StandardScaler().fit_transform(z)
    if method == "isomap":
        from sklearn.manifold import Isomap

        return Isomap(n_neighbors=min(int(n_neighbors), len(z) - 1), n_components=1).fit_transform(z)[:, 0]
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(n_components=1, perplexity=min(30.0, (len(z) - 1) / 3), random_state=seed,
                    init="random").fit_transform(z)[:, 0]
    raise ConfigError(f"method={method!r}: choose 'isomap' or 'tsne'")


def threshold_scores(score: np.ndarray, labels: np.ndarray, positive=1, proportion: float | None = None) -> dict:
    """Classify a 1-D score by a threshold placed at a known class proportion; ROC over thresholds.

    Unsupervised, the side the positive class lies on is unknown; the AUC reported is
    ``max(AUC, 1 - AUC)`` (``"flipped"`` says which side was used) and the accuracy is
    that of the proportion threshold on the same side.

    Args:
        score: ``(N,)`` one number per object.
        labels: ``(N,)``; ``positive`` is the class whose share ``proportion`` is known
            (default: its share in ``labels``).

    Returns:
        ``{"auc", "flipped", "threshold", "accuracy", "fpr", "tpr"}``.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    y = (np.asarray(labels) == positive).astype(int)
    s = np.asarray(score, np.float64)
    auc = float(roc_auc_score(y, s))
    flipped = auc < 0.5
    if flipped:
        s, auc = -s, 1.0 - auc
    frac = float(y.mean()) if proportion is None else float(proportion)
    thr = float(np.quantile(s, 1.0 - frac))
    acc = float(np.mean((s > thr).astype(int) == y))
    fpr, tpr, _ = roc_curve(y, s)
    return {"auc": auc, "flipped": bool(flipped), "threshold": thr, "accuracy": acc,
            "fpr": fpr.tolist(), "tpr": tpr.tolist()}


def _plot_dnmse(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for name, c in curves.items():
        ax.plot(c["n"], c["dnmse"], label=name)
    ax.set_xscale("log")
    ax.set_xlabel("top-n candidates nearest the reference set (latent space)")
    ax.set_ylabel("DNMSE (input space)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_roc(rocs: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 4))
    for name, r in rocs.items():
        ax.plot(r["fpr"], r["tpr"], label=f"{name} (AUC {r['auc']:.3f})")
    ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls="--")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def compare_latents(runs: list, data: str | None, out: str | os.PathLike, *, baselines=BASELINES,
                    reference_label=1, n_reference: int | None = None, n: int | None = None,
                    ns: list[int] | None = None, seed: int = 0, stamps=None) -> dict:
    """Compare the latent spaces of trained runs and linear baselines on one labelled set.

    The stamps are preprocessed with the first run's data settings (the common input
    space in which DNMSE is measured) and conformed to each run's input shape. The
    baselines get as many components as the first run has latents. A random
    ``n_reference`` of the objects labelled ``reference_label`` (default: 10 % of them,
    at least 10) form the reference set of :func:`dnmse_curve`; :func:`latent_roc`
    scores ``reference_label`` against the rest.

    Args:
        runs: run directories or :class:`~astrovader.runs.Run` objects.
        data: the labelled stamps (default: the first run's ``data.spec``).
        out: folder for ``dnmse.png``, ``roc.png`` and ``compare_latents.json``.
        baselines: names from :data:`BASELINES`.
        n: use only this many stamps; ``ns``: the n of the DNMSE curve.
        stamps: an already loaded StampSet (instead of ``data``/``n``).

    Returns:
        The dict written to ``compare_latents.json``: per method ``auc``, ``dnmse``
        (``{"n", "dnmse"}``), ``dnmse_at_100`` and the seconds it took.

    Raises:
        AstrovaderError: no runs, unlabelled data, unknown baseline names.
    """
    from astrovader.errors import AstrovaderError
    from astrovader.runs import Run, _load_stamps, _output_dir, conform, data_config, labels_of

    if not runs:
        raise AstrovaderError("give at least one run (--runs RUN ...)")
    bad = [b for b in baselines if b not in BASELINES]
    if bad:
        raise AstrovaderError(f"unknown baseline(s) {', '.join(bad)}; choose from {', '.join(BASELINES)}")
    opened = [r if isinstance(r, Run) else Run.open(r) for r in runs]
    first = opened[0]
    if stamps is None:
        stamps = _load_stamps(data_config(first.cfg.data, spec=data, n=n))
    y = labels_of(stamps)
    if y is None:
        raise AstrovaderError(f"{stamps.source or data}: compare-latents needs labelled stamps")
    if not np.any(y == reference_label) or np.all(y == reference_label):
        raise AstrovaderError(f"--reference-label {reference_label}: the labels must hold this class and another")
    x0 = conform(stamps.images, first.cfg.model.input_shape, source=stamps.source)
    rng = np.random.default_rng(seed)
    pos = np.flatnonzero(y == reference_label)
    k = int(n_reference) if n_reference else max(10, len(pos) // 10)
    reference = np.zeros(len(y), bool)
    reference[rng.choice(pos, size=min(k, len(pos) - 1), replace=False)] = True
    latents: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for r in opened:
        t0 = time.time()
        name = r.cfg.name if list(o.cfg.name for o in opened).count(r.cfg.name) == 1 else r.path.name
        mu, _ = r.model.encode(conform(stamps.images, r.cfg.model.input_shape, quiet=True))
        latents[name] = np.asarray(mu)
        seconds[name] = time.time() - t0
    t0 = time.time()
    for name, z in latent_baselines(x0, int(first.cfg.model.latent_dim), baselines, seed=seed).items():
        latents[name] = z
        seconds[name] = (time.time() - t0) / max(1, len(baselines))
    curves, rocs, result = {}, {}, {"data": stamps.source or str(data), "n_objects": int(len(y)),
                                    "reference_label": reference_label, "n_reference": int(reference.sum()),
                                    "methods": {}}
    for name, z in latents.items():
        c = dnmse_curve(z, x0, reference, ns)
        curves[name] = c
        at = dnmse_curve(z, x0, reference, [min(100, int((~reference).sum()))])["dnmse"][0]
        rocs[name] = latent_roc(z, y, positive=reference_label, seed=seed)
        result["methods"][name] = {"auc": rocs[name]["auc"], "dnmse_at_100": at,
                                   "dnmse": {"n": c["n"], "dnmse": c["dnmse"]}, "latent_dim": int(z.shape[1]),
                                   "seconds": seconds[name]}
    out = _output_dir(Path(out))
    _plot_dnmse(curves, out / "dnmse.png")
    _plot_roc(rocs, out / "roc.png")
    (out / "compare_latents.json").write_text(json.dumps(result, indent=2))
    return result
