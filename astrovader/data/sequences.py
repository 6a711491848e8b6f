"""Image sequences: the built-in ``sequences`` set (GalSim), readers and the container.

An image sequence is what the RCNN of seed 003 (Carrasco-Davis et al. 2019) classifies:
per object an irregularly sampled series of small science images, their observation times
and a mask of valid frames (sequences are padded to a common length ``T``).

* :class:`SequenceSet` -- images ``(N, T, H, W, C)``, times ``(N, T)`` (days), mask
  ``(N, T)``, labels, ids, label names and extra columns.
* :func:`render_sequences` -- the simulation: light curves of the talk's 7 classes sampled
  at survey-like observation times, each epoch rendered with GalSim under its own seeing
  (Moffat PSF FWHM) and sky noise. ``shifted=True`` draws the observing conditions and the
  camera's gain from another distribution (the domain-adaptation experiment of the talk).
* :func:`load_sequences` -- ``builtin:sequences`` / ``builtin:sequences-shifted`` (generated
  once and cached like the other built-in sets) or an ``.npz`` / HDF5 file holding
  ``images``, ``times``, optional ``mask``, ``labels``, ``ids``, ``label_names``.
* :func:`scale_sequences` -- the pixel scaling the RCNN preset uses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from astrovader.errors import DataError

__all__ = ["SequenceSet", "SEQUENCE_CLASSES", "SEQUENCE_SCALINGS", "render_sequences", "load_sequences",
           "read_sequences", "write_sequences", "scale_sequences", "is_sequence_spec", "time_differences"]

SEQUENCE_CLASSES = ["supernova", "rr_lyrae", "cepheid", "eclipsing_binary", "non_variable", "galaxy", "asteroid"]
SEQUENCE_SCALINGS = ("none", "asinh")
_BUILTIN = {"sequences": (2100, 1, False), "sequences-shifted": (1400, 1, True)}  # default n, version, shifted
_ASINH_SOFTENING = 10.0  # counts: about the simulation's typical sky noise (sigma 6-14 counts)


@dataclass
class SequenceSet:
    """Padded image sequences plus labels and per-object columns.

    Args:
        images: float32 ``(N, T, H, W, C)``; padded frames are zero.
        times: float32 ``(N, T)`` observation times in days (padded entries 0).
        mask: bool ``(N, T)``, True for real frames; the valid frames of a row come first.
        labels: int ``(N,)`` or ``None``.
        ids: string ``(N,)``.
        label_names: name of each label value.
        columns: extra length-N arrays (simulation parameters...).
        source: where the sequences came from.
    """

    images: np.ndarray
    times: np.ndarray
    mask: np.ndarray | None = None
    labels: np.ndarray | None = None
    ids: np.ndarray | None = None
    label_names: list | None = None
    columns: dict = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        self.images = np.asarray(self.images, np.float32)
        if self.images.ndim == 4:
            self.images = self.images[..., None]
        if self.images.ndim != 5:
            raise DataError(f"{self.source or 'sequences'}: images of shape {self.images.shape}; "
                            "give (N, T, H, W) or (N, T, H, W, C)")
        n, t = self.images.shape[:2]
        self.times = np.asarray(self.times, np.float32)
        if self.times.shape != (n, t):
            raise DataError(f"{self.source or 'sequences'}: times of shape {self.times.shape}, expected {(n, t)} "
                            "(one time per frame)")
        self.mask = np.ones((n, t), bool) if self.mask is None else np.asarray(self.mask).astype(bool)
        if self.mask.shape != (n, t):
            raise DataError(f"{self.source or 'sequences'}: mask of shape {self.mask.shape}, expected {(n, t)}")
        self.ids = np.array([str(i) for i in range(n)]) if self.ids is None else np.asarray(self.ids).astype(str)
        if self.labels is not None:
            self.labels = np.asarray(self.labels).astype(np.int64)
            if len(self.labels) != n:
                raise DataError(f"{self.source or 'sequences'}: {n} sequences but {len(self.labels)} labels")
        self.columns = {k: np.asarray(v) for k, v in self.columns.items()}

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple:
        """``(T, H, W, C)`` of one padded sequence."""
        return tuple(self.images.shape[1:])

    def subset(self, index: Any) -> "SequenceSet":
        """Rows selected by an index array, slice or boolean mask."""
        return SequenceSet(self.images[index], self.times[index], self.mask[index],
                           None if self.labels is None else self.labels[index], self.ids[index],
                           self.label_names, {k: v[index] for k, v in self.columns.items()}, self.source)


def time_differences(times: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Days since the previous valid frame, 0 for the first frame and for padding: ``(N, T)``."""
    times = np.asarray(times, np.float32)
    dt = np.zeros_like(times)
    dt[:, 1:] = times[:, 1:] - times[:, :-1]
    return np.where(np.asarray(mask, bool), np.maximum(dt, 0.0), 0.0).astype(np.float32)


