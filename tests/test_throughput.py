"""Throughput options: mixed precision keeps the mixture maths in float32, steps per
execution and XLA train, and the NaN guard looks at the loss only every N steps."""

import numpy as np
import pytest

from astrovader.config import RunConfig, load_config
from astrovader.errors import ConfigError
from astrovader.schedules import NaNGuard
from cli_helpers import tiny_config, tiny_npz


def _cfg(tmp_path, **train):
    cfg = load_config(tiny_config(tmp_path / "tiny.yaml"))
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg.validate()


def _stamps(tmp_path, n=80):
    with np.load(tiny_npz(tmp_path / "x.npz", n=n)) as z:
        return z["images"]


def test_mixed_bfloat16_trains_with_float32_prior(tmp_path):
    import keras

    from astrovader.training import train

    cfg = _cfg(tmp_path, mixed_precision="mixed_bfloat16")
    model, history = train(cfg, _stamps(tmp_path), epochs=1, verbose=0)
    assert keras.config.dtype_policy().name == "float32", "the global policy is restored"
    assert model.encoder.layers[-1].compute_dtype == "bfloat16"
    for v in model.prior.weights:
        assert v.dtype == "float32", v.name
    assert model.prior.compute_dtype == model.gamma_layer.compute_dtype == model.sampling.compute_dtype == "float32"
    for name, values in history.history.items():
        assert np.all(np.isfinite(values)), name
    terms = model.compute_terms(_stamps(tmp_path, 8))
    assert {keras.backend.standardize_dtype(t.dtype) for t in terms.values()} == {"float32"}
    gamma = model.cluster_probabilities(_stamps(tmp_path, 8))
    np.testing.assert_allclose(np.asarray(gamma, float).sum(1), 1.0, atol=1e-3)


@pytest.mark.parametrize("jit", [False, True])
def test_steps_per_execution_and_xla_train(tmp_path, jit):
    """XLA on an MLP: XLA's CPU backend has no gradient of the nearest-neighbour resize the
    ``hits`` decoder uses."""
    from astrovader.training import train

    cfg = _cfg(tmp_path, steps_per_execution=3, jit_compile=jit, batch_size=8)
    cfg.model.architecture, cfg.model.hidden_units, cfg.model.batch_norm = "mlp", [16, 16], False
    model, history = train(cfg, _stamps(tmp_path), epochs=1, verbose=0)
    assert model.steps_per_execution == 3
    assert np.isfinite(history.history["loss"]).all()


def test_throughput_options_are_validated(tmp_path):
    with pytest.raises(ConfigError, match="mixed_precision"):
        _cfg(tmp_path, mixed_precision="fp8")
    with pytest.raises(ConfigError, match="steps_per_execution"):
        _cfg(tmp_path, steps_per_execution=0)
    assert RunConfig().train.mixed_precision == "none"


class _Model:
    stop_training = False


def test_nan_guard_looks_every_n_steps():
    guard = NaNGuard(check_every=3)
    guard.set_model(_Model())
    assert guard.async_safe  # does not make Keras wait for each step's logs
    guard.on_epoch_begin(0)
    for step in range(2):  # a NaN between looks is not read ...
        guard.on_train_batch_end(step, {"loss": float("nan")})
        assert not guard.model.stop_training
    guard.on_train_batch_end(2, {"loss": float("nan")})  # ... the third step is
    assert guard.model.stop_training
    with pytest.raises(ConfigError):
        NaNGuard(check_every=0)
