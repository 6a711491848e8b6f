"""Clustering and reconstruction metrics for VaDE models and baselines.

Labels are used here only to *score* a clustering, never to train or select a model.

Accuracy
    * :func:`hungarian_accuracy` -- the usual unsupervised clustering accuracy: a one-to-one
      cluster -> class assignment maximising the matches (Kuhn--Munkres, rectangular when the
      number of clusters K differs from the number of classes; unmatched clusters count as
      wrong).
    * :func:`majority_accuracy` -- seed 000 eq. 9: every cluster is mapped to its majority
      class (many clusters may map to one class), so it never decreases with K.
Agreement and geometry
    * NMI / ARI (label agreement), silhouette and Calinski--Harabasz on the latents
      (seed 004 sec. 4.1, Table 2), all via :func:`clustering_scores`.
Mixture diagnostics (seed 004 Table 2, Fig. 5)
    * :func:`occupancy` -- objects per component by argmax and by gamma > cut.
    * :func:`mean_gamma_confusion` -- mean gamma per label and component.
Auto-regularisation (seed 000 Fig. 9) and reconstruction (seed 004 Fig. 4)
    * :func:`accuracy_vs_variance`, :func:`reconstruction_mse`, :func:`best_worst`.

:func:`evaluate_model` runs all of them on a trained model through the public model API
(``encode``, ``decode``, ``cluster_probabilities``, ``decoder_variance``).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn import metrics as skm

from astrovader.errors import AstrovaderError

__all__ = [
    "contingency",
    "cluster_mapping",
    "hungarian_accuracy",
    "majority_accuracy",
    "headline_score",
    "clustering_scores",
    "occupancy",
    "occupancy_table",
    "mean_gamma_confusion",
    "accuracy_vs_variance",
    "reconstruction_mse",
    "best_worst",
    "evaluate_model",
    "to_jsonable",
]


# ----------------------------------------------------------------------------- helpers
def _labels(y: Any, name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise AstrovaderError(f"{name}: expected a 1-D array of integer labels, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise AstrovaderError(f"{name}: labels must be integers (cast or encode them first)")
        arr = arr.astype(np.int64)
    return arr


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise AstrovaderError(
            f"y_true has {t.size} labels but y_pred has {p.size}: give one label per object"
        )
    if t.size == 0:
        raise AstrovaderError("no labels given: accuracy needs at least one object")
    return t, p


def contingency(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts of objects per (cluster, class).

    Args:
        y_true: class labels, shape ``(N,)`` (any integers).
        y_pred: cluster labels, shape ``(N,)`` (any integers).

    Returns:
        ``(table, clusters, classes)``: ``table[i, j]`` is the number of objects in cluster
        ``clusters[i]`` with class ``classes[j]``; ``clusters``/``classes`` are the sorted
        unique labels.
    """
    t, p = _pair(y_true, y_pred)
    classes, ti = np.unique(t, return_inverse=True)
    clusters, pi = np.unique(p, return_inverse=True)
    table = np.zeros((clusters.size, classes.size), dtype=np.int64)
    np.add.at(table, (pi, ti), 1)
    return table, clusters, classes


def cluster_mapping(y_true: Any, y_pred: Any, method: str = "hungarian") -> dict[int, int]:
    """Map every cluster label to a class label.

    Args:
        y_true: class labels ``(N,)``.
        y_pred: cluster labels ``(N,)``.
        method: ``"hungarian"`` (one-to-one, maximum total matches; clusters left unmatched
            when K > number of classes map to ``-1``) or ``"majority"`` (each cluster to its
            most frequent class, ties to the smallest class label; seed 000 eq. 9).

    Returns:
        ``{cluster: class}`` for every cluster present in ``y_pred``.
    """
    table, clusters, classes = contingency(y_true, y_pred)
    if method == "majority":
        return {int(c): int(classes[j]) for c, j in zip(clusters, table.argmax(axis=1))}
    if method != "hungarian":
        raise AstrovaderError(f"method={method!r}: choose 'hungarian' or 'majority'")
    rows, cols = linear_sum_assignment(table, maximize=True)
    mapping = {int(c): -1 for c in clusters}
    mapping.update({int(clusters[r]): int(classes[c]) for r, c in zip(rows, cols)})
    return mapping


