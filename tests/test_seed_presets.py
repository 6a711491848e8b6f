"""The seed 001 / 002 presets train from the CLI for 1 epoch, evaluate, save, reload and export."""

import json

import keras
import numpy as np
import pytest

from astrovader.cli import main
from astrovader.config import load_preset
from astrovader.runs import Run

PRESETS = ("chase-scae", "chase-cvae", "sun-vae-dp", "sun-ae-vae")


def _data(path, shape, n=32, seed=0):
    rng = np.random.default_rng(seed)
    h, w, c = shape
    yy, xx = np.mgrid[:h, :w]
    labels = np.arange(n) % 2
    width = np.where(labels == 1, 6.0, 1.5)
    blobs = np.exp(-((yy - h / 2) ** 2 + (xx - w / 2) ** 2)[None] / width[:, None, None])
    x = 0.1 * rng.normal(size=(n, h, w, c)) + blobs[..., None]
    np.savez(path, images=x.astype("float32"), labels=labels)
    return path


@pytest.mark.parametrize("name", PRESETS)
def test_preset_trains_evaluates_reloads(name, tmp_path):
    cfg = load_preset(name)
    data = _data(tmp_path / "d.npz", cfg.model.input_shape)
    run_dir = tmp_path / "run"
    assert main(["train", "--preset", name, "--data", str(data), "--out", str(run_dir), "--epochs", "1",
                 "--batch-size", "16", "--verbose", "0"]) in (0, None)
    assert main(["evaluate", "--run", str(run_dir)]) in (0, None)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert np.isfinite(metrics["scores"]["mse_mean"])
    model = Run.open(run_dir).model
    x = np.load(data)["images"][:5]
    mu, log_var = model.encode(x)
    assert mu.shape == (5, cfg.model.latent_dim)
    model.save(tmp_path / "again.keras")
    again = keras.models.load_model(tmp_path / "again.keras", compile=False)
    np.testing.assert_allclose(again.encode(x)[0], mu, atol=1e-5)
    assert type(again).__name__ == type(model).__name__
    if name == "chase-scae":  # the plain AE: point posterior, exported with encode
        assert np.all(log_var == 0)
        assert main(["export", "--run", str(run_dir), "--out", str(tmp_path / "sm")]) in (0, None)
        import tensorflow as tf

        sm = tf.saved_model.load(str(tmp_path / "sm"))
        np.testing.assert_allclose(sm.encode(tf.constant(x))["z_mean"].numpy(), mu, atol=1e-4)


def test_preset_details():
    scae, cvae = load_preset("chase-scae"), load_preset("chase-cvae")
    assert (scae.model.kind, scae.model.latent_l1, scae.model.latent_dim) == ("ae", 0.005, 21)
    assert scae.train.optimizer == cvae.train.optimizer == "nadam"
    assert scae.train.batch_size == 128 and scae.train.early_stopping > 0
    assert cvae.train.recipe == "kl_annealing" and cvae.model.latent_l1 == 0
    hier = load_preset("sun-ae-vae")
    assert hier.model.feature_dim == 30 and hier.model.input_shape[-1] == 5
    assert load_preset("sun-vae-dp").model.prior == "double_peak"


def test_scae_has_l1_on_latent_weights():
    from astrovader.models import build_model

    cfg = load_preset("chase-scae").model
    model = build_model(cfg, kind="ae")
    kernel = model.encoder.get_layer("z_mean").kernel
    expected = 0.005 * float(np.abs(np.asarray(kernel)).sum())
    assert sum(float(v) for v in model.losses) == pytest.approx(expected, rel=1e-4)


def test_early_stopping_stops(tmp_path):
    from astrovader.training import train

    cfg = load_preset("chase-scae")
    cfg.train.vae_epochs, cfg.train.early_stopping, cfg.train.batch_size = 30, 1, 16
    cfg.train.learning_rate = 1e-20  # frozen weights: the validation loss stops improving at once
    x = np.random.default_rng(0).normal(size=(40, 21, 21, 1)).astype("float32")
    _, hist = train(cfg, x[:30], x[30:], verbose=0)
    assert len(hist.history["loss"]) < 30
