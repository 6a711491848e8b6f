"""Crash-safety: `train --resume` after SIGKILL, and `predict` resumed after an interruption."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from astrovader.cli import main
from astrovader.schedules import S3VDC
from cli_helpers import tiny_config, tiny_npz

EPOCHS = 12


def _history(path):
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    """Train in a subprocess, SIGKILL it after a checkpointed epoch, then --resume in-process."""
    root = tmp_path_factory.mktemp("resume")
    data = tiny_npz(root / "tiny.npz", n=160)
    cfgp = tiny_config(root / "tiny.yaml")
    out = root / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "astrovader", "train", "--config", str(cfgp), "--data", str(data),
           "--out", str(out), "--epochs", str(EPOCHS), "--verbose", "0"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    meta = out / "backup" / "training_metadata.json"
    killed_after = None
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        try:
            done = json.loads(meta.read_text())["epoch"]
        except (OSError, ValueError, KeyError):
            done = 0
        if done >= 6:  # after the GMM initialisation (epoch 4 of the scaled recipe)
            proc.send_signal(signal.SIGKILL)
            killed_after = done
            break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert killed_after is not None, f"training ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    assert not (out / "model.keras").exists(), "killed before the end"
    assert killed_after < EPOCHS
    code = main(["train", "--out", str(out), "--resume", "--verbose", "0"])
    assert code == 0
    return out, data, killed_after


def test_resume_finishes_with_complete_history(resumed_run):
    out, _, killed_after = resumed_run
    rows = _history(out / "history.csv")
    epochs = [int(r["epoch"]) for r in rows]
    assert epochs == list(range(EPOCHS)), f"killed after epoch {killed_after}; history epochs {epochs}"
    assert (out / "model.keras").is_file()
    assert not (out / "backup").exists()


def test_resumed_schedule_weights_follow_the_recipe(resumed_run):
    """The s3VDC weights logged per epoch match the recipe at every epoch, before and after the kill."""
    import yaml

    out, _, _ = resumed_run
    t = yaml.safe_load((out / "config.yaml").read_text())["train"]
    rec = S3VDC(gamma_epochs=t["gamma_epochs"], anneal_epochs=t["anneal_epochs"], static_epochs=t["static_epochs"],
                periods=t["periods"], beta=t["beta"], power=t["anneal_power"], gmm_weight=t["gmm_weight"])
    rows = _history(out / "history.csv")
    for r in rows:
        unit, gmm = rec.weights_for_epoch(int(r["epoch"]))
        assert float(r["unit_kl_weight"]) == pytest.approx(unit, rel=1e-5, abs=1e-7)
        assert float(r["gmm_kl_weight"]) == pytest.approx(gmm, rel=1e-5, abs=1e-7)


def test_resume_of_finished_run_is_a_no_op(resumed_run, capsys):
    out, _, _ = resumed_run
    before = (out / "history.csv").read_text()
    assert main(["train", "--out", str(out), "--resume"]) == 0
    assert "already finished" in capsys.readouterr().err
    assert (out / "history.csv").read_text() == before


def test_predict_resumes_without_lost_or_duplicated_rows(resumed_run, tmp_path, monkeypatch, capsys):
    from astrovader import runs as predict_mod

    out, data, _ = resumed_run
    dest = tmp_path / "pred.csv"
    args = ["predict", "--run", str(out), "--data", str(data), "--out", str(dest), "--batch-size", "16",
            "--part-size", "32", "--no-progress"]
    real_write = predict_mod._write_part
    calls = []

    def crash_after_two(path, arrays):
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if the process were killed while predicting part 3
        calls.append(path)
        real_write(path, arrays)

    monkeypatch.setattr(predict_mod, "_write_part", crash_after_two)
    assert main(args) == 130
    parts = sorted((tmp_path / "pred.csv.parts").glob("part-*.npz"))
    assert len(parts) == 2 and not dest.exists()
    monkeypatch.setattr(predict_mod, "_write_part", real_write)
    assert main(args) == 0
    assert "resuming after 64 rows" in capsys.readouterr().err
    ids = [r["id"] for r in csv.DictReader(dest.open())]
    assert ids == [f"obj{i:04d}" for i in range(160)]
    assert len(set(ids)) == len(ids)
    # the resumed result equals an uninterrupted prediction
    full = tmp_path / "full.csv"
    assert main(args[:-5] + ["--out", str(full), "--batch-size", "16", "--part-size", "1000", "--no-progress"]) == 0
    a = np.loadtxt(dest, delimiter=",", skiprows=1, usecols=range(1, 6))
    b = np.loadtxt(full, delimiter=",", skiprows=1, usecols=range(1, 6))
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_a_part_killed_while_written_is_neither_seen_as_done_nor_kept(tmp_path):
    """The file being written never matches ``part-*.npz`` (what a scheduler or a user globbing
    the parts sees), and a resume deletes it and redoes its rows."""
    from astrovader.runs import _completed_parts, _write_part

    parts = tmp_path / "pred.csv.parts"
    parts.mkdir()
    _write_part(parts / "part-000000000000.npz", {"id": np.array(["a", "b"]), "consumed": np.int64(2)})
    stray = parts / ".part-000000000002.npz.tmp"  # a writer killed before its rename
    stray.write_bytes(b"PK\x03\x04 half a zip")
    assert [p.name for p in parts.glob("part-*.npz")] == ["part-000000000000.npz"]
    done, nxt = _completed_parts(parts)
    assert [p.name for p in done] == ["part-000000000000.npz"] and nxt == 2
    assert not stray.exists()
