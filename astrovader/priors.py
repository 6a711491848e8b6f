"""The double-peak latent prior of seed 002 and its regularisers, in ``keras.ops``.

Seed 002 (Sun, sec. 2.3) replaces the unit-Gaussian prior of a VAE by a double-peak prior
per latent dimension,

    Q(v) = 1/2 N(-m, s^2) + 1/2 N(m, s^2)                       (seed 002 eq. 8)

so that the two classes (stars, galaxies) can settle on the two peaks. KL(q || Q) has no
closed form; the paper gives two surrogates (Appendix A) and two Wasserstein-like
alternatives (Appendix B). Every function below takes the posterior moments
``mu``, ``log_var`` of shape ``(batch, J)`` and returns one value per example (summed over
the J dimensions), ready to be weighted like the unit-Gaussian KL of
:func:`astrovader.losses.unit_gaussian_kl`.

Mathematical details (one dimension, p = N(mu, sigma^2)):

* Scaling bound (A.1). KL is jointly convex, so
  KL(1/2 p + 1/2 p || 1/2 Q1 + 1/2 Q2) <= 1/2 KL(p || Q1) + 1/2 KL(p || Q2)::

      KL_bound = log(s / sigma) + (sigma^2 + mu^2 + m^2) / (2 s^2) - 1/2   >= KL(p || Q)

* Closed-form approximation (A.2). With log Q(x) = -log(2 s sqrt(2 pi)) - (x - m)^2/(2 s^2)
  + softplus(-2 m x / s^2)::

      KL = log(2 s / sigma) - 1/2 + ((mu - m)^2 + sigma^2) / (2 s^2) - E_p[softplus(-2 m x / s^2)]

  and softplus(y) ~ max(0, y) gives E_p[...] ~ (2 m / s^2) E_p[max(0, -x)]
  = (2 m / s^2) [sigma / sqrt(2 pi) exp(-mu^2 / (2 sigma^2)) - mu / 2 erfc(mu / (sqrt 2 sigma))],
  with erfc(t) ~ 1 - tanh(1.19 t) as in the paper. (The paper's printed gamma term is
  sqrt(2 pi) times this expectation -- a lost Gaussian normalisation; we use the normalised
  form, which the tests check against Monte Carlo.) The hinge under-estimates softplus,
  so the approximation errs on the high side by at most E_p[softplus(-2 m |x| / s^2)]
  <= log 2, and is tight when m / s^2 is large.

* AW (B.2): -||mu||_p + ||sigma - s||_p; the encoder bounds mu with tanh (the paper's
  "tanh activation in the last layer of the encoder"), see :func:`aw_loss`.

* PW (B.3) with p = 2: ||mu||_2 + sum_j (int (p_j(x) - Q(x))^2 dx)^(1/2), where the
  integral of products of Gaussians is closed form:
  int p^2 = 1 / (2 sigma sqrt pi), int Q^2 = (1 + exp(-m^2 / s^2)) / (4 s sqrt pi),
  int p Q = 1/2 [N(mu; -m, sigma^2 + s^2) + N(mu; m, sigma^2 + s^2)].

References: seed 002 sec. 2.3, 3.1.2, Appendix A.1, A.2, B.2, B.3.
"""

from __future__ import annotations

import math

import numpy as np
from keras import ops

from astrovader.errors import ConfigError

__all__ = [
    "double_peak_kl_bound",
    "double_peak_kl_approx",
    "aw_loss",
    "pw_loss",
    "prior_loss",
    "sample_double_peak",
    "double_peak_logpdf",
    "PRIOR_LOSSES",
]

PRIOR_LOSSES = ("bound", "approx", "aw", "pw")
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_SQRT_PI = math.sqrt(math.pi)


def double_peak_kl_bound(mu, log_var, m: float = 1.0, s: float = 0.5):
    """Upper bound on KL(N(mu, sigma^2) || 1/2 N(-m, s^2) + 1/2 N(m, s^2)) (seed 002 A.1).

    Args:
        mu, log_var: posterior moments ``(batch, J)``.
        m, s: peak centre and width of the prior.

    Returns:
        ``(batch,)``: the bound summed over the J dimensions.
    """
    m, s = float(m), float(s)
    var = ops.exp(log_var)
    per_dim = math.log(s) - 0.5 * log_var + (var + ops.square(mu) + m * m) / (2.0 * s * s) - 0.5
    return ops.sum(per_dim, axis=-1)


