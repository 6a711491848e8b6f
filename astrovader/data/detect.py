"""Source detection and stamp cutting with ``sep`` (SExtractor as a library).

Used by the ``hdf`` built-in dataset and by ``data_prep/cutouts.py``.
"""

from __future__ import annotations

import numpy as np

from astrovader.errors import DataError

__all__ = ["detect_and_cut"]


def detect_and_cut(
    image: np.ndarray,
    size: int = 32,
    thresh: float = 3.0,
    min_area: int = 5,
    max_sources: int | None = None,
    source: str = "image",
) -> tuple[np.ndarray, dict]:
    """Detect sources in a large image and cut square stamps centred on them.

    Detection runs on the band mean after a ``sep.Background`` subtraction, at ``thresh``
    times the global background RMS. Sources closer than ``size / 2`` to an edge are
    skipped. Stamps keep all bands and the original pixel values.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` array.
        size: stamp side in pixels.
        thresh: detection threshold in units of the background RMS.
        min_area: minimum connected pixels above threshold.
        max_sources: keep at most this many (brightest first); ``None`` = all.
        source: name used in error messages.

    Returns:
        ``(stamps, table)``: float32 ``(N, size, size, C)`` and a dict of per-stamp columns
        ``x``, ``y`` (centre pixel), ``flux``, ``a``, ``b``, ``theta``, ``npix``.
    """
    from astrovader.data.simulate import require

    sep = require("sep", what="source detection")
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or min(img.shape[:2]) < size:
        raise DataError(f"{source}: image of shape {image.shape} is too small for {size}-pixel stamps; give a larger image")
    if not np.isfinite(img).all():
        img = np.where(np.isfinite(img), img, np.nanmedian(img))
    det = np.ascontiguousarray(img.mean(axis=-1), dtype=np.float64)
    try:
        bkg = sep.Background(det)
        objs = sep.extract(det - bkg, thresh, err=bkg.globalrms, minarea=min_area)
    except Exception as exc:  # noqa: BLE001 -- sep raises plain Exception subclasses
        raise DataError(f"{source}: source detection failed ({exc}); try a higher threshold") from None
    h = size // 2
    H, W = det.shape
    cx = np.round(objs["x"]).astype(int)
    cy = np.round(objs["y"]).astype(int)
    ok = (cx - h >= 0) & (cx - h + size <= W) & (cy - h >= 0) & (cy - h + size <= H)
    idx = np.flatnonzero(ok)
    idx = idx[np.argsort(-objs["flux"][idx], kind="stable")]
    if max_sources is not None:
        idx = idx[: int(max_sources)]
    idx = np.sort(idx)
    stamps = np.stack([img[cy[i] - h : cy[i] - h + size, cx[i] - h : cx[i] - h + size] for i in idx]) if len(idx) else (
        np.zeros((0, size, size, img.shape[-1]), np.float32)
    )
    table = {
        "x": cx[idx].astype(np.float64), "y": cy[idx].astype(np.float64),
        "flux": objs["flux"][idx].astype(np.float64), "a": objs["a"][idx].astype(np.float64),
        "b": objs["b"][idx].astype(np.float64), "theta": objs["theta"][idx].astype(np.float64),
        "npix": objs["npix"][idx].astype(np.float64),
    }
    return stamps.astype(np.float32), table
