"""The runs layer (astrovader.runs, astrovader.locks): the Python API is the command line."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from astrovader import runs
from astrovader.cli import main
from astrovader.config import load_config
from astrovader.errors import AstrovaderError, LockedError
from astrovader.locks import WriteLock
from cli_helpers import tiny_config, tiny_npz


def _comparable(metrics: dict) -> dict:
    """metrics.json without what differs between two identical runs: the path and timings."""
    def strip(d):
        if isinstance(d, dict):
            return {k: strip(v) for k, v in d.items() if k not in ("run", "seconds")}
        return d

    return strip(metrics)


def test_python_api_reproduces_a_cli_run_bit_for_bit(tmp_path):
    data = tiny_npz(tmp_path / "tiny.npz", n=80)
    cfgp = tiny_config(tmp_path / "tiny.yaml")
    cli_run, api_run = tmp_path / "cli", tmp_path / "api"
    assert main(["train", "--config", str(cfgp), "--data", str(data), "--out", str(cli_run), "--epochs", "3",
                 "--seed", "3", "--verbose", "0"]) == 0
    assert main(["evaluate", "--run", str(cli_run), "--seed", "3", "--samples", "2"]) == 0

    cfg = runs.configure(load_config(cfgp), data=str(data), epochs=3, seed=3)
    model, stamps, run = runs.fit_run(cfg, api_run, verbose=0)
    assert run.path == api_run and len(stamps) == 80
    runs.evaluate_run(run, seed=3, n_samples=2)

    a = json.loads((cli_run / "metrics.json").read_text())
    b = json.loads((api_run / "metrics.json").read_text())
    assert _comparable(a) == _comparable(b)
    assert (cli_run / "config.yaml").read_text() == (api_run / "config.yaml").read_text()
    assert a["scores"]["mse_mean"] == b["scores"]["mse_mean"]  # exactly, not approximately


def test_run_create_and_open(tmp_path):
    with pytest.raises(AstrovaderError, match="run directory not found"):
        runs.Run.open(tmp_path / "none")
    with pytest.raises(AstrovaderError, match="nothing to resume"):
        runs.Run.create(tmp_path / "new", resume=True)
    run = runs.Run.create(tmp_path / "new")
    with run:
        assert (tmp_path / "new" / runs.Run.LOCK_NAME).exists()
        with pytest.raises(LockedError, match=f"is being written by process {os.getpid()}"):
            runs.Run.create(tmp_path / "new", overwrite=True)
    assert not (tmp_path / "new" / runs.Run.LOCK_NAME).exists()
    (tmp_path / "new" / "history.csv").write_text("epoch\n0\n")
    with pytest.raises(AstrovaderError, match="an unfinished run; use --resume"):
        runs.Run.create(tmp_path / "new")
    with runs.Run.create(tmp_path / "new", overwrite=True):
        assert not (tmp_path / "new" / "history.csv").exists()


def test_write_lock_is_exclusive_and_reusable(tmp_path):
    target = tmp_path / "out.csv"
    first = WriteLock(target, tmp_path / "out.csv.lock").acquire()
    info = json.loads((tmp_path / "out.csv.lock").read_text())
    assert info["pid"] == os.getpid() and info["host"]
    with pytest.raises(LockedError, match="out.csv is being written by process .* wait for it or use another --out"):
        WriteLock(target, tmp_path / "out.csv.lock").acquire()
    first.release()
    assert not (tmp_path / "out.csv.lock").exists()
    with WriteLock(target, tmp_path / "out.csv.lock") as again:
        assert again.held


def test_split_validation_is_deterministic_and_disjoint():
    x = np.arange(50)[:, None, None, None].astype("float32")
    tr, va = runs.split_validation(x, 0.2, seed=1)
    assert len(va) == 10 and len(tr) == 40
    assert sorted(np.r_[tr.ravel(), va.ravel()].tolist()) == list(range(50))
    assert np.all(np.diff(tr.ravel()) > 0) and np.all(np.diff(va.ravel()) > 0)  # input order kept
    tr2, va2 = runs.split_validation(x, 0.2, seed=1)
    assert np.array_equal(va, va2)
    assert runs.split_validation(x, 0.0, seed=1)[1] is None
    assert runs.split_validation(x[:9], 0.5, seed=1)[1] is None


def test_no_module_imports_the_cli():
    root = os.path.join(os.path.dirname(__file__), "..", "astrovader")
    offenders = []
    for dirpath, _, files in os.walk(root):
        if os.path.basename(dirpath) == "cli":
            continue
        for name in files:
            if name.endswith(".py") and name != "__main__.py":
                text = open(os.path.join(dirpath, name)).read()
                if "astrovader.cli" in text.replace("``astrovader.cli``", ""):
                    offenders.append(name)
    assert offenders == []


def test_quiet_start_up(tmp_path):
    """A failing command prints its one error line and nothing from TensorFlow's start-up."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "ASTROVADER_DEBUG")}
    res = subprocess.run([sys.executable, "-m", "astrovader", "export", "--run", str(tmp_path / "none"),
                          "--out", str(tmp_path / "sm")], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"astrovader: error: {tmp_path / 'none'}: run directory not found; train one with `astrovader train`"]


def _readme():
    return open(os.path.join(os.path.dirname(__file__), "..", "README.md"), encoding="utf-8").read()


def test_public_names_are_documented_in_the_readme():
    import astrovader

    text = _readme()
    missing = [n for n in astrovader.__all__ if n != "__version__" and f"`{n}`" not in text]
    assert missing == [], f"add these to README 'Public names': {missing}"


def test_how_the_code_fits_together_names_every_module():
    text = _readme()
    section = text.split("## How the code fits together", 1)[1].split("\n## ", 1)[0]
    root = os.path.join(os.path.dirname(__file__), "..", "astrovader")
    modules = [f for f in os.listdir(root) if f.endswith(".py") and f not in ("__init__.py", "__main__.py")]
    missing = sorted(m for m in modules if m not in section)
    assert missing == [], f"add these to README 'How the code fits together': {missing}"