def scale_sequences(images: np.ndarray, scaling: str = "asinh") -> np.ndarray:
    """Pixel scaling for the RCNN: ``none`` or ``asinh`` (``arcsinh(x / 10 counts)``).

    The asinh scaling is linear around the sky noise and logarithmic for bright sources,
    so supernovae, variable stars and asteroids of very different brightness share a range.
    """
    if scaling not in SEQUENCE_SCALINGS:
        raise DataError(f"data.scaling={scaling!r} for image sequences: choose one of {', '.join(SEQUENCE_SCALINGS)}")
    images = np.asarray(images, np.float32)
    return np.arcsinh(images / _ASINH_SOFTENING).astype(np.float32) if scaling == "asinh" else images


# --------------------------------------------------------------------------- light curves


def _light_curve(kind: str, t: np.ndarray, p: dict) -> np.ndarray:
    """Multiplicative flux factor of each class at times ``t`` (days)."""
    if kind == "supernova":  # rise / exponential decline (Bazin et al. 2009 shape)
        x = t - p["t0"]
        f = np.exp(-x / p["tau_fall"]) / (1.0 + np.exp(-x / p["tau_rise"]))
        return f / p["norm"]
    if kind in ("rr_lyrae", "cepheid"):  # asymmetric pulsation: fast rise, slow decline, in magnitudes
        phase = np.mod(t / p["period"] + p["phase0"], 1.0)
        rise = p["rise"]
        shape = np.where(phase < rise, phase / rise, 1.0 - (phase - rise) / (1.0 - rise))
        shape = shape + p["bump"] * np.sin(2 * np.pi * 2 * phase) * (phase > rise)
        dm = -p["amplitude"] * (shape - 0.5)
        return 10 ** (-0.4 * dm)
    if kind == "eclipsing_binary":  # two Gaussian eclipses per period
        phase = np.mod(t / p["period"] + p["phase0"], 1.0)
        dist1 = np.minimum(np.abs(phase), np.abs(phase - 1.0))
        dist2 = np.abs(phase - 0.5)
        w = p["width"]
        return 1.0 - p["depth1"] * np.exp(-0.5 * (dist1 / w) ** 2) - p["depth2"] * np.exp(-0.5 * (dist2 / w) ** 2)
    return np.ones_like(t)


def _class_params(kind: str, rng: np.random.Generator, span: float) -> dict:
    if kind == "supernova":
        tr, tf = rng.uniform(1.5, 5.0), rng.uniform(12.0, 40.0)
        xs = np.linspace(-30, 60, 2000)
        norm = float(np.max(np.exp(-xs / tf) / (1 + np.exp(-xs / tr))))
        return dict(t0=rng.uniform(-10.0, span - 5.0), tau_rise=tr, tau_fall=tf, norm=norm)
    if kind == "rr_lyrae":
        return dict(period=rng.uniform(0.45, 0.75), phase0=rng.uniform(), amplitude=rng.uniform(0.5, 1.1),
                    rise=rng.uniform(0.1, 0.2), bump=rng.uniform(0.0, 0.1))
    if kind == "cepheid":
        return dict(period=float(np.exp(rng.uniform(np.log(3.0), np.log(30.0)))), phase0=rng.uniform(),
                    amplitude=rng.uniform(0.4, 1.0), rise=rng.uniform(0.25, 0.4), bump=rng.uniform(0.0, 0.15))
    if kind == "eclipsing_binary":
        d1 = rng.uniform(0.3, 0.8)
        return dict(period=float(np.exp(rng.uniform(np.log(0.5), np.log(5.0)))), phase0=rng.uniform(),
                    depth1=d1, depth2=d1 * rng.uniform(0.1, 0.6), width=rng.uniform(0.03, 0.08))
    return {}


