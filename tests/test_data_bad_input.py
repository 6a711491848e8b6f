"""Bad input: one-line DataError naming the file (and row) and the fix; user files untouched."""

import csv

import h5py
import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from astrovader.config import DataConfig
from astrovader.data import StampSet, iter_batches, load, write_shards
from astrovader.errors import AstrovaderError, DataError


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ASTROVADER_CACHE", str(tmp_path / "cache"))
    np.random.seed(0)


def _snapshot(d):
    return {p: p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _fails(spec, *match, **kw):
    """Assert load(spec) raises a one-line DataError containing every ``match``."""
    with pytest.raises(DataError) as e:
        load(spec, **kw)
    msg = str(e.value)
    assert "\n" not in msg and isinstance(e.value, AstrovaderError)
    for m in match:
        assert m in msg, msg
    return msg


def _png(path, shape=(4, 4), value=0):
    Image.fromarray(np.full(shape, value, np.uint8)).save(path)


def test_nan_and_inf_pixels(tmp_path):
    x = np.ones((3, 4, 4), np.float32)
    x[1, 2, 2] = np.nan
    fits.PrimaryHDU(x).writeto(tmp_path / "c.fits")
    _fails(tmp_path / "c.fits", "c.fits", "NaN/Inf", "id 1", "nan_policy")
    y = np.ones((2, 3, 3), np.float32)
    y[0, 0, 0] = np.inf
    np.save(tmp_path / "i.npy", y)
    _fails(tmp_path / "i.npy", "i.npy", "NaN/Inf", "nan_policy")
    assert len(load(DataConfig(spec=str(tmp_path / "i.npy"), nan_policy="drop"))) == 1


def test_mixed_shapes(tmp_path):
    _png(tmp_path / "a.png", (4, 4))
    _png(tmp_path / "b.png", (5, 4))
    _fails(tmp_path, "stamp b", "(5, 4, 1)", "data.resize")
    _png(tmp_path / "c.png", (4, 4))
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "b.png")
    _fails(tmp_path, "stamp b", "data.grayscale")


def test_wrong_array_shapes(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros((10, 784), np.float32))
    _fails(tmp_path / "flat.npy", "flat.npy", "(N, H, W)")
    fits.PrimaryHDU(np.zeros((2, 2, 2, 2, 2), np.float32)).writeto(tmp_path / "five.fits")
    _fails(tmp_path / "five.fits", "five.fits", "not a 2-D image")


