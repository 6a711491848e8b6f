"""Every custom layer and both models round-trip; SavedModel signatures reproduce outputs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from astrovader.config import ModelConfig
from astrovader.export import export_saved_model
from astrovader.layers import (CenterCrop, ClusterProbabilities, DecoderVariance, FusedBatchNormalization,
                               GaussianMixturePrior, Resize, Sampling)
from astrovader.models import VAE, VaDE, build_model

RNG = np.random.default_rng(0)


def _roundtrip_layer(layer, inputs, tmp_path):
    inp = keras.Input(inputs.shape[1:]) if not isinstance(inputs, list) else [keras.Input(a.shape[1:]) for a in inputs]
    model = keras.Model(inp, layer(inp))
    path = tmp_path / "layer.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert type(loaded.layers[-1]) is type(layer)
    assert loaded.layers[-1].get_config() == layer.get_config()
    return model, loaded


def test_gaussian_mixture_prior_roundtrip(tmp_path):
    layer = GaussianMixturePrior(3, 2, init_scale=2.0, seed=4, name="prior")
    z = RNG.normal(size=(5, 2)).astype("float32")
    model, loaded = _roundtrip_layer(layer, z, tmp_path)
    layer.set_parameters([0.2, 0.3, 0.5], RNG.normal(size=(3, 2)), RNG.uniform(0.5, 2, size=(3, 2)))
    model.save(tmp_path / "again.keras")
    loaded = keras.models.load_model(tmp_path / "again.keras")
    np.testing.assert_array_equal(model.predict(z, verbose=0), loaded.predict(z, verbose=0))
    assert float(loaded.layers[-1].initialized.numpy()) == 1.0


def test_cluster_probabilities_roundtrip(tmp_path):
    lj = RNG.normal(size=(5, 3)).astype("float32")
    model, loaded = _roundtrip_layer(ClusterProbabilities(minmax_scaling=True, floor=0.01), lj, tmp_path)
    np.testing.assert_array_equal(model.predict(lj, verbose=0), loaded.predict(lj, verbose=0))


def test_decoder_variance_roundtrip(tmp_path):
    z = RNG.normal(size=(5, 4)).astype("float32")
    model, loaded = _roundtrip_layer(DecoderVariance(units=8, max_log_scale=4.0, seed=1), z, tmp_path)
    np.testing.assert_array_equal(model.predict(z, verbose=0), loaded.predict(z, verbose=0))


def test_sampling_roundtrip(tmp_path):
    m = RNG.normal(size=(5, 4)).astype("float32")
    lv = np.full((5, 4), -50.0, dtype="float32")  # sigma ~ 0: output = mean
    model, loaded = _roundtrip_layer(Sampling(seed=3), [m, lv], tmp_path)
    np.testing.assert_allclose(loaded.predict([m, lv], verbose=0), m, atol=1e-6)


def test_fused_batch_normalization_roundtrip(tmp_path):
    x = RNG.normal(size=(5, 4, 4, 3)).astype("float32")
    layer = FusedBatchNormalization(momentum=0.9, epsilon=1e-3)
    model, loaded = _roundtrip_layer(layer, x, tmp_path)
    layer.moving_mean.assign([0.5, -1.0, 2.0])
    model.save(tmp_path / "again.keras")
    loaded = keras.models.load_model(tmp_path / "again.keras")
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


@pytest.mark.parametrize("layer, reference", [
    (Resize(11, 11, interpolation="nearest"), keras.layers.Resizing(11, 11, interpolation="nearest")),
    (Resize(21, 21, interpolation="nearest"), keras.layers.Resizing(21, 21, interpolation="nearest")),
    (Resize(9, 13), keras.layers.Resizing(9, 13, interpolation="bilinear")),
    (CenterCrop(5, 4), keras.layers.CenterCrop(5, 4)),
])
def test_backend_agnostic_resize_and_crop_equal_keras_and_roundtrip(layer, reference, tmp_path):
    """The networks' resize/crop layers (Keras' preprocessing layers need TensorFlow) compute
    exactly what the Keras layers compute, and round-trip."""
    x = RNG.normal(size=(3, 7, 6, 2)).astype("float32")
    expected = np.asarray(reference(x))
    assert expected.shape[1:3] == (layer.height, layer.width)
    np.testing.assert_array_equal(np.asarray(layer(x)), expected)
    model, loaded = _roundtrip_layer(layer, x, tmp_path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)


@pytest.mark.parametrize("shape", [(8, 5, 5, 4), (8, 4)])  # the fused kernel (NHWC) and the Keras fallback
def test_fused_batch_normalization_equals_keras_in_training(shape):
    x = tf.constant(RNG.normal(2.0, 3.0, size=shape).astype("float32"))
    outs = []
    for layer in (keras.layers.BatchNormalization(momentum=0.9), FusedBatchNormalization(momentum=0.9)):
        layer.build(x.shape)
        layer.gamma.assign(np.arange(1, shape[-1] + 1, dtype="float32"))
        layer.beta.assign(np.ones(shape[-1], "float32"))
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.sin(y))
        grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
        outs.append([y, *grads, layer.moving_mean, layer.moving_variance, layer(x, training=False)])
    for a, b in zip(*outs):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=2e-4)


def _tiny(arch="hits", **kw):
    shape = {"hits": (11, 11, 1), "astrovader": (16, 16, 2), "mlp": (8, 8, 1)}[arch]
    return ModelConfig(architecture=arch, input_shape=shape, latent_dim=3, n_clusters=4,
                       filters=[4, 4], kernel_sizes=[3], hidden_units=[16, 16, 32], **kw)


@pytest.mark.parametrize("kind,arch,extra", [
    ("vade", "hits", {"decoder_variance": True, "batch_norm": True}),
    ("vae", "astrovader", {}),
    ("vade", "mlp", {"reconstruction": "bce", "gamma_scaling": True}),
    ("vade", "hits", {"rotation_invariant": True, "batch_norm": True}),
])
def test_model_keras_roundtrip_identical_outputs(tmp_path, kind, arch, extra):
    cfg = _tiny(arch, **extra)
    model = build_model(cfg, kind=kind)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = RNG.uniform(size=(12, *cfg.input_shape)).astype("float32")
    model.fit(x, batch_size=6, epochs=1, verbose=0)  # optimizer state + BN statistics exist
    model.unit_kl_weight.assign(0.25)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert type(loaded) is (VaDE if kind == "vade" else VAE)
    for a, b in zip(model.encode(x), loaded.encode(x)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.reconstruct(x), loaded.reconstruct(x))
    np.testing.assert_array_equal(model.decoder_variance(x), loaded.decoder_variance(x))
    assert float(loaded.unit_kl_weight.numpy()) == 0.25
    assert loaded.model_config == model.model_config
    if kind == "vade":
        np.testing.assert_array_equal(model.cluster_probabilities(x), loaded.cluster_probabilities(x))
        np.testing.assert_array_equal(model.prototypes(), loaded.prototypes())
    # training continues from the restored optimizer state
    assert int(loaded.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy())
    loaded.fit(x, batch_size=6, epochs=1, verbose=0)


@pytest.mark.parametrize("kind", ["vae", "vade"])
def test_saved_model_signatures_reproduce_outputs(tmp_path, kind):
    cfg = _tiny("hits", decoder_variance=True, batch_norm=True)
    model = build_model(cfg, kind=kind)
    x = RNG.uniform(size=(9, *cfg.input_shape)).astype("float32")
    names = export_saved_model(model, tmp_path / "sm")
    reloaded = tf.saved_model.load(str(tmp_path / "sm"))  # no astrovader objects needed
    mean, log_var = model.encode(x)
    out = reloaded.encode(tf.constant(x))
    np.testing.assert_allclose(out["z_mean"].numpy(), mean, atol=1e-6)
    np.testing.assert_allclose(out["z_log_var"].numpy(), log_var, atol=1e-6)
    z = RNG.normal(size=(5, cfg.latent_dim)).astype("float32")
    np.testing.assert_allclose(reloaded.decode(tf.constant(z))["x_hat"].numpy(), model.decode(z), atol=1e-6)
    np.testing.assert_allclose(reloaded.decoder_variance(tf.constant(x))["variance"].numpy(),
                               model.decoder_variance(x), atol=1e-6)
    if kind == "vade":
        assert {"encode", "decode", "cluster_probabilities", "generate"} <= set(names)
        np.testing.assert_allclose(reloaded.cluster_probabilities(tf.constant(x))["gamma"].numpy(),
                                   model.cluster_probabilities(x), atol=1e-6)
        ids = tf.range(cfg.n_clusters, dtype=tf.int32)
        gen = reloaded.generate(ids, tf.zeros((cfg.n_clusters, cfg.latent_dim)))["x_hat"].numpy()
        np.testing.assert_allclose(gen, model.prototypes(), atol=1e-6)
    with pytest.raises(ValueError, match="already exists"):
        export_saved_model(model, tmp_path / "sm")
