"""Per-stamp preprocessing configured by :class:`astrovader.config.DataConfig`.

Order of operations (each step optional)::

    NaN/Inf policy -> grayscale (band mean) -> centre crop -> resize -> scaling -> clip

Every step acts on each stamp independently, so preprocessing a batch gives the same
result as preprocessing the whole set (the streaming path relies on this).

Scalings (``DataConfig.scaling``), for a stamp x with pixels x_i:

* ``none``   -- unchanged (e.g. SNR difference stamps, seed 000 sec. II).
* ``minmax`` -- (x - min x) / (max x - min x), in [0, 1].
* ``chase``  -- (x - median x) / max_i |x_i - median x|, in [-1, 1] (seed 001 sec. 3).
* ``asinh``  -- arcsinh((x - median x) / s) with s = 1.4826 MAD(x), the robust noise level:
  linear near the noise, logarithmic for bright cores.
* ``asinh_snr`` -- arcsinh(x - median x): for stamps already in units of the noise (SNR
  difference stamps, seed 000 sec. II), with the softening fixed at one noise sigma instead
  of each stamp's own noise level, so a stamp noisier than its nominal noise stays noisier
  (``asinh`` would erase that cue of a noise fluctuation; seed 003's real/bogus CNN sees it).
* ``zscore`` -- (x - mean x) / std x.
* ``asinh_peak`` -- arcsinh(t / a) / arcsinh(1 / a) with t = (x - median x) / p, p the
  stamp's 99.5th-percentile |pixel| above the median (at least the robust noise) and a the
  softening ``DataConfig.peak_softening`` (default 0.5): the stamp in units of its own peak,
  so a bright and a faint galaxy of one shape look alike (clusters by morphology, not
  brightness), compressed above a times the peak (a = 0.5: mildly; a >= 5: nearly linear,
  t itself, up to the peak).

A constant stamp (zero range / zero spread) maps to zeros instead of dividing by zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from astrovader.config import PEAK_SOFTENING
from astrovader.errors import DataError

__all__ = ["SCALINGS", "NAN_POLICIES", "preprocess", "scale", "grayscale", "center_crop", "resize", "fit_shape",
           "conform"]

SCALINGS = ("none", "minmax", "chase", "asinh", "asinh_snr", "zscore", "asinh_peak")
NAN_POLICIES = ("error", "fill", "drop")
_EPS = 1e-12


def _get(cfg: Any, name: str, default: Any = None) -> Any:
    if cfg is None:
        return default
    if isinstance(cfg, dict):
        return cfg.get(name, default)
    return getattr(cfg, name, default)


def grayscale(images: np.ndarray) -> np.ndarray:
    """Mean over the band axis, keeping it: ``(N, H, W, C) -> (N, H, W, 1)`` (seed 004 sec. 2)."""
    return images.mean(axis=-1, keepdims=True, dtype=np.float32)


def center_crop(images: np.ndarray, size: Any, source: str = "stamps") -> np.ndarray:
    """Centre crop ``(N, H, W, C)`` stamps to ``size = [h, w]``."""
    h, w = _pair(size, "data.crop")
    H, W = images.shape[1:3]
    if h > H or w > W:
        raise DataError(f"{source}: data.crop={[h, w]} is larger than the stamps ({H}x{W}); give a smaller crop")
    top, left = (H - h) // 2, (W - w) // 2
    return images[:, top : top + h, left : left + w, :]


def resize(images: np.ndarray, size: Any) -> np.ndarray:
    """Bilinear resize ``(N, H, W, C)`` stamps to ``size = [h, w]`` (antialiased when shrinking)."""
    h, w = _pair(size, "data.resize")
    if tuple(images.shape[1:3]) == (h, w):
        return images
    import tensorflow as tf

    out = [
        tf.image.resize(images[i : i + 1024], (h, w), method="bilinear", antialias=True).numpy()
        for i in range(0, len(images), 1024)
    ]
    return np.concatenate(out, axis=0).astype(np.float32) if out else np.zeros((0, h, w, images.shape[-1]), np.float32)


def _robust_noise(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row minus its median, and its robust noise level 1.4826 MAD (rows = stamps)."""
    centred = flat - np.median(flat, axis=1, keepdims=True)
    return centred, 1.4826 * np.median(np.abs(centred), axis=1, keepdims=True)