def hungarian_accuracy(y_true: Any, y_pred: Any) -> float:
    """Clustering accuracy under the best one-to-one cluster -> class assignment.

    Mathematical details::

        ACC = max_m (1/N) sum_i 1[y_i = m(c_i)],   m injective (clusters -> classes)

    solved with ``scipy.optimize.linear_sum_assignment`` on the (K x C) contingency table.
    With K > C only C clusters can be matched, the others count as wrong; with K < C only K
    classes can be recovered.

    Args:
        y_true: class labels ``(N,)``.
        y_pred: cluster labels ``(N,)``; need not use the same label values as ``y_true``.

    Returns:
        Accuracy in ``[0, 1]``.
    """
    table, _, _ = contingency(y_true, y_pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / table.sum())


def majority_accuracy(y_true: Any, y_pred: Any) -> float:
    """Clustering accuracy with every cluster mapped to its majority class (seed 000 eq. 9).

    Mathematical details::

        accuracy = (1/N) sum_{c=1..K} max_j n_{c,j}

    where ``n_{c,j}`` counts objects of class j in cluster c (seed 000 writes it for two
    classes as ``max(p_c, n_c)``). Several clusters may share a class, so the score is
    optimistic for large K (it reaches 1 when every object is its own cluster).

    Args:
        y_true: class labels ``(N,)``.
        y_pred: cluster labels ``(N,)``.

    Returns:
        Accuracy in ``[0, 1]``.
    """
    table, _, _ = contingency(y_true, y_pred)
    return float(table.max(axis=1).sum() / table.sum())


def headline_score(n_clusters: int, n_classes: int) -> str:
    """The accuracy a clustering into ``n_clusters`` of data with ``n_classes`` classes is judged by.

    ``"acc_hungarian"`` (one cluster per class) unless there are more clusters than classes;
    then ``"acc_majority"`` (seed 000 eq. 9, the paper's score for K = 10 clusters of real and
    bogus stamps), since the Hungarian match leaves K - C clusters counted as wrong.
    """
    return "acc_majority" if int(n_clusters) > int(n_classes) else "acc_hungarian"


# ----------------------------------------------------------------------------- scores
def clustering_scores(
    y_true: Any | None,
    y_pred: Any,
    latents: Any | None = None,
    max_silhouette: int = 5000,
    seed: int = 0,
) -> dict[str, float]:
    """All scalar clustering scores that apply to the inputs given.

    Args:
        y_true: class labels ``(N,)`` or ``None`` (then only the label-free scores).
        y_pred: cluster labels ``(N,)``.
        latents: embedded points ``(N, J)`` (e.g. the encoder means) for the geometric
            scores, or ``None``.
        max_silhouette: silhouette is computed on a random subset of at most this many
            points (it is O(N^2)); ``0`` or less means all points.
        seed: seed of that subset.

    Returns:
        A dict with ``n_clusters_used`` and, when labels are given, ``acc_hungarian``,
        ``acc_majority``, ``nmi``, ``ari``; when latents are given and at least two
        clusters are used (and fewer than N), ``silhouette`` and ``calinski_harabasz``
        (seed 004 sec. 4.1); otherwise those two are ``nan``.
    """
    p = _labels(y_pred, "y_pred")
    out: dict[str, float] = {"n_clusters_used": int(np.unique(p).size)}
    if y_true is not None:
        t, p = _pair(y_true, p)
        out["acc_hungarian"] = hungarian_accuracy(t, p)
        out["acc_majority"] = majority_accuracy(t, p)
        out["nmi"] = float(skm.normalized_mutual_info_score(t, p))
        out["ari"] = float(skm.adjusted_rand_score(t, p))
    if latents is not None:
        z = np.asarray(latents, dtype=np.float64).reshape(len(p), -1)
        n_used = out["n_clusters_used"]
        idx = _subset(len(p), max_silhouette, seed)
        ok = np.all(np.isfinite(z)) and 2 <= n_used < len(p)
        sub_ok = 2 <= np.unique(p[idx]).size < idx.size
        out["silhouette"] = (
            float(skm.silhouette_score(z[idx], p[idx])) if ok and sub_ok else float("nan")
        )
        out["calinski_harabasz"] = float(skm.calinski_harabasz_score(z, p)) if ok else float("nan")
    return out


