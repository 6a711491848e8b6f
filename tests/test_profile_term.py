"""The radial-profile reconstruction term (``model.profile_weight``)."""

import keras
import numpy as np
import pytest

from astrovader import losses
from astrovader.config import ConfigError, ModelConfig
from astrovader.models import build_model

RNG = np.random.default_rng(3)


def _profile_error_numpy(x, x_hat):
    """sum_k n_k (mean of the residual over ring k)^2 per example and channel, by np.bincount."""
    n, h, w, c = x.shape
    yy, xx = np.mgrid[:h, :w]
    ring = np.floor(np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2)).astype(int).ravel()
    counts = np.bincount(ring)
    r = (x - x_hat).astype("float64").reshape(n, h * w, c)
    out = np.zeros(n)
    for i in range(n):
        for ch in range(c):
            means = np.bincount(ring, weights=r[i, :, ch]) / counts
            out[i] += np.sum(counts * means ** 2)
    return out


@pytest.mark.parametrize("shape", [(3, 9, 9, 1), (2, 8, 8, 2), (2, 6, 10, 1)])
def test_radial_profile_residual_matches_numpy(shape):
    x, x_hat = RNG.normal(size=shape).astype("float32"), RNG.normal(size=shape).astype("float32")
    got = np.asarray(losses.radial_profile_residual(x, x_hat))
    np.testing.assert_allclose(got, _profile_error_numpy(x, x_hat), rtol=1e-4)
    # it is the squared norm of a projection: never above the pixel error, equal for a ring-constant residual
    assert np.all(got <= np.asarray(losses.mse_reconstruction(x, x_hat)) * (1 + 1e-5))
    h, w = shape[1:3]
    yy, xx = np.mgrid[:h, :w]
    ring_image = np.floor(np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2))[None, :, :, None] * np.ones(shape, "float32")
    shifted = (x_hat + ring_image).astype("float32")
    np.testing.assert_allclose(np.asarray(losses.radial_profile_residual(shifted, x_hat)),
                               np.asarray(losses.mse_reconstruction(shifted, x_hat)), rtol=1e-4)


def test_radial_profile_residual_ignores_the_stamps_orientation():
    x, x_hat = RNG.normal(size=(4, 9, 9, 1)).astype("float32"), RNG.normal(size=(4, 9, 9, 1)).astype("float32")
    ref = np.asarray(losses.radial_profile_residual(x, x_hat))
    for s in [np.rot90(x, k, axes=(1, 2)) for k in (1, 2, 3)] + [x[:, ::-1], x[:, :, ::-1]]:
        np.testing.assert_allclose(np.asarray(losses.radial_profile_residual(s.copy(), x_hat)), ref, rtol=1e-5)
    # a non-round change of x (moving light off-centre) does change it
    moved = np.roll(x, 2, axis=2)
    assert not np.allclose(np.asarray(losses.radial_profile_residual(moved, x_hat)), ref, rtol=1e-3)


def _cfg(weight, **kw):
    return ModelConfig(architecture="mlp", input_shape=(8, 8, 1), latent_dim=3, n_clusters=2,
                       hidden_units=[16, 8], rotation_invariant=True, mirror_invariant=True,
                       profile_weight=weight, **kw)


@pytest.mark.parametrize("kind,extra", [("vade", {}), ("vae", {}), ("ae", {}),
                                        ("vae", {"feature_dim": 4, "code_weight": 0.0})])
def test_profile_weight_adds_w_times_the_profile_error_to_the_loss_not_the_elbo(kind, extra):
    """VaDE, VAE, AE and the hierarchical VAE (whose image term is its code AE's; code_weight 0 keeps
    its sampled code reconstruction out of the comparison)."""
    x = RNG.uniform(size=(5, 8, 8, 1)).astype("float32")
    with_term, without = build_model(_cfg(2.5, **extra), kind), build_model(_cfg(0.0, **extra), kind)
    without.set_weights(with_term.get_weights())
    for m in (with_term, without):  # z = mu (no sampling), so both decode the same x_hat
        m.unit_kl_weight.assign(0.0)
    a, b = with_term.compute_terms(x), without.compute_terms(x)
    hierarchical = "feature_dim" in extra
    x_hat = (with_term.ae_decoder(with_term.ae_encoder(x)) if hierarchical
             else with_term.decoder(with_term.encode(x)[0]))
    expected = 2.5 * np.asarray(losses.radial_profile_residual(x, x_hat))
    assert np.all(expected > 0)
    np.testing.assert_allclose(np.asarray(a["loss"]) - np.asarray(b["loss"]), expected, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(np.asarray(a["elbo"]), np.asarray(b["elbo"]), rtol=1e-6)


def test_profile_weight_round_trips_and_trains(tmp_path):
    model = build_model(_cfg(1.0))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = RNG.uniform(size=(16, 8, 8, 1)).astype("float32")
    hist = model.fit(x, batch_size=8, epochs=2, verbose=0)
    assert np.all(np.isfinite(hist.history["loss"]))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.profile_weight == 1.0
    for m in (model, loaded):  # deterministic z for the comparison
        m.unit_kl_weight.assign(0.0)
    np.testing.assert_allclose(np.asarray(loaded.compute_terms(x)["loss"]), np.asarray(model.compute_terms(x)["loss"]),
                               rtol=1e-5)


@pytest.mark.parametrize("bad", [-0.5, float("inf"), float("nan")])
def test_profile_weight_must_be_finite_and_non_negative(bad):
    with pytest.raises(ConfigError, match="model.profile_weight"):
        _cfg(bad).validate()


def test_baselines_train_without_the_profile_term():
    from astrovader.config import load_preset
    from benchmarks.quality import _plain

    cfg = load_preset("galaxies").override("model", profile_weight=3.0)
    assert _plain(cfg).model.profile_weight == 0.0
