"""Helpers for tests that start several Python processes on 127.0.0.1 (always bounded)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import numpy as np
import yaml


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_run(tmp_path, n: int = 64, size: int = 12, input_shape: list | None = None) -> tuple:
    """Write ``x.npz`` (two kinds of Gaussian blobs + noise) and a 1-epoch ``tiny.yaml``.

    With ``input_shape`` the network's stamp size differs from the data's, so loading
    resizes the stamps (with TensorFlow) before training starts.
    """
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    c = (size - 1) / 2
    x = np.empty((n, size, size, 1), dtype="float32")
    for i in range(n):
        s = 1.5 if i % 2 else 3.5
        x[i, ..., 0] = np.exp(-((yy - c) ** 2 + (xx - c) ** 2) / (2 * s * s)) + 0.05 * rng.standard_normal((size, size))
    np.savez(tmp_path / "x.npz", images=x)
    cfg = {
        "name": "tiny",
        "model": {"architecture": "hits", "latent_dim": 2, "n_clusters": 2, "filters": [4, 4, 4, 4],
                  "mc_samples": 1, "input_shape": input_shape},
        "train": {"recipe": "s3vdc", "batch_size": 16, "gamma_epochs": 1, "periods": 0,
                  "anneal_epochs": 1, "static_epochs": 0, "gmm_batches": 2},
        "data": {"spec": str(tmp_path / "x.npz")},
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    return x, tmp_path / "tiny.yaml"


def run_processes(commands: dict, envs: dict, cwd, timeout: float) -> dict:
    """Start one process per name, wait for all within ``timeout`` seconds in total.

    Every process still running at the deadline is killed (with its children). Returns
    ``{name: (returncode or None if killed, output)}``.
    """
    procs, logs = {}, {}
    for name, cmd in commands.items():
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
               "OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "PYTHONUNBUFFERED": "1", **envs[name]}
        logs[name] = open(os.path.join(cwd, f"{name}.log"), "w+")
        procs[name] = subprocess.Popen([sys.executable, *cmd], env=env, cwd=cwd, stdout=logs[name],
                                       stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    results = {}
    try:
        for name, p in procs.items():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
                results[name] = p.returncode
            except subprocess.TimeoutExpired:
                results[name] = None
    finally:
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, 9)
                p.wait()
    out = {}
    for name, f in logs.items():
        f.seek(0)
        text = "\n".join(line for line in f.read().splitlines()
                         if not line.startswith(("I0000", "W0000", "E0000", "WARNING: All log")))
        f.close()
        out[name] = (results[name], text)
    return out