def _subset(n: int, size: int, seed: int) -> np.ndarray:
    """Indices of a random subset of ``size`` of ``n`` objects (all if size <= 0 or >= n)."""
    if size <= 0 or size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


# ----------------------------------------------------------------------------- mixture diagnostics
def _gamma(gamma: Any) -> np.ndarray:
    g = np.asarray(gamma, dtype=np.float64)
    if g.ndim != 2 or g.shape[1] < 1:
        raise AstrovaderError(f"gamma: expected cluster probabilities of shape (N, K), got {g.shape}")
    return g


def occupancy(
    gamma: Any,
    cuts: Sequence[float] = (0.5, 0.8, 0.95),
    latents: Any | None = None,
    max_silhouette: int = 5000,
    seed: int = 0,
    labels: Any | None = None,
) -> dict[str, Any]:
    """Objects per mixture component (seed 004 Table 2).

    Args:
        gamma: cluster probabilities ``(N, K)``.
        cuts: thresholds; for each, the number of objects with ``gamma_k > cut`` is counted
            per component (an object may count in several components for cuts < 0.5).
        latents: optional ``(N, J)`` embedding; adds the mean silhouette per component
            (Table 2's last row), computed on at most ``max_silhouette`` random objects.
        max_silhouette: subset size for the silhouette (``<= 0``: all objects).
        seed: seed of that subset.
        labels: optional true classes ``(N,)``; adds the members of each class per
            component (evaluation only).

    Returns:
        ``{"n_objects", "components": [0..K-1], "argmax": [K counts],
        "gamma>CUT": [K counts] per cut, "any_gamma>CUT": objects above the cut in some
        component, per cut, optionally "mean_silhouette": [K floats, nan if empty] and
        "per_class": {class: [K counts]}}``.
    """
    g = _gamma(gamma)
    n, k = g.shape
    assigned = g.argmax(axis=1)
    out: dict[str, Any] = {
        "n_objects": int(n),
        "components": list(range(k)),
        "argmax": np.bincount(assigned, minlength=k).tolist(),
    }
    for cut in cuts:
        above = g > float(cut)
        out[f"gamma>{cut:g}"] = above.sum(axis=0).astype(int).tolist()
        out[f"any_gamma>{cut:g}"] = int(above.any(axis=1).sum())
    if latents is not None:
        z = np.asarray(latents, dtype=np.float64).reshape(n, -1)
        idx = _subset(n, max_silhouette, seed)
        sil = np.full(k, np.nan)
        sub = assigned[idx]
        if 2 <= np.unique(sub).size < idx.size:
            s = skm.silhouette_samples(z[idx], sub)
            for c in np.unique(sub):
                sil[c] = float(s[sub == c].mean())
        out["mean_silhouette"] = sil.tolist()
    if labels is not None:
        y = _labels(labels, "labels")
        if y.size != n:
            raise AstrovaderError(f"labels has {y.size} entries but gamma has {n} rows")
        out["per_class"] = {c.item(): np.bincount(assigned[y == c], minlength=k).tolist() for c in np.unique(y)}
    return out


def occupancy_table(occ: dict[str, Any], digits: int = 3) -> str:
    """Render :func:`occupancy` output as a markdown table (components as columns)."""
    comps = occ["components"]
    lines = ["| component | " + " | ".join(str(c) for c in comps) + " |",
             "|---|" + "---|" * len(comps)]
    for key, val in occ.items():
        if isinstance(val, list) and key != "components" and len(val) == len(comps):
            cells = [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in val]
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mean_gamma_confusion(
    gamma: Any, labels: Any, n_labels: int | None = None
) -> np.ndarray:
    """Mean cluster probability per label group (seed 004 Fig. 5).

    Row ``i`` is the mean of ``gamma`` over the objects whose label is ``i``. With true
    classes as ``labels`` this is a (classes x K) soft confusion matrix; with the argmax
    cluster labels it is seed 004's K x K overlap matrix (the diagonal is the mean
    probability of the assigned component).

    Args:
        gamma: cluster probabilities ``(N, K)``.
        labels: non-negative integer labels ``(N,)``.
        n_labels: number of rows (default ``max(labels) + 1``); rows without objects are
            ``nan``.

    Returns:
        Array ``(n_labels, K)``.
    """
    g = _gamma(gamma)
    lab = _labels(labels, "labels")
    if lab.size != g.shape[0]:
        raise AstrovaderError(f"labels has {lab.size} entries but gamma has {g.shape[0]} rows")
    if lab.size and lab.min() < 0:
        raise AstrovaderError("labels must be non-negative integers (encode them as 0..n-1)")
    rows = int(n_labels if n_labels is not None else (lab.max() + 1 if lab.size else 0))
    sums = np.zeros((rows, g.shape[1]))
    np.add.at(sums, lab, g)
    counts = np.bincount(lab, minlength=rows)[:rows].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


