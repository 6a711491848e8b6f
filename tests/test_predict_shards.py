"""Survey-scale prediction: ``predict --shard I/N`` workers (one killed and restarted) + ``predict-merge``.

The merged table holds exactly one row per input id and equals a single-process
prediction; merge refuses missing, repeated, foreign or truncated shards with one line.
"""

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
from astrovader.runs import shard_range
from cli_helpers import tiny_config, tiny_npz

N = 300
SHARDS = 3

# the real command line with every part write slowed down, so the worker is certainly still
# running when the test kills it after its first part
_SLOW_PREDICT = """
import sys, time
import astrovader.runs as runs
from astrovader.cli import main
real = runs._write_part
def slow(path, arrays):
    real(path, arrays)
    time.sleep(30)
runs._write_part = slow
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    data = tiny_npz(root / "tiny.npz", n=N)
    run = root / "run"
    assert main(["train", "--config", str(tiny_config(root / "tiny.yaml")), "--data", str(data), "--out", str(run),
                 "--epochs", "1", "--verbose", "0"]) == 0
    return root, run, data


def _rows(path):
    with path.open(newline="") as f:
        return list(csv.reader(f))


def test_shard_ranges_partition_any_catalogue():
    for total in (0, 1, 2, 7, 300, 1001):
        for n in (1, 2, 3, 8):
            blocks = [shard_range(total, i, n) for i in range(n)]
            assert blocks[0][0] == 0 and blocks[-1][1] == total
            assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))


def test_three_shards_one_killed_then_merged_equal_single_process(trained, tmp_path, capsys):
    root, run, data = trained
    dest = tmp_path / "pred.csv"
    base = ["predict", "--run", str(run), "--data", str(data), "--out", str(dest), "--batch-size", "16",
            "--part-size", "32", "--no-progress"]
    # shard 1 of 3 in a real process, SIGKILLed once its first part is on disk
    (tmp_path / "slow_predict.py").write_text(_SLOW_PREDICT)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.Popen([sys.executable, str(tmp_path / "slow_predict.py"), *base, "--shard", f"1/{SHARDS}"],
                            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    parts_dir = tmp_path / "pred.shard-1-of-3.csv.parts"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not list(parts_dir.glob("part-*.npz")):
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert len(list(parts_dir.glob("part-*.npz"))) == 1
    assert not (tmp_path / "pred.shard-1-of-3.csv").exists()
    capsys.readouterr()
    # the three workers (in any order); the killed one resumes after its first part
    for i in (2, 1, 0):
        assert main(base + ["--shard", f"{i}/{SHARDS}"]) == 0
        if i == 1:
            assert "resuming after 32 rows" in capsys.readouterr().err
    # a re-submitted array task whose shard is complete does nothing
    assert main(base + ["--shard", f"1/{SHARDS}"]) == 0
    assert "already complete" in capsys.readouterr().err
    files = [tmp_path / f"pred.shard-{i}-of-3.csv" for i in range(SHARDS)]
    for i, f in enumerate(files):
        info = json.loads((tmp_path / (f.name + ".shard.json")).read_text())
        assert (info["index"], info["count"], info["total"]) == (i, SHARDS, N)
    merged = tmp_path / "merged.csv"
    assert main(["predict-merge", *map(str, files[::-1]), "--out", str(merged)]) == 0
    full = tmp_path / "full.csv"
    assert main(base[:5] + ["--out", str(full), "--batch-size", "64", "--no-progress"]) == 0
    a, b = _rows(merged), _rows(full)
    ids = [r[0] for r in a[1:]]
    assert len(ids) == N and len(set(ids)) == N
    assert ids == [r[0] for r in b[1:]] == [f"obj{i:04d}" for i in range(N)]
    assert a[0] == b[0]
    np.testing.assert_allclose(np.array([r[1:] for r in a[1:]], float), np.array([r[1:] for r in b[1:]], float),
                               rtol=1e-4, atol=1e-5)


def _fails(capsys, argv, *words):
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("astrovader: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in lines[0], lines[0]


def test_merge_fails_loudly_unless_every_id_once(trained, tmp_path, capsys):
    root, run, data = trained
    dest = tmp_path / "p.npz"
    base = ["predict", "--run", str(run), "--data", str(data), "--out", str(dest), "--batch-size", "64",
            "--no-progress"]
    for i in range(SHARDS):
        assert main(base + ["--shard", f"{i}/{SHARDS}"]) == 0
    files = [str(tmp_path / f"p.shard-{i}-of-3.npz") for i in range(SHARDS)]
    out = tmp_path / "m.npz"
    _fails(capsys, ["predict-merge", files[0], files[2], "--out", str(out)], "1 of 3 shards missing", "shard 1")
    _fails(capsys, ["predict-merge", *files, files[1], "--out", str(out)], "given twice")
    _fails(capsys, ["predict-merge", *files, "--out", str(tmp_path / "m.csv")], ".npz")
    _fails(capsys, ["predict", *base[1:], "--shard", "3/3"], "--shard 3/3")
    _fails(capsys, ["predict", *base[1:], "--shard", "x"], "I/N")
    # a shard whose rows were cut short
    z = dict(np.load(files[1]))
    np.savez(tmp_path / "cut.npz", **{k: (v[:-5] if v.ndim and k != "shard_info" else v) for k, v in z.items()})
    _fails(capsys, ["predict-merge", files[0], str(tmp_path / "cut.npz"), files[2], "--out", str(out)], "truncated")
    # a catalogue whose ids repeat
    z["id"] = np.where(z["id"] == z["id"][3], z["id"][0], z["id"])
    np.savez(tmp_path / "dup.npz", **z)
    _fails(capsys, ["predict-merge", files[0], str(tmp_path / "dup.npz"), files[2], "--out", str(out)],
           "more than once")
    assert not out.exists()
    assert main(["predict-merge", *files, "--out", str(out)]) == 0
    with np.load(out) as m:
        assert list(m["id"]) == [f"obj{i:04d}" for i in range(N)] and "shard_info" not in m.files
        assert m["gamma"].shape == (N, 2)
