"""ELBO terms in pure ``keras.ops``; every function returns one value per example.

Conventions: images ``x`` and reconstructions ``x_hat`` are ``(batch, H, W, C)`` (any
shape whose first axis is the batch); latent moments are ``(batch, J)``. Losses are
*negative* log-likelihood style quantities (to be minimised); the per-example values are
reduced over the global batch by the models (``tf.nn.compute_average_loss``).
"""

from __future__ import annotations

import functools

import numpy as np
from keras import ops

from astrovader.errors import ConfigError

__all__ = [
    "mse_reconstruction",
    "bce_reconstruction",
    "gaussian_nll",
    "unit_gaussian_kl",
    "gmm_kl",
    "reconstruction_loss",
    "orientation_marginal_reconstruction",
    "ring_projection",
    "radial_profile_residual",
]

_LOG_2PI = float(np.log(2.0 * np.pi))


def _flat(t):
    return ops.reshape(t, (ops.shape(t)[0], -1))


def mse_reconstruction(x, x_hat):
    """Squared error summed over pixels: MSE x D (seed 004 sec. 3.2)."""
    return ops.sum(ops.square(_flat(x) - _flat(x_hat)), axis=-1)


def bce_reconstruction(x, logits):
    """Binary cross-entropy summed over pixels (BCE x D), from decoder logits.

    Uses the stable form ``max(l, 0) - l x + log(1 + exp(-|l|))``; targets must lie in
    [0, 1].
    """
    x, logits = _flat(x), _flat(logits)
    per_pixel = ops.relu(logits) - logits * x + ops.log1p(ops.exp(-ops.abs(logits)))
    return ops.sum(per_pixel, axis=-1)


def gaussian_nll(x, x_hat, log_var):
    """Negative Gaussian log-likelihood with a learned per-image variance (seed 000 eq. 8).

    Mathematical details::

        -log p(x | z) = sum_d [ (x_d - mu_d)^2 / (2 s2(z)) + 1/2 log(2 pi s2(z)) ]

    Args:
        x: targets.
        x_hat: decoder means mu_x.
        log_var: ``(batch, 1)`` (or broadcastable per-pixel) log sigma^2(z).
    """
    x, x_hat = _flat(x), _flat(x_hat)
    log_var = ops.reshape(log_var, (ops.shape(log_var)[0], -1))
    per_pixel = 0.5 * ops.square(x - x_hat) * ops.exp(-log_var) + 0.5 * (_LOG_2PI + log_var)
    return ops.sum(per_pixel, axis=-1)


def reconstruction_loss(kind: str, x, x_hat, log_var=None):
    """Dispatch on ``kind`` in {"mse", "bce", "gaussian"}; ``gaussian`` needs ``log_var``."""
    if kind == "mse":
        return mse_reconstruction(x, x_hat)
    if kind == "bce":
        return bce_reconstruction(x, x_hat)
    if kind == "gaussian":
        if log_var is None:
            raise ValueError("the gaussian reconstruction needs the decoder log-variance")
        return gaussian_nll(x, x_hat, log_var)
    raise ConfigError(f"model.reconstruction={kind!r}: choose mse, bce or gaussian")


def orientation_marginal_reconstruction(kind: str, x, x_hat, log_var=None, mirror: bool = False):
    """Reconstruction term with the stamp's 90-degree orientation marginalised out.

    For a rotation-invariant encoder (Deep-HiTS cyclic pooling, seed 003) the latent code
    cannot say which of the 4 rot90 orientations a stamp had, so the decoder draws it in
    one of them and the likelihood averages over the 4 (a uniform nuisance variable);
    ``mirror=True`` (a mirror-invariant encoder) averages over the 8 rotations and
    reflections R_r:

    Mathematical details::

        -log p(x | z) = -log (1/R) sum_r p(R_r x | z)
                      = -logsumexp_r [ -recon(R_r x, x_hat) ] + log R,    R = 4 or 8

    which is never larger than the plain term (r = 0) plus log R, and is computed in log
    space. Square stamps only.
    """
    from astrovader.layers import dihedral_copies

    copies = dihedral_copies(x, mirror)
    terms = ops.stack([reconstruction_loss(kind, c, x_hat, log_var) for c in copies], axis=-1)
    return -ops.logsumexp(-terms, axis=-1) + float(np.log(len(copies)))


