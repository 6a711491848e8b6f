"""benchmarks.speed_keras: the backend-agnostic objective computes what VaDE computes, and the smoke run."""

import json
import warnings

import numpy as np
import pytest

from benchmarks import speed_keras


@pytest.mark.parametrize("preset, shape, model_options", [
    ("hits-vade-ar", (12, 12, 1), {"filters": [4], "mc_samples": 3}),  # rotation invariant, decoder variance, L = 3
    ("mnist-vade", (8, 8, 1), {"hidden_units": [16, 8]}),  # BCE, 5 components per cluster
])
def test_objective_predicts_and_trains_as_vade(preset, shape, model_options):
    """Same weights -> the same mu, reconstruction, decoder variance, gamma and per-stamp loss as
    ``VaDE.predict_objects`` / ``VaDE.compute_terms``: the GPU figures time astrovader's own work."""
    from astrovader.config import load_preset
    from astrovader.models import build_model

    cfg = load_preset(preset).model
    cfg.input_shape, cfg.seed = shape, 0
    for key, value in model_options.items():
        setattr(cfg, key, value)
    vade = build_model(cfg)
    obj = speed_keras.objective_model(cfg)
    x = np.random.default_rng(1).random((6, *shape), dtype=np.float32)
    with warnings.catch_warnings():  # Objective.build builds what holds variables: no unbuilt-state warning
        warnings.simplefilter("error", UserWarning)
        obj(x[:2])  # builds the variables; the sampling layer stays undrawn, like the VaDE's
    for name in ("encoder", "decoder", "variance_head", "prior"):
        if getattr(vade, name) is not None:
            getattr(obj, name).set_weights(getattr(vade, name).get_weights())
    want, got = vade.predict_objects(x), obj(x)
    for key in ("mu", "x_hat", "decoder_variance", "gamma"):
        np.testing.assert_allclose(np.asarray(got[key]), want[key], rtol=1e-5, atol=1e-6, err_msg=key)
    # the training loss at the VaDE phase's weights; both sampling layers are seeded 0, so they draw the same z
    vade.unit_kl_weight.assign(0.0)
    vade.gmm_kl_weight.assign(1.0)
    a, b = vade.compute_terms(x, training=True), obj.compute_terms(x, training=True)
    for key in ("reconstruction", "kl_gmm", "loss"):
        np.testing.assert_allclose(np.asarray(b[key]), np.asarray(a[key]), rtol=1e-5, atol=1e-5, err_msg=key)


def test_quick_run_writes_a_row(tmp_path):
    # on TensorFlow's CPU kernels XLA has no resize gradient: the smoke run goes without it
    assert speed_keras.main(["--quick", "--no-jit", "--results-dir", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "quick_gpu_speed.json").read_text())
    (row,) = data["rows"]
    assert "error" not in row, row.get("error")
    assert row["preset"] == "demo" and row["train_samples_per_s"] > 0 and row["predict_stamps_per_s"] > 0
    assert 0 < row["train_fraction_of_matmul_roof"] and 0 < row["predict_fraction_of_matmul_roof"]
    assert row["survey_hours_predict"] == pytest.approx(1e8 / row["predict_stamps_per_s"] / 3600)
    assert data["keras_backend"] and data["device"]
