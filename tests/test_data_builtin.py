"""Built-in datasets: shape, value range, label balance, determinism, caching (small counts)."""

import sys

import numpy as np
import pytest

from astrovader.config import DataConfig
from astrovader.data import builtin_names, cache_root, load
from astrovader.errors import DataError


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ASTROVADER_CACHE", str(tmp_path / "cache"))
    np.random.seed(0)


CASES = {  # name: (n, stamp shape, number of classes or None)
    "mnist5k": (40, (28, 28, 1), 10),
    "digits": (30, (8, 8, 1), 10),
    "hdf": (20, (32, 32, 3), None),
    "galaxies": (40, (32, 32, 1), 4),
    "transients": (60, (21, 21, 1), 2),
}


def test_names():
    # the star/galaxy sets of seed 002 are checked in tests/test_seed_systems*.py
    assert builtin_names() == list(CASES) + ["stargal", "stargal5"]


@pytest.mark.parametrize("name", list(CASES))
def test_builtin_shape_balance_determinism(name, tmp_path):
    n, shape, k = CASES[name]
    s = load(f"builtin:{name}", n=n, seed=3)
    assert s.images.shape == (n, *shape) and s.images.dtype == np.float32
    assert np.isfinite(s.images).all() and len(set(s.ids)) == n
    if k is None:
        assert s.labels is None
    else:
        counts = np.bincount(s.labels, minlength=k)
        assert len(s.label_names) == k and counts.max() - counts.min() <= 1  # balanced
    files = list(cache_root().glob(f"{name}-n{n}-seed3-v*.npz"))
    assert len(files) == 1  # generated once into the cache (atomic rename, no temp left)
    assert not list(cache_root().glob(".*tmp*"))
    again = load(f"builtin:{name}", n=n, seed=3)
    np.testing.assert_array_equal(again.images, s.images)
    fresh = load(f"builtin:{name}", n=n, seed=3, cache_dir=str(tmp_path / "other"))  # regenerated, not cached
    np.testing.assert_array_equal(fresh.images, s.images)
    if k is not None:
        np.testing.assert_array_equal(fresh.labels, s.labels)
        assert not np.array_equal(load(f"builtin:{name}", n=n, seed=4).images, s.images)


def test_value_ranges_of_real_sets():
    for name in ("mnist5k", "digits", "hdf"):
        x = load(f"builtin:{name}", n=20).images
        assert x.min() >= 0.0 and x.max() <= 1.0 and x.max() > 0.5


def test_transients_are_snr_stamps_with_subtypes():
    s = load("builtin:transients", n=84, seed=0)
    sub = s.columns["subtype"]
    real = s.labels == 1
    assert set(sub[real]) <= {"point_source", "on_host"}
    assert set(sub[~real]) == {"dipole", "cosmic_ray", "hot_pixel", "bad_column", "saturated", "noise"}
    assert s.label_names == ["bogus", "real"]
    # unit background noise: the border of real stamps is noise with std ~ 1
    border = np.concatenate([s.images[real, :3, :, 0].ravel(), s.images[real, -3:, :, 0].ravel()])
    assert 0.8 < border.std() < 1.3
    # real stamps peak near the centre at >= ~4 sigma
    peak = s.images[real, 8:13, 8:13, 0].max(axis=(1, 2))
    assert np.median(peak) > 5
    for col in ("peak_snr", "fwhm", "dx", "dy"):
        assert s.columns[col].shape == (84,)


def test_galaxies_classes_and_parameters():
    s = load("builtin:galaxies", n=40, seed=1)
    q, comp = s.columns["q"], s.columns["companion_sep"]
    edge = s.labels == s.label_names.index("edge-on disk")
    face = s.labels == s.label_names.index("face-on disk")
    assert q[edge].max() <= 0.3 < q[face].min()
    withc = s.labels == s.label_names.index("with companion")
    assert (comp[withc] >= 7).all() and (comp[~withc] == 0).all()
    assert set(np.unique(s.columns["sersic_n"] * 2 % 1)) == {0.0}  # 0.5 steps
    assert s.images[:, 12:20, 12:20].mean() > 5 * s.images[:, :3, :3].std()  # a bright centred galaxy


def test_n_too_large_and_unknown_name():
    with pytest.raises(DataError, match="has 1797 stamps"):
        load("builtin:digits", n=5000)
    with pytest.raises(DataError, match="unknown built-in dataset 'cifar'"):
        load("builtin:cifar")


def test_missing_optional_package_names_the_extra(monkeypatch, tmp_path):
    from astrovader.data import builtin

    monkeypatch.setenv("ASTROVADER_CACHE", str(tmp_path))  # not rendered by an earlier test...
    builtin._hdf_raw.cache_clear()  # ...nor held in this process
    monkeypatch.setitem(sys.modules, "skimage", None)  # import skimage -> ImportError
    with pytest.raises(DataError, match=r"needs the package 'skimage'.*astrovader\[sim\]") as e:
        load("builtin:hdf", n=7)
    assert "\n" not in str(e.value)
    monkeypatch.setitem(sys.modules, "galsim", None)  # a broken install: galsim is a requirement
    with pytest.raises(DataError, match=r"needs the package 'galsim'; pip install galsim"):
        load("builtin:galaxies", n=8)


def test_data_config_cache_dir(tmp_path):
    s = load(DataConfig(spec="builtin:digits", n=10, cache_dir=str(tmp_path / "c"), scaling="minmax"))
    assert (tmp_path / "c").is_dir() and len(list((tmp_path / "c").glob("digits-*.npz"))) == 1
    assert s.images.max() == pytest.approx(1.0)


def test_make_dataset_from_builtin_spec():
    from astrovader.data import make_dataset

    ds = make_dataset(DataConfig(spec="builtin:digits", n=10, flips=True, scaling="minmax"), 4, seed=1)
    batches = list(ds.as_numpy_iterator())
    assert [len(b) for b in batches] == [4, 4, 2] and batches[0].shape[1:] == (8, 8, 1)
    assert max(b.max() for b in batches) == pytest.approx(1.0)
