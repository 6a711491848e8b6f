"""Chief detection, per-worker paths and TF_CONFIG from SLURM (no processes started)."""

import json

import pytest

from astrovader import distributed as d
from astrovader.errors import AstrovaderError


def _tf_config(monkeypatch, index, chief=False):
    cluster = {"worker": ["a:1", "b:1"]}
    if chief:
        cluster["chief"] = ["c:1"]
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))


def test_chief_and_worker_paths(monkeypatch, tmp_path):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert d.is_chief() and d.task_info() == (None, 0, 1)
    assert d.worker_run_dir(tmp_path / "run") == tmp_path / "run"
    _tf_config(monkeypatch, 0)
    assert d.is_chief() and d.task_info() == ("worker", 0, 2)
    _tf_config(monkeypatch, 1)
    assert not d.is_chief()
    assert d.worker_run_dir(tmp_path / "run") == tmp_path / "run" / ".workers" / "worker-1"
    _tf_config(monkeypatch, 0, chief=True)
    assert not d.is_chief() and d.task_info()[2] == 3
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(AstrovaderError, match="TF_CONFIG is malformed"):
        d.task_info()


def test_tf_config_from_slurm():
    env = {"SLURM_PROCID": "3", "SLURM_NTASKS_PER_NODE": "2(x2)"}
    conf = json.loads(d.tf_config_from_slurm(2000, hosts=["n1", "n2"], env=env))
    assert conf["cluster"]["worker"] == ["n1:2000", "n1:2001", "n2:2000", "n2:2001"]
    assert conf["task"] == {"type": "worker", "index": 3}
    with pytest.raises(AstrovaderError, match="SLURM"):
        d.tf_config_from_slurm(env={})
