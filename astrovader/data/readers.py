"""Readers for the stamp formats astronomers use.

Every reader is a :class:`~astrovader.data.source.Source`: it knows how many stamps it
holds and hands them out in order with their ids, labels and extra columns, from any start
index. :func:`open_source` picks the reader for a path; :func:`astrovader.data.load` reads a whole source and
:func:`astrovader.data.iter_batches` streams it range by range (inputs larger than memory).

Supported inputs (``spec``):

* a directory of PNG/JPEG/TIFF/FITS stamps (one stamp per file, sorted by name), or of
  class sub-directories (the sub-directory name is the label), or holding a ``catalog.csv``;
* a CSV catalog with a ``path`` column (relative to the CSV's folder), optional ``id`` and
  label columns; all other columns are kept (numbers as float, otherwise strings);
* a FITS file: a 2-D image HDU (one stamp), an ``(N, H, W)`` cube or ``(N, C, H, W)``;
  a binary table HDU with N rows supplies ids/labels/columns;
* ``.npy`` ``(N, H, W[, C])``; ``.npz`` / HDF5 with keys ``images|x|X|stamps|data``,
  ``labels|y|Y|label``, ``ids|id``, ``label_names`` and other length-N 1-D arrays as columns;
* TFRecord shards written by :func:`astrovader.data.write_shards` (see :mod:`.shards`).

Streaming (:func:`astrovader.data.iter_batches`) reads one range at a time from file
lists, memory-mapped ``.npy`` and FITS cubes, HDF5 and shards; an ``.npz`` member is always
read whole, so convert inputs larger than memory to shards (``data_prep/to_shards.py``).

Integer PNG/JPEG/TIFF pixels are divided by their type's maximum (uint8 -> [0, 1]); FITS,
NumPy and HDF5 values are kept as they are. Stamps are channels-last ``(H, W, C)``.
"""

from __future__ import annotations

import csv
import mmap
import os
from pathlib import Path
from typing import Any

import numpy as np

from astrovader.data.source import IndexedSource, Source
from astrovader.errors import DataError

__all__ = ["open_source", "read_image_file", "Source", "IMAGE_SUFFIXES", "FITS_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")
IMAGE_KEYS = ("images", "x", "X", "stamps", "data")
LABEL_KEYS = ("labels", "y", "Y", "label")
ID_KEYS = ("ids", "id")
PATH_COLUMNS = ("path", "file", "filename", "filepath")
_HINT = "give a directory, CSV catalog, FITS/npy/npz/HDF5 file, TFRecord shards or builtin:NAME"


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for s in FITS_SUFFIXES:
        if name.endswith(s):
            return s
    return path.suffix.lower()


def _is_stamp_file(path: Path) -> bool:
    return _suffix(path) in IMAGE_SUFFIXES + FITS_SUFFIXES


def check_array(arr: np.ndarray, source: str) -> np.ndarray:
    """Validate a raw pixel array's dtype and size; return it as float32."""
    arr = np.asarray(arr)
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{source}: unsupported pixel dtype {arr.dtype}; give real-valued (integer or float) pixels")
    if arr.size == 0:
        raise DataError(f"{source}: zero-size image(s) of shape {arr.shape}; remove or re-export them")
    return arr.astype(np.float32)


