"""Preprocessing: each scaling and step checked against hand-computed values."""

import numpy as np
import pytest

from astrovader.config import ConfigError, DataConfig
from astrovader.data import preprocess
from astrovader.errors import DataError


@pytest.fixture(autouse=True)
def _seed():
    np.random.seed(0)


def _one(values, c=1):
    return np.asarray(values, np.float32).reshape(1, -1, 1, 1).repeat(c, axis=-1)


def test_minmax():
    out = preprocess(_one([2, 4, 6, 10]), DataConfig(scaling="minmax"))
    np.testing.assert_allclose(out.ravel(), [0, 0.25, 0.5, 1.0])


def test_chase_median_absmax():  # seed 001 sec. 3
    out = preprocess(_one([1, 2, 3, 10, -5]), DataConfig(scaling="chase"))
    # median 2 -> [-1, 0, 1, 8, -7] / 8
    np.testing.assert_allclose(out.ravel(), [-0.125, 0, 0.125, 1.0, -0.875])
    assert out.min() >= -1 and out.max() <= 1


def test_asinh_uses_robust_noise():
    x = _one([0, 1, 2, 3, 4, 100])
    med = 2.5
    mad = 1.4826 * np.median(np.abs(np.array([0, 1, 2, 3, 4, 100]) - med))
    expect = np.arcsinh((np.array([0, 1, 2, 3, 4, 100]) - med) / mad)
    np.testing.assert_allclose(preprocess(x, DataConfig(scaling="asinh")).ravel(), expect, rtol=1e-5)


def test_asinh_snr_against_numpy():
    v = np.array([0, 1, 2, 3, 4, 100, -30, 5], np.float64)
    expect = np.arcsinh(v - np.median(v))
    np.testing.assert_allclose(preprocess(_one(v), DataConfig(scaling="asinh_snr")).ravel(), expect, rtol=1e-5)


def test_asinh_snr_keeps_the_noise_level():
    """A stamp with 1.5x the nominal noise stays 1.5x noisier near zero; asinh divides it out."""
    noise = np.random.default_rng(2).normal(0, 0.1, (21, 21))  # small: arcsinh is ~linear there
    x = np.stack([noise, 1.5 * noise])[..., None].astype(np.float32)
    snr = preprocess(x, DataConfig(scaling="asinh_snr"))
    assert 1.45 < snr[1].std() / snr[0].std() < 1.55
    plain = preprocess(x, DataConfig(scaling="asinh"))
    np.testing.assert_allclose(plain[1].std() / plain[0].std(), 1.0, rtol=1e-3)


def test_zscore_and_none():
    x = _one([1, 2, 3, 4])
    z = preprocess(x, DataConfig(scaling="zscore")).ravel()
    np.testing.assert_allclose(z, (np.arange(1, 5) - 2.5) / np.std(np.arange(1, 5)), rtol=1e-6)
    np.testing.assert_array_equal(preprocess(x, DataConfig()), x)


def test_asinh_peak_against_numpy():
    v = np.array([0, 1, 2, 3, 4, 100, -30, 5], np.float64)
    c = v - np.median(v)
    peak = np.percentile(np.abs(c), 99.5)
    expect = np.arcsinh(c / (0.5 * peak)) / np.arcsinh(2.0)
    np.testing.assert_allclose(preprocess(_one(v), DataConfig(scaling="asinh_peak")).ravel(), expect, rtol=1e-5)


@pytest.mark.parametrize("a", [0.2, 5.0])
def test_asinh_peak_softening_against_numpy(a):
    v = np.array([0, 1, 2, 3, 4, 100, -30, 5], np.float64)
    c = v - np.median(v)
    t = c / np.percentile(np.abs(c), 99.5)
    out = preprocess(_one(v), DataConfig(scaling="asinh_peak", peak_softening=a)).ravel()
    np.testing.assert_allclose(out, np.arcsinh(t / a) / np.arcsinh(1.0 / a), rtol=1e-5)
    if a >= 5:  # nearly linear in units of the peak
        np.testing.assert_allclose(out, t, atol=0.01)


@pytest.mark.parametrize("a", [0, -1.0])
def test_peak_softening_must_be_positive(a):
    with pytest.raises(ConfigError, match="data.peak_softening"):
        DataConfig(scaling="asinh_peak", peak_softening=a).validate()


