"""HTML run report: figures from :mod:`astrovader.plots` plus metric and occupancy tables.

:func:`make_report` takes NumPy arrays (inputs, reconstructions, gamma, history, generated
samples, ...), writes the PNG figures under ``<out_dir>/figures/`` and a self-contained
``report.html`` that links them with relative paths, so the folder can be copied or
zipped. :func:`missing_images` lists ``<img src>`` targets that do not exist (used by the
tests and by :func:`write_report` itself).
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from astrovader import evaluation, plots

__all__ = ["Figure", "Table", "write_report", "make_report", "missing_images", "save_metrics"]


@dataclass
class Figure:
    """A figure in the report: ``filename`` is relative to the report's folder."""

    title: str
    filename: str
    caption: str = ""


@dataclass
class Table:
    """A table in the report: a header row and body rows (values are formatted)."""

    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[Any]]
    caption: str = ""


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1100px;color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}.meta{color:#666;font-size:.9em}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.8em}
"""


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if v != v:
            return "nan"
        if v == 0 or 1e-3 <= abs(v) < 1e5:
            return f"{v:.4g}"
        return f"{v:.3e}"
    if isinstance(v, (np.integer,)):
        return str(int(v))
    return html.escape(str(v))


def _table_html(t: Table) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in t.header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in t.rows)
    cap = f"<p class='meta'>{html.escape(t.caption)}</p>" if t.caption else ""
    return f"<h2>{html.escape(t.title)}</h2>{cap}<table><tr>{head}</tr>{body}</table>"


def _flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows = []
    for k, v in metrics.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            rows.extend(_flatten_metrics(v, prefix=f"{name}."))
        elif isinstance(v, (list, tuple, np.ndarray)) and len(v) > 12:
            continue  # long arrays belong in metrics.json, not in the summary table
        elif isinstance(v, (list, tuple, np.ndarray)):
            rows.append((name, ", ".join(_fmt(x) for x in np.ravel(v))))
        else:
            rows.append((name, v))
    return rows


def write_report(
    out_dir: str | os.PathLike,
    title: str,
    metrics: Mapping[str, Any] | None = None,
    figures: Sequence[Figure] = (),
    tables: Sequence[Table] = (),
    config_text: str | None = None,
    filename: str = "report.html",
) -> Path:
    """Write ``<out_dir>/<filename>``: metrics, tables, then figures, with relative links.

    Figures whose file does not exist are left out (and named in a note), so the report
    never links a missing image.

    Returns:
        The path of the HTML file.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='meta'>written {_dt.datetime.now().isoformat(timespec='seconds')} by astrovader</p>",
    ]
    if metrics:
        rows = _flatten_metrics(metrics)
        parts.append(_table_html(Table("Metrics", ("metric", "value"), rows)))
    for t in tables:
        parts.append(_table_html(t))
    skipped = []
    for f in figures:
        rel = Path(f.filename)
        if rel.is_absolute():
            try:
                rel = rel.relative_to(out_dir.resolve())
            except ValueError:
                rel = Path(os.path.relpath(rel, out_dir))
        if not (out_dir / rel).is_file():
            skipped.append(f.title)
            continue
        src = html.escape(rel.as_posix(), quote=True)
        cap = f"<figcaption>{html.escape(f.caption)}</figcaption>" if f.caption else ""
        parts.append(
            f"<h2>{html.escape(f.title)}</h2><figure><img src='{src}' alt='{html.escape(f.title)}'>{cap}</figure>"
        )
    if skipped:
        parts.append(f"<p class='meta'>figures not produced: {html.escape(', '.join(skipped))}</p>")
    if config_text:
        parts.append(f"<h2>Configuration</h2><pre>{html.escape(config_text)}</pre>")
    parts.append("</body></html>")
    path = out_dir / filename
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    os.replace(tmp, path)
    return path


def missing_images(html_path: str | os.PathLike) -> list[str]:
    """``<img src>`` targets in ``html_path`` that are absolute, remote or do not exist."""
    html_path = Path(html_path)
    text = html_path.read_text(encoding="utf-8")
    bad = []
    for src in re.findall(r"<img[^>]*\bsrc=['\"]([^'\"]+)['\"]", text):
        src = html.unescape(src)
        if "://" in src or os.path.isabs(src) or not (html_path.parent / src).is_file():
            bad.append(src)
    return bad


