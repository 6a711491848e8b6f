"""Writing stamps to files: the one writer behind ``data render``, ``generate`` and the cache.

* :func:`write_stamps` writes a whole set into one file whose format follows its suffix:
  ``.npz`` (``images``, ``ids``, ``labels``, ``label_names``, ``col_<name>``), ``.npy``
  (images only), ``.fits``/``.fit`` (a cube plus a ``LABELS`` table of ids and labels),
  ``.h5``/``.hdf5`` or ``.png`` (a contact sheet of the first 100 stamps). Every file is
  written to a temporary name and renamed, so a reader never sees half a file.
* :func:`write_stamp_files` writes one file per stamp (``png`` 8-bit min-max scaled, or
  ``fits``).

Every one of these files is read back by :func:`astrovader.data.load`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from astrovader.data.stampset import StampSet
from astrovader.errors import DataError

__all__ = ["write_stamps", "write_stamp_files", "STAMP_SUFFIXES", "FILE_FORMATS"]

STAMP_SUFFIXES = (".npz", ".npy", ".fits", ".fit", ".h5", ".hdf5", ".png")
FILE_FORMATS = ("png", "fits")


def _mkdir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{path}: cannot create this folder ({exc.strerror or type(exc).__name__}); "
                        "check the path and its permissions or choose another output") from None
    return path


def _as_stampset(stamps: Any) -> StampSet:
    if isinstance(stamps, StampSet):
        return stamps
    return StampSet(images=np.asarray(stamps, dtype=np.float32))


def _cube(x: np.ndarray) -> np.ndarray:
    """``(N, H, W, C)`` -> FITS axis order: ``(N, H, W)`` for one band, else ``(N, C, H, W)``."""
    return np.moveaxis(x, -1, 1) if x.shape[-1] > 1 else x[..., 0]


def write_stamps(stamps: StampSet | np.ndarray, path: str | os.PathLike, creator: str = "astrovader") -> Path:
    """Write ``stamps`` (a StampSet or an ``(N, H, W, C)`` array) to ``path``, atomically.

    Args:
        stamps: the stamps; labels, ids, label names and columns are kept where the
            format can hold them.
        path: output file; its suffix picks the format (see the module docstring).
        creator: ``CREATOR`` keyword of a FITS header.

    Returns:
        ``path``.

    Raises:
        DataError: for an unknown suffix.
    """
    s = _as_stampset(stamps)
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in STAMP_SUFFIXES:
        raise DataError(f"{path}: unknown output format; use one of {', '.join(STAMP_SUFFIXES)}")
    _mkdir(path.parent)
    x = np.asarray(s.images, dtype=np.float32)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{suffix}")
    try:
        if suffix == ".npz":
            arrays = {"images": x, "ids": np.asarray(s.ids, dtype=str)}
            if s.labels is not None:
                arrays["labels"] = s.labels
            if s.label_names is not None:
                arrays["label_names"] = np.asarray(s.label_names, dtype=str)
            arrays.update({f"col_{k}": np.asarray(v) for k, v in s.columns.items()})
            np.savez(tmp, **arrays)
        elif suffix == ".npy":
            np.save(tmp, x)
        elif suffix in (".fits", ".fit"):
            from astropy.io import fits

            hdu = fits.PrimaryHDU(_cube(x))
            hdu.header["CREATOR"] = creator
            hdus = [hdu]
            if s.labels is not None:
                hdus.append(fits.BinTableHDU.from_columns(
                    [fits.Column(name="id", format="32A", array=np.asarray(s.ids, dtype=str)),
                     fits.Column(name="label", format="K", array=np.asarray(s.labels))], name="LABELS"))
            fits.HDUList(hdus).writeto(tmp, overwrite=True)
        elif suffix in (".h5", ".hdf5"):
            import h5py

            with h5py.File(tmp, "w") as f:
                f["images"] = x
                f["ids"] = np.asarray(s.ids, dtype="S")
                if s.labels is not None:
                    f["labels"] = s.labels
        else:
            from astrovader.plots import image_grid

            image_grid(x[:100], tmp, ncols=10, title=s.source or None)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _png_bytes(img: np.ndarray) -> np.ndarray:
    lo, hi = float(img.min()), float(img.max())
    u8 = np.clip((img - lo) / max(hi - lo, 1e-12) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return u8[..., 0] if u8.shape[-1] == 1 else u8[..., :3]


def write_stamp_files(images: np.ndarray, out_dir: str | os.PathLike, fmt: str = "png",
                      prefix: str = "stamp", creator: str = "astrovader") -> list[Path]:
    """Write one file per ``(H, W, C)`` stamp into ``out_dir`` (created).

    Args:
        images: ``(N, H, W, C)`` stamps.
        out_dir: output folder.
        fmt: ``png`` (8-bit, each stamp min-max scaled) or ``fits`` (float32).
        prefix: file names are ``<prefix>_<index:05d>.<fmt>``.

    Returns:
        The written paths, in order.
    """
    if fmt not in FILE_FORMATS:
        raise DataError(f"format {fmt!r}: choose one of {', '.join(FILE_FORMATS)}")
    out = _mkdir(Path(out_dir))
    paths = []
    for i, img in enumerate(np.asarray(images, dtype=np.float32)):
        path = out / f"{prefix}_{i:05d}.{fmt}"
        tmp = path.with_name(f".{path.name}.tmp")
        if fmt == "png":
            from PIL import Image

            Image.fromarray(_png_bytes(img)).save(tmp, format="PNG")
        else:
            from astropy.io import fits

            hdu = fits.PrimaryHDU(_cube(img[None])[0])
            hdu.header["CREATOR"] = creator
            hdu.writeto(tmp, overwrite=True)
        os.replace(tmp, path)
        paths.append(path)
    return paths
