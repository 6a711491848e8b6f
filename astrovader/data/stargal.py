"""Labelled star / galaxy stamps rendered with GalSim, in one (r) or five (ugriz) bands.

The built-in ``stargal`` (1 band) and ``stargal5`` (5 bands, seed 002's 64x64x5 ugriz
stamps at 32x32) sets stand in for seed 002's SDSS cut-outs: stars are the PSF alone,
galaxies are bulge + disk profiles of all types (bulge-dominated, disks at any
inclination, small compact galaxies that are hard to tell from stars) convolved with the
same PSF. Each band has its own PSF width (seeing improves to the red), its own noise
level and its own flux: stars get a black-body-like colour, a galaxy's bulge is red and
its disk blue, so the bands carry information. Images are in units of the r-band noise.
"""

from __future__ import annotations

import numpy as np

from astrovader.data.simulate import _GSPARAMS, _run, require
from astrovader.data.stampset import StampSet
from astrovader.errors import ConfigError

__all__ = ["render_stargal", "BANDS", "STARGAL_CLASSES"]

BANDS = ("u", "g", "r", "i", "z")
STARGAL_CLASSES = ["star", "galaxy"]
_PSF_SCALE = np.array([1.25, 1.12, 1.0, 0.95, 0.92])  # FWHM relative to r
_NOISE = np.array([2.0, 1.0, 1.0, 1.2, 1.8])  # noise relative to r
_BULGE_SED = np.array([0.25, 0.6, 1.0, 1.25, 1.4])
_DISK_SED = np.array([0.7, 0.95, 1.0, 0.95, 0.85])


def _stamp(row: dict) -> np.ndarray:
    import galsim

    gsp = galsim.GSParams(**_GSPARAMS)
    size, bands = row["size"], row["bands"]
    out = np.zeros((size, size, len(bands)), np.float32)
    for j, b in enumerate(bands):
        psf = galsim.Moffat(beta=3.0, fwhm=row["psf_fwhm"] * _PSF_SCALE[b], gsparams=gsp)
        if row["label"] == 0:
            obj = psf.withFlux(row["flux"] * row["sed"][j])
        else:
            beta = row["beta"] * galsim.degrees
            bulge = galsim.DeVaucouleurs(half_light_radius=row["bulge_hlr"], gsparams=gsp).shear(q=row["bulge_q"], beta=beta)
            disk = galsim.Exponential(half_light_radius=row["hlr"], gsparams=gsp).shear(q=row["q"], beta=beta)
            fb = row["flux"] * row["bulge_frac"] * _BULGE_SED[b]
            fd = row["flux"] * (1.0 - row["bulge_frac"]) * _DISK_SED[b]
            obj = galsim.Convolve(bulge.withFlux(fb) + disk.withFlux(fd), psf, gsparams=gsp)
        img = obj.drawImage(nx=size, ny=size, scale=1.0, offset=(row["dx"], row["dy"]))
        out[..., j] = img.array
    return out


def render_stargal(n: int, seed: int = 0, size: int = 32, bands: int = 1, star_fraction: float = 0.5,
                   workers: int = 2, progress: bool = False) -> StampSet:
    """Stars (label 0) and galaxies (label 1), ``(n, size, size, bands)`` in r-band SNR units.

    Args:
        n: number of stamps.
        seed: generation seed (same stamps for the same seed).
        size: stamp side in pixels.
        bands: 1 (r) or 5 (u, g, r, i, z).
        star_fraction: fraction of stars (the known class proportion of seed 002 sec. 3.1.1).
        workers: GalSim rendering processes.
        progress: show a progress bar.

    Stars: Moffat PSF (beta 3, r-band FWHM 1.8-3 px), flux log-uniform 300-5000, colour
    from a temperature-like parameter. Galaxies: de Vaucouleurs bulge + exponential disk,
    bulge fraction 0-1, half-light radius log-uniform 0.6-5 px (the small ones are nearly
    point-like), axis ratio 0.15-1, any orientation, flux log-uniform 300-5000. Columns:
    ``flux``, ``hlr``, ``bulge_frac``, ``q``, ``psf_fwhm``.
    """
    require("galsim", what="builtin:stargal")
    if bands not in (1, 5):
        raise ConfigError(f"bands={bands}: choose 1 (r) or 5 (ugriz)")
    band_idx = [2] if bands == 1 else list(range(5))
    rng = np.random.default_rng([seed, 31, bands])
    n_star = int(round(n * star_fraction))
    labels = rng.permutation(np.r_[np.zeros(n_star, int), np.ones(n - n_star, int)])
    rows = []
    for lab in labels:
        t = rng.uniform(-1, 1)  # star colour: blue (-1) .. red (+1)
        sed = np.array([1.0 + 0.6 * t * (2 - k) / 2 for k in range(5)])
        sed = np.clip(sed, 0.1, None)[band_idx] / np.clip(sed, 0.1, None)[2]
        hlr = float(np.exp(rng.uniform(np.log(0.6), np.log(5.0))))
        rows.append(dict(
            size=size, bands=band_idx, label=int(lab), sed=sed.tolist(),
            flux=float(np.exp(rng.uniform(np.log(300), np.log(5000)))), hlr=hlr,
            bulge_hlr=float(hlr * rng.uniform(0.3, 0.8)), bulge_frac=float(rng.uniform(0, 1)),
            bulge_q=float(rng.uniform(0.6, 1.0)), q=float(rng.uniform(0.15, 1.0)), beta=float(rng.uniform(0, 180)),
            psf_fwhm=float(rng.uniform(1.8, 3.0)), dx=float(rng.uniform(-0.5, 0.5)), dy=float(rng.uniform(-0.5, 0.5)),
        ))
    images = np.stack(_run(_stamp, rows, workers, progress, "rendering stars and galaxies"))
    noise = np.random.default_rng([seed, 32, bands]).standard_normal(images.shape).astype(np.float32)
    images += noise * _NOISE[band_idx][None, None, None, :].astype(np.float32)
    columns = {k: np.array([r[k] if lab else (0.0 if k in ("hlr", "bulge_frac") else r[k])
                            for r, lab in zip(rows, labels)], np.float32)
               for k in ("flux", "hlr", "bulge_frac", "q", "psf_fwhm")}
    name = "stargal" if bands == 1 else "stargal5"
    return StampSet(images=images.astype(np.float32), labels=labels, ids=[f"sg{i:06d}" for i in range(n)],
                    label_names=list(STARGAL_CLASSES), columns=columns, source=f"builtin:{name}")