def _observing_times(rng: np.random.Generator, n_epochs: int, span: float) -> np.ndarray:
    """HiTS-like cadence: a few epochs per night (~1.7 h apart) on nights spread over ``span`` days."""
    per_night = int(rng.integers(2, 5))
    n_nights = int(np.ceil(n_epochs / per_night))
    nights = np.sort(rng.choice(int(span), size=n_nights, replace=False)).astype(float)
    t = (nights[:, None] + 0.07 * np.arange(per_night)[None, :] + rng.uniform(0, 0.02, (n_nights, per_night)))
    return np.sort(t.ravel()[:n_epochs])


# --------------------------------------------------------------------------- rendering


def _render_object(row: dict) -> np.ndarray:
    """Noise-free frames ``(T, H, W)`` of one object (GalSim)."""
    import galsim

    from astrovader.data.simulate import _GSPARAMS

    gsp = galsim.GSParams(**_GSPARAMS)
    s = row["size"]
    frames = np.zeros((len(row["flux"]), s, s), np.float32)
    for i, (flux, fwhm) in enumerate(zip(row["flux"], row["fwhm"])):
        if flux <= 0:
            continue
        psf = galsim.Moffat(beta=row["moffat_beta"], fwhm=fwhm, gsparams=gsp)
        if row["kind"] == "galaxy":
            prof = (galsim.Exponential(half_light_radius=row["hlr"], gsparams=gsp) if row["sersic_n"] == 1
                    else galsim.DeVaucouleurs(half_light_radius=row["hlr"], gsparams=gsp))
            obj = galsim.Convolve(prof.shear(q=row["q"], beta=row["beta"] * galsim.degrees), psf, gsparams=gsp)
        else:
            obj = psf
        off = (row["dx"] + row["jitter"][i][0], row["dy"] + row["jitter"][i][1])
        frames[i] = obj.withFlux(float(flux)).drawImage(nx=s, ny=s, scale=1.0, offset=off).array
    return frames


