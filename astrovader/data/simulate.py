"""Labelled simulated stamps rendered with GalSim: galaxies and HiTS-like transients.

Parameters are drawn in the parent process from ``numpy.random.default_rng(seed)``; the
noise-free profiles are rendered by GalSim (in a 2-process pool with ``OMP_NUM_THREADS=1``
for large sets) and the noise is added afterwards from the same seeded generator, so the
output is identical for a seed whatever the number of worker processes.

Both sets are in units of the background noise (SNR images, seed 000 sec. II: the
difference image "normalized using a local estimation of the noise").
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

from astrovader.data.stampset import StampSet
from astrovader.errors import DataError

__all__ = ["render_galaxies", "render_transients", "GALAXY_CLASSES", "TRANSIENT_SUBTYPES", "require"]

GALAXY_CLASSES = ["bulge-dominated", "face-on disk", "edge-on disk", "with companion"]
BOGUS_SUBTYPES = ["dipole", "cosmic_ray", "hot_pixel", "bad_column", "saturated", "noise"]
TRANSIENT_SUBTYPES = ["point_source", "on_host"] + BOGUS_SUBTYPES
_POOL_MIN = 600  # below this many stamps a pool costs more than it saves
# Looser FFT accuracy than GalSim's defaults: ~2x faster, pixel errors < 1e-4 of the peak,
# far below the unit noise added afterwards.
_GSPARAMS = dict(folding_threshold=1e-2, maxk_threshold=2e-3)


def require(module: str, extra: str | None = "sim", what: str = "this dataset"):
    """Import an optional package or raise a one-line DataError naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        how = f"install the '{extra}' extra: pip install 'astrovader[{extra}]'" if extra else f"pip install {module}"
        raise DataError(f"{what} needs the package '{module}'; {how}") from None


def _init_worker() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        import galsim

        galsim.set_omp_threads(1)
    except Exception:  # noqa: BLE001 -- best effort; GalSim may be built without OpenMP
        pass


def _run(fn: Callable, rows: list, workers: int, progress: bool, desc: str) -> list:
    """Render ``fn(row)`` for every row, in a process pool when large; keeps order."""
    from tqdm import tqdm

    if workers <= 1 or len(rows) < _POOL_MIN:
        _init_worker()
        return [fn(r) for r in tqdm(rows, desc=desc, disable=not progress)]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(workers, mp_context=mp.get_context(method), initializer=_init_worker) as ex:
        return list(tqdm(ex.map(fn, rows, chunksize=64), total=len(rows), desc=desc, disable=not progress))


# --------------------------------------------------------------------------- galaxies


def _galaxy(row: dict) -> np.ndarray:
    import galsim

    gsp = galsim.GSParams(**_GSPARAMS)
    size = row["size"]
    beta = row["beta"] * galsim.degrees
    bulge = galsim.Sersic(n=row["sersic_n"], half_light_radius=row["bulge_hlr"], gsparams=gsp)
    bulge = bulge.shear(q=row["bulge_q"], beta=beta)
    disk = galsim.Exponential(half_light_radius=row["hlr"], gsparams=gsp).shear(q=row["q"], beta=beta)
    gal = row["bulge_frac"] * bulge + (1.0 - row["bulge_frac"]) * disk
    gal = gal.withFlux(row["flux"])
    if row["companion_flux_ratio"] > 0:
        comp = galsim.Sersic(n=row["companion_n"], half_light_radius=row["companion_hlr"], gsparams=gsp)
        comp = comp.shear(q=row["companion_q"], beta=row["companion_beta"] * galsim.degrees)
        comp = comp.withFlux(row["flux"] * row["companion_flux_ratio"]).shift(row["companion_dx"], row["companion_dy"])
        gal = gal + comp
    psf = galsim.Moffat(beta=3.0, fwhm=row["psf_fwhm"], gsparams=gsp)
    img = galsim.Convolve(gal, psf, gsparams=gsp).drawImage(nx=size, ny=size, scale=1.0, offset=(row["dx"], row["dy"]))
    return img.array.astype(np.float32)