def test_asinh_peak_is_brightness_invariant():
    """A galaxy 10x brighter (same shape, same noise) maps to nearly the same stamp; asinh does not."""
    r2 = ((np.arange(21) - 10.0) ** 2)[:, None] + ((np.arange(21) - 10.0) ** 2)[None]
    shape = np.exp(-np.sqrt(r2) / 2.0)
    noise = np.random.default_rng(1).normal(0, 1, shape.shape)
    faint, bright = (f * shape + noise for f in (100.0, 1000.0))
    x = np.stack([faint, bright])[..., None].astype(np.float32)
    peak = preprocess(x, DataConfig(scaling="asinh_peak"))
    assert np.abs(peak[0] - peak[1]).max() < 0.1
    assert 1.0 <= peak.max() < 1.5  # the peak (99.5th percentile) maps to 1
    plain = preprocess(x, DataConfig(scaling="asinh"))
    assert np.abs(plain[0] - plain[1]).max() > 1.0


@pytest.mark.parametrize("scaling", ["minmax", "chase", "asinh", "asinh_snr", "zscore", "asinh_peak"])
def test_constant_stamp_maps_to_zero(scaling):
    out = preprocess(np.full((2, 3, 3, 1), 7.0, np.float32), DataConfig(scaling=scaling))
    assert np.isfinite(out).all() and np.all(out == 0)


def test_scaling_is_per_stamp():
    x = np.stack([_one([0, 1, 2, 3])[0], _one([0, 10, 20, 30])[0]])
    out = preprocess(x, DataConfig(scaling="minmax"))
    np.testing.assert_allclose(out[0], out[1])


def test_grayscale_crop_resize_clip():
    x = np.zeros((1, 6, 6, 3), np.float32)
    x[..., 0], x[..., 1], x[..., 2] = 1.0, 2.0, 6.0
    x[0, 2:4, 2:4, :] += 3.0
    g = preprocess(x, DataConfig(grayscale=True))
    assert g.shape == (1, 6, 6, 1)
    np.testing.assert_allclose(g[0, 0, 0, 0], 3.0)  # band mean (seed 004)
    c = preprocess(x, DataConfig(grayscale=True, crop=[2, 2]))
    np.testing.assert_allclose(c[..., 0], 6.0)  # the bright centre
    r = preprocess(np.ones((2, 8, 8, 1), np.float32) * 5, DataConfig(resize=[4, 4]))
    assert r.shape == (2, 4, 4, 1)
    np.testing.assert_allclose(r, 5.0, rtol=1e-5)
    k = preprocess(_one([-3, 0, 0.5, 9]), DataConfig(clip=[-1, 1]))
    np.testing.assert_allclose(k.ravel(), [-1, 0, 0.5, 1])


def test_nan_policies():
    x = np.ones((3, 2, 2, 1), np.float32)
    x[1, 0, 0, 0] = np.nan
    x[2, 1, 1, 0] = np.inf
    with pytest.raises(DataError, match="2 stamp.*NaN/Inf.*first: id b.*nan_policy"):
        preprocess(x, DataConfig(), ids=np.array(["a", "b", "c"]))
    filled = preprocess(x, DataConfig(nan_policy="fill", fill_value=-2.0))
    assert filled[1, 0, 0, 0] == -2.0 and filled[2, 1, 1, 0] == -2.0 and filled[0].sum() == 4
    kept, keep = preprocess(x, DataConfig(nan_policy="drop"), return_keep=True)
    assert kept.shape[0] == 1 and list(keep) == [True, False, False]


def test_bad_settings_are_one_line_errors():
    x = np.ones((1, 4, 4, 1), np.float32)
    for cfg, match in [(DataConfig(scaling="log"), "data.scaling"), (DataConfig(nan_policy="skip"), "nan_policy"),
                       (DataConfig(crop=[8, 8]), "larger than the stamps"), (DataConfig(clip=[1, 0]), "data.clip")]:
        with pytest.raises(DataError, match=match) as e:
            preprocess(x, cfg)
        assert "\n" not in str(e.value)


def test_load_applies_config_and_drop_counts(tmp_path, monkeypatch):
    from astrovader.data import load

    x = np.random.default_rng(0).normal(size=(4, 3, 3, 1)).astype(np.float32)
    x[2, 0, 0, 0] = np.nan
    np.savez(tmp_path / "a.npz", images=x, labels=np.arange(4))
    s = load(DataConfig(spec=str(tmp_path / "a.npz"), nan_policy="drop", scaling="chase"))
    assert len(s) == 3 and list(s.labels) == [0, 1, 3] and s.meta["dropped_nonfinite"] == 1
    assert np.abs(s.images).max() == pytest.approx(1.0)
    raw = load(tmp_path / "a.npz", preprocess=False)
    assert np.isnan(raw.images).sum() == 1
