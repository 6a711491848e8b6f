"""BatchNorm folding for prediction: same outputs as the trained model, original untouched."""

import keras
import numpy as np
from keras import layers

from astrovader.config import ModelConfig
from astrovader.models import build_model
from astrovader.networks import fold_batch_norm


def _randomise_batchnorm(net, seed=1):
    r = np.random.default_rng(seed)
    for layer in net.layers:
        if isinstance(layer, layers.BatchNormalization):
            for v, lo_hi in ((layer.moving_mean, None), (layer.moving_variance, (0.3, 3.0)), (layer.gamma, None),
                             (layer.beta, None)):
                v.assign(r.uniform(*lo_hi, size=v.shape) if lo_hi else r.normal(size=v.shape))


def _hits_vade(**kw):
    cfg = ModelConfig(architecture="hits", input_shape=(21, 21, 1), latent_dim=4, n_clusters=3, filters=[8, 8, 8, 8],
                      kernel_sizes=[3, 3, 3, 3], batch_norm=True, **kw)
    m = build_model(cfg, kind="vade")
    for net in (m.encoder, m.decoder):
        _randomise_batchnorm(net)
    r = np.random.default_rng(2)
    m.prior.means.assign(r.normal(size=m.prior.means.shape))
    m.prior.log_vars.assign(r.normal(size=m.prior.log_vars.shape) * 0.3)
    m.prior.initialized.assign(1.0)
    return m


def test_inference_copy_predicts_the_same_and_leaves_the_model_alone():
    m = _hits_vade(decoder_variance=True, reconstruction="gaussian")
    before = [np.array(v) for v in m.variables]
    x = np.random.default_rng(0).normal(size=(50, 21, 21, 1)).astype("float32")
    c = m.inference_copy()
    assert c is not m
    assert not any(isinstance(l, layers.BatchNormalization) for net in (c.encoder, c.decoder) for l in net.layers)
    a, b = m.predict_objects(x, batch_size=32), c.predict_objects(x, batch_size=32)
    assert set(a) == set(b) == {"mu", "x_hat", "decoder_variance", "gamma"}
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-4, atol=1e-5, err_msg=k)
    for v, w in zip(m.variables, before):
        np.testing.assert_array_equal(np.array(v), w)


def test_rotation_invariant_encoder_folds_too():
    m = _hits_vade(rotation_invariant=True)
    x = np.random.default_rng(0).normal(size=(20, 21, 21, 1)).astype("float32")
    np.testing.assert_allclose(m.inference_copy().encode(x)[0], m.encode(x)[0], rtol=1e-4, atol=1e-5)


def test_fold_matches_numpy_and_skips_what_cannot_fold():
    inp = keras.Input((6,))
    h = layers.Dense(5, name="d1")(inp)
    bn = layers.BatchNormalization(name="bn1")(h)
    side = layers.Dense(5, name="d2")(inp)
    shared = layers.BatchNormalization(name="bn2")(side)
    out = layers.Concatenate()([bn, shared, layers.ReLU()(side)])  # d2 also feeds a ReLU: not foldable
    net = keras.Model(inp, out)
    _randomise_batchnorm(net)
    f = fold_batch_norm(net)
    names = {l.name: type(l).__name__ for l in f.layers}
    assert names["bn1"] == "Lambda" and names["bn2"] == "BatchNormalization"
    x = np.random.default_rng(3).normal(size=(7, 6)).astype("float32")
    np.testing.assert_allclose(f(x), net(x, training=False), rtol=1e-5, atol=1e-5)
    b = net.get_layer("bn1")
    ref = (x @ np.array(net.get_layer("d1").kernel) + np.array(net.get_layer("d1").bias) - np.array(b.moving_mean)) \
        / np.sqrt(np.array(b.moving_variance) + b.epsilon) * np.array(b.gamma) + np.array(b.beta)
    np.testing.assert_allclose(np.asarray(f(x))[:, :5], ref, rtol=1e-5, atol=1e-5)


def test_nothing_to_fold_returns_the_model_itself():
    m = build_model(ModelConfig(architecture="mlp", input_shape=(8, 8, 1), latent_dim=2, n_clusters=2,
                                hidden_units=[16]), kind="vade")
    assert m.inference_copy() is m
