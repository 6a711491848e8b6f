"""Readers: every format returns the pixel values written, plus labels, ids and columns."""

import csv

import h5py
import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from astrovader.config import DataConfig
from astrovader.data import StampSet, info, iter_batches, load, make_dataset, write_shards


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ASTROVADER_CACHE", str(tmp_path / "cache"))
    np.random.seed(0)


def _stamps(n=6, h=5, w=4, c=1, seed=0):
    return np.random.default_rng(seed).normal(size=(n, h, w, c)).astype(np.float32)


def test_png_directory_values_scaled_to_unit(tmp_path):
    arr = np.random.default_rng(1).integers(0, 256, size=(3, 6, 7), dtype=np.uint8)
    for i, a in enumerate(arr):
        Image.fromarray(a).save(tmp_path / f"s{i}.png")
    s = load(tmp_path)
    assert s.images.shape == (3, 6, 7, 1) and s.images.dtype == np.float32
    np.testing.assert_allclose(s.images[..., 0], arr / 255.0, atol=1e-6)
    assert list(s.ids) == ["s0", "s1", "s2"] and s.labels is None


def test_rgba_jpeg_tiff16_and_float_tiff(tmp_path):
    rgba = np.random.default_rng(2).integers(0, 256, size=(4, 4, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    x = load(tmp_path / "a.png").images[0]
    np.testing.assert_allclose(x, rgba[..., :3] / 255.0, atol=1e-6)  # alpha dropped
    t16 = np.arange(20, dtype=np.uint16).reshape(4, 5) * 3000
    Image.fromarray(t16).save(tmp_path / "b.tif")
    np.testing.assert_allclose(load(tmp_path / "b.tif").images[0, ..., 0], t16 / 65535.0, atol=1e-6)
    tf32 = np.linspace(-3, 5, 12, dtype=np.float32).reshape(3, 4)
    Image.fromarray(tf32, mode="F").save(tmp_path / "c.tiff")
    np.testing.assert_allclose(load(tmp_path / "c.tiff").images[0, ..., 0], tf32)
    Image.fromarray(np.full((5, 5, 3), 128, np.uint8)).save(tmp_path / "d.jpg", quality=95)
    np.testing.assert_allclose(load(tmp_path / "d.jpg").images, 128 / 255.0, atol=0.02)


def test_class_subdirectories_give_labels(tmp_path):
    for cls in ("elliptical", "spiral"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.fromarray(np.full((4, 4), 10 * i, np.uint8)).save(tmp_path / cls / f"{i}.png")
    s = load(tmp_path)
    assert s.label_names == ["elliptical", "spiral"]
    assert list(s.labels) == [0, 0, 1, 1] and s.ids[2] == "spiral/0"


def test_fits_image_cube_and_table(tmp_path):
    cube = _stamps(4, 6, 6)[..., 0]
    table = fits.BinTableHDU.from_columns([
        fits.Column(name="id", format="10A", array=np.array(["a", "b", "c", "d"])),
        fits.Column(name="label", format="K", array=np.array([0, 1, 1, 0])),
        fits.Column(name="snr", format="D", array=np.array([1.0, 2.0, 3.0, 4.0])),
    ])
    fits.HDUList([fits.PrimaryHDU(cube.astype(">f4")), table]).writeto(tmp_path / "cube.fits")
    s = load(tmp_path / "cube.fits")
    np.testing.assert_allclose(s.images[..., 0], cube)
    assert list(s.ids) == ["a", "b", "c", "d"] and list(s.labels) == [0, 1, 1, 0]
    np.testing.assert_allclose(s.columns["snr"], [1, 2, 3, 4])
    # a directory of single-image FITS (2-D) and a multi-band FITS stamp (C, H, W)
    d = tmp_path / "dir"
    d.mkdir()
    for i in range(3):
        fits.PrimaryHDU(cube[i]).writeto(d / f"st{i}.fits")
    np.testing.assert_allclose(load(d).images[..., 0], cube[:3])
    fits.PrimaryHDU(np.stack([cube[0], 2 * cube[0]])).writeto(tmp_path / "bands.fits")
    x = load(tmp_path / "bands.fits").images  # 3-D single file = cube of 2 stamps
    assert x.shape == (2, 6, 6, 1)


def test_npy_npz_hdf5(tmp_path):
    x = _stamps(5, 4, 4, 2)
    np.save(tmp_path / "a.npy", x)
    np.testing.assert_array_equal(load(tmp_path / "a.npy").images, x)
    np.save(tmp_path / "b.npy", x[..., 0].astype(np.int16))
    assert load(tmp_path / "b.npy").images.shape == (5, 4, 4, 1)
    np.savez(tmp_path / "c.npz", x=x, y=np.arange(5) % 2, ids=np.array(list("abcde")), snr=np.arange(5.0))
    s = load(tmp_path / "c.npz")
    np.testing.assert_array_equal(s.images, x)
    assert list(s.labels) == [0, 1, 0, 1, 0] and s.ids[4] == "e"
    np.testing.assert_array_equal(s.columns["snr"], np.arange(5.0))
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["images"] = x
        f["labels"] = np.arange(5)
        f["label_names"] = np.array([b"a", b"b", b"c", b"d", b"e"])
    s = load(tmp_path / "d.h5", n=3)
    np.testing.assert_array_equal(s.images, x[:3])
    assert list(s.labels) == [0, 1, 2] and s.label_names[1] == "b"


def test_csv_catalog_labels_and_columns(tmp_path):
    x = (np.random.default_rng(3).random((4, 5, 5)) * 255).astype(np.uint8)
    (tmp_path / "st").mkdir()
    rows = []
    for i in range(4):
        Image.fromarray(x[i]).save(tmp_path / "st" / f"{i}.png")
        rows.append({"id": f"obj{i}", "path": f"st/{i}.png", "morph": ["E", "S"][i % 2],
                     "p_smooth": 0.9 - 0.2 * i, "p_disk": 0.1 + 0.25 * i})
    with open(tmp_path / "cat.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    s = load(DataConfig(spec=str(tmp_path / "cat.csv"), label_column="morph"))
    np.testing.assert_allclose(s.images[..., 0], x / 255.0, atol=1e-6)
    assert s.label_names == ["E", "S"] and list(s.labels) == [0, 1, 0, 1]
    np.testing.assert_allclose(s.columns["p_smooth"], [0.9, 0.7, 0.5, 0.3])
    votes = load(DataConfig(spec=str(tmp_path / "cat.csv"), label_column="p_smooth,p_disk"))
    assert votes.label_names == ["p_smooth", "p_disk"] and list(votes.labels) == [0, 0, 1, 1]


def test_mixed_shapes_reconciled_by_resize(tmp_path):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.full((16, 16, 3), 255, np.uint8)).save(tmp_path / "b.png")
    s = load(DataConfig(spec=str(tmp_path), resize=[4, 4], grayscale=True))
    assert s.images.shape == (2, 4, 4, 1)
    np.testing.assert_allclose(s.images[1], 1.0, atol=1e-5)


def test_shard_round_trip(tmp_path):
    x = _stamps(7, 3, 3, 2)
    s = StampSet(images=x, labels=np.arange(7) % 3, ids=[f"i{k}" for k in range(7)], label_names=["a", "b", "c"],
                 columns={"snr": np.arange(7.0), "kind": np.array(list("pqrstuv"))})
    m = write_shards(s, tmp_path / "sh", shard_size=3)
    assert m["count"] == 7 and len(m["shards"]) == 3
    r = load(tmp_path / "sh")
    np.testing.assert_array_equal(r.images, x)
    np.testing.assert_array_equal(r.labels, s.labels)
    assert list(r.ids) == list(s.ids) and r.label_names == ["a", "b", "c"]
    np.testing.assert_allclose(r.columns["snr"], np.arange(7.0))
    assert list(r.columns["kind"]) == list("pqrstuv")
    assert len(load(str(tmp_path / "sh" / "shard-*.tfrecord"))) == 7  # glob without manifest
    ids, batch = zip(*iter_batches(tmp_path / "sh", 2, start=3))
    np.testing.assert_array_equal(np.concatenate(batch), x[3:])
    assert list(np.concatenate(ids)) == [f"i{k}" for k in range(3, 7)]
    got = np.concatenate(list(make_dataset(str(tmp_path / "sh"), 4, shuffle=False, cache=False).as_numpy_iterator()))
    np.testing.assert_array_equal(got, x)


@pytest.mark.parametrize("kind", ["npy", "h5", "dir", "fits"])
def test_streaming_is_ordered_and_resumable(tmp_path, kind):
    x = _stamps(11, 4, 4)
    spec = tmp_path / "in"
    if kind == "npy":
        spec = tmp_path / "a.npy"
        np.save(spec, x)
    elif kind == "h5":
        spec = tmp_path / "a.h5"
        with h5py.File(spec, "w") as f:
            f["x"] = x
    elif kind == "fits":
        spec = tmp_path / "a.fits"
        fits.PrimaryHDU(x[..., 0]).writeto(spec)
    else:
        spec.mkdir()
        for i in range(11):
            fits.PrimaryHDU(x[i, ..., 0]).writeto(spec / f"s{i:02d}.fits")
    cfg = DataConfig(spec=str(spec), scaling="minmax")
    full = load(cfg).images
    batches = list(iter_batches(cfg, 4))
    assert [len(b) for _, b in batches] == [4, 4, 3]
    np.testing.assert_allclose(np.concatenate([b for _, b in batches]), full)
    ids, resumed = zip(*iter_batches(cfg, 4, start=6))
    np.testing.assert_allclose(np.concatenate(resumed), full[6:])
    streamed = np.concatenate(list(make_dataset(cfg, 5, shuffle=False, cache=False).as_numpy_iterator()))
    np.testing.assert_allclose(streamed, full)


def test_make_dataset_batches_shuffles_and_augments(tmp_path):
    x = np.arange(20 * 3 * 3, dtype=np.float32).reshape(20, 3, 3, 1)
    ds = make_dataset(x, 8, shuffle=True, seed=1)
    e1 = np.concatenate(list(ds.as_numpy_iterator()))
    e2 = np.concatenate(list(ds.as_numpy_iterator()))
    assert [b.shape[0] for b in ds.as_numpy_iterator()] == [8, 8, 4]
    assert sorted(e1[:, 0, 0, 0]) == sorted(x[:, 0, 0, 0]) and not np.array_equal(e1, e2)  # reshuffled
    again = np.concatenate(list(make_dataset(x, 8, shuffle=True, seed=1).as_numpy_iterator()))
    np.testing.assert_array_equal(e1, again)  # deterministic for a seed
    aug = np.concatenate(list(make_dataset(x, 8, shuffle=False, augment_flips=True, augment_rot90=True, seed=0)))
    d8 = lambda a: {np.rot90(f, k).tobytes() for f in (a, a[::-1]) for k in range(4)}  # noqa: E731
    for a, b in zip(x[..., 0], aug[..., 0]):
        assert b.tobytes() in d8(a)  # each output is one of the 8 symmetries of its input
    assert sum(not np.array_equal(a, b) for a, b in zip(x, aug)) >= 10
    rot = np.concatenate(list(make_dataset(x, 8, shuffle=False, augment_rot90=True, seed=2)))
    for a, b in zip(x[..., 0], rot[..., 0]):
        assert b.tobytes() in {np.rot90(a, k).tobytes() for k in range(4)}  # rotations only, no mirror
    assert len(list(make_dataset(x, 8, drop_remainder=True))) == 2


def test_info_summary():
    x = _stamps(4, 3, 3)
    x[1, 0, 0, 0] = np.nan
    d = info(StampSet(images=x, labels=[0, 1, 1, 1], label_names=["bogus", "real"]))
    assert d["count"] == 4 and d["shape"] == [3, 3, 1]
    assert d["nonfinite_pixels"] == 1 and d["nonfinite_stamps"] == 1
    assert d["label_counts"] == {"bogus": 1, "real": 3}
    assert d["min"] == pytest.approx(float(np.nanmin(x)))
