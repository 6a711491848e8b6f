"""Figures of :mod:`astrovader.explore`: PNG strips and galleries (matplotlib) and a GIF (Pillow).

Like :mod:`astrovader.plots`, every function takes arrays (or an ``explore`` result),
writes one file at ``path`` and returns the path. The stamps of one figure share one
grey scale, so that brightness changes along a tour or traversal stay visible.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from astrovader.plots import _empty, _save, plt

__all__ = ["tour_strip", "tour_gif", "traversal_grid", "image_strip", "gallery"]

_STOP = "#d62728"  # frame colour of real objects / stops / the mean column


def _scale(images: np.ndarray) -> dict:
    """One grey scale (0.5-99.5 percentiles) for all ``images``, or RGB as is."""
    images = np.asarray(images, dtype=np.float32)
    if images.shape[-1] >= 3:
        return {}
    lo, hi = np.percentile(np.nan_to_num(images), [0.5, 99.5])
    return {"cmap": "gray", "vmin": float(lo), "vmax": float(max(hi, lo + 1e-6))}


def _show(ax, img: np.ndarray, style: dict, frame: str | None = None) -> None:
    img = np.nan_to_num(np.asarray(img, dtype=np.float32))
    if img.shape[-1] >= 3:
        rgb = img[..., :3]
        lo, hi = np.percentile(rgb, [1, 99.5])
        ax.imshow(np.clip((rgb - lo) / max(hi - lo, 1e-12), 0, 1), interpolation="nearest")
    else:
        ax.imshow(img.mean(-1), interpolation="nearest", **style)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(frame is not None)
        if frame is not None:
            spine.set_edgecolor(frame)
            spine.set_linewidth(2.5)


def _stop_label(cluster: int, pi: float, obj: int, ids: Sequence[str] | None) -> str:
    who = "μ_k (empty)" if obj < 0 else (f"id {ids[obj]}" if ids is not None else f"#{obj}")
    return f"k={cluster}  π={pi:.2f}\n{who}"


def tour_strip(t, path: str | os.PathLike, ids: Sequence[str] | None = None, size: float = 0.9) -> str:
    """The tour as a strip, one row per leg (stop -> interpolations -> next stop).

    Stops are framed in red with their cluster number, pi_k and object id beneath.

    Args:
        t: an :class:`~astrovader.explore.Tour`.
        path: output PNG.
        ids: object ids (default: the object index).
        size: inches per stamp.
    """
    images, stops = np.asarray(t.images), list(np.asarray(t.stops))
    if len(stops) < 2:
        return _empty(path, "one cluster: no route")
    style = _scale(images)
    legs = list(zip(stops, stops[1:]))
    ncols = legs[0][1] - legs[0][0] + 1
    fig, axes = plt.subplots(len(legs), ncols, figsize=(size * ncols + 0.4, (size + 0.45) * len(legs) + 0.5),
                             squeeze=False)
    s_count = len(t.clusters)
    for r, (a, b) in enumerate(legs):
        for c in range(ncols):
            is_stop = c in (0, ncols - 1)
            _show(axes[r, c], images[a + c], style, frame=_STOP if is_stop else None)
            if is_stop:
                i = (r + (c == ncols - 1)) % s_count
                axes[r, c].set_xlabel(_stop_label(int(t.clusters[i]), float(t.pi[i]), int(t.objects[i]), ids),
                                      fontsize=7)
    fig.suptitle(f"latent tour through the highest-γ member of each cluster "
                 f"(shortest closed route, length {t.length:.2f})", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _to_uint8(images: np.ndarray) -> np.ndarray:
    images = np.nan_to_num(np.asarray(images, dtype=np.float32))
    if images.shape[-1] >= 3:
        images = images[..., :3]
    else:
        images = images.mean(-1)
    lo, hi = np.percentile(images, [0.5, 99.5])
    return np.clip((images - lo) / max(hi - lo, 1e-12) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def tour_gif(t, path: str | os.PathLike, pixels: int = 160, frame_ms: int = 120, stop_ms: int = 900,
             ids: Sequence[str] | None = None) -> str:
    """The tour as an animated GIF that loops; stops hold longer and are captioned.

    Args:
        t: an :class:`~astrovader.explore.Tour`.
        path: output GIF.
        pixels: width of a frame (stamps are enlarged with nearest-neighbour resampling).
        frame_ms, stop_ms: display time of an interpolated frame and of a stop.
        ids: object ids for the captions.
    """
    from PIL import Image, ImageDraw, ImageFont

    frames8 = _to_uint8(t.images)
    h, w = frames8.shape[1:3]
    scale = max(1, int(round(pixels / max(h, w))))
    try:
        font = ImageFont.load_default(size=12)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    stops = {int(p): i % len(t.clusters) for i, p in enumerate(t.stops)}
    caption_h = 34
    frames, durations = [], []
    for p, f in enumerate(frames8):
        img = Image.fromarray(f).resize((w * scale, h * scale), Image.NEAREST).convert("RGB")
        canvas = Image.new("RGB", (img.width, img.height + caption_h), "white")
        canvas.paste(img, (0, 0))
        draw = ImageDraw.Draw(canvas)
        if p in stops:
            i = stops[p]
            draw.rectangle([0, 0, img.width - 1, img.height - 1], outline=_STOP, width=3)
            text = _stop_label(int(t.clusters[i]), float(t.pi[i]), int(t.objects[i]), ids)
            draw.multiline_text((4, img.height + 2), text.replace("π", "pi").replace("μ", "mu"),
                                fill="black", font=font)
            durations.append(stop_ms)
        else:
            durations.append(frame_ms)
        frames.append(canvas)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return str(path)


def traversal_grid(tr, path: str | os.PathLike, size: float = 0.8) -> str:
    """Latent traversals (seed 004 Fig. 11): one row per variable, the mean object framed in the centre.

    Each row is labelled with its variable and the range it spans.
    """
    images = np.asarray(tr.images)
    rows, cols = images.shape[:2]
    style = _scale(images)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols + 1.3, size * rows + 0.8), squeeze=False)
    mid = cols // 2
    for r in range(rows):
        for c in range(cols):
            _show(axes[r, c], images[r, c], style, frame=_STOP if c == mid else None)
        lo, hi = tr.values[r, 0], tr.values[r, -1]
        axes[r, 0].set_ylabel(f"z{int(tr.variables[r])}\n[{lo:.2g}, {hi:.2g}]", fontsize=7, rotation=0,
                              ha="right", va="center")
    axes[0, 0].set_title(tr.range_label[0], fontsize=8)
    axes[0, mid].set_title("mean", fontsize=8, color=_STOP)
    axes[0, -1].set_title(tr.range_label[1], fontsize=8)
    fig.suptitle("latent traversals: one variable varied per row, the others at their mean", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def image_strip(images: np.ndarray, path: str | os.PathLike, labels: dict | None = None,
                title: str | None = None, size: float = 1.0) -> str:
    """One row of stamps on a shared grey scale; ``labels`` maps a column to the text under it
    (those columns are framed)."""
    images = np.asarray(images)
    if len(images) == 0:
        return _empty(path, "no images")
    labels = labels or {}
    style = _scale(images)
    fig, axes = plt.subplots(1, len(images), figsize=(size * len(images) + 0.4, size + 0.9), squeeze=False)
    for c, ax in enumerate(axes[0]):
        framed = c in labels
        _show(ax, images[c], style, frame=_STOP if framed else None)
        if framed:
            ax.set_xlabel(labels[c], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def gallery(images: np.ndarray, titles: Sequence[str], path: str | os.PathLike, ncols: int = 8,
            title: str | None = None, first_framed: bool = False, size: float = 1.1) -> str:
    """A grid of stamps, each with a short title; each stamp on its own grey scale."""
    images = np.asarray(images)
    if len(images) == 0:
        return _empty(path, "no images")
    ncols = max(1, min(ncols, len(images)))
    nrows = int(np.ceil(len(images) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + 0.3, (size + 0.35) * nrows + 0.5), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        if i >= len(images):
            ax.axis("off")
            continue
        _show(ax, images[i], _scale(images[i:i + 1]), frame=_STOP if first_framed and i == 0 else None)
        ax.set_title(titles[i], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