def render_galaxies(n: int, seed: int = 0, size: int = 32, workers: int = 2, progress: bool = False) -> StampSet:
    """Bulge+disk galaxies in 4 balanced morphology classes (:data:`GALAXY_CLASSES`).

    * bulge-dominated: bulge fraction 0.7-1, Sersic n in {3, 3.5, 4}, round-ish;
    * face-on disk: bulge fraction 0-0.3, disk axis ratio q = cos(i), i in 0-50 deg;
    * edge-on disk: bulge fraction 0-0.3, q 0.12-0.3;
    * with companion: a primary of any of the three types plus a smaller galaxy 7-12 px
      away at flux ratio 0.25-0.9.

    Flux is log-uniform (total SNR ~ 15-150), half-light radius 1.5-5 px, orientation
    uniform, Moffat PSF (beta 3, FWHM 1.8-3 px), sub-pixel offsets, unit Gaussian noise.
    Continuous parameters and ``primary_type`` are kept as columns.
    """
    require("galsim", extra=None, what="builtin:galaxies")
    rng = np.random.default_rng([seed, 11])
    labels = rng.permutation(np.arange(n) % 4)
    rows = []
    for lab in labels:
        primary = int(rng.integers(0, 3)) if lab == 3 else int(lab)
        if primary == 0:
            bf, hlr, q = rng.uniform(0.7, 1.0), rng.uniform(1.5, 3.5), rng.uniform(0.5, 1.0)
        else:
            bf, hlr = rng.uniform(0.0, 0.3), rng.uniform(2.5, 5.0)
            q = np.cos(np.radians(rng.uniform(0, 50))) if primary == 1 else rng.uniform(0.12, 0.3)
        sep_, ang = rng.uniform(7, 12), rng.uniform(0, 2 * np.pi)
        row = dict(
            size=size, flux=float(np.exp(rng.uniform(np.log(400), np.log(4000)))), hlr=float(hlr), q=float(q),
            beta=float(rng.uniform(0, 180)), bulge_frac=float(bf),
            sersic_n=float(np.round(rng.uniform(3, 4) * 2) / 2), bulge_hlr=float(hlr * (1.0 if primary == 0 else 0.4)),
            bulge_q=float(rng.uniform(0.6, 1.0)), psf_fwhm=float(rng.uniform(1.8, 3.0)),
            dx=float(rng.uniform(-0.5, 0.5)), dy=float(rng.uniform(-0.5, 0.5)), primary_type=GALAXY_CLASSES[primary],
            companion_flux_ratio=float(rng.uniform(0.25, 0.9)) if lab == 3 else 0.0,
            companion_sep=float(sep_) if lab == 3 else 0.0,
            companion_dx=float(sep_ * np.cos(ang)), companion_dy=float(sep_ * np.sin(ang)),
            companion_hlr=float(rng.uniform(1.0, 2.5)), companion_q=float(rng.uniform(0.4, 1.0)),
            companion_beta=float(rng.uniform(0, 180)), companion_n=float(np.round(rng.uniform(1, 2.5) * 2) / 2),
        )
        rows.append(row)
    images = np.stack(_run(_galaxy, rows, workers, progress, "rendering galaxies"))
    images += np.random.default_rng([seed, 12]).standard_normal(images.shape).astype(np.float32)
    keep = ["flux", "hlr", "q", "beta", "bulge_frac", "sersic_n", "psf_fwhm", "companion_sep", "companion_flux_ratio"]
    columns = {k: np.array([r[k] for r in rows], np.float32) for k in keep}
    columns["primary_type"] = np.array([r["primary_type"] for r in rows])
    return StampSet(images=images[..., None], labels=labels, ids=[f"gal{i:06d}" for i in range(n)],
                    label_names=list(GALAXY_CLASSES), columns=columns, source="builtin:galaxies")


# --------------------------------------------------------------------------- transients


def _psf_image(size: int, fwhm: float, beta: float, dx: float, dy: float, flux: float = 1.0) -> np.ndarray:
    import galsim

    psf = galsim.Moffat(beta=beta, fwhm=fwhm, gsparams=galsim.GSParams(**_GSPARAMS)).withFlux(flux)
    return psf.drawImage(nx=size, ny=size, scale=1.0, offset=(dx, dy)).array.astype(np.float64)