def accuracy_vs_variance(
    y_true: Any,
    y_pred: Any,
    variance: Any,
    n_bins: int = 10,
    method: str = "majority",
) -> dict[str, list]:
    """Clustering accuracy in equal-count bins of decoder variance (seed 000 Fig. 9).

    Objects are sorted by their (Monte-Carlo averaged) decoder variance sigma^2(z) and split
    into ``n_bins`` bins of (nearly) equal size; the cluster -> class mapping is computed
    once on all objects (``method``) and the accuracy is reported per bin.

    Args:
        y_true: class labels ``(N,)``.
        y_pred: cluster labels ``(N,)``.
        variance: decoder variance per object ``(N,)``.
        n_bins: number of bins (at most N).
        method: ``"majority"`` (seed 000 eq. 9) or ``"hungarian"``.

    Returns:
        ``{"variance_mean", "variance_min", "variance_max", "accuracy", "count"}``, lists
        of length ``n_bins`` ordered by increasing variance.
    """
    t, p = _pair(y_true, y_pred)
    v = np.asarray(variance, dtype=np.float64).reshape(-1)
    if v.size != t.size:
        raise AstrovaderError(f"variance has {v.size} entries but there are {t.size} labels")
    if not 1 <= n_bins <= t.size:
        raise AstrovaderError(f"n_bins={n_bins}: choose between 1 and the number of objects ({t.size})")
    mapping = cluster_mapping(t, p, method=method)
    correct = np.array([mapping[int(c)] for c in p]) == t
    order = np.argsort(v, kind="stable")
    out: dict[str, list] = {k: [] for k in ("variance_mean", "variance_min", "variance_max", "accuracy", "count")}
    for idx in np.array_split(order, n_bins):
        out["variance_mean"].append(float(v[idx].mean()))
        out["variance_min"].append(float(v[idx].min()))
        out["variance_max"].append(float(v[idx].max()))
        out["accuracy"].append(float(correct[idx].mean()))
        out["count"].append(int(idx.size))
    return out


# ----------------------------------------------------------------------------- reconstruction
def reconstruction_mse(x: Any, x_hat: Any) -> np.ndarray:
    """Mean squared error per object over all pixels and channels.

    Args:
        x: stamps ``(N, ...)``.
        x_hat: reconstructions of the same shape.

    Returns:
        Array ``(N,)``.
    """
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(x_hat, dtype=np.float64)
    if a.shape != b.shape:
        raise AstrovaderError(f"x has shape {a.shape} but x_hat has {b.shape}: they must match")
    return ((a - b) ** 2).reshape(a.shape[0], -1).mean(axis=1)


