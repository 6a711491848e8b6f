"""`astrovader train --strategy multiworker`: two worker processes on 127.0.0.1, one epoch."""

import json

import keras
import pytest

from _subprocs import free_port, run_processes, tiny_run

pytestmark = [pytest.mark.multi_device, pytest.mark.slow]


def test_two_workers_train_one_epoch_and_chief_saves(tmp_path):
    # 14x14 stamps for a 12x12 network: the stamps are resized with TF before training, so
    # the strategy must already exist (collectives are configured at program start-up)
    x, cfg_path = tiny_run(tmp_path, n=64, size=14, input_shape=[12, 12, 1])
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    cmd = ["-m", "astrovader", "train", "--config", str(cfg_path), "--out", "run", "--strategy", "multiworker"]
    envs = {f"w{i}": {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
            for i in range(2)}
    res = run_processes({name: cmd for name in envs}, envs, tmp_path, timeout=240)
    for name, (rc, log) in res.items():
        assert rc == 0, f"{name} exited with {rc}:\n{log[-3000:]}"
    chief = tmp_path / "run"
    assert (chief / "model.keras").is_file() and (chief / "config.yaml").is_file()
    # the other worker wrote its own files, never the chief's
    assert (chief / ".workers" / "worker-1" / "model.keras").is_file()
    rows = (chief / "history.csv").read_text().strip().splitlines()
    assert len(rows) == 2  # header + one epoch, written by the chief alone
    import astrovader.models  # noqa: F401

    model = keras.models.load_model(chief / "model.keras", compile=False)
    assert tuple(model.input_shape_) == (12, 12, 1)
    assert model.predict_clusters(x[:8, 1:13, 1:13]).shape == (8,)
    # global batch 16 over 2 workers: 64 stamps -> 4 global steps, 8 stamps per worker step
    assert "4/4" in res["w0"][1]
    assert "resized stamps from 14x14 to 12x12" in res["w1"][1]
