"""Smoke tests for the baselines in astrovader.baselines (tiny data, seconds)."""

import importlib.util

import numpy as np
import pytest

from astrovader.baselines import BaselineResult, dictionary_gmm, kmeans_pixels, pca_gmm, pca_n2d, vae_gmm
from astrovader.errors import AstrovaderError
from astrovader.evaluation import hungarian_accuracy


@pytest.fixture(autouse=True)
def _seed():
    np.random.seed(0)


def _stamps(n_per=40, size=8, seed=0):
    """Three well separated stamp types: a centred blob, a horizontal bar, a vertical bar."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    blob = np.exp(-(xx**2 + yy**2) / 4.0)
    hbar = (np.abs(yy) < 1).astype(float)
    vbar = (np.abs(xx) < 1).astype(float)
    protos = np.stack([blob, hbar, vbar])
    y = np.repeat(np.arange(3), n_per)
    x = protos[y] + 0.1 * rng.normal(size=(len(y), size, size))
    order = rng.permutation(len(y))
    return x[order, :, :, None].astype("float32"), y[order]


@pytest.mark.parametrize(
    "fn,kwargs",
    [
        (pca_gmm, dict(n_components=4, batch_size=50)),
        (dictionary_gmm, dict(n_components=4, max_iter=3, batch_size=32)),
        (kmeans_pixels, dict()),
    ],
)
def test_baselines_recover_three_stamp_types(fn, kwargs):
    x, y = _stamps()
    res = fn(x, n_clusters=3, seed=0, **kwargs)
    assert isinstance(res, BaselineResult)
    assert res.labels.shape == (len(x),) and res.latents.shape[0] == len(x)
    assert res.seconds >= 0 and res.estimator is not None
    assert hungarian_accuracy(y, res.labels) >= 0.95
    again = fn(x, n_clusters=3, seed=0, **kwargs)
    np.testing.assert_array_equal(res.labels, again.labels)


def test_shapes_and_names():
    x, _ = _stamps(n_per=10)
    assert pca_gmm(x, n_components=5, n_clusters=2).latents.shape == (30, 5)
    assert pca_gmm(x, 5, 2).name == "pca+gmm"
    assert dictionary_gmm(x, 5, 2, max_iter=1).latents.shape == (30, 5)
    assert kmeans_pixels(x, 2).latents.shape == (30, 64)


def test_bad_inputs():
    x, _ = _stamps(n_per=5)
    with pytest.raises(AstrovaderError, match="n_clusters"):
        kmeans_pixels(x, n_clusters=100)
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(AstrovaderError, match="NaN"):
        pca_gmm(bad, 3, 2)


@pytest.mark.skipif(
    importlib.util.find_spec("astrovader.training") is None, reason="core training not landed yet"
)
def test_vae_gmm_smoke():
    x, y = _stamps(n_per=30)
    res = vae_gmm(x, 4, n_clusters=3, epochs=2, seed=0)
    assert res.name == "vae+gmm"
    assert res.labels.shape == (90,) and res.latents.shape == (90, 4)
    assert np.all(np.isfinite(res.latents))


def test_vae_gmm_takes_a_preset_that_reclusters():
    # hits-vade-ar sets train.recluster, which only a mixture recipe has: the baseline's VAE drops it
    from astrovader.config import ModelConfig, RunConfig, TrainConfig

    x, _ = _stamps(n_per=10)
    cfg = RunConfig(model=ModelConfig(architecture="mlp", latent_dim=3, n_clusters=3, hidden_units=[16]),
                    train=TrainConfig(recipe="classic", recluster=True, batch_size=30))
    res = vae_gmm(x, cfg, n_clusters=3, epochs=1, seed=0)
    assert res.labels.shape == (30,) and cfg.train.recluster  # the caller's configuration is left as it was


def test_autoencoder_baselines_share_one_plain_autoencoder():
    from astrovader.baselines import autoencoder_baselines
    from astrovader.config import ModelConfig, RunConfig, TrainConfig

    x, y = _stamps(n_per=40)
    cfg = RunConfig(model=ModelConfig(architecture="mlp", latent_dim=4, n_clusters=3, hidden_units=[32]),
                    train=TrainConfig(recipe="classic", pretrain="ae", pretrain_epochs=30, batch_size=40,
                                      learning_rate=3e-3))
    n2d, akm = autoencoder_baselines(x, cfg, 3, seed=0, umap_neighbors=10, umap_components=2)
    assert (n2d.name, akm.name) == ("n2d", "ae+kmeans")
    assert n2d.embedder is akm.embedder and float(n2d.embedder.unit_kl_weight.numpy()) == 0.0  # a plain AE
    assert int(n2d.embedder.optimizer.iterations.numpy()) == 30 * 3  # the recipe's pretraining length
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(y, n2d.labels) > 0.9 and adjusted_rand_score(y, akm.labels) > 0.9


def test_pca_n2d_clusters_the_pca_codes_with_umap_and_a_gmm():
    from sklearn.metrics import adjusted_rand_score

    x, y = _stamps(n_per=40)
    res = pca_n2d(x, n_components=5, n_clusters=3, seed=0, umap_neighbors=10, umap_components=2)
    assert res.name == "pca+n2d" and res.latents.shape == (120, 5)
    np.testing.assert_allclose(res.latents, res.embedder.transform(x.reshape(120, -1)), atol=1e-4)
    assert res.estimator.method == "umap" and res.estimator.weights.shape == (3,)
    assert adjusted_rand_score(y, res.labels) > 0.9
