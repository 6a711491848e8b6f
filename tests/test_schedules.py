"""Schedule callbacks set the loss weights epoch by epoch; GMM initialisation = sklearn fit."""

import keras
import numpy as np
import pytest
from sklearn.mixture import GaussianMixture

from astrovader.config import ModelConfig, TrainConfig
from astrovader.models import build_model
from astrovader.schedules import S3VDC, ClassicVaDE, KLAnnealing, NaNGuard, recipe_callbacks


class _FakePrior:
    def __init__(self):
        self.initialized = keras.Variable(1.0, trainable=False)


class _FakeModel:
    """Just the variables the schedules touch; the prior counts as already initialised."""

    def __init__(self):
        self.unit_kl_weight = keras.Variable(1.0, trainable=False)
        self.gmm_kl_weight = keras.Variable(0.0, trainable=False)
        self.prior = _FakePrior()


def _run(cb, n_epochs):
    cb.set_model(_FakeModel())
    seen = []
    for epoch in range(n_epochs):
        cb.on_epoch_begin(epoch)
        logs = {}
        cb.on_epoch_end(epoch, logs)
        seen.append((round(logs["unit_kl_weight"], 6), round(logs["gmm_kl_weight"], 6)))
    return seen


def test_s3vdc_weights_follow_the_schedule():
    cb = S3VDC(gamma_epochs=2, anneal_epochs=3, static_epochs=2, periods=2, beta=0.1, power=3.0)
    assert cb.total_epochs == 12
    a1 = round(0.1 + 0.9 * (1 / 3) ** 3, 6)
    a2 = round(0.1 + 0.9 * (2 / 3) ** 3, 6)
    period = [(0.0, 0.1), (0.0, a1), (0.0, a2), (0.0, 1.0), (0.0, 1.0)]
    assert _run(cb, 12) == [(0.1, 0.0), (0.1, 0.0)] + period + period


def test_s3vdc_gmm_weight_scales_mixture_term():
    cb = S3VDC(gamma_epochs=1, anneal_epochs=1, static_epochs=1, periods=1, beta=0.0, gmm_weight=0.5)
    assert _run(cb, 3) == [(0.0, 0.0), (0.0, 0.0), (0.0, 0.5)]


def test_classic_and_kl_annealing_weights():
    assert _run(ClassicVaDE(pretrain_epochs=2, pretrain="vae"), 4) == [(1.0, 0.0)] * 2 + [(0.0, 1.0)] * 2
    assert _run(ClassicVaDE(pretrain_epochs=1, pretrain="ae"), 2) == [(0.0, 0.0), (0.0, 1.0)]
    assert _run(KLAnnealing(anneal_epochs=4), 6) == [(0.0, 0.0), (0.25, 0.0), (0.5, 0.0), (0.75, 0.0), (1.0, 0.0), (1.0, 0.0)]


def test_recipe_callbacks_follow_config():
    cbs = recipe_callbacks(TrainConfig(recipe="s3vdc", gamma_epochs=3, beta=0.2))
    assert isinstance(cbs[0], S3VDC) and cbs[0].gamma_epochs == 3 and cbs[0].beta == 0.2
    assert isinstance(cbs[-1], NaNGuard)
    assert isinstance(recipe_callbacks(TrainConfig(recipe="kl_annealing"))[0], KLAnnealing)


def _tiny_model():
    cfg = ModelConfig(architecture="mlp", input_shape=(6, 6, 1), latent_dim=2, n_clusters=3,
                      hidden_units=[8, 8, 8])
    return build_model(cfg)


def test_gmm_initialisation_equals_direct_sklearn_fit():
    model = _tiny_model()
    x = np.random.default_rng(0).uniform(size=(60, 6, 6, 1)).astype("float32")
    cb = S3VDC(x, gamma_epochs=1, gmm_batches=3, batch_size=20, seed=7)  # 3 x 20 = all stamps
    cb.set_model(model)
    cb.on_epoch_begin(0)
    assert float(model.prior.initialized.numpy()) == 0.0
    cb.on_epoch_begin(1)
    assert float(model.prior.initialized.numpy()) == 1.0
    ref = GaussianMixture(3, covariance_type="diag", random_state=7, reg_covar=1e-6, max_iter=200, n_init=5)
    ref.fit(model.encode(x)[0].astype("float64"))
    np.testing.assert_allclose(np.asarray(model.prior.means), ref.means_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.exp(np.asarray(model.prior.log_vars)), ref.covariances_, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(model.prior.pi()), ref.weights_, rtol=1e-5)
    # a resumed run (prior already initialised) does not refit
    model.prior.means.assign(np.zeros((3, 2), "float32"))
    cb.on_epoch_begin(2)
    assert np.all(np.asarray(model.prior.means) == 0)