def _transient(row: dict) -> np.ndarray:
    """Noise-free SNR signal of one candidate (see :func:`render_transients`)."""
    s, kind, r = row["size"], row["subtype"], np.random.default_rng(row["seed"])
    c = s // 2
    fwhm, beta, dx, dy, amp = row["fwhm"], row["moffat_beta"], row["dx"], row["dy"], row["peak_snr"]
    img = np.zeros((s, s))
    if kind in ("point_source", "on_host"):
        p = _psf_image(s, fwhm, beta, dx, dy)
        img = amp * p / p.max()
        if kind == "on_host":  # imperfectly subtracted host galaxy: faint, extended residual
            ang, d = r.uniform(0, 2 * np.pi), r.uniform(1.0, 4.0)
            host = _psf_image(s, fwhm * r.uniform(2.0, 3.5), 2.5, dx + d * np.cos(ang), dy + d * np.sin(ang))
            img += r.choice([-1.0, 1.0]) * r.uniform(1.0, 4.0) * host / host.max()
    elif kind == "dipole":  # misaligned subtraction: science PSF minus shifted template PSF
        ang = r.uniform(0, 2 * np.pi)
        d = r.uniform(0.3, 1.8)
        pos = _psf_image(s, fwhm, beta, dx + 0.5 * d * np.cos(ang), dy + 0.5 * d * np.sin(ang))
        neg = _psf_image(s, fwhm * r.uniform(0.9, 1.15), beta, dx - 0.5 * d * np.cos(ang), dy - 0.5 * d * np.sin(ang))
        img = amp * 1.5 * (pos - r.uniform(0.6, 1.1) * neg) / pos.max()
    elif kind == "cosmic_ray":  # sharp track, not convolved with the PSF
        length, ang = r.uniform(0.0, 6.0), r.uniform(0, np.pi)
        for t in np.linspace(-length / 2, length / 2, max(2, int(length * 3))):
            x, y = c + dx + t * np.cos(ang), c + dy + t * np.sin(ang)
            ix, iy = int(round(x)), int(round(y))
            if 0 <= ix < s and 0 <= iy < s:
                img[iy, ix] = max(img[iy, ix], 0.6 * amp * r.uniform(0.6, 1.0))
    elif kind == "hot_pixel":
        img[c, c] = amp
        if r.uniform() < 0.4:
            img[c + int(r.integers(-1, 2)), c + int(r.integers(-1, 2))] += amp * r.uniform(0.2, 0.6)
    elif kind == "bad_column":
        col = c + int(r.integers(-2, 3))
        lo = int(r.integers(0, c)) if r.uniform() < 0.5 else 0
        level = r.uniform(4, 15) * (1 if r.uniform() < 0.8 else -1)
        img[lo:, col] = level * r.uniform(0.8, 1.2, s - lo)
        if r.uniform() < 0.3:
            img[lo:, col + 1] = 0.5 * level
        img = img.T if r.uniform() < 0.3 else img  # bad rows occur too
    elif kind == "saturated":  # bright star residual: broad positive wing, negative core
        big = amp * 2.0
        wide = _psf_image(s, fwhm * r.uniform(1.2, 1.5), beta, dx, dy)
        narrow = _psf_image(s, fwhm, beta, dx, dy)
        img = big * (wide / wide.max() - r.uniform(0.8, 1.1) * narrow / narrow.max())
        if r.uniform() < 0.5:  # bleed trail
            img[:, c] += big * 0.15 * np.exp(-np.abs(np.arange(s) - c) / r.uniform(3, 8))
    elif kind == "noise":  # a noise fluctuation above threshold: faint, not PSF-shaped
        blob = _psf_image(s, fwhm * r.uniform(0.4, 1.0), beta, dx, dy)
        img = r.uniform(2.5, 5.0) * blob / blob.max()
    return img.astype(np.float32)


def render_transients(n: int, seed: int = 0, size: int = 21, workers: int = 2, progress: bool = False) -> StampSet:
    """HiTS-like SNR difference stamps: half real point sources, half artifacts.

    Real (label 1): Moffat PSF (FWHM 2.5-5 px, beta 2.5-4 in 0.5 steps) with peak SNR log-uniform in
    4-50 and sub-pixel offsets; a quarter (``on_host``) sit on a faint extended residual of
    an imperfectly subtracted host galaxy, the rest are ``point_source``. Bogus (label 0), equally split among
    ``dipole`` (misaligned subtraction), ``cosmic_ray`` (sharp 1-6 px tracks),
    ``hot_pixel``, ``bad_column`` (full or partial columns/rows), ``saturated`` (bright
    star residual with negative core, some with bleed trails) and ``noise`` (background
    fluctuations; the noise level is under-estimated by 1.1-1.6x). Noise is mildly
    correlated (resampling) and normalised to unit variance (seed 000 sec. II).
    Columns: ``subtype``, ``peak_snr``, ``fwhm``, ``dx``, ``dy``, ``noise_scale``.
    """
    require("galsim", extra=None, what="builtin:transients")
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng([seed, 21])
    labels = rng.permutation(np.arange(n) % 2)
    n_bogus = int((labels == 0).sum())
    bogus_kinds = rng.permutation(np.arange(n_bogus) % len(BOGUS_SUBTYPES))
    rows, k = [], 0
    for i, lab in enumerate(labels):
        if lab == 1:
            kind = "on_host" if rng.uniform() < 0.25 else "point_source"
        else:
            kind, k = BOGUS_SUBTYPES[bogus_kinds[k]], k + 1
        rows.append(dict(
            size=size, subtype=kind, seed=[seed, 22, i],
            fwhm=float(rng.uniform(2.5, 5.0)), moffat_beta=float(np.round(rng.uniform(2.5, 4.0) * 2) / 2),
            dx=float(rng.uniform(-0.5, 0.5)), dy=float(rng.uniform(-0.5, 0.5)),
            peak_snr=float(np.exp(rng.uniform(np.log(4), np.log(50)))),
            noise_scale=float(rng.uniform(1.1, 1.6)) if kind == "noise" else 1.0,
        ))
    signal = np.stack(_run(_transient, rows, workers, progress, "rendering transients"))
    nrng = np.random.default_rng([seed, 23])
    noise = nrng.standard_normal(signal.shape)
    noise = gaussian_filter(noise, sigma=(0, 0.6, 0.6), mode="reflect")
    noise /= noise.std()
    scale = np.array([r["noise_scale"] for r in rows])[:, None, None]
    images = (signal + noise * scale).astype(np.float32)
    columns = {
        "subtype": np.array([r["subtype"] for r in rows]),
        **{k: np.array([r[k] for r in rows], np.float32) for k in ("peak_snr", "fwhm", "dx", "dy", "noise_scale")},
    }
    return StampSet(images=images[..., None], labels=labels, ids=[f"cand{i:06d}" for i in range(n)],
                    label_names=["bogus", "real"], columns=columns, source="builtin:transients")
