"""The double-peak prior's KL forms, AW and PW (seed 002 App. A, B) against numerical references."""

import numpy as np
import pytest
from scipy import integrate, stats

from astrovader import priors

CASES = [(0.3, 0.4, 1.0, 0.5), (1.0, 0.2, 1.0, 0.5), (-0.8, 0.6, 2.0, 0.7), (0.0, 1.0, 1.0, 0.5),
         (2.0, 0.1, 1.0, 0.3), (-1.5, 0.3, 1.5, 1.0)]


def _kl_mc(mu, sigma, m, s, n=400_000, seed=0):
    x = np.random.default_rng(seed).normal(mu, sigma, n)
    return float(np.mean(stats.norm.logpdf(x, mu, sigma) - priors.double_peak_logpdf(x, m, s)))


def _kl_quad(mu, sigma, m, s):
    f = lambda t: stats.norm.pdf(t, mu, sigma) * (stats.norm.logpdf(t, mu, sigma) - priors.double_peak_logpdf(t, m, s))  # noqa: E731
    return integrate.quad(f, mu - 12 * sigma, mu + 12 * sigma, limit=200)[0]


def _moments(mu, sigma):
    return np.array([[mu]], "float32"), np.array([[np.log(sigma**2)]], "float32")


def test_logpdf_matches_scipy_mixture():
    x = np.linspace(-4, 4, 41)
    ref = np.log(0.5 * stats.norm.pdf(x, -1.2, 0.6) + 0.5 * stats.norm.pdf(x, 1.2, 0.6))
    np.testing.assert_allclose(priors.double_peak_logpdf(x, 1.2, 0.6), ref, rtol=1e-10)


@pytest.mark.parametrize("mu,sigma,m,s", CASES)
def test_kl_bound_is_above_monte_carlo(mu, sigma, m, s):
    mc = _kl_mc(mu, sigma, m, s)
    assert mc == pytest.approx(_kl_quad(mu, sigma, m, s), abs=0.02)
    bound = float(priors.double_peak_kl_bound(*_moments(mu, sigma), m, s)[0])
    assert bound >= mc - 0.01
    # A.1 is the mean of the KLs to the two peaks: check it against scipy-free closed form
    kl = lambda c: np.log(s / sigma) + (sigma**2 + (mu - c) ** 2) / (2 * s * s) - 0.5  # noqa: E731
    assert bound == pytest.approx(0.5 * (kl(m) + kl(-m)), rel=1e-5)


@pytest.mark.parametrize("mu,sigma,m,s", CASES)
def test_kl_approximation_against_quadrature(mu, sigma, m, s):
    ref = _kl_quad(mu, sigma, m, s)
    exact_erfc = float(priors.double_peak_kl_approx(*_moments(mu, sigma), m, s, tanh_erfc=False)[0])
    tanh_erfc = float(priors.double_peak_kl_approx(*_moments(mu, sigma), m, s)[0])
    # the hinge under-estimates softplus: the approximation lies above the KL by < log 2
    assert ref - 1e-4 <= exact_erfc <= ref + np.log(2)
    assert tanh_erfc == pytest.approx(exact_erfc, abs=0.05)  # erfc(t) ~ 1 - tanh(1.19 t)
    if m / s**2 >= 3 and abs(mu) / sigma > 2:  # well separated peaks, posterior on one side
        assert exact_erfc == pytest.approx(ref, abs=0.01)


def test_kl_sums_over_dimensions():
    mu = np.array([[0.3, -1.0, 0.8]], "float32")
    lv = np.log(np.array([[0.2, 0.5, 1.0]], "float32") ** 2)
    for fn in (priors.double_peak_kl_bound, priors.double_peak_kl_approx):
        per = [float(fn(mu[:, j:j + 1], lv[:, j:j + 1], 1.0, 0.5)[0]) for j in range(3)]
        assert float(fn(mu, lv, 1.0, 0.5)[0]) == pytest.approx(sum(per), rel=1e-5)


@pytest.mark.parametrize("mu,sigma,m,s", CASES)
def test_pw_against_numerical_integration(mu, sigma, m, s):
    def sq(t):
        q = 0.5 * stats.norm.pdf(t, -m, s) + 0.5 * stats.norm.pdf(t, m, s)
        return (stats.norm.pdf(t, mu, sigma) - q) ** 2

    pts = sorted({mu, -m, m})
    ref = abs(mu) + np.sqrt(integrate.quad(sq, -25, 25, points=pts, limit=400)[0])
    assert float(priors.pw_loss(*_moments(mu, sigma), m, s)[0]) == pytest.approx(ref, rel=1e-4)


def test_pw_only_p2():
    with pytest.raises(ValueError, match="p=2"):
        priors.pw_loss(*_moments(0.0, 1.0), p=1)


def test_aw_formula_and_prior_loss_dispatch():
    mu = np.array([[0.5, -0.2]], "float32")
    lv = np.log(np.array([[0.3, 0.6]], "float32") ** 2)
    ref = -np.sqrt(0.5**2 + 0.2**2) + np.sqrt((0.3 - 0.5) ** 2 + (0.6 - 0.5) ** 2)
    assert float(priors.aw_loss(mu, lv, s=0.5)[0]) == pytest.approx(ref, rel=1e-4)
    assert float(priors.aw_loss(mu, lv, s=0.5, p=1)[0]) == pytest.approx(-0.7 + 0.3, rel=1e-4)
    for name in priors.PRIOR_LOSSES:
        assert np.isfinite(float(priors.prior_loss(name, mu, lv)[0]))
    with pytest.raises(ValueError):
        priors.prior_loss("nope", mu, lv)


def test_samples_follow_the_prior():
    z = priors.sample_double_peak(20000, 2, m=1.5, s=0.3, seed=0)
    assert z.shape == (20000, 2)
    assert np.mean(z > 0) == pytest.approx(0.5, abs=0.02)
    assert np.std(np.abs(z) - 1.5) == pytest.approx(0.3, abs=0.02)


def test_aw_model_bounds_the_mean():
    from astrovader.config import ModelConfig
    from astrovader.models import build_model

    cfg = ModelConfig(architecture="chase", input_shape=(12, 12, 1), latent_dim=2, filters=[4, 4],
                      prior="double_peak", prior_loss="aw", prior_m=1.5)
    model = build_model(cfg, kind="vae")
    mu, _ = model.encode(100 * np.random.default_rng(0).normal(size=(8, 12, 12, 1)).astype("float32"))
    assert np.all(np.abs(mu) <= 1.5) and np.abs(mu).max() > 0.1