def render_sequences(n: int, seed: int = 0, size: int = 21, min_epochs: int = 10, max_epochs: int = 25,
                     shifted: bool = False, workers: int = 2, progress: bool = False) -> SequenceSet:
    """Simulated image sequences of the 7 classes of seed 003 (balanced, :data:`SEQUENCE_CLASSES`).

    Per object: 10-25 epochs (HiTS-like: 2-4 epochs a night on nights over 60 days), a base
    flux log-uniform in 400-4000 counts (peak SNR ~ 5-60), a sub-pixel position with
    0.15-px astrometric jitter per epoch, and per epoch a Moffat PSF (beta per object,
    FWHM 2-3.5 px) and Gaussian sky noise (sigma 6-14 counts). Classes:

    * ``supernova``: Bazin rise (1.5-5 d) and decline (12-40 d), explosion time anywhere in the span;
    * ``rr_lyrae``: P 0.45-0.75 d, 0.5-1.1 mag, fast rise; ``cepheid``: P 3-30 d, 0.4-1 mag;
    * ``eclipsing_binary``: P 0.5-5 d, two Gaussian eclipses (depth 0.3-0.8, secondary 10-60%);
    * ``non_variable``: constant; ``galaxy``: constant exponential or de Vaucouleurs profile
      (half-light radius 1.5-3.5 px, axis ratio 0.4-1) convolved with each epoch's PSF;
    * ``asteroid``: a point source in one epoch only, up to 6 px off the centre.

    ``shifted=True`` (a second survey/camera, for fine-tuning experiments): FWHM 3-5 px,
    sky sigma 12-30 counts, gain 0.6 (all fluxes x0.6).

    Deterministic for ``seed`` (parameters and noise come from seeded generators in this
    process; GalSim draws no random numbers). Columns: ``n_epochs``, ``base_flux``,
    ``mean_fwhm``, ``period`` (0 if not periodic).
    """
    from astrovader.data.simulate import _run, require

    require("galsim", what="builtin:sequences")
    if not 1 <= min_epochs <= max_epochs:
        raise DataError("give 1 <= min_epochs <= max_epochs")
    rng = np.random.default_rng([seed, 31, int(shifted)])
    span = 60.0
    labels = rng.permutation(np.arange(n) % len(SEQUENCE_CLASSES))
    fwhm_range, sky_range, gain = ((3.0, 5.0), (12.0, 30.0), 0.6) if shifted else ((2.0, 3.5), (6.0, 14.0), 1.0)
    rows, times, masks, sky = [], np.zeros((n, max_epochs), np.float32), np.zeros((n, max_epochs), bool), []
    for i, lab in enumerate(labels):
        kind = SEQUENCE_CLASSES[lab]
        t_n = int(rng.integers(min_epochs, max_epochs + 1))
        t = _observing_times(rng, t_n, span)
        p = _class_params(kind, rng, span)
        base = float(np.exp(rng.uniform(np.log(400), np.log(4000))))
        flux = base * _light_curve(kind, t, p)
        row = dict(size=size, kind=kind, moffat_beta=float(np.round(rng.uniform(2.5, 4.0) * 2) / 2),
                   fwhm=rng.uniform(*fwhm_range, t_n).tolist(), dx=float(rng.uniform(-0.5, 0.5)),
                   dy=float(rng.uniform(-0.5, 0.5)), jitter=rng.normal(0, 0.15, (t_n, 2)).tolist(),
                   hlr=float(rng.uniform(1.5, 3.5)), sersic_n=int(rng.choice([1, 4])),
                   q=float(rng.uniform(0.4, 1.0)), beta=float(rng.uniform(0, 180)))
        if kind == "galaxy":
            flux = flux * 2.5  # extended: spread over more pixels
        if kind == "asteroid":
            keep = int(rng.integers(t_n))
            flux = np.where(np.arange(t_n) == keep, flux * 1.5, 0.0)
            r, a = rng.uniform(0, 6), rng.uniform(0, 2 * np.pi)
            row["dx"], row["dy"] = float(r * np.cos(a)), float(r * np.sin(a))
        row["flux"] = (gain * flux).tolist()
        row["base_flux"], row["period"] = base, float(p.get("period", 0.0))
        rows.append(row)
        times[i, :t_n], masks[i, :t_n] = t, True
        sky.append(rng.uniform(*sky_range, t_n))
    signal = _run(_render_object, rows, workers, progress, "rendering sequences")
    nrng = np.random.default_rng([seed, 32, int(shifted)])
    images = np.zeros((n, max_epochs, size, size, 1), np.float32)
    for i, frames in enumerate(signal):
        t_n = len(frames)
        noise = nrng.standard_normal(frames.shape).astype(np.float32) * np.asarray(sky[i], np.float32)[:, None, None]
        images[i, :t_n, :, :, 0] = frames + noise
    columns = {"n_epochs": masks.sum(1), "base_flux": np.array([r["base_flux"] for r in rows], np.float32),
               "mean_fwhm": np.array([np.mean(r["fwhm"]) for r in rows], np.float32),
               "period": np.array([r["period"] for r in rows], np.float32)}
    name = "builtin:sequences-shifted" if shifted else "builtin:sequences"
    return SequenceSet(images, times, masks, labels, [f"seq{i:06d}" for i in range(n)], list(SEQUENCE_CLASSES),
                       columns, name)


# --------------------------------------------------------------------------- files and cache


def is_sequence_spec(spec: str) -> bool:
    """True for ``builtin:sequences`` / ``builtin:sequences-shifted``."""
    return str(spec).split(":", 1)[-1] in _BUILTIN and str(spec).startswith("builtin:")


