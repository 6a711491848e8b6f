"""Log-densities, KL terms and gamma against NumPy/SciPy/TFP references."""

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp, softmax

from astrovader import losses
from astrovader.layers import ClusterProbabilities, DecoderVariance, GaussianMixturePrior

RNG = np.random.default_rng(1)
K, J, B = 4, 3, 7


def _prior(means, log_vars, logits):
    prior = GaussianMixturePrior(K, J)
    prior.build((None, J))
    prior.means.assign(means.astype("float32"))
    prior.log_vars.assign(log_vars.astype("float32"))
    prior.logits.assign(logits.astype("float32"))
    return prior


def _params():
    means = RNG.normal(size=(K, J))
    log_vars = RNG.normal(scale=0.5, size=(K, J))
    logits = RNG.normal(size=K)
    return means, log_vars, logits


def _np_log_joint(z, means, log_vars, logits):
    log_pi = logits - logsumexp(logits)
    comp = np.stack(
        [stats.multivariate_normal(means[k], np.diag(np.exp(log_vars[k]))).logpdf(z) for k in range(K)],
        axis=-1,
    )
    return log_pi[None] + comp


def test_mixture_log_densities_match_scipy():
    means, log_vars, logits = _params()
    prior = _prior(means, log_vars, logits)
    z = RNG.normal(size=(B, J)).astype("float32")
    ref = _np_log_joint(z.astype("float64"), means, log_vars, logits)
    np.testing.assert_allclose(np.asarray(prior(z)), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(prior.log_prob(z)), logsumexp(ref, axis=-1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(prior.pi()), softmax(logits), rtol=1e-6)


def test_mixture_matches_tfp_mixture_same_family():
    tfp = pytest.importorskip("tensorflow_probability")
    tfd = tfp.distributions
    means, log_vars, logits = _params()
    prior = _prior(means, log_vars, logits)
    z = RNG.normal(size=(B, J)).astype("float32")
    mix = tfd.MixtureSameFamily(
        tfd.Categorical(logits=logits.astype("float32")),
        tfd.MultivariateNormalDiag(means.astype("float32"), np.exp(0.5 * log_vars).astype("float32")),
    )
    np.testing.assert_allclose(np.asarray(prior.log_prob(z)), mix.log_prob(z).numpy(), rtol=1e-5, atol=2e-5)


def test_gamma_matches_reference_and_sums_to_one():
    means, log_vars, logits = _params()
    prior = _prior(means, log_vars, logits)
    z = RNG.normal(size=(B, J)).astype("float32")
    gamma = np.asarray(ClusterProbabilities()(prior(z)))
    ref = softmax(_np_log_joint(z.astype("float64"), means, log_vars, logits), axis=-1)
    np.testing.assert_allclose(gamma, ref, atol=1e-5)
    np.testing.assert_allclose(gamma.sum(-1), 1.0, atol=1e-6)


@pytest.mark.parametrize("scaling", [False, True])
def test_gamma_finite_for_extreme_latents_and_tiny_variances(scaling):
    means, _, logits = _params()
    log_vars = np.full((K, J), np.log(1e-8))
    prior = _prior(means, log_vars, logits)
    z = np.concatenate([np.full((2, J), 1e3), np.full((2, J), -1e3), means[:2] + 1e-5]).astype("float32")
    layer = ClusterProbabilities(minmax_scaling=scaling)
    gamma = np.asarray(layer(prior(z)))
    log_gamma = np.asarray(layer(prior(z), return_log=True))
    assert np.all(np.isfinite(gamma)) and np.all(np.isfinite(log_gamma))
    np.testing.assert_allclose(gamma.sum(-1), 1.0, atol=1e-5)
    # z sitting on component k's mean belongs to k
    assert gamma[4].argmax() == 0 and gamma[5].argmax() == 1


def test_minmax_scaling_keeps_order_and_floor():
    log_joint = np.log(np.array([[0.7, 0.2, 0.1, 1e-30]], dtype="float32"))
    g = np.asarray(ClusterProbabilities(minmax_scaling=True, floor=1e-3)(log_joint))
    assert np.all(np.diff(g[0]) < 0) and g[0, -1] > 0
    np.testing.assert_allclose(g.sum(), 1.0, atol=1e-6)


def test_unit_gaussian_kl_matches_numpy_and_monte_carlo():
    mu = RNG.normal(size=(B, J))
    lv = RNG.normal(scale=0.3, size=(B, J))
    ref = 0.5 * np.sum(np.exp(lv) + mu**2 - 1.0 - lv, axis=-1)
    np.testing.assert_allclose(np.asarray(losses.unit_gaussian_kl(mu.astype("float32"), lv.astype("float32"))), ref, rtol=1e-5)
    # each dimension: KL of two normals from scipy's entropy/cross-entropy by MC on one row
    z = mu[0] + np.exp(0.5 * lv[0]) * RNG.standard_normal((200_000, J))
    mc = np.mean(stats.norm(mu[0], np.exp(0.5 * lv[0])).logpdf(z).sum(-1) - stats.norm().logpdf(z).sum(-1))
    assert abs(mc - ref[0]) < 0.02


def test_gmm_kl_matches_numpy_reference_and_expectation():
    means, log_vars, logits = _params()
    mu = RNG.normal(size=(B, J))
    lv = RNG.normal(scale=0.3, size=(B, J))
    log_gamma = np.log(softmax(RNG.normal(size=(B, K)), axis=-1))
    log_pi = logits - logsumexp(logits)
    got = np.asarray(losses.gmm_kl(*(a.astype("float32") for a in (mu, lv, log_gamma, means, log_vars, log_pi))))
    g = np.exp(log_gamma)
    ref = np.zeros(B)
    for i in range(B):
        for k in range(K):
            ref[i] += 0.5 * g[i, k] * np.sum(log_vars[k] + np.exp(lv[i]) / np.exp(log_vars[k])
                                             + (mu[i] - means[k]) ** 2 / np.exp(log_vars[k]))
            ref[i] -= g[i, k] * (log_pi[k] - log_gamma[i, k])
        ref[i] -= 0.5 * np.sum(1 + lv[i])
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    # it equals E_q[log q(z|x) + log q(c|x) - log p(z|c) - log p(c)] (Monte Carlo, row 0)
    z = mu[0] + np.exp(0.5 * lv[0]) * RNG.standard_normal((200_000, J))
    log_q = stats.multivariate_normal(mu[0], np.diag(np.exp(lv[0]))).logpdf(z)
    comp = _np_log_joint(z, means, log_vars, logits)  # log p(z, c)
    mc = np.mean(log_q) + np.sum(g[0] * log_gamma[0]) - np.mean(comp @ g[0])
    assert abs(mc - ref[0]) < 0.03


def test_reconstruction_terms_match_numpy():
    x = RNG.uniform(size=(B, 5, 5, 1)).astype("float32")
    x_hat = RNG.normal(size=(B, 5, 5, 1)).astype("float32")
    np.testing.assert_allclose(np.asarray(losses.mse_reconstruction(x, x_hat)),
                               ((x - x_hat) ** 2).reshape(B, -1).sum(-1), rtol=1e-5)
    p = 1 / (1 + np.exp(-x_hat.astype("float64")))
    bce = -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(B, -1).sum(-1)
    np.testing.assert_allclose(np.asarray(losses.bce_reconstruction(x, x_hat)), bce, rtol=1e-5)
    log_var = RNG.uniform(-5, 0, size=(B, 1)).astype("float32")
    ref = -stats.norm(x_hat.reshape(B, -1), np.exp(0.5 * log_var)).logpdf(x.reshape(B, -1)).sum(-1)
    np.testing.assert_allclose(np.asarray(losses.gaussian_nll(x, x_hat, log_var)), ref, rtol=1e-5)
    with pytest.raises(ValueError):
        losses.reconstruction_loss("gaussian", x, x_hat)


def test_decoder_variance_is_bounded():
    head = DecoderVariance(seed=0)
    z = np.concatenate([RNG.normal(scale=100, size=(50, J)), np.zeros((1, J))]).astype("float32")
    log_var = np.asarray(head(z))
    assert log_var.shape == (51, 1)
    assert np.all(log_var <= 0.0) and np.all(log_var >= -5.0)


def test_bce_with_output_activation_is_rejected():
    from astrovader.config import ConfigError, ModelConfig

    with pytest.raises(ConfigError, match="logits"):
        ModelConfig(reconstruction="bce", output_activation="sigmoid").validate()


def test_gamma_at_the_mean_after_calls_with_samples_matches_the_prior_at_z_mean():
    """L = 0 must work after calls with L > 0 (the traced function is then relaxed to any L)."""
    from astrovader.config import ModelConfig
    from astrovader.models import build_model

    cfg = ModelConfig(architecture="mlp", input_shape=(8, 8, 1), latent_dim=J, n_clusters=K,
                      hidden_units=[16, 16], mc_samples=5)
    model = build_model(cfg, kind="vade")
    means, log_vars, logits = _params()
    model.prior.means.assign(means.astype("float32"))
    model.prior.log_vars.assign(log_vars.astype("float32") - 2.0)
    model.prior.logits.assign(logits.astype("float32"))
    x = np.random.default_rng(0).random((20, 8, 8, 1)).astype("float32")
    sampled = [model.cluster_probabilities(x, mc_samples=L) for L in (5, 3)]
    at_mean = model.cluster_probabilities(x, mc_samples=0)
    z_mean = np.asarray(model.encode(x)[0], np.float64)
    p = model.prior
    ref = softmax(_np_log_joint(z_mean, p.means.numpy(), p.log_vars.numpy(), p.log_pi().numpy()), axis=1)
    np.testing.assert_allclose(at_mean, ref, atol=1e-5)
    for g in sampled:
        assert g.shape == ref.shape and not np.allclose(g, ref, atol=1e-5)