def _occupancy_table(occ: Mapping[str, Any], confusion: np.ndarray, pi: np.ndarray | None, label_names) -> Table:
    """Render :func:`astrovader.evaluation.occupancy` (and the K x K mean-gamma diagonal) as a table."""
    counts = occ["argmax"]
    cuts = [key for key in occ if key.startswith("gamma>")]
    per_class = occ.get("per_class") or {}
    header = ["cluster", "objects", "fraction", "mean γ of members"] + [key.replace("gamma", "γ") for key in cuts]
    if pi is not None:
        header.append("π_k")
    for c in per_class:
        known = label_names is not None and isinstance(c, int) and 0 <= c < len(label_names)
        name = label_names[c] if known else c
        header.append(f"label {name}")
    n = max(int(occ["n_objects"]), 1)
    rows = []
    for k in occ["components"]:
        row = [k, int(counts[k]), counts[k] / n, float(np.asarray(confusion)[k, k])]
        row += [int(occ[key][k]) for key in cuts]
        if pi is not None:
            row.append(float(pi[k]))
        row += [int(v[k]) for v in per_class.values()]
        rows.append(row)
    return Table("Cluster occupancy", header, rows,
                 "objects per cluster by argmax γ; γ>t counts objects with γ_k above t (seed 004 Table 2)")