def test_truncated_or_corrupt_files(tmp_path):
    _png(tmp_path / "ok.png", (16, 16), 7)
    data = (tmp_path / "ok.png").read_bytes()
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.png").write_bytes(data)
    (d / "b.png").write_bytes(data[: len(data) // 2])
    _fails(d, "b.png", "truncated or corrupt")
    (tmp_path / "x.fits").write_bytes(b"SIMPLE  =  garbage" * 10)
    _fails(tmp_path / "x.fits", "x.fits", "corrupt")
    np.savez(tmp_path / "z.npz", x=np.zeros((3, 4, 4)))
    (tmp_path / "t.npz").write_bytes((tmp_path / "z.npz").read_bytes()[:100])
    _fails(tmp_path / "t.npz", "t.npz", "corrupt")
    (tmp_path / "h.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 50)
    _fails(tmp_path / "h.h5", "h.h5", "HDF5")
    np.save(tmp_path / "n.npy", np.zeros((3, 4, 4)))
    (tmp_path / "tr.npy").write_bytes((tmp_path / "n.npy").read_bytes()[:150])
    _fails(tmp_path / "tr.npy", "tr.npy", "corrupt")


def test_corrupt_shard(tmp_path):
    write_shards(StampSet(images=np.ones((5, 3, 3, 1), np.float32)), tmp_path / "sh", shard_size=5)
    shard = tmp_path / "sh" / "shard-00000.tfrecord"
    shard.write_bytes(shard.read_bytes()[:-7])
    _fails(tmp_path / "sh", "shard-00000.tfrecord", "corrupt or truncated")


def test_non_image_file_in_image_directory(tmp_path):
    _png(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("hello")
    _fails(tmp_path, "notes.txt", "not an image file", "move it out")
    (tmp_path / "notes.txt").unlink()
    (tmp_path / ".DS_Store").write_text("hidden files are ignored")
    assert len(load(tmp_path)) == 1


def test_empty_directory(tmp_path):
    (tmp_path / "e").mkdir()
    _fails(tmp_path / "e", "is empty")


def test_label_count_mismatch(tmp_path):
    np.savez(tmp_path / "a.npz", images=np.zeros((5, 3, 3)), labels=np.arange(4))
    _fails(tmp_path / "a.npz", "a.npz", "5 images but 4 labels")
    with h5py.File(tmp_path / "b.h5", "w") as f:
        f["x"] = np.zeros((5, 3, 3))
        f["y"] = np.arange(6)
    _fails(tmp_path / "b.h5", "b.h5", "5 images but 6 labels")


def test_unsupported_dtypes(tmp_path):
    np.save(tmp_path / "c.npy", np.zeros((2, 3, 3), np.complex64))
    _fails(tmp_path / "c.npy", "c.npy", "unsupported pixel dtype complex64")
    np.save(tmp_path / "o.npy", np.array([[["a"]]], dtype=object), allow_pickle=True)
    _fails(tmp_path / "o.npy", "o.npy", "unsupported dtype")
    np.savez(tmp_path / "s.npz", x=np.array([[["a", "b"]]]))
    _fails(tmp_path / "s.npz", "s.npz", "unsupported pixel dtype")
    np.savez(tmp_path / "l.npz", x=np.zeros((2, 3, 3)), y=np.array([0.5, 1.5]))
    _fails(tmp_path / "l.npz", "l.npz", "not integers")


def test_zero_size_images(tmp_path):
    np.save(tmp_path / "z.npy", np.zeros((4, 0, 0), np.float32))
    _fails(tmp_path / "z.npy", "z.npy", "zero-size")
    fits.PrimaryHDU(np.zeros((0, 5), np.float32)).writeto(tmp_path / "z.fits")
    _fails(tmp_path / "z.fits", "z.fits")


def test_catalog_row_pointing_at_missing_file(tmp_path):
    _png(tmp_path / "a.png")
    with open(tmp_path / "cat.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "path", "label"])
        w.writerow(["x1", "a.png", 0])
        w.writerow(["x2", "missing.png", 1])
    msg = _fails(tmp_path / "cat.csv", "cat.csv line 3", "missing.png", "not found", "fix the path")
    assert "row" in msg
    with pytest.raises(DataError, match="cat.csv line 3"):
        list(iter_batches(tmp_path / "cat.csv", 1, start=1))  # the streaming path names the row too


def test_catalog_problems(tmp_path):
    (tmp_path / "nopath.csv").write_text("id,label\na,0\n")
    _fails(tmp_path / "nopath.csv", "no path column")
    _png(tmp_path / "a.png")
    (tmp_path / "blank.csv").write_text("path,label\na.png,\n")
    _fails(tmp_path / "blank.csv", "blank.csv line 2", "empty label")
    (tmp_path / "lab.csv").write_text("path,kind\na.png,0\n")
    _fails(DataConfig(spec=str(tmp_path / "lab.csv"), label_column="morph"), "label column 'morph' not in catalog")


def test_missing_path_and_unknown_suffix(tmp_path):
    _fails(tmp_path / "nothere.fits", "nothere.fits", "not found")
    (tmp_path / "data.xyz").write_text("?")
    _fails(tmp_path / "data.xyz", "data.xyz", "unsupported file type")


def test_never_overwrites_or_deletes_user_files(tmp_path):
    d = tmp_path / "user"
    d.mkdir()
    _png(d / "a.png")
    (d / "b.png").write_bytes(b"broken")
    (d / "keep.txt").write_text("mine")
    before = _snapshot(d)
    for spec in (d, d / "b.png"):
        with pytest.raises(DataError):
            load(spec)
    with pytest.raises(DataError, match="not empty.*--overwrite"):
        write_shards(StampSet(images=np.ones((2, 3, 3, 1), np.float32)), d, shard_size=1)
    assert _snapshot(d) == before
