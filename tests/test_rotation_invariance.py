"""Rotation-invariant encoders (Deep-HiTS cyclic pooling, seed 003) and the orientation-marginal likelihood."""

import keras
import numpy as np
import pytest

from astrovader import losses
from astrovader.config import ConfigError, ModelConfig
from astrovader.layers import CyclicPooling, RotationStack, rot90
from astrovader.models import build_model

RNG = np.random.default_rng(0)


def _cfg(arch, **kw):
    shape = {"hits": (11, 11, 1), "astrovader": (16, 16, 2), "mlp": (8, 8, 1)}[arch]
    return ModelConfig(architecture=arch, input_shape=shape, latent_dim=3, n_clusters=4, filters=[4, 4],
                       kernel_sizes=[3], hidden_units=[16, 8], rotation_invariant=True, **kw)


def test_rot90_matches_numpy():
    x = RNG.normal(size=(2, 5, 5, 3)).astype("float32")
    for k in range(4):
        np.testing.assert_array_equal(np.asarray(rot90(x, k)), np.rot90(x, k, axes=(1, 2)))


@pytest.mark.parametrize("arch,extra", [("hits", {"batch_norm": True}), ("astrovader", {}), ("mlp", {})])
def test_encoder_gives_the_same_latent_for_the_four_rotations(arch, extra):
    model = build_model(_cfg(arch, **extra))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = RNG.normal(size=(6, *model.input_shape_)).astype("float32")
    model.fit(x, batch_size=6, epochs=1, verbose=0)  # BN statistics are not the initial ones
    mu0, lv0 = model.encode(x)
    for k in (1, 2, 3):
        mu, lv = model.encode(np.rot90(x, k, axes=(1, 2)).copy())
        np.testing.assert_allclose(mu, mu0, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(lv, lv0, atol=1e-5, rtol=1e-5)
    g = model.cluster_probabilities(np.rot90(x, 1, axes=(1, 2)).copy())
    np.testing.assert_allclose(g, model.cluster_probabilities(x), atol=1e-5)


def test_plain_encoder_is_not_invariant():
    model = build_model(_cfg("mlp").__class__(**{**_cfg("mlp").__dict__, "rotation_invariant": False}))
    x = RNG.normal(size=(4, 8, 8, 1)).astype("float32")
    assert not np.allclose(model.encode(x)[0], model.encode(np.rot90(x, 1, axes=(1, 2)).copy())[0], atol=1e-3)


def test_stack_and_pool_layers():
    x = RNG.normal(size=(3, 4, 4, 1)).astype("float32")
    stacked = np.asarray(RotationStack()(x))
    assert stacked.shape == (12, 4, 4, 1)
    np.testing.assert_array_equal(stacked[3:6], np.rot90(x, 1, axes=(1, 2)))
    h = RNG.normal(size=(12, 5)).astype("float32")
    np.testing.assert_allclose(np.asarray(CyclicPooling()(h)), h.reshape(4, 3, 5).mean(0), rtol=1e-6)


def test_orientation_marginal_reconstruction_matches_numpy():
    x = RNG.uniform(size=(4, 5, 5, 1)).astype("float32")
    x_hat = np.rot90(x, 1, axes=(1, 2)).copy() + 0.05 * RNG.normal(size=x.shape).astype("float32")
    got = np.asarray(losses.orientation_marginal_reconstruction("mse", x, x_hat))
    terms = np.stack([((np.rot90(x, k, axes=(1, 2)) - x_hat) ** 2).reshape(4, -1).sum(1) for k in range(4)], -1)
    ref = -np.log(np.mean(np.exp(-terms.astype("float64")), axis=-1))
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    # the decoder drew the stamp rotated: the marginal term is far below the plain one
    assert np.all(got < np.asarray(losses.reconstruction_loss("mse", x, x_hat)))


def test_rotation_invariance_needs_square_stamps():
    with pytest.raises(ConfigError, match="square"):
        ModelConfig(architecture="hits", input_shape=(11, 13, 1), rotation_invariant=True).validate()


def test_layers_roundtrip(tmp_path):
    inp = keras.Input((4, 4, 1))
    out = CyclicPooling()(keras.layers.Flatten()(RotationStack()(inp)))
    model = keras.Model(inp, out)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    x = RNG.normal(size=(2, 4, 4, 1)).astype("float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


def _symmetries(x):
    """The 8 rotations and reflections of (B, H, W, C) stamps, in NumPy."""
    return [np.rot90(s, k, axes=(1, 2)).copy() for s in (x, x[:, :, ::-1]) for k in range(4)]


@pytest.mark.parametrize("arch,extra", [("hits", {"batch_norm": True}), ("mlp", {})])
def test_mirror_invariant_encoder_gives_the_same_latent_for_the_eight_symmetries(arch, extra):
    model = build_model(_cfg(arch, mirror_invariant=True, **extra))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = RNG.normal(size=(6, *model.input_shape_)).astype("float32")
    model.fit(x, batch_size=6, epochs=1, verbose=0)
    mu0, lv0 = model.encode(x)
    for s in _symmetries(x)[1:]:
        mu, lv = model.encode(s)
        np.testing.assert_allclose(mu, mu0, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(lv, lv0, atol=1e-5, rtol=1e-5)
    # the rotation-only encoder is not invariant to the mirror image (the control)
    plain = build_model(_cfg(arch, **extra))
    assert not np.allclose(plain.encode(x)[0], plain.encode(x[:, :, ::-1].copy())[0], atol=1e-3)


def test_mirror_stack_and_pool_layers():
    x = RNG.normal(size=(3, 4, 4, 1)).astype("float32")
    stacked = np.asarray(RotationStack(mirror=True)(x))
    assert stacked.shape == (24, 4, 4, 1)
    np.testing.assert_array_equal(stacked.reshape(8, 3, 4, 4, 1), np.stack(_symmetries(x)))
    h = RNG.normal(size=(24, 5)).astype("float32")
    np.testing.assert_allclose(np.asarray(CyclicPooling(mirror=True)(h)), h.reshape(8, 3, 5).mean(0), rtol=1e-6)


def test_mirror_marginal_reconstruction_matches_numpy():
    x = RNG.uniform(size=(4, 5, 5, 1)).astype("float32")
    x_hat = x[:, ::-1].copy() + 0.05 * RNG.normal(size=x.shape).astype("float32")  # drawn upside down
    got = np.asarray(losses.orientation_marginal_reconstruction("mse", x, x_hat, mirror=True))
    terms = np.stack([((s - x_hat) ** 2).reshape(4, -1).sum(1) for s in _symmetries(x)], -1).astype("float64")
    np.testing.assert_allclose(got, -np.log(np.mean(np.exp(-terms), axis=-1)), rtol=1e-5)
    # a vertical flip is no rotation: only the mirror-marginal term finds it
    assert np.all(got < np.asarray(losses.orientation_marginal_reconstruction("mse", x, x_hat)))


def test_mirror_invariance_needs_rotation_invariance():
    with pytest.raises(ConfigError, match="rotation_invariant: true"):
        ModelConfig(architecture="hits", rotation_invariant=False, mirror_invariant=True).validate()


def test_mirror_layers_and_model_roundtrip(tmp_path):
    inp = keras.Input((4, 4, 1))
    out = CyclicPooling(mirror=True)(keras.layers.Flatten()(RotationStack(mirror=True)(inp)))
    model = keras.Model(inp, out)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    assert loaded.layers[1].mirror and loaded.layers[-1].copies == 8
    x = RNG.normal(size=(2, 4, 4, 1)).astype("float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    vade = build_model(_cfg("hits", mirror_invariant=True))
    vade.save(tmp_path / "v.keras")
    again = keras.models.load_model(tmp_path / "v.keras", safe_mode=True)
    assert again.mirror_invariant
    stamps = RNG.normal(size=(2, 11, 11, 1)).astype("float32")
    np.testing.assert_allclose(again.encode(stamps)[0], vade.encode(stamps)[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind,extra", [("ae", {}), ("vae", {"prior": "double_peak"}), ("vae", {"feature_dim": 4})])
def test_autoencoder_models_carry_the_mirror_switch(kind, extra):
    """AE, double-peak and hierarchical VAE (whose code AE pools the copies) all ignore mirroring."""
    model = build_model(_cfg("mlp", mirror_invariant=True, **extra), kind)
    assert model.mirror_invariant and model.rotation_invariant
    x = RNG.normal(size=(3, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(model.encode(x[:, :, ::-1].copy())[0], model.encode(x)[0], atol=1e-5)


@pytest.mark.parametrize("reconstruction", ["mse", "bce"])
def test_hierarchical_vae_marginalises_the_orientation_with_its_reconstruction(reconstruction, tmp_path):
    """The hierarchical VAE's code AE is rotation invariant when asked, so its image term marginalises
    the orientation, in the configured likelihood (bce on logits, as decode's sigmoid expects)."""
    model = build_model(_cfg("mlp", feature_dim=4, reconstruction=reconstruction, code_weight=0.0), "vae")
    x = RNG.uniform(size=(5, 8, 8, 1)).astype("float32")
    x_ae = model.ae_decoder(model.ae_encoder(x))
    expected = np.asarray(losses.orientation_marginal_reconstruction(reconstruction, x, x_ae))
    np.testing.assert_allclose(np.asarray(model.compute_terms(x)["reconstruction"]), expected, rtol=1e-5)
    turned = np.rot90(x, 1, axes=(1, 2)).copy()
    np.testing.assert_allclose(np.asarray(model.compute_terms(turned)["reconstruction"]), expected, rtol=1e-4)
    np.testing.assert_allclose(model.encode(turned)[0], model.encode(x)[0], atol=1e-5)
    model.save(tmp_path / "h.keras")
    again = keras.models.load_model(tmp_path / "h.keras")
    assert again.rotation_invariant and again.reconstruction == reconstruction
    np.testing.assert_allclose(again.encode(turned)[0], model.encode(x)[0], atol=1e-5)


def test_plain_autoencoder_with_an_invariant_encoder_marginalises_the_orientation():
    model = build_model(_cfg("mlp", mirror_invariant=True), kind="ae")
    x = RNG.uniform(size=(5, 8, 8, 1)).astype("float32")
    x_hat = model.decoder(model.encode(x)[0])
    expected = np.asarray(losses.orientation_marginal_reconstruction("mse", x, x_hat, mirror=True))
    np.testing.assert_allclose(np.asarray(model.compute_terms(x)["loss"]), expected, rtol=1e-5)
    # the rotated stamp has the same code, so the same loss (the plain term would differ)
    np.testing.assert_allclose(np.asarray(model.compute_terms(np.rot90(x, 1, axes=(1, 2)).copy())["loss"]),
                               expected, rtol=1e-4)