def write_sequences(s: SequenceSet, path: str | os.PathLike) -> Path:
    """Write a :class:`SequenceSet` to ``.npz`` or HDF5 (``.h5``/``.hdf5``), atomically."""
    path = Path(path)
    arrays = {"images": s.images, "times": s.times, "mask": s.mask, "ids": s.ids.astype(str)}
    if s.labels is not None:
        arrays["labels"] = s.labels
    if s.label_names is not None:
        arrays["label_names"] = np.asarray(s.label_names, dtype=str)
    arrays.update({f"col_{k}": v for k, v in s.columns.items()})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if path.suffix.lower() in (".h5", ".hdf5"):
        import h5py

        with h5py.File(tmp, "w") as f:
            for k, v in arrays.items():
                f.create_dataset(k, data=v.astype("S") if v.dtype.kind == "U" else v)
    elif path.suffix.lower() == ".npz":
        with tmp.open("wb") as f:
            np.savez(f, **arrays)
    else:
        raise DataError(f"{path}: write image sequences to a .npz or .h5 file")
    os.replace(tmp, path)
    return path


def _from_mapping(get, keys: list, source: str) -> SequenceSet:
    def pick(*cands):
        return next((k for k in cands if k in keys), None)

    ik, tk = pick("images", "x", "sequences"), pick("times", "t", "mjd")
    if ik is None or tk is None:
        raise DataError(f"{source}: image sequences need arrays 'images' (N, T, H, W[, C]) and 'times' (N, T); "
                        f"found {sorted(keys)}")
    def text(v):
        return np.asarray([x.decode() if isinstance(x, bytes) else str(x) for x in np.asarray(v).ravel()])

    mk, lk = pick("mask"), pick("labels", "y", "label")
    return SequenceSet(
        images=get(ik), times=get(tk), mask=None if mk is None else get(mk),
        labels=None if lk is None else get(lk), ids=text(get("ids")) if "ids" in keys else None,
        label_names=list(text(get("label_names"))) if "label_names" in keys else None,
        columns={k[4:]: get(k) for k in keys if k.startswith("col_")}, source=source)


def read_sequences(path: str | os.PathLike) -> SequenceSet:
    """Read image sequences from ``.npz`` or HDF5 (see the module docstring for the keys)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path")
    try:
        if path.suffix.lower() in (".h5", ".hdf5"):
            import h5py

            with h5py.File(path, "r") as f:
                keys = [k for k in f.keys() if isinstance(f[k], h5py.Dataset)]
                return _from_mapping(lambda k: f[k][()], keys, str(path))
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return _from_mapping(lambda k: z[k], list(z.files), str(path))
    except DataError:
        raise
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise DataError(f"{path}: cannot read image sequences ({type(exc).__name__}: {exc}); "
                        "re-export the file") from None
    raise DataError(f"{path}: image sequences are read from .npz or HDF5 (.h5/.hdf5) files")


def load_sequences(spec: str | os.PathLike, n: int | None = None, seed: int = 0,
                   cache_dir: str | os.PathLike | None = None, progress: bool = False) -> SequenceSet:
    """Image sequences from ``builtin:sequences[-shifted]`` (cached) or a ``.npz``/HDF5 file.

    Args:
        spec: ``builtin:sequences``, ``builtin:sequences-shifted`` or a file path.
        n: number of sequences (built-in: generated with this many; files: the first ``n``).
        seed: generation seed of the built-in sets.
        cache_dir: cache directory (see :func:`astrovader.data.builtin.cache_root`).
        progress: show a progress bar while rendering.
    """
    spec = str(spec)
    if spec.startswith("builtin:"):
        from astrovader.data.builtin import cache_root

        name = spec.split(":", 1)[1]
        if name not in _BUILTIN:
            raise DataError(f"unknown built-in sequence set {name!r}; choose builtin:sequences or "
                            "builtin:sequences-shifted")
        default, version, shifted = _BUILTIN[name]
        n = int(n or default)
        if n < 1:
            raise DataError(f"n={n}: give a positive number of sequences")
        path = cache_root(cache_dir) / f"{name}-n{n}-seed{int(seed)}-v{version}.npz"
        if path.is_file():
            try:
                s = read_sequences(path)
                s.source = spec
                return s
            except DataError:
                pass  # damaged cache entry: regenerate
        s = render_sequences(n, seed=seed, shifted=shifted, progress=progress)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_sequences(s, path)
        except OSError as exc:
            raise DataError(f"{path.parent}: cannot write the dataset cache ({exc.strerror}); set "
                            "ASTROVADER_CACHE or data.cache_dir to a writable folder") from None
        return s
    s = read_sequences(spec)
    return s if n is None else s.subset(slice(0, int(n)))