def scale(images: np.ndarray, method: str, peak_softening: float = PEAK_SOFTENING) -> np.ndarray:
    """Apply a per-stamp scaling (see the module docstring) to ``(N, H, W, C)`` stamps.

    ``peak_softening`` is ``asinh_peak``'s softening a, as a fraction of the peak (> 0).
    """
    if method not in SCALINGS:
        raise DataError(f"data.scaling={method!r}: choose one of {', '.join(SCALINGS)}")
    x = images.astype(np.float32, copy=True)
    if method == "none" or len(x) == 0:
        return x
    flat = x.reshape(len(x), -1)
    if method == "minmax":
        lo = flat.min(axis=1, keepdims=True)
        rng = flat.max(axis=1, keepdims=True) - lo
        flat = np.where(rng > _EPS, (flat - lo) / np.maximum(rng, _EPS), 0.0)
    elif method == "chase":
        centred = flat - np.median(flat, axis=1, keepdims=True)
        amax = np.abs(centred).max(axis=1, keepdims=True)
        flat = np.where(amax > _EPS, centred / np.maximum(amax, _EPS), 0.0)
    elif method == "asinh":
        centred, mad = _robust_noise(flat)
        # fall back to the standard deviation for stamps that are mostly constant
        s = np.where(mad > _EPS, mad, flat.std(axis=1, keepdims=True))
        flat = np.where(s > _EPS, np.arcsinh(centred / np.maximum(s, _EPS)), 0.0)
    elif method == "asinh_snr":
        flat = np.arcsinh(flat - np.median(flat, axis=1, keepdims=True))
    elif method == "asinh_peak":
        centred, noise = _robust_noise(flat)
        peak = np.maximum(np.percentile(np.abs(centred), 99.5, axis=1, keepdims=True), noise)
        a = float(peak_softening)
        flat = np.where(peak > _EPS, np.arcsinh(centred / (a * np.maximum(peak, _EPS))) / np.arcsinh(1.0 / a), 0.0)
    elif method == "zscore":
        mu = flat.mean(axis=1, keepdims=True)
        sd = flat.std(axis=1, keepdims=True)
        flat = np.where(sd > _EPS, (flat - mu) / np.maximum(sd, _EPS), 0.0)
    return flat.reshape(x.shape).astype(np.float32)


def nonfinite_mask(images: np.ndarray) -> np.ndarray:
    """Boolean ``(N,)``: True where a stamp has any NaN or Inf pixel."""
    if len(images) == 0:
        return np.zeros(0, bool)
    return ~np.isfinite(images.reshape(len(images), -1)).all(axis=1)


def preprocess(
    images: np.ndarray,
    cfg: Any = None,
    *,
    ids: np.ndarray | None = None,
    source: str = "stamps",
    return_keep: bool = False,
):
    """Preprocess stamps as configured by a :class:`~astrovader.config.DataConfig`.

    Args:
        images: ``(N, H, W, C)`` stamps (any real dtype; returned as float32).
        cfg: a ``DataConfig`` (or dict with the same field names); ``None`` = defaults.
        ids: stamp ids, used only to name the first bad stamp in error messages.
        source: file or dataset name used in error messages.
        return_keep: also return the boolean ``(N,)`` mask of kept stamps (the ``drop``
            NaN policy removes stamps; use the mask to subset labels/ids).

    Returns:
        The preprocessed float32 images, and the keep mask if ``return_keep``.

    Raises:
        DataError: NaN/Inf pixels under ``nan_policy: error``, an unknown scaling or NaN
            policy, or a crop larger than the stamps.
    """
    x = np.asarray(images)
    if x.ndim != 4:
        raise DataError(f"{source}: expected stamps (N, H, W, C), got shape {x.shape}")
    x = x.astype(np.float32, copy=False)
    policy = _get(cfg, "nan_policy", "error")
    if policy not in NAN_POLICIES:
        raise DataError(f"data.nan_policy={policy!r}: choose one of {', '.join(NAN_POLICIES)}")
    bad = nonfinite_mask(x)
    keep = ~bad
    if bad.any():
        if policy == "error":
            first = int(np.flatnonzero(bad)[0])
            name = f"id {ids[first]!s}" if ids is not None else f"index {first}"
            raise DataError(
                f"{source}: {int(bad.sum())} stamp(s) contain NaN/Inf pixels (first: {name}); "
                "set data.nan_policy to 'fill' or 'drop'"
            )
        if policy == "fill":
            fill = float(_get(cfg, "fill_value", 0.0))
            x = np.where(np.isfinite(x), x, np.float32(fill)).astype(np.float32)
        else:
            x = x[keep]
    x = fit_shape(x, cfg, source)
    x = scale(x, _get(cfg, "scaling", "none") or "none", float(_get(cfg, "peak_softening", PEAK_SOFTENING)))
    clip = _get(cfg, "clip")
    if clip is not None:
        lo, hi = _pair_float(clip)
        x = np.clip(x, lo, hi)
    x = np.ascontiguousarray(x, dtype=np.float32)
    return (x, keep) if return_keep else x


