"""Bad input and bad luck through the command line: one line, exit 2, nothing of the user's lost.

Every case here gets exactly one ``astrovader: error:`` line on stderr that names the file
and says what to do, exit status 2, no traceback, and leaves the user's files as they were.
Add a case whenever a user finds a new way to get a traceback (issue 10).
"""

import hashlib
import shutil
import struct
import zlib

import numpy as np
import pytest

from astrovader.cli import main
from astrovader.locks import WriteLock
from cli_helpers import tiny_config, tiny_npz, user_error


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny trained run (1 epoch) and its data."""
    root = tmp_path_factory.mktemp("bad")
    data = tiny_npz(root / "tiny.npz", n=60)
    cfgp = tiny_config(root / "tiny.yaml")
    out = root / "run"
    assert main(["train", "--config", str(cfgp), "--data", str(data), "--out", str(out), "--epochs", "1",
                 "--verbose", "0"]) == 0
    return out, data, cfgp


def _digest(path):
    """Content hash of a file or of every file under a folder (to prove nothing changed)."""
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def _png_header_only(path, width, height):
    """A PNG whose header claims ``width x height`` pixels (a few bytes on disk)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))


def test_decompression_bomb_png_in_a_stamp_folder(trained, tmp_path, capsys):
    from PIL import Image

    run, _, _ = trained
    folder = tmp_path / "stamps"
    folder.mkdir()
    Image.fromarray(np.zeros((12, 12), np.uint8)).save(folder / "a.png")
    _png_header_only(folder / "b.png", 30000, 30000)
    user_error(capsys, ["data", "info", "--data", folder], "b.png", "too large", "remove it")
    dest = tmp_path / "p.csv"
    user_error(capsys, ["predict", "--run", run, "--data", folder, "--out", dest, "--no-progress"], "b.png")
    assert not dest.exists()