def read_image_file(path: str | os.PathLike, *, cube: bool = False) -> np.ndarray:
    """Read one PNG/JPEG/TIFF/FITS file.

    Args:
        path: the file.
        cube: for FITS, read a 3-D HDU as ``(N, H, W)`` stamps instead of ``(C, H, W)`` bands.

    Returns:
        ``(H, W, C)`` float32 (or ``(N, H, W, C)`` when ``cube`` and the data are 3-D/4-D).

    Raises:
        DataError: missing, truncated/corrupt, zero-size or non-numeric files.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path")
    if _suffix(path) in FITS_SUFFIXES:
        return _read_fits_image(path, cube=cube)[0]
    if _suffix(path) not in IMAGE_SUFFIXES:
        raise DataError(f"{path}: not a supported image (png, jpg, tif, fits); convert or remove it")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("P", "PA"):
                im = im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")
            elif im.mode == "1":
                im = im.convert("L")
            arr = np.asarray(im)
    except (Image.DecompressionBombError, MemoryError) as exc:
        size = str(exc).split(" pixels")[0].split("(")[-1] if "pixels" in str(exc) else "too many"
        raise DataError(
            f"{path}: image of {size} pixels is far too large for a stamp (refused as a possible "
            "decompression bomb); cut stamps from it (data_prep/cutouts.py) or remove it from the input"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(
            f"{path}: cannot read image ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'corrupt'}); "
            "the file is truncated or corrupt: re-export it or remove it"
        ) from None
    if arr.size == 0:
        raise DataError(f"{path}: zero-size image; remove it")
    if arr.dtype.kind in "ui":
        arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
    arr = check_array(arr, str(path))
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[-1] in (2, 4):  # drop alpha
        arr = arr[..., :-1]
    return arr


def _read_fits_image(path: Path, cube: bool, lazy: bool = False) -> tuple[np.ndarray, Any]:
    """Image data (and the first table, if any) of a FITS file; ``lazy`` memory-maps cubes."""
    from astropy.io import fits

    try:
        with fits.open(path, memmap=lazy) as hdul:
            data, table = None, None
            for hdu in hdul:
                if hdu.is_image and hdu.data is not None and data is None:
                    data = np.asarray(hdu.data)
                elif isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)) and table is None:
                    table = np.asarray(hdu.data)
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise DataError(
            f"{path}: cannot read FITS ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
            "the file is truncated or corrupt: re-export it or remove it"
        ) from None
    if data is None:
        raise DataError(f"{path}: no image data in any HDU; give a FITS file with an image or cube HDU")
    if data.size == 0:
        raise DataError(f"{path}: zero-size image of shape {data.shape}; remove it")
    if lazy:  # keep the memory map; ArraySource converts slice by slice
        if data.dtype.kind not in "biuf":
            raise DataError(f"{path}: unsupported pixel dtype {data.dtype}; give real-valued (integer or float) pixels")
    else:
        data = check_array(data, str(path))
    if data.ndim == 2:
        data = data[:, :, None] if not cube else data[None, :, :, None]
    elif data.ndim == 3:
        data = data[..., None] if cube else np.moveaxis(data, 0, -1)
    elif data.ndim == 4 and cube:
        data = np.moveaxis(data, 1, -1)
    else:
        raise DataError(f"{path}: FITS data of shape {data.shape} is not a 2-D image or (N, H, W) cube")
    return data, table


class ArraySource(IndexedSource):
    """In-memory or memory-mapped ``(N, H, W, C)`` array (npy, npz, HDF5, FITS cube)."""

    def __init__(self, name: str, array: Any, **kw):
        shape = tuple(array.shape)
        if len(shape) == 3:
            self._expand = True
        elif len(shape) == 4:
            self._expand = False
        else:
            raise DataError(f"{name}: array of shape {shape}; save stamps as (N, H, W) or (N, H, W, C)")
        if 0 in shape:
            raise DataError(f"{name}: zero-size images, array shape {shape}; give at least one non-empty stamp")
        if np.dtype(array.dtype).kind not in "biuf":
            raise DataError(f"{name}: unsupported pixel dtype {array.dtype}; give real-valued (integer or float) pixels")
        self._array = array
        super().__init__(name, shape[0], **kw)

    def read(self, lo: int, hi: int) -> np.ndarray:
        x = np.asarray(self._array[lo:hi]).astype(np.float32)
        self._release()
        return x[..., None] if self._expand else x

    def _release(self) -> None:
        """Let the OS drop the pages of a memory-mapped file that were just copied.

        Pages of a file mapping count as resident memory until evicted, so streaming a
        large ``.npy`` would otherwise grow RSS with every chunk read (they are read from
        the file again if needed: nothing is lost).
        """
        mm = getattr(self._array, "_mmap", None)
        if mm is not None and hasattr(mm, "madvise"):
            try:
                mm.madvise(mmap.MADV_DONTNEED)
            except (OSError, ValueError):  # not supported here: memory is only released later
                pass


class FileListSource(IndexedSource):
    """One stamp per file (directory listing or CSV catalog rows)."""

    def __init__(self, name: str, paths: list, where: list | None = None, **kw):
        self.paths = [Path(p) for p in paths]
        self._where = where or [str(p) for p in self.paths]
        super().__init__(name, len(self.paths), **kw)

    def read(self, lo: int, hi: int) -> list:
        out = []
        for i in range(lo, hi):
            if not self.paths[i].is_file():
                raise DataError(f"{self._where[i]}: file {self.paths[i]} not found; fix the path or remove the row")
            try:
                out.append(read_image_file(self.paths[i]))
            except DataError as exc:
                if self._where[i] != str(self.paths[i]):
                    raise DataError(f"{self._where[i]}: {exc}") from None
                raise
        return out


def _pick(keys, candidates):
    for k in candidates:
        if k in keys:
            return k
    return None


def _decode_names(v) -> list:
    return [x.decode() if isinstance(x, bytes) else str(x) for x in np.asarray(v).ravel()]


def _mapping_source(name: str, get, keys: list, n_hint_shape=None) -> Source:
    """Common logic for npz and HDF5: ``get(key)`` returns an array-like."""
    ik = _pick(keys, IMAGE_KEYS)
    if ik is None:
        multi = [k for k in keys if len(getattr(get(k), "shape", ())) >= 3]
        if len(multi) != 1:
            raise DataError(f"{name}: no image array found (keys {sorted(keys)}); store the stamps under 'images' or 'x'")
        ik = multi[0]
    images = get(ik)
    n = images.shape[0] if len(images.shape) else 0
    lk, idk = _pick(keys, LABEL_KEYS), _pick(keys, ID_KEYS)
    labels = None
    if lk is not None:
        labels = np.asarray(get(lk)).ravel()
        if len(labels) != n:
            raise DataError(f"{name}: {n} images but {len(labels)} labels in {lk!r}; give one label per image")
        if labels.dtype.kind not in "biu":
            if labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels)):
                labels = labels.astype(np.int64)
            else:
                raise DataError(f"{name}: labels {lk!r} are not integers (dtype {labels.dtype}); give integer class ids")
    ids = _decode_names(get(idk)) if idk is not None else None
    label_names = _decode_names(get("label_names")) if "label_names" in keys else None
    columns = {}
    for k in keys:
        if k in (ik, lk, idk, "label_names"):
            continue
        arr = get(k)
        if len(getattr(arr, "shape", ())) == 1 and arr.shape[0] == n:
            v = np.asarray(arr)
            columns[k[4:] if k.startswith("col_") else k] = (
                np.array(_decode_names(v)) if v.dtype.kind in "SO" else v
            )
    return ArraySource(name, images, ids=ids, labels=labels, label_names=label_names, columns=columns)


def _npz_source(path: Path) -> Source:
    import zipfile

    try:
        z = np.load(path, allow_pickle=False)
        keys = list(z.files)
        cache = {}

        def get(k):
            if k not in cache:
                cache[k] = z[k]
            return cache[k]

        return _mapping_source(str(path), get, keys)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read npz ({type(exc).__name__}); the file is truncated or corrupt: re-save it") from None
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            raise DataError(f"{path}: contains object arrays (unsupported dtype); save numeric arrays only") from None
        raise DataError(f"{path}: cannot read npz ({str(exc).splitlines()[0]}); re-save it") from None


def _npy_source(path: Path) -> Source:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            raise DataError(f"{path}: object array (unsupported dtype); save a numeric (N, H, W[, C]) array") from None
        raise DataError(f"{path}: cannot read npy ({str(exc).splitlines()[0]}); the file is truncated or corrupt: re-save it") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read npy ({type(exc).__name__}); the file is truncated or corrupt: re-save it") from None
    return ArraySource(str(path), arr)


def _h5_source(path: Path) -> Source:
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: cannot read HDF5 ({str(exc).splitlines()[0]}); the file is truncated or corrupt") from None
    keys = [k for k in f.keys() if isinstance(f[k], h5py.Dataset)]
    src = _mapping_source(str(path), lambda k: f[k], keys)
    src._file = f  # keep the file open while the source lives
    return src


def _fits_source(path: Path) -> Source:
    data, table = _read_fits_image(path, cube=True, lazy=True)
    ids = labels = None
    columns = {}
    if table is not None and len(table) == len(data):
        for col in table.dtype.names:
            v = np.asarray(table[col])
            if v.ndim != 1:
                continue
            if col.lower() in ID_KEYS:
                ids = _decode_names(v)
            elif col.lower() in LABEL_KEYS and v.dtype.kind in "biu":
                labels = v.astype(np.int64)
            else:
                columns[col] = np.array(_decode_names(v)) if v.dtype.kind in "SO" else v
    return ArraySource(str(path), data, ids=ids, labels=labels, columns=columns)


def _parse_labels(values: list, where: list, column: str, source: str):
    for v, w in zip(values, where):
        if v is None or str(v).strip() == "":
            raise DataError(f"{w}: empty label in column {column!r}; fill it in or remove the row")
    try:
        as_float = np.array([float(v) for v in values])
        if np.all(as_float == np.round(as_float)):
            return as_float.astype(np.int64), None
        raise DataError(
            f"{source}: label column {column!r} has non-integer values; give class ids or names "
            "(for vote fractions give several columns: label_column: 'a,b,c' takes the argmax)"
        )
    except ValueError:
        names = sorted(set(values))
        lookup = {nm: i for i, nm in enumerate(names)}
        return np.array([lookup[v] for v in values], np.int64), names


def _catalog_source(path: Path, label_column: str | None) -> Source:
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV catalog ({type(exc).__name__}); save it as UTF-8 CSV") from None
    if not rows:
        raise DataError(f"{path}: catalog has no rows; add one row per stamp with a 'path' column")
    header = list(rows[0].keys())
    pk = _pick(header, PATH_COLUMNS)
    if pk is None:
        raise DataError(f"{path}: catalog has no path column (columns: {header}); add a 'path' column")
    where = [f"{path} line {i + 2}" for i in range(len(rows))]
    base = path.parent
    paths = []
    for r, w in zip(rows, where):
        p = (r.get(pk) or "").strip()
        if not p:
            raise DataError(f"{w}: empty '{pk}'; give the stamp's file or remove the row")
        paths.append(Path(p) if os.path.isabs(p) else base / p)
    idk = _pick(header, ("id", "objid", "name"))
    ids = [r[idk] for r in rows] if idk else [Path(p).stem for p in paths]
    labels = label_names = None
    used = {pk, idk}
    if label_column and "," in label_column:
        cols = [c.strip() for c in label_column.split(",")]
        missing = [c for c in cols if c not in header]
        if missing:
            raise DataError(f"{path}: label columns {missing} not in catalog (columns: {header}); fix data.label_column")
        try:
            votes = np.array([[float(r[c]) for c in cols] for r in rows])
        except ValueError:
            raise DataError(f"{path}: vote-fraction columns {cols} must be numbers in every row") from None
        labels, label_names = votes.argmax(axis=1), cols
    else:
        lk = label_column or _pick(header, ("label", "class"))
        if label_column and label_column not in header:
            raise DataError(f"{path}: label column {label_column!r} not in catalog (columns: {header}); fix data.label_column")
        if lk is not None:
            labels, label_names = _parse_labels([r[lk] for r in rows], where, lk, str(path))
            used.add(lk)
    columns = {}
    for c in header:
        if c in used or c is None:
            continue
        vals = [r[c] for r in rows]
        try:
            columns[c] = np.array([float(v) if v not in ("", None) else np.nan for v in vals])
        except ValueError:
            columns[c] = np.array([str(v) for v in vals])
    return FileListSource(str(path), paths, where=where, ids=ids, labels=labels, label_names=label_names, columns=columns)


def _directory_source(path: Path, label_column: str | None) -> Source:
    if (path / "manifest.json").is_file():
        from astrovader.data.shards import ShardSource

        return ShardSource(path)
    if (path / "catalog.csv").is_file():
        return _catalog_source(path / "catalog.csv", label_column)
    entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    if not entries:
        raise DataError(f"{path}: directory is empty; put stamp files (png, jpg, tif, fits) in it")
    subdirs = [p for p in entries if p.is_dir()]
    files = [p for p in entries if p.is_file()]
    if subdirs and not files:
        paths, labels = [], []
        for k, d in enumerate(subdirs):
            for p in sorted(q for q in d.iterdir() if not q.name.startswith(".")):
                if not _is_stamp_file(p):
                    raise DataError(f"{p}: not an image file (png, jpg, tif, fits); move it out of {d}")
                paths.append(p)
                labels.append(k)
        if not paths:
            raise DataError(f"{path}: class sub-directories hold no image files; put stamps in them")
        ids = [f"{p.parent.name}/{p.stem}" for p in paths]
        return FileListSource(str(path), paths, ids=ids, labels=np.array(labels), label_names=[d.name for d in subdirs])
    for p in entries:
        if p.is_dir() or not _is_stamp_file(p):
            raise DataError(
                f"{p}: not an image file (png, jpg, tif, fits); move it out of {path} or list the stamps in a CSV catalog"
            )
    return FileListSource(str(path), files, ids=[p.name.split(".")[0] for p in files])


def open_source(spec: str | os.PathLike, label_column: str | None = None) -> Source:
    """Open the reader for ``spec`` (see the module docstring for the formats).

    Raises:
        DataError: the path does not exist or is not a supported format.
    """
    path = Path(spec)
    text = str(spec)
    if any(ch in text for ch in "*?[") and not path.exists():
        from astrovader.data.shards import ShardSource

        return ShardSource(text)
    if path.is_dir():
        return _directory_source(path, label_column)
    if not path.exists():
        raise DataError(f"{path}: not found; {_HINT}")
    suf = _suffix(path)
    if suf == ".csv":
        return _catalog_source(path, label_column)
    if suf == ".npy":
        return _npy_source(path)
    if suf == ".npz":
        return _npz_source(path)
    if suf in (".h5", ".hdf5", ".hdf", ".he5"):
        return _h5_source(path)
    if suf in (".tfrecord", ".tfrecords", ".tfrec"):
        from astrovader.data.shards import ShardSource

        return ShardSource(text)
    if suf in FITS_SUFFIXES:
        return _fits_source(path)
    if suf in IMAGE_SUFFIXES:
        return FileListSource(str(path), [path], ids=[path.stem])
    raise DataError(f"{path}: unsupported file type {suf or '(none)'}; {_HINT}")