def make_report(
    out_dir: str | os.PathLike,
    *,
    x: np.ndarray,
    x_hat: np.ndarray,
    mse: np.ndarray | None = None,
    gamma: np.ndarray | None = None,
    history: Mapping[str, Sequence[float]] | None = None,
    labels: np.ndarray | None = None,
    label_names: Sequence[str] | None = None,
    samples: np.ndarray | None = None,
    protos: np.ndarray | None = None,
    pi: np.ndarray | None = None,
    decoder_variance: np.ndarray | None = None,
    metrics: Mapping[str, Any] | None = None,
    confusion: np.ndarray | None = None,
    class_confusion: np.ndarray | None = None,
    occupancy: Mapping[str, Any] | None = None,
    title: str = "astrovader report",
    config_text: str | None = None,
    n_show: int = 8,
    seed: int = 0,
    tour=None,
    traversal=None,
    ids: Sequence[str] | None = None,
) -> Path:
    """Write every figure the inputs allow and ``report.html`` into ``out_dir``.

    The report only renders: every number comes from :mod:`astrovader.evaluation`
    (:func:`~astrovader.evaluation.evaluate_model` computes them all once; what is not
    passed in is computed with the same functions). New figures are added in the same
    way as the ones below: a keyword argument and an ``add(...)`` call.

    Args:
        out_dir: report folder (figures go to ``out_dir/figures``).
        x: evaluated stamps ``(N, H, W, C)``.
        x_hat: their reconstructions.
        mse: per-stamp reconstruction MSE (default:
            :func:`~astrovader.evaluation.reconstruction_mse` of ``x`` and ``x_hat``).
        gamma: cluster probabilities ``(N, K)`` (VaDE; ``None`` for a plain VAE).
        history: per-epoch losses (``history.csv`` columns).
        labels, label_names: optional true labels (evaluation only).
        samples: generated stamps per cluster ``(K, n, H, W, C)``.
        protos: decoded component means ``(K, H, W, C)``.
        pi: mixture weights ``(K,)``.
        decoder_variance: sigma^2(z) per object (seed 000 sec. V).
        metrics: scalar metrics for the summary table.
        confusion: mean-gamma matrix ``(K, K)``; computed from ``gamma`` when ``None``.
        class_confusion: mean gamma per true class ``(classes, K)`` (shown when given).
        occupancy: :func:`~astrovader.evaluation.occupancy` of ``gamma`` (computed with
            ``labels`` when ``None``).
        title, config_text: page title and the resolved YAML config shown at the end.
        n_show: stamps per row in galleries.
        seed: seed for random galleries.
        tour: an :class:`astrovader.explore.Tour` (strip and animated GIF, seed 004 Fig. 10).
        traversal: an :class:`astrovader.explore.Traversal` (seed 004 Fig. 11).
        ids: object ids, named under the tour's stops.

    Returns:
        Path of ``report.html``.
    """
    out_dir = Path(out_dir)
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    x = np.asarray(x)
    x_hat = np.asarray(x_hat)
    if mse is None:
        mse = evaluation.reconstruction_mse(x, x_hat) if len(x) else np.zeros(0)
    figs: list[Figure] = []

    def add(title_, fn, caption, func, *args, **kw):
        func(*args, path=fig_dir / fn, **kw)
        figs.append(Figure(title_, f"figures/{fn}", caption))

    if history:
        add("Loss curves", "loss_curves.png", "per-term training (solid) and validation (dashed) losses",
            plots.loss_curves, history)
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(x))[:n_show]
    add("Reconstructions", "reconstructions.png", "random inputs, reconstructions and residuals (input − reconstruction)",
        plots.reconstructions, x[pick], x_hat[pick], n=n_show)
    add("Best and worst reconstructions", "best_worst.png", "lowest and highest per-stamp MSE",
        plots.best_worst, x, x_hat, mse, n=min(n_show, 6))
    if decoder_variance is not None and np.ptp(np.asarray(decoder_variance)) > 0:
        add("MSE vs decoder variance", "mse_vs_variance.png", "seed 000 Fig. 8a",
            plots.mse_vs_variance, mse, decoder_variance)
    tables = []
    if gamma is not None:
        gamma = np.asarray(gamma)
        add("Cluster gallery: highest γ", "gallery_top.png", "members with the highest γ_k in each cluster",
            plots.cluster_gallery, x, gamma, n=n_show, mode="top")
        add("Cluster gallery: random members", "gallery_random.png", "random members of each cluster",
            plots.cluster_gallery, x, gamma, n=n_show, mode="random", seed=seed)
        if confusion is None:
            confusion = evaluation.mean_gamma_confusion(gamma, gamma.argmax(1), gamma.shape[1])
        add("Mean-γ confusion", "mean_gamma.png",
            "row: objects assigned to cluster k; column: their mean γ_j (seed 004 Fig. 5)",
            plots.mean_gamma_heatmap, np.asarray(confusion))
        if class_confusion is not None:
            names = [str(n) for n in label_names] if label_names is not None and \
                len(label_names) == len(class_confusion) else None
            add("Mean γ per true class", "mean_gamma_classes.png",
                "row: objects of a labelled class; column: their mean γ_k (labels are used for evaluation only)",
                plots.mean_gamma_heatmap, np.asarray(class_confusion), row_labels=names, ylabel="true class")
        if occupancy is None:
            occupancy = evaluation.occupancy(gamma, cuts=(0.5, 0.9), labels=labels)
        add("Occupancy", "occupancy.png", "objects per cluster and the learned weights π_k",
            plots.occupancy_bars, np.asarray(occupancy["argmax"]), pi=pi)
        tables.append(_occupancy_table(occupancy, confusion, pi, label_names))
    if samples is not None:
        add("Generated samples per cluster", "samples.png", "z ~ N(μ_k, σ_k²) decoded (seed 004 Fig. 9)",
            plots.cluster_samples, np.asarray(samples))
    if protos is not None:
        add("Cluster prototypes", "prototypes.png", "decoded component means μ_k",
            plots.prototypes, np.asarray(protos), weights=pi)
    if tour is not None or traversal is not None:
        from astrovader import explore_plots

        if tour is not None:
            add("Latent tour", "tour.png", "the highest-γ member of each cluster (framed; cluster k, π_k and id "
                "beneath), visited by the shortest closed route in latent space and decoded along straight "
                "lines between them, one row per leg (seed 004 Fig. 10); animated in figures/tour.gif",
                explore_plots.tour_strip, tour, ids=ids)
            add("Latent tour, animated", "tour.gif", "the same route as a looping animation",
                explore_plots.tour_gif, tour, ids=ids)
        if traversal is not None:
            add("Latent traversals", "traversals.png", "row j: latent variable z_j from its data minimum to its "
                "maximum with the others at their mean; the framed centre column is the mean object "
                "(seed 004 Fig. 11)", explore_plots.traversal_grid, traversal)
    return write_report(out_dir, title, metrics=metrics, figures=figs, tables=tables, config_text=config_text)


def save_metrics(metrics: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write ``metrics`` as JSON (NumPy values converted), atomically."""
    def conv(o):
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, (np.integer,)):
            return int(o)
        if isinstance(o, (np.floating,)):
            return float(o)
        return str(o)

    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(metrics, indent=2, default=conv))
    os.replace(tmp, path)
