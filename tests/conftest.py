"""Shared test set-up: quiet TF, 2 logical CPU devices, deterministic seeds, tmp caches."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

try:  # two logical CPU devices so MirroredStrategy tests have 2 replicas
    _cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
except RuntimeError:  # TF already initialised by another import
    pass

import keras  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_and_cache(tmp_path_factory, monkeypatch):
    """Seed numpy/keras/TF and point the built-in dataset cache at a temp dir."""
    keras.utils.set_random_seed(0)
    np.random.seed(0)
    monkeypatch.setenv("ASTROVADER_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    yield
