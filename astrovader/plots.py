"""Report figures: matplotlib (Agg) functions that take NumPy arrays and write PNG files.

Every function takes plain arrays (no model, no TensorFlow), writes one PNG at ``path``
and returns the path, so the figures can be made from saved predictions as well as from
a live model. Images are ``(N, H, W, C)``; one band is shown in grey, three bands as RGB.

The figure set follows seed 004 (Figs. 2-7 and 9: loss curves per term, reconstructions
with residuals, best/worst reconstructions, cluster galleries by highest gamma and at
random, per-cluster generated samples, mean-gamma confusion) and seed 000 Fig. 8a
(reconstruction error against decoder variance).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from astrovader.errors import ConfigError  # noqa: E402

__all__ = [
    "loss_curves",
    "reconstructions",
    "best_worst",
    "cluster_gallery",
    "cluster_samples",
    "prototypes",
    "mean_gamma_heatmap",
    "occupancy_bars",
    "mse_vs_variance",
    "image_grid",
]

# History keys of the core models, in display order (val_* keys are overlaid dashed).
LOSS_TERMS = ("loss", "reconstruction", "kl_unit", "kl_gmm", "elbo", "decoder_variance")


def _display(img: np.ndarray) -> tuple[np.ndarray, dict]:
    """Turn one (H, W, C) stamp into something imshow shows legibly."""
    img = np.asarray(img, dtype=np.float32)
    img = np.nan_to_num(img)
    if img.ndim == 3 and img.shape[-1] >= 3:
        rgb = img[..., :3]
        lo, hi = np.percentile(rgb, [1, 99.5])
        rgb = np.clip((rgb - lo) / max(hi - lo, 1e-12), 0, 1)
        return rgb, {}
    if img.ndim == 3:
        img = img.mean(axis=-1) if img.shape[-1] > 1 else img[..., 0]
    lo, hi = np.percentile(img, [0.5, 99.5])
    if hi <= lo:
        hi = lo + 1e-6
    return img, {"cmap": "gray", "vmin": lo, "vmax": hi}


def _show(ax, img: np.ndarray, **kw) -> None:
    data, style = _display(img)
    style.update(kw)
    ax.imshow(data, interpolation="nearest", **style)
    ax.set_xticks([])
    ax.set_yticks([])


def _residual(ax, img: np.ndarray) -> None:
    r = np.asarray(img, dtype=np.float32)
    r = r.mean(axis=-1) if r.ndim == 3 else r
    lim = float(np.max(np.abs(r))) or 1e-6
    ax.imshow(r, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _save(fig, path: str | os.PathLike) -> str:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return str(path)


def _empty(path: str | os.PathLike, message: str) -> str:
    fig, ax = plt.subplots(figsize=(4, 1.2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=10)
    return _save(fig, path)


def loss_curves(history: Mapping[str, Sequence[float]], path: str | os.PathLike) -> str:
    """One panel per loss term (seed 004 Fig. 2): training solid, validation dashed.

    Args:
        history: ``{key: per-epoch values}`` as in ``history.csv`` (keys ``loss``,
            ``reconstruction``, ``kl_unit``, ``kl_gmm``, ``elbo``, ``decoder_variance`` and
            their ``val_`` twins; unknown keys are shown after them, ``epoch``/``lr`` skipped).
        path: output PNG.

    Returns:
        The PNG path.
    """
    skip = {"epoch", "lr", "learning_rate"}
    keys = [k for k in LOSS_TERMS if k in history]
    keys += sorted(k for k in history if not k.startswith("val_") and k not in keys and k not in skip)
    if not keys:
        return _empty(path, "no training history")
    ncol = min(3, len(keys))
    nrow = int(np.ceil(len(keys) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.0 * nrow), squeeze=False)
    for ax, key in zip(axes.ravel(), keys):
        y = np.asarray(history[key], dtype=float)
        ax.plot(np.arange(len(y)), y, "-", color="C0", label="train")
        v = np.asarray(history.get(f"val_{key}", []), dtype=float)
        if np.isfinite(v).any():
            ax.plot(np.arange(len(v)), v, "--", color="C1", label="validation")
            ax.legend(fontsize=8)
        ax.set_title(key)
        ax.set_xlabel("epoch")
        finite = y[np.isfinite(y)]
        if finite.size and finite.min() > 0 and finite.max() / max(finite.min(), 1e-30) > 100:
            ax.set_yscale("log")
    for ax in axes.ravel()[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)


def image_grid(
    images: np.ndarray,
    path: str | os.PathLike,
    ncols: int = 10,
    title: str | None = None,
    row_labels: Sequence[str] | None = None,
) -> str:
    """A plain grid of stamps, ``ncols`` per row (row labels optional)."""
    images = np.asarray(images)
    if len(images) == 0:
        return _empty(path, "no images")
    ncols = max(1, min(ncols, len(images)))
    nrows = int(np.ceil(len(images) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.1 * ncols, 1.1 * nrows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        if i < len(images):
            _show(ax, images[i])
        else:
            ax.axis("off")
    if row_labels is not None:
        for r, lab in enumerate(row_labels[:nrows]):
            axes[r, 0].set_ylabel(lab, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def reconstructions(
    x: np.ndarray, x_hat: np.ndarray, path: str | os.PathLike, n: int = 8
) -> str:
    """Inputs, reconstructions and residuals (seed 004 Fig. 3): three rows, ``n`` columns."""
    n = min(n, len(x))
    if n == 0:
        return _empty(path, "no images")
    fig, axes = plt.subplots(3, n, figsize=(1.3 * n, 4.2), squeeze=False)
    for j in range(n):
        _show(axes[0, j], x[j])
        _show(axes[1, j], x_hat[j])
        _residual(axes[2, j], np.asarray(x[j]) - np.asarray(x_hat[j]))
    for r, lab in enumerate(("input", "reconstruction", "residual")):
        axes[r, 0].set_ylabel(lab, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def best_worst(
    x: np.ndarray, x_hat: np.ndarray, mse: np.ndarray, path: str | os.PathLike, n: int = 6
) -> str:
    """Lowest- and highest-MSE reconstructions (seed 004 Fig. 4), MSE in the titles."""
    mse = np.asarray(mse, dtype=float)
    order = np.argsort(mse)
    n = min(n, len(order))
    if n == 0:
        return _empty(path, "no images")
    groups = (("best", order[:n]), ("worst", order[::-1][:n]))
    fig, axes = plt.subplots(4, n, figsize=(1.4 * n, 6.0), squeeze=False)
    for g, (name, idx) in enumerate(groups):
        for j, i in enumerate(idx):
            _show(axes[2 * g, j], x[i])
            axes[2 * g, j].set_title(f"{mse[i]:.3g}", fontsize=7)
            _show(axes[2 * g + 1, j], x_hat[i])
        axes[2 * g, 0].set_ylabel(f"{name}: input", fontsize=8)
        axes[2 * g + 1, 0].set_ylabel(f"{name}: recon.", fontsize=8)
    fig.suptitle("best and worst reconstructions (MSE above each input)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def cluster_gallery(
    images: np.ndarray,
    gamma: np.ndarray,
    path: str | os.PathLike,
    n: int = 8,
    mode: str = "top",
    seed: int = 0,
) -> str:
    """One row per cluster: highest-gamma members (``mode="top"``, seed 004 Fig. 7) or
    random members (``mode="random"``, seed 004 Fig. 6).

    Args:
        images: stamps ``(N, H, W, C)`` (inputs or reconstructions).
        gamma: cluster probabilities ``(N, K)``; members are rows whose argmax is k.
        path: output PNG.
        n: stamps per row.
        mode: ``"top"`` or ``"random"``.
        seed: seed for ``"random"``.
    """
    gamma = np.asarray(gamma)
    if mode not in ("top", "random"):
        raise ConfigError(f"mode={mode!r}: choose 'top' or 'random'")
    k_count = gamma.shape[1]
    labels = gamma.argmax(axis=1)
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(k_count, n, figsize=(1.1 * n + 0.6, 1.1 * k_count + 0.4), squeeze=False)
    for k in range(k_count):
        members = np.flatnonzero(labels == k)
        if mode == "top":
            members = members[np.argsort(-gamma[members, k])][:n]
        else:
            members = rng.permutation(members)[:n]
        for j in range(n):
            ax = axes[k, j]
            if j < len(members):
                _show(ax, images[members[j]])
            else:
                ax.axis("off")
        axes[k, 0].axis("on")
        axes[k, 0].set_xticks([])
        axes[k, 0].set_yticks([])
        axes[k, 0].set_ylabel(f"k={k} ({int((labels == k).sum())})", fontsize=8)
    title = "highest-γ members per cluster" if mode == "top" else "random members per cluster"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def cluster_samples(samples: np.ndarray, path: str | os.PathLike, title: str | None = None) -> str:
    """Generated stamps per cluster (seed 004 Fig. 9): ``samples`` is ``(K, n, H, W, C)``."""
    samples = np.asarray(samples)
    k_count, n = samples.shape[:2]
    fig, axes = plt.subplots(k_count, n, figsize=(1.1 * n + 0.6, 1.1 * k_count + 0.4), squeeze=False)
    for k in range(k_count):
        for j in range(n):
            _show(axes[k, j], samples[k, j])
        axes[k, 0].set_ylabel(f"k={k}", fontsize=8)
    fig.suptitle(title or "samples generated from each mixture component", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def prototypes(protos: np.ndarray, path: str | os.PathLike, weights: np.ndarray | None = None) -> str:
    """Decoded component means ``decode(mu_k)``, one per cluster, with pi_k if given."""
    protos = np.asarray(protos)
    k_count = len(protos)
    ncols = min(k_count, 10)
    nrows = int(np.ceil(k_count / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.4 * ncols, 1.6 * nrows + 0.3), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        if i >= k_count:
            ax.axis("off")
            continue
        _show(ax, protos[i])
        label = f"k={i}" if weights is None else f"k={i} π={float(weights[i]):.2f}"
        ax.set_title(label, fontsize=8)
    fig.suptitle("cluster prototypes decode(μ_k)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def mean_gamma_heatmap(
    matrix: np.ndarray,
    path: str | os.PathLike,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    xlabel: str = "component k",
    ylabel: str = "assigned cluster",
    title: str = "mean γ",
) -> str:
    """Heat map of a mean-gamma confusion matrix (seed 004 Fig. 5), values annotated."""
    m = np.asarray(matrix, dtype=float)
    rows, cols = m.shape
    fig, ax = plt.subplots(figsize=(0.55 * cols + 2.2, 0.45 * rows + 1.6))
    im = ax.imshow(m, cmap="viridis", vmin=0, vmax=max(1e-9, np.nanmax(m)), aspect="auto")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_xticks(range(cols))
    ax.set_yticks(range(rows))
    ax.set_xticklabels(col_labels if col_labels is not None else range(cols), fontsize=8, rotation=45)
    ax.set_yticklabels(row_labels if row_labels is not None else range(rows), fontsize=8)
    if rows * cols <= 400:
        top = np.nanmax(m) if m.size else 1.0
        for i in range(rows):
            for j in range(cols):
                ax.text(j, i, f"{m[i, j]:.2f}" if np.isfinite(m[i, j]) else "–", ha="center", va="center", fontsize=6,
                        color="black" if m[i, j] > 0.6 * top else "white")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)


def occupancy_bars(counts: np.ndarray, path: str | os.PathLike, pi: np.ndarray | None = None) -> str:
    """Bar chart of objects per cluster, with the learned weights pi_k x N as markers."""
    counts = np.asarray(counts, dtype=float)
    k = np.arange(len(counts))
    fig, ax = plt.subplots(figsize=(0.45 * len(counts) + 2.5, 2.8))
    ax.bar(k, counts, color="C0", label="argmax γ")
    if pi is not None:
        ax.plot(k, np.asarray(pi, dtype=float) * counts.sum(), "o", color="C3", label="π_k × N")
        ax.legend(fontsize=8)
    ax.set_xticks(k)
    ax.set_xlabel("cluster")
    ax.set_ylabel("objects")
    ax.set_title("cluster occupancy")
    fig.tight_layout()
    return _save(fig, path)


def mse_vs_variance(mse: np.ndarray, variance: np.ndarray, path: str | os.PathLike) -> str:
    """Reconstruction MSE against decoder variance sigma^2(z) (seed 000 Fig. 8a)."""
    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    ax.scatter(np.asarray(variance), np.asarray(mse), s=4, alpha=0.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("decoder variance σ²(z)")
    ax.set_ylabel("reconstruction MSE")
    fig.tight_layout()
    return _save(fig, path)
