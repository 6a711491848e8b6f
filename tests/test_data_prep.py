"""Smoke tests of the data_prep scripts on tiny data (main(argv) with real files)."""

import numpy as np
import pytest
from astropy.io import fits

from astrovader.data import load
from data_prep import cutouts, render, to_shards


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ASTROVADER_CACHE", str(tmp_path / "cache"))
    np.random.seed(0)


@pytest.fixture
def field(tmp_path):
    """A 120x120 FITS image with 5 Gaussian sources away from the edges."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:120, :120]
    img = rng.normal(0, 1, (120, 120))
    for x, y in [(25, 30), (60, 60), (90, 25), (30, 95), (95, 90)]:
        img += 50 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2.0**2))
    path = tmp_path / "field.fits"
    fits.PrimaryHDU(img.astype(np.float32)).writeto(path)
    return path


def test_help_texts(capsys):
    for mod in (cutouts, render, to_shards):
        with pytest.raises(SystemExit) as e:
            mod.main(["--help"])
        assert e.value.code == 0
    assert "--overwrite" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["fits", "png", "npz"])
def test_cutouts(field, tmp_path, fmt):
    out = tmp_path / f"out_{fmt}"
    assert cutouts.main([str(field), str(out), "--size", "16", "--format", fmt, "--quiet"]) == 0
    s = load(out / "stamps.npz") if fmt == "npz" else load(out)
    assert s.images.shape == (5, 16, 16, 1)
    assert {(int(x), int(y)) for x, y in zip(s.columns["x"], s.columns["y"])} == {
        (25, 30), (60, 60), (90, 25), (30, 95), (95, 90)}
    assert (s.images[:, 8, 8, 0] >= s.images.max(axis=(1, 2, 3)) - 1e-6).all()  # centred on the peak
    # a second run refuses to overwrite
    assert cutouts.main([str(field), str(out), "--size", "16", "--format", fmt, "--quiet"]) == 2


def test_cutouts_bad_input_is_one_line(tmp_path, capsys):
    (tmp_path / "bad.fits").write_bytes(b"nope")
    assert cutouts.main([str(tmp_path / "bad.fits"), str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "bad.fits" in err and "\n" not in err


def test_render_npz_and_shards(tmp_path):
    out = tmp_path / "t.npz"
    assert render.main(["transients", str(out), "--n", "24", "--seed", "2", "--quiet"]) == 0
    s = load(out)
    assert s.images.shape == (24, 21, 21, 1) and s.label_names == ["bogus", "real"]
    assert "subtype" in s.columns and np.bincount(s.labels).tolist() == [12, 12]
    assert render.main(["transients", str(out), "--n", "24", "--quiet"]) == 2  # no overwrite
    sh = tmp_path / "sh"
    assert render.main(["digits", str(sh), "--n", "20", "--shard-size", "8", "--quiet"]) == 0
    r = load(sh)
    assert len(r) == 20 and r.label_names[3] == "3" and len(list(sh.glob("shard-*.tfrecord"))) == 3


def test_to_shards(tmp_path):
    x = np.random.default_rng(0).normal(size=(9, 6, 6)).astype(np.float32)
    np.savez(tmp_path / "a.npz", images=x, labels=np.arange(9) % 3)
    assert to_shards.main([str(tmp_path / "a.npz"), str(tmp_path / "s1"), "--shard-size", "4", "--quiet"]) == 0
    s = load(tmp_path / "s1")
    np.testing.assert_array_equal(s.images[..., 0], x)
    assert list(s.labels) == list(np.arange(9) % 3)
    assert to_shards.main([str(tmp_path / "a.npz"), str(tmp_path / "s2"), "--stream", "--batch-size", "4",
                           "--resize", "3", "3", "--quiet"]) == 0
    assert load(tmp_path / "s2").images.shape == (9, 3, 3, 1)
    assert to_shards.main([str(tmp_path / "a.npz"), str(tmp_path / "s1"), "--quiet"]) == 2
    assert to_shards.main([str(tmp_path / "a.npz"), str(tmp_path / "s1"), "--overwrite", "--quiet"]) == 0


def test_cutouts_from_png(tmp_path):
    from PIL import Image

    img = np.zeros((80, 80, 3), np.uint8)
    img[30:34, 40:44] = 255
    Image.fromarray(img).save(tmp_path / "field.png")
    assert cutouts.main([str(tmp_path / "field.png"), str(tmp_path / "o"), "--size", "16", "--format", "png",
                         "--quiet"]) == 0
    s = load(tmp_path / "o")
    assert s.images.shape == (1, 16, 16, 3) and s.images.max() == 1.0