def best_worst(mse: Any, n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the ``n`` best (lowest error) and ``n`` worst objects (seed 004 Fig. 4).

    Args:
        mse: per-object errors ``(N,)``; ``nan`` entries are ranked worst.
        n: how many of each (clipped to N).

    Returns:
        ``(best, worst)``: best in increasing error, worst in decreasing error.
    """
    m = np.asarray(mse, dtype=np.float64).reshape(-1)
    m = np.where(np.isnan(m), np.inf, m)
    order = np.argsort(m, kind="stable")
    n = int(min(max(n, 0), m.size))
    return order[:n], order[::-1][:n]


# ----------------------------------------------------------------------------- model
def _batched(fn, arr: np.ndarray, batch_size: int) -> np.ndarray:
    parts = [np.asarray(fn(arr[i : i + batch_size])) for i in range(0, len(arr), batch_size)]
    return np.concatenate(parts, axis=0)


def evaluate_model(
    model: Any,
    x: Any,
    y: Any | None = None,
    batch_size: int = 256,
    cuts: Sequence[float] = (0.5, 0.8, 0.95),
    n_bins: int = 10,
    n_best_worst: int = 5,
    max_silhouette: int = 5000,
    seed: int = 0,
) -> dict[str, Any]:
    """Evaluate a trained VaDE (or anything with the same methods) on stamps ``x``.

    Every number of ``astrovader evaluate`` (``metrics.json`` and the report) is computed
    here, once. Uses the public model API: ``encode(x, batch_size=...) -> (mu, log_var)``,
    ``decode(z)``, ``cluster_probabilities(x)`` and, when present,
    ``decoder_variance(x)``. Reconstructions decode the posterior means. A model without
    ``cluster_probabilities`` (a plain VAE) gets the reconstruction numbers only.

    Args:
        model: the model.
        x: stamps ``(N, H, W, C)``.
        y: optional class labels ``(N,)`` -- used for scores only.
        batch_size: batch size for the model calls.
        cuts: gamma cuts for :func:`occupancy`.
        n_bins: decoder-variance bins for :func:`accuracy_vs_variance`.
        n_best_worst: length of the best/worst reconstruction lists.
        max_silhouette: subset size for silhouette scores.
        seed: seed for the silhouette subsets.

    Returns:
        A dict: ``scores`` (see :func:`clustering_scores`, plus ``mse_mean``, ``mse_median``
        and ``decoder_variance_mean``), ``occupancy`` (with ``per_class`` counts when ``y``
        is given), ``confusion`` (mean gamma per class, or per assigned component when
        ``y`` is None) with its ``confusion_rows``, ``cluster_confusion`` (K x K mean gamma
        per assigned component, seed 004 Fig. 5), ``accuracy_vs_variance`` (when ``y`` is
        given), ``best``/``worst`` indices, and the per-object arrays ``labels``, ``gamma``,
        ``latents``, ``reconstructions``, ``mse``, ``variance``.
    """
    x = np.asarray(x, dtype=np.float32)
    is_vade = hasattr(model, "cluster_probabilities")
    gamma = _batched(model.cluster_probabilities, x, batch_size) if is_vade else None
    mu, _ = model.encode(x, batch_size=batch_size)
    mu = np.asarray(mu)
    x_hat = _batched(model.decode, mu, batch_size)
    mse = reconstruction_mse(x, x_hat)
    if hasattr(model, "decoder_variance"):
        variance = _batched(model.decoder_variance, x, batch_size).reshape(-1)
    else:
        variance = np.ones(len(x))
    recon = dict(mse_mean=float(np.mean(mse)), mse_median=float(np.median(mse)),
                 decoder_variance_mean=float(np.mean(variance)))
    best, worst = best_worst(mse, n_best_worst)
    out: dict[str, Any] = {"best": best, "worst": worst, "latents": mu, "reconstructions": x_hat,
                           "mse": mse, "variance": variance}
    if not is_vade:
        out["scores"] = recon
        return out
    labels = gamma.argmax(axis=1)
    scores = clustering_scores(y, labels, mu, max_silhouette=max_silhouette, seed=seed)
    scores.update(recon)
    out.update(
        scores=scores,
        occupancy=occupancy(gamma, cuts, latents=mu, max_silhouette=max_silhouette, seed=seed, labels=y),
        labels=labels,
        gamma=gamma,
        cluster_confusion=mean_gamma_confusion(gamma, labels, gamma.shape[1]),
    )
    if y is not None:
        y = _labels(y, "y")
        classes, y_idx = np.unique(y, return_inverse=True)
        out["confusion"] = mean_gamma_confusion(gamma, y_idx, classes.size)
        out["confusion_rows"] = classes
        out["accuracy_vs_variance"] = accuracy_vs_variance(
            y, labels, variance, n_bins=min(n_bins, len(y))
        )
    else:
        out["confusion"] = out["cluster_confusion"]
        out["confusion_rows"] = np.arange(gamma.shape[1])
    return out


def to_jsonable(obj: Any) -> Any:
    """Convert NumPy scalars/arrays (nested in dicts, lists, tuples) to plain Python."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
