"""Distributed keras-tuner search: one chief (oracle) and two workers on 127.0.0.1."""

import json

import pytest

from _subprocs import free_port, run_processes, tiny_run
from astrovader.config import load_config

pytestmark = [pytest.mark.multi_device, pytest.mark.slow]


def test_chief_and_two_workers_run_bounded_search(tmp_path):
    _, cfg_path = tiny_run(tmp_path, n=48)
    port = str(free_port())
    cmd = ["-m", "astrovader", "tune", "--config", str(cfg_path), "--tuner", "random",
           "--max-trials", "2", "--out", "search"]
    envs = {tid: {"KERASTUNER_TUNER_ID": tid, "KERASTUNER_ORACLE_IP": "127.0.0.1",
                  "KERASTUNER_ORACLE_PORT": port} for tid in ("chief", "tuner0", "tuner1")}
    # the chief waits forever for dead workers: everything is killed at the deadline
    res = run_processes({tid: cmd for tid in envs}, envs, tmp_path, timeout=240)
    for tid, (rc, log) in res.items():
        assert rc == 0, f"{tid} exited with {rc}:\n{log[-3000:]}"
    out = tmp_path / "search"
    oracle = json.loads((out / "search" / "oracle.json").read_text())
    assert sorted(oracle["end_order"]) == ["0", "1"]
    # a tuner saves <id>.json after each trial it ran: the trials ran in the workers
    ran = {p.stem for p in (out / "search").glob("tuner*.json")}
    assert ran and ran <= {"tuner0", "tuner1"}
    assert "finished its trials" in res["tuner0"][1] and "finished its trials" in res["tuner1"][1]
    rows = (out / "trials.csv").read_text().strip().splitlines()
    assert len(rows) == 3 and all(",COMPLETED," in r for r in rows[1:])
    best = load_config(out / "best.yaml")
    assert best.model.input_shape == (12, 12, 1) and best.name == "tiny-tuned"
    assert not (out / "summary.md").read_text().count("FAILED")