@pytest.mark.parametrize("command", ["train", "predict", "generate", "export", "render"])
def test_output_that_cannot_be_written(trained, tmp_path, capsys, command):
    """--out below a file (as root, permissions cannot be tested; this fails the same way)."""
    run, data, cfgp = trained
    blocker = tmp_path / "afile"
    blocker.write_text("mine")
    target = blocker / ("p.csv" if command == "predict" else "out.npz" if command == "render" else "out")
    argv = {
        "train": ["train", "--config", cfgp, "--data", data, "--out", target, "--epochs", "1", "--verbose", "0"],
        "predict": ["predict", "--run", run, "--data", data, "--out", target, "--no-progress"],
        "generate": ["generate", "--run", run, "--n", "2", "--out", target],
        "export": ["export", "--run", run, "--out", target],
        "render": ["data", "render", "digits", "--n", "5", "--out", target],
    }[command]
    user_error(capsys, argv, "afile")
    assert blocker.read_text() == "mine"


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_model_file(trained, tmp_path, capsys, damage):
    run, data, _ = trained
    bad = tmp_path / "run"
    shutil.copytree(run, bad)
    blob = (run / "model.keras").read_bytes()
    (bad / "model.keras").write_bytes(b"not a model" if damage == "garbage" else blob[: len(blob) // 2])
    before = _digest(bad)
    user_error(capsys, ["evaluate", "--run", bad], "model.keras", "train the run again")
    user_error(capsys, ["predict", "--run", bad, "--data", data, "--out", tmp_path / "p.csv", "--no-progress"],
           "model.keras")
    assert _digest(bad) == before
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_and_inf_stamps(trained, tmp_path, capsys, value):
    run, data, cfgp = trained
    x = np.load(data)["images"].copy()
    x[3, 0, 0, 0] = value
    bad = tmp_path / "bad.npy"
    np.save(bad, x)
    before = _digest(run)
    user_error(capsys, ["train", "--config", cfgp, "--data", bad, "--out", tmp_path / "r", "--epochs", "1",
                    "--verbose", "0"], "bad.npy", "nan_policy")
    user_error(capsys, ["predict", "--run", run, "--data", bad, "--out", tmp_path / "p.csv", "--no-progress"],
           "bad.npy", "nan_policy")
    user_error(capsys, ["evaluate", "--run", run, "--data", bad], "bad.npy", "nan_policy")
    assert _digest(run) == before, "a failed evaluate must not touch the run"


def test_zero_variance_and_huge_stamps_are_handled(trained, tmp_path, capsys):
    """Constant stamps and stamps far larger than the network are predicted, not crashed on."""
    import csv

    run, _, _ = trained
    flat = tmp_path / "flat.npy"
    np.save(flat, np.ones((5, 12, 12, 1), np.float32))
    huge = tmp_path / "huge.npy"
    np.save(huge, np.random.default_rng(0).normal(size=(2, 1024, 1024, 1)).astype(np.float32))
    for data, n in ((flat, 5), (huge, 2)):
        dest = tmp_path / f"{data.stem}.csv"
        assert main(["predict", "--run", str(run), "--data", str(data), "--out", str(dest), "--no-progress"]) == 0
        rows = list(csv.DictReader(dest.open()))
        assert len(rows) == n
        assert all(np.isfinite(float(v)) for r in rows for k, v in r.items() if k != "id")
    assert "1024x1024 to 12x12" in capsys.readouterr().err


def test_wrong_channel_count(tmp_path, capsys):
    """Stamps with 2 bands for a network trained on 3: the error names the file and the fix."""
    rgb = tiny_npz(tmp_path / "rgb.npz", n=20, bands=3)
    cfgp = tiny_config(tmp_path / "tiny.yaml")
    run = tmp_path / "rgbrun"
    assert main(["train", "--config", str(cfgp), "--data", str(rgb), "--out", str(run), "--epochs", "1",
                 "--verbose", "0"]) == 0
    two = tmp_path / "two.npy"
    np.save(two, np.ones((4, 12, 12, 2), np.float32))
    user_error(capsys, ["predict", "--run", run, "--data", two, "--out", tmp_path / "p.csv", "--no-progress"],
           "two.npy", "2 bands", "takes 3")
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("flags, needle", [(["traverse", "--quantile", "3"], "quantile=3.0"),
                                           (["traverse", "--variables", "99"], "variables=[99]: give latent indices in 0..1"),
                                           (["traverse", "--steps", "4"], "odd number")])
def test_bad_explore_flags(trained, tmp_path, capsys, flags, needle):
    run, data, _ = trained
    user_error(capsys, ["explore", "--run", run, "--data", data, "--out", tmp_path / "e", *flags], needle)


def test_existing_outputs_are_never_overwritten(trained, tmp_path, capsys):
    run, data, cfgp = trained
    dest = tmp_path / "p.csv"
    dest.write_text("precious")
    user_error(capsys, ["predict", "--run", run, "--data", data, "--out", dest, "--no-progress"], "p.csv", "--overwrite")
    assert dest.read_text() == "precious"
    before = _digest(run)
    user_error(capsys, ["train", "--config", cfgp, "--data", data, "--out", run, "--epochs", "1"], "--overwrite")
    assert _digest(run) == before


def test_concurrent_writers_of_a_run_and_an_output(trained, tmp_path, capsys):
    """While another process writes a run or a table, a second writer stops with who holds it."""
    import os

    run, data, cfgp = trained
    before = _digest(run)
    with WriteLock(run, run / ".astrovader.lock"):
        msg = user_error(capsys, ["train", "--config", cfgp, "--data", data, "--out", run, "--epochs", "1",
                              "--overwrite"], "is being written by process", f"{os.getpid()}", "(host ")
        assert str(run) in msg
        user_error(capsys, ["evaluate", "--run", run], "is being written by process", "wait for it")
    assert _digest(run) == before, "--overwrite must not delete anything while another process holds the run"
    dest = tmp_path / "p.csv"
    with WriteLock(dest, tmp_path / "p.csv.lock"):
        user_error(capsys, ["predict", "--run", run, "--data", data, "--out", dest, "--no-progress"],
               "p.csv is being written by process", "wait for it or use another --out")
    assert not dest.exists()
    assert main(["predict", "--run", str(run), "--data", str(data), "--out", str(dest), "--no-progress"]) == 0
    assert not (tmp_path / "p.csv.lock").exists(), "the lock file is removed with the lock"


def test_a_real_bug_shows_a_traceback_and_asks_for_a_report(trained, monkeypatch, capsys):
    import astrovader.runs

    def broken(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(astrovader.runs, "evaluate_run", broken)
    run, _, _ = trained
    assert main(["evaluate", "--run", str(run)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: boom" in err and "please report" in err