def fit_shape(images: np.ndarray, cfg: Any, source: str = "stamps", lenient_crop: bool = False) -> np.ndarray:
    """Shape ``(N, H, W, C)`` stamps with the config's grayscale, crop and resize, in that order.

    The one shape-fitting function: :func:`preprocess` uses it on whole sets, mixed-size
    inputs use it stamp by stamp (``lenient_crop``: a crop larger than the stamp is skipped
    so that the resize can still reconcile it) and :func:`conform` builds on it to match a
    network's input shape.
    """
    x = images
    if _get(cfg, "grayscale", False) and x.shape[-1] > 1:
        x = grayscale(x)
    if _get(cfg, "crop") is not None:
        h, w = _pair(_get(cfg, "crop"), "data.crop")
        if not lenient_crop or (h <= x.shape[1] and w <= x.shape[2]):
            x = center_crop(x, (h, w), source)
    if _get(cfg, "resize") is not None:
        x = resize(x, _get(cfg, "resize"))
    return x


def fit_stamp(image: np.ndarray, cfg: Any) -> np.ndarray:
    """:func:`fit_shape` for one ``(H, W, C)`` stamp (for mixed-size inputs)."""
    return fit_shape(image[None].astype(np.float32), cfg, lenient_crop=True)[0]


def conform(images: np.ndarray, input_shape: Any) -> tuple[np.ndarray, list[str]]:
    """Make stamps match a network's ``input_shape`` ``(H, W, C)``; returns ``(images, notes)``.

    Bands are averaged to one channel when the network takes one band (seed 004 grey
    scale), a single band is repeated when it takes several, and the spatial size is
    changed with a bilinear resize (:func:`fit_shape`). ``notes`` says what was done, one
    sentence per change (empty when nothing changed or ``input_shape`` is ``None``).

    Raises:
        DataError: when the band counts cannot be reconciled (e.g. 3 -> 2).
    """
    images = np.asarray(images, dtype=np.float32)
    if input_shape is None or images.ndim != 4:
        return images, []
    h, w, c = (int(s) for s in input_shape)
    H, W, C = images.shape[1:]
    notes = []
    if C != c:
        if C == 1:
            images = np.repeat(images, c, axis=-1)
        elif c != 1:
            raise DataError(f"the stamps have {C} bands but the model takes {c}; give stamps with {c} bands "
                            f"(or 1, which is repeated), or train a model on {C}-band stamps")
        notes.append(f"converted stamps from {C} to {c} band(s) to match the model")
    if (H, W) != (h, w):
        notes.append(f"resized stamps from {H}x{W} to {h}x{w} (the model's input size)")
    images = fit_shape(images, {"grayscale": c == 1 and C > 1, "resize": [h, w] if (H, W) != (h, w) else None})
    return images, notes


def _pair(size: Any, field: str) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        size = [size, size]
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise DataError(f"{field}={size!r}: give [height, width]") from None
    if h < 1 or w < 1:
        raise DataError(f"{field}={size!r}: sizes must be positive")
    return h, w


def _pair_float(clip: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(c) for c in clip)
    except (TypeError, ValueError):
        raise DataError(f"data.clip={clip!r}: give [low, high]") from None
    if lo >= hi:
        raise DataError(f"data.clip={clip!r}: low must be below high")
    return lo, hi