def double_peak_kl_approx(mu, log_var, m: float = 1.0, s: float = 0.5, tanh_erfc: bool = True):
    """Closed-form approximation of the double-peak KL (seed 002 A.2).

    Args:
        mu, log_var: posterior moments ``(batch, J)``.
        m, s: peak centre and width of the prior.
        tanh_erfc: use the paper's erfc(t) ~ 1 - tanh(1.19 t); ``False`` uses ``erf``.

    Returns:
        ``(batch,)``: the approximate KL summed over the J dimensions.
    """
    m, s = float(m), float(s)
    var = ops.exp(log_var)
    sigma = ops.exp(0.5 * log_var)
    t = mu / (math.sqrt(2.0) * sigma)
    erfc = 1.0 - (ops.tanh(1.19 * t) if tanh_erfc else ops.erf(t))
    hinge = sigma / _SQRT_2PI * ops.exp(-ops.square(t)) - 0.5 * mu * erfc  # E[max(0, -x)]
    per_dim = (math.log(2.0 * s) - 0.5 * log_var - 0.5 + (ops.square(mu - m) + var) / (2.0 * s * s)
               - (2.0 * m / (s * s)) * hinge)
    return ops.sum(per_dim, axis=-1)


def aw_loss(mu, log_var, m: float = 1.0, s: float = 0.5, p: int = 2):
    """"Analogy of Wasserstein" loss -||mu||_p + ||sigma - s||_p (seed 002 B.2).

    Pushes |mu| outwards and sigma to s. ``mu`` must be bounded (the model applies
    ``m * tanh`` to the encoder's mean when this loss is selected); ``m`` is unused here
    and accepted for a uniform signature.
    """
    del m
    sigma = ops.exp(0.5 * log_var)
    return -_norm(mu, p) + _norm(sigma - float(s), p)


def pw_loss(mu, log_var, m: float = 1.0, s: float = 0.5, p: int = 2):
    """"Pseudo Wasserstein" loss ||mu||_2 + sum_j ||p_j - Q||_{L2} (seed 002 B.3, p = 2).

    Raises:
        ConfigError: ``p`` other than 2 (only the L2 distance has a closed form here).
    """
    if int(p) != 2:
        raise ConfigError("pw_loss: only p=2 has a closed form; use p=2")
    m, s = float(m), float(s)
    var = ops.exp(log_var)
    sigma = ops.exp(0.5 * log_var)
    pp = 1.0 / (2.0 * sigma * _SQRT_PI)
    qq = (1.0 + math.exp(-m * m / (s * s))) / (4.0 * s * _SQRT_PI)
    v = var + s * s
    norm = 1.0 / ops.sqrt(2.0 * math.pi * v)
    pq = 0.5 * norm * (ops.exp(-ops.square(mu + m) / (2.0 * v)) + ops.exp(-ops.square(mu - m) / (2.0 * v)))
    l2 = ops.sqrt(ops.maximum(pp + qq - 2.0 * pq, 1e-12))
    return _norm(mu, 2) + ops.sum(l2, axis=-1)


def _norm(x, p: int):
    if int(p) == 1:
        return ops.sum(ops.abs(x), axis=-1)
    return ops.sqrt(ops.sum(ops.square(x), axis=-1) + 1e-12)


_LOSSES = {"bound": double_peak_kl_bound, "approx": double_peak_kl_approx, "aw": aw_loss, "pw": pw_loss}


def prior_loss(name: str, mu, log_var, m: float = 1.0, s: float = 0.5):
    """The double-peak regulariser ``name`` (``bound``, ``approx``, ``aw``, ``pw``) per example."""
    if name not in _LOSSES:
        raise ConfigError(f"model.prior_loss={name!r}: choose one of {', '.join(PRIOR_LOSSES)}")
    return _LOSSES[name](mu, log_var, m, s)


def sample_double_peak(n: int, dim: int, m: float = 1.0, s: float = 0.5, temperature: float = 1.0,
                       seed: int | None = None) -> np.ndarray:
    """``n`` draws ``(n, dim)`` from the double-peak prior (a random peak per dimension)."""
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(int(n), int(dim)))
    return (signs * m + temperature * s * rng.standard_normal((int(n), int(dim)))).astype("float32")


def double_peak_logpdf(x: np.ndarray, m: float = 1.0, s: float = 0.5) -> np.ndarray:
    """log Q(x) elementwise (NumPy; the reference the tests integrate against)."""
    x = np.asarray(x, dtype="float64")
    a = -((x - m) ** 2) / (2 * s * s)
    b = -((x + m) ** 2) / (2 * s * s)
    return np.logaddexp(a, b) - np.log(2 * s * _SQRT_2PI)