def test_classic_uniform_pi():
    model = _tiny_model()
    x = np.random.default_rng(1).uniform(size=(40, 6, 6, 1)).astype("float32")
    cb = ClassicVaDE(x, pretrain_epochs=0, uniform_pi=True)
    cb.set_model(model)
    cb.on_epoch_begin(0)
    np.testing.assert_allclose(np.asarray(model.prior.pi()), 1 / 3, rtol=1e-6)


def test_schedule_changes_loss_without_retracing():
    model = _tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = np.random.default_rng(2).uniform(size=(20, 6, 6, 1)).astype("float32")
    model.unit_kl_weight.assign(0.0)
    a = model.evaluate(x, verbose=0, return_dict=True)
    model.unit_kl_weight.assign(1.0)
    b = model.evaluate(x, verbose=0, return_dict=True)
    assert a["loss"] == pytest.approx(a["reconstruction"], rel=1e-5)
    assert b["loss"] == pytest.approx(b["reconstruction"] + b["kl_unit"], rel=1e-5)
    assert b["kl_unit"] > 0


def test_ae_pretraining_is_a_deterministic_autoencoder():
    """With every KL weight at 0 the model is a plain AE (z = mu): two training-mode passes give the
    same loss and the log-variance head gets no gradient (an unpenalised head random-walked to
    exp(36) and NaN under sampling); with a KL weight the pass is stochastic again."""
    import tensorflow as tf

    cfg = ModelConfig(architecture="mlp", input_shape=(8, 8, 1), latent_dim=3, n_clusters=2,
                      hidden_units=[16], batch_norm=False, seed=0)
    model = build_model(cfg)
    x = np.random.default_rng(0).normal(size=(16, 8, 8, 1)).astype("float32")
    model(x[:2])
    model.unit_kl_weight.assign(0.0)
    model.gmm_kl_weight.assign(0.0)
    a = model.compute_terms(x, training=True)["reconstruction"].numpy()
    b = model.compute_terms(x, training=True)["reconstruction"].numpy()
    np.testing.assert_array_equal(a, b)
    log_var_kernel = next(v for v in model.encoder.trainable_variables if "z_log_var" in v.path)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model.compute_terms(x, training=True)["loss"])
    grad = tape.gradient(loss, log_var_kernel)
    assert grad is None or float(tf.reduce_max(tf.abs(grad))) == 0.0
    model.unit_kl_weight.assign(1.0)
    c = model.compute_terms(x, training=True)["reconstruction"].numpy()
    assert not np.array_equal(a, c)


def test_noisy_ae_pretraining_samples_without_kl():
    """`train.pretrain: noisy_ae` keeps sampling z with the encoder's variance while both KL weights are 0."""
    cfg = ModelConfig(architecture="mlp", input_shape=(8, 8, 1), latent_dim=3, n_clusters=2,
                      hidden_units=[16], batch_norm=False, seed=0)
    model = build_model(cfg)
    x = np.random.default_rng(0).normal(size=(16, 8, 8, 1)).astype("float32")
    model(x[:2])
    cb = ClassicVaDE(x, pretrain_epochs=2, pretrain="noisy_ae")
    cb.set_model(model)
    cb.on_train_begin()
    cb.on_epoch_begin(0)
    assert float(model.unit_kl_weight.numpy()) == 0.0 and float(model.gmm_kl_weight.numpy()) == 0.0
    a = model.compute_terms(x, training=True)["reconstruction"].numpy()
    b = model.compute_terms(x, training=True)["reconstruction"].numpy()
    assert not np.array_equal(a, b)