@functools.lru_cache(maxsize=8)
def ring_projection(height: int, width: int) -> np.ndarray:
    """``(H W, R)`` matrix whose columns are the unit-norm indicators of the 1-pixel rings
    about the stamp centre: ``A^T r`` gives each ring's pixel sum of an image ``r`` divided by
    sqrt(its pixel count), so ``|A^T r|^2`` is the squared norm of the projection of ``r`` onto
    the images that are constant on every ring."""
    yy, xx = np.mgrid[:height, :width]
    ring = np.floor(np.hypot(yy - (height - 1) / 2, xx - (width - 1) / 2)).astype(int).ravel()
    counts = np.bincount(ring)
    a = np.zeros((height * width, len(counts)), np.float32)
    a[np.arange(height * width), ring] = 1.0 / np.sqrt(counts[ring])
    return a


def radial_profile_residual(x, x_hat):
    """Squared error of the azimuthal-mean profiles, per example (the radial-profile term).

    Mathematical details::

        P(r) = sum_c sum_k n_k (mean_{i in ring k} r_ic)^2,    r = x - x_hat

    with ring k the pixels at distance [k, k+1) from the stamp centre, n_k their count and c
    the channel: the squared norm of the residual's projection onto ring-constant images,
    so ``mse + w P`` weights the round part of the residual (1 + w) times. It is invariant
    to rotations and reflections of ``x`` about the centre, so it can be added to the
    orientation-marginal reconstruction unchanged.
    """
    height, width, channels = (int(s) for s in x_hat.shape[1:])
    a = ops.convert_to_tensor(ring_projection(height, width))  # per call: a tensor cached across graphs leaks scope
    r = ops.cast(x, "float32") - ops.cast(x_hat, "float32")
    d = ops.einsum("bpc,pk->bkc", ops.reshape(r, (-1, height * width, channels)), a)
    return ops.sum(ops.square(d), axis=(1, 2))


def unit_gaussian_kl(z_mean, z_log_var):
    """KL(N(mu, diag s2) || N(0, I)) (seed 000 eq. 3, seed 001 eq. 2).

    Mathematical details::

        KL = -1/2 sum_j (1 + log s2_j - mu_j^2 - s2_j)
    """
    return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)


def gmm_kl(z_mean, z_log_var, log_gamma, prior_means, prior_log_vars, log_pi):
    """VaDE KL term: KL(q(z, c | x) || p(z, c)) (seed 000 eq. 5, seed 004 eq. 11).

    Mathematical details::

        KL = 1/2 sum_k g_k sum_j [ log s2_kj + s2_j / s2_kj + (mu_j - mu_kj)^2 / s2_kj ]
             - sum_k g_k (log pi_k - log g_k)
             - 1/2 sum_j (1 + log s2_j)

    the log 2 pi terms of log p(z|c) and of the entropy of q(z|x) cancel. ``g = gamma``
    is passed as log gamma so ``g log g`` is exact when a responsibility underflows.

    Args:
        z_mean, z_log_var: ``(batch, J)`` moments of q(z | x).
        log_gamma: ``(batch, K)`` log q(c | x).
        prior_means, prior_log_vars: ``(K, J)`` mixture parameters.
        log_pi: ``(K,)`` log mixture weights.
    """
    gamma = ops.exp(log_gamma)
    inv_var = ops.exp(-prior_log_vars)[None]  # (1, K, J)
    var = ops.exp(z_log_var)[:, None, :]  # (B, 1, J)
    diff2 = ops.square(z_mean[:, None, :] - prior_means[None])
    per_comp = ops.sum(prior_log_vars[None] + (var + diff2) * inv_var, axis=-1)  # (B, K)
    cross = 0.5 * ops.sum(gamma * per_comp, axis=-1)
    cat = ops.sum(gamma * (log_pi[None] - log_gamma), axis=-1)
    entropy = 0.5 * ops.sum(1.0 + z_log_var, axis=-1)
    return cross - cat - entropy
