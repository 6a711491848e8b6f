"""Non-deep baselines beside the seed-003 classifiers.

* :func:`pixel_boosting` -- gradient-boosted trees on the raw pixels of the stamps
  (scikit-learn's ``HistGradientBoostingClassifier``), beside Deep-HiTS;
* :func:`light_curve_features` + :func:`light_curve_forest` -- the talk's "FATS + RF"
  comparison for the RCNN: aperture photometry of every frame of a sequence, a dozen
  light-curve features (amplitude, scatter, skew, kurtosis, a Lomb-Scargle period proxy,
  fraction of bright outliers...), and a random forest on them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pixel_boosting", "aperture_photometry", "light_curve_features", "FEATURE_NAMES",
           "light_curve_forest"]

FEATURE_NAMES = ["n_epochs", "log_mean_flux", "log_median_flux", "amplitude", "std_over_mean", "mad_over_median",
                 "skew", "kurtosis", "beyond_1std", "max_over_median", "min_over_median", "max_slope",
                 "log_period", "period_power", "time_of_max", "time_span", "first_last_ratio", "bright_fraction"]


def pixel_boosting(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int = 0,
                   max_iter: int = 300) -> np.ndarray:
    """Class probabilities of a HistGradientBoostingClassifier trained on flattened pixels."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    clf = HistGradientBoostingClassifier(max_iter=max_iter, random_state=seed)
    clf.fit(np.asarray(x_train).reshape(len(x_train), -1), y_train)
    return clf.predict_proba(np.asarray(x_test).reshape(len(x_test), -1))


def aperture_photometry(images: np.ndarray, radius: float = 3.0) -> np.ndarray:
    """Flux in a circular aperture at the stamp centre minus the median of an outer annulus.

    Args:
        images: ``(N, T, H, W[, C])`` sequences (bands are summed).
        radius: aperture radius in pixels.

    Returns:
        ``(N, T)`` fluxes (counts).
    """
    x = np.asarray(images, np.float32)
    if x.ndim == 5:
        x = x.sum(-1)
    h, w = x.shape[-2:]
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2)
    ap, ann = r <= radius, r >= min(h, w) / 2 - 2
    sky = np.median(x[..., ann], axis=-1)
    return (x[..., ap] - sky[..., None]).sum(-1)


def _features_one(t: np.ndarray, f: np.ndarray) -> list[float]:
    from scipy.signal import lombscargle
    from scipy.stats import kurtosis, skew

    n = len(f)
    mean, med, std = float(np.mean(f)), float(np.median(f)), float(np.std(f))
    mad = float(np.median(np.abs(f - med)))
    scale = max(abs(med), 1.0)
    amp = float(np.percentile(f, 95) - np.percentile(f, 5)) / scale
    order = np.argsort(t)
    t, f = t[order], f[order]
    dt = np.diff(t)
    slope = float(np.max(np.abs(np.diff(f)[dt > 0] / dt[dt > 0])) / scale) if (dt > 0).any() else 0.0
    span = float(t[-1] - t[0]) if n > 1 else 0.0
    log_p, power = 0.0, 0.0
    if n >= 5 and std > 0 and span > 0:
        periods = np.exp(np.linspace(np.log(0.2), np.log(max(0.3, span)), 300))
        pw = lombscargle(t, f - mean, 2 * np.pi / periods, normalize=True)
        j = int(np.argmax(pw))
        log_p, power = float(np.log(periods[j])), float(pw[j])
    return [n, np.log(max(abs(mean), 1.0)) * np.sign(mean), np.log(max(abs(med), 1.0)) * np.sign(med), amp,
            std / scale, mad / scale, float(skew(f)) if std > 0 else 0.0,
            float(kurtosis(f)) if std > 0 else 0.0, float(np.mean(np.abs(f - mean) > std)) if std > 0 else 0.0,
            float(f.max()) / scale, float(f.min()) / scale, slope, log_p, power,
            float((t[np.argmax(f)] - t[0]) / span) if span > 0 else 0.0, span,
            float(f[-1] / scale - f[0] / scale), float(np.mean(f > med + 5 * max(mad, 1e-6)))]


def light_curve_features(images: np.ndarray, times: np.ndarray, mask: np.ndarray, radius: float = 3.0) -> np.ndarray:
    """The :data:`FEATURE_NAMES` features ``(N, F)`` of each sequence's aperture light curve."""
    flux = aperture_photometry(images, radius)
    mask = np.asarray(mask, bool)
    return np.asarray([_features_one(np.asarray(times[i])[mask[i]], flux[i][mask[i]]) for i in range(len(flux))],
                      np.float32)


def light_curve_forest(f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray, seed: int = 0,
                       n_estimators: int = 500) -> np.ndarray:
    """Class probabilities of a random forest on light-curve features (the talk's FATS + RF)."""
    from sklearn.ensemble import RandomForestClassifier

    clf = RandomForestClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=1)
    clf.fit(f_train, y_train)
    return clf.predict_proba(f_test)
