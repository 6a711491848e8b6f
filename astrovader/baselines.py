"""Baseline clusterings on the same stamps, with the same J and K as the VaDE model.

Seed 000 Table Ic compares VaDE with a Gaussian mixture fitted on the codes of incremental
PCA, online dictionary learning and a plain VAE, all with J = 21 latent dimensions and
K = 10 clusters; seed 001 adds (CHASE) autoencoders. This module provides those, plus
k-means on the raw pixels:

* :func:`pca_gmm` -- ``IncrementalPCA`` (J components, mini-batches) + GMM.
* :func:`pca_n2d` -- the same PCA codes clustered by N2D (UMAP + GMM): no network at all.
* :func:`dictionary_gmm` -- ``MiniBatchDictionaryLearning`` (J atoms, sparse codes) + GMM.
* :func:`vae_gmm` -- astrovader's VAE (``recipe="vae"`` or ``"kl_annealing"``) + diagonal
  GMM on the encoder means (the initialisation step of classic VaDE, seed 000 sec. VI).
* :func:`kmeans_pixels` -- k-means on the flattened pixels.
* :func:`autoencoder_baselines` -- one plain autoencoder clustered by N2D (UMAP + GMM,
  McConville et al. 2020) and by k-means on its codes.

Every function is unsupervised and returns a :class:`BaselineResult`.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.decomposition import IncrementalPCA, MiniBatchDictionaryLearning
from sklearn.mixture import GaussianMixture

from astrovader.errors import AstrovaderError

__all__ = ["BaselineResult", "pca_gmm", "pca_n2d", "dictionary_gmm", "vae_gmm", "autoencoder_baselines",
           "kmeans_pixels", "BASELINES"]


@dataclasses.dataclass
class BaselineResult:
    """Output of a baseline.

    Attributes:
        name: short method name (used in benchmark tables).
        labels: cluster label per object ``(N,)``.
        latents: the representation that was clustered ``(N, J)`` (pixels for k-means).
        seconds: wall time of fit + predict.
        estimator: the fitted clustering (GMM or KMeans).
        embedder: the fitted representation model (PCA, dictionary, VAE) or ``None``.
    """

    name: str
    labels: np.ndarray
    latents: np.ndarray
    seconds: float
    estimator: Any = None
    embedder: Any = None


def _flat(x: Any) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim < 2 or len(arr) < 2:
        raise AstrovaderError(f"x: expected stamps of shape (N, ...) with N >= 2, got {arr.shape}")
    flat = arr.reshape(len(arr), -1)
    if not np.all(np.isfinite(flat)):
        raise AstrovaderError("x contains NaN/Inf: clean the stamps first (data.nan_policy)")
    return flat


def _check_kj(n: int, n_clusters: int, n_components: int | None = None) -> None:
    if n_clusters < 1 or n_clusters > n:
        raise AstrovaderError(f"n_clusters={n_clusters}: choose between 1 and the number of stamps ({n})")
    if n_components is not None and not 1 <= n_components <= n:
        raise AstrovaderError(f"n_components={n_components}: choose between 1 and the number of stamps ({n})")


def _gmm(z: np.ndarray, n_clusters: int, covariance_type: str, seed: int, n_init: int) -> GaussianMixture:
    """Fit a GMM in float64 with a covariance floor scaled to the data's variance.

    Stamps in SNR units give codes with variances of 1e2-1e4, so a fixed ``reg_covar``
    is negligible and nearly empty components collapse; if that still happens the floor
    is raised tenfold (up to three times).
    """
    z = np.asarray(z, dtype=np.float64)
    scale = float(np.mean(np.var(z, axis=0))) or 1.0
    reg = 1e-6 * scale
    for attempt in range(4):
        try:
            return GaussianMixture(
                n_components=n_clusters,
                covariance_type=covariance_type,
                reg_covar=reg,
                n_init=n_init,
                max_iter=300,
                random_state=seed,
            ).fit(z)
        except ValueError:
            if attempt == 3:
                raise
            reg *= 10.0
    raise AssertionError("unreachable")


def _pca_codes(flat: np.ndarray, n_components: int, batch_size: int = 1000):
    """Fitted ``IncrementalPCA`` and the codes of ``flat`` (seed 000 Table Ic)."""
    pca = IncrementalPCA(n_components=n_components, batch_size=max(int(batch_size), n_components))
    return pca, pca.fit_transform(flat)


def pca_gmm(
    x: Any,
    n_components: int = 21,
    n_clusters: int = 10,
    seed: int = 0,
    batch_size: int = 1000,
    covariance_type: str = "full",
    n_init: int = 1,
) -> BaselineResult:
    """Incremental PCA to ``n_components`` dimensions, then a Gaussian mixture (seed 000 Table Ic).

    Args:
        x: stamps ``(N, ...)``; flattened to pixels.
        n_components: J, the number of principal components.
        n_clusters: K, the number of mixture components.
        seed: seed of the mixture fit.
        batch_size: IncrementalPCA mini-batch size (raised to ``n_components`` if smaller).
        covariance_type: GMM covariance (``"full"``, ``"diag"``, ...).
        n_init: GMM restarts (best likelihood kept -- no labels involved).

    Returns:
        A :class:`BaselineResult` named ``"pca+gmm"``.
    """
    flat = _flat(x)
    _check_kj(len(flat), n_clusters, n_components)
    t0 = time.perf_counter()
    pca, z = _pca_codes(flat, n_components, batch_size)
    gmm = _gmm(z, n_clusters, covariance_type, seed, n_init)
    labels = gmm.predict(np.asarray(z, dtype=np.float64))
    return BaselineResult("pca+gmm", labels, z, time.perf_counter() - t0, gmm, pca)


def pca_n2d(
    x: Any,
    n_components: int = 21,
    n_clusters: int = 10,
    seed: int = 0,
    umap_neighbors: int = 20,
    umap_components: int = 10,
    n_init: int = 5,
) -> BaselineResult:
    """The codes of :func:`pca_gmm`'s incremental PCA clustered by N2D (McConville et al. 2020:
    UMAP(``umap_components``, ``umap_neighbors``, min_dist 0) -> full-covariance GMM).

    N2D without the autoencoder: what a user with no GPU and no deep-learning stack would
    try first, and a check on how much any trained network adds.

    Returns:
        A :class:`BaselineResult` named ``"pca+n2d"`` (``latents``: the PCA codes).
    """
    from astrovader.mixture_init import cluster_latents

    flat = _flat(x)
    _check_kj(len(flat), n_clusters, n_components)
    t0 = time.perf_counter()
    pca, z = _pca_codes(flat, n_components)
    init = cluster_latents(z, n_clusters, method="umap", seed=seed, n_init=n_init,
                           umap_neighbors=umap_neighbors, umap_components=umap_components)
    return BaselineResult("pca+n2d", init.labels(), z, time.perf_counter() - t0, init, pca)


def dictionary_gmm(
    x: Any,
    n_components: int = 21,
    n_clusters: int = 10,
    seed: int = 0,
    alpha: float = 0.1,
    batch_size: int = 256,
    max_iter: int = 5,
    covariance_type: str = "full",
    n_init: int = 1,
) -> BaselineResult:
    """Online dictionary learning (sparse codes), then a Gaussian mixture (seed 000 Table Ic).

    ``MiniBatchDictionaryLearning`` learns ``n_components`` atoms with an L1 penalty
    ``alpha``; the codes are the LASSO-LARS sparse coefficients of each stamp.

    Args:
        x: stamps ``(N, ...)``; flattened to pixels.
        n_components: J, the number of atoms.
        n_clusters: K.
        seed: seed of the dictionary and mixture fits.
        alpha: sparsity penalty (fit and transform).
        batch_size: dictionary-learning mini-batch size.
        max_iter: passes over the data (kept small: this is the slowest baseline).
        covariance_type: GMM covariance.
        n_init: GMM restarts.

    Returns:
        A :class:`BaselineResult` named ``"dl+gmm"``.
    """
    flat = _flat(x)
    _check_kj(len(flat), n_clusters, n_components)
    t0 = time.perf_counter()
    dl = MiniBatchDictionaryLearning(
        n_components=n_components,
        alpha=alpha,
        batch_size=batch_size,
        max_iter=max_iter,
        transform_algorithm="lasso_lars",
        transform_alpha=alpha,
        random_state=seed,
    )
    z = dl.fit(flat).transform(flat)
    gmm = _gmm(z, n_clusters, covariance_type, seed, n_init)
    labels = gmm.predict(np.asarray(z, dtype=np.float64))
    return BaselineResult("dl+gmm", labels, z, time.perf_counter() - t0, gmm, dl)


def kmeans_pixels(
    x: Any, n_clusters: int = 10, seed: int = 0, n_init: int = 3, minibatch: bool | None = None
) -> BaselineResult:
    """k-means on the flattened pixels.

    Args:
        x: stamps ``(N, ...)``.
        n_clusters: K.
        seed: seed of the k-means initialisation.
        n_init: restarts (lowest inertia kept).
        minibatch: use ``MiniBatchKMeans``; default: only when N > 20,000.

    Returns:
        A :class:`BaselineResult` named ``"kmeans"`` whose latents are the pixels.
    """
    flat = _flat(x)
    _check_kj(len(flat), n_clusters)
    t0 = time.perf_counter()
    if minibatch is None:
        minibatch = len(flat) > 20_000
    cls = MiniBatchKMeans if minibatch else KMeans
    km = cls(n_clusters=n_clusters, n_init=n_init, random_state=seed).fit(flat)
    return BaselineResult("kmeans", km.labels_.astype(np.int64), flat, time.perf_counter() - t0, km, None)


def _train_embedding(x: Any, cfg_or_j: Any, epochs: int | None, seed: int, recipe: str,
                     beta: float | None = None, batch_size: int = 256, verbose: int = 0):
    """Train astrovader's VAE (or, with ``beta=0``, a plain autoencoder) and encode ``x``.

    Returns ``(latent means float64 (N, J), model, cfg)``.
    """
    from astrovader.config import ModelConfig, RunConfig, TrainConfig
    from astrovader.training import train

    arr = np.asarray(x, dtype=np.float32)
    _flat(arr)
    if isinstance(cfg_or_j, RunConfig):
        cfg = RunConfig.from_dict(cfg_or_j.to_dict())
    else:
        cfg = RunConfig(
            model=ModelConfig(architecture="mlp", latent_dim=int(cfg_or_j), n_clusters=10),
            train=TrainConfig(),
        )
    cfg.model.input_shape = tuple(arr.shape[1:])
    cfg.model.seed = seed
    cfg.train.recipe = recipe
    cfg.train.recluster = False  # a VAE / AE has no mixture to re-cluster (a preset's setting for its VaDE)
    cfg.train.seed = seed
    if beta is not None:
        cfg.train.beta = float(beta)
    if epochs is not None:
        cfg.train.vae_epochs = int(epochs)
        cfg.train.anneal_epochs = min(cfg.train.anneal_epochs, int(epochs))
    cfg.validate()
    model, _ = train(cfg, arr, verbose=verbose)
    mu = np.asarray(model.encode(arr, batch_size=batch_size)[0], dtype=np.float64)
    if not np.all(np.isfinite(mu)):
        raise AstrovaderError("the baseline network produced NaN latents (training diverged); lower the learning rate")
    return mu, model, cfg


def vae_gmm(
    x: Any,
    cfg_or_j: Any = 21,
    n_clusters: int | None = None,
    epochs: int | None = None,
    seed: int = 0,
    recipe: str = "vae",
    covariance_type: str = "diag",
    n_init: int = 1,
    batch_size: int = 256,
    verbose: int = 0,
) -> BaselineResult:
    """A plain VAE, then a Gaussian mixture on its encoder means (seed 000 Table Ic, seed 001).

    Args:
        x: stamps ``(N, H, W, C)`` float32.
        cfg_or_j: a :class:`~astrovader.config.RunConfig` (its model/train/data settings,
            augmentation included, are used) or an int J (then the ``"mlp"`` architecture).
        n_clusters: K (default: ``cfg.model.n_clusters``, or 10 with an int J).
        epochs: VAE epochs (default: ``cfg.train.vae_epochs``).
        seed: seed of the network initialisation, training and mixture.
        recipe: ``"vae"`` (fixed beta = ``cfg.train.beta`` if set for this recipe, as the
            training module defines) or ``"kl_annealing"`` (beta 0 -> 1, seed 001).
        covariance_type: GMM covariance (``"diag"`` like classic VaDE's initialisation).
        n_init: GMM restarts.
        batch_size: batch size for encoding.
        verbose: Keras verbosity.

    Returns:
        A :class:`BaselineResult` named ``"vae+gmm"`` (or ``"kl-vae+gmm"``), whose
        ``embedder`` is the trained VAE.
    """
    t0 = time.perf_counter()
    mu, model, cfg = _train_embedding(x, cfg_or_j, epochs, seed, recipe, batch_size=batch_size, verbose=verbose)
    k = int(n_clusters if n_clusters is not None else cfg.model.n_clusters)
    _check_kj(len(mu), k)
    gmm = _gmm(mu, k, covariance_type, seed, n_init)
    labels = gmm.predict(mu)
    name = "vae+gmm" if recipe == "vae" else "kl-vae+gmm"
    return BaselineResult(name, labels, mu, time.perf_counter() - t0, gmm, model)


def autoencoder_baselines(
    x: Any,
    cfg: Any,
    n_clusters: int,
    epochs: int | None = None,
    seed: int = 0,
    umap_neighbors: int = 20,
    umap_components: int = 10,
    n_init: int = 5,
    verbose: int = 0,
) -> list[BaselineResult]:
    """One plain autoencoder, clustered two ways: N2D and k-means on its codes.

    * ``"n2d"`` -- N2D (McConville et al. 2020): autoencoder -> UMAP(``umap_components``,
      ``umap_neighbors``, min_dist 0) -> full-covariance GMM; what a user would pick
      instead of VaDE today.
    * ``"ae+kmeans"`` -- k-means on the autoencoder's codes (DEC's initialisation).

    The autoencoder is the config's network trained with the reconstruction term only
    (KL weight 0) for ``epochs`` (default: the recipe's pretraining length), on the same
    stamps and augmentation as the VaDE run, so the comparison isolates what VaDE adds.

    Returns:
        ``[n2d, ae+kmeans]`` :class:`BaselineResult` s sharing the autoencoder (``embedder``).
    """
    from astrovader.mixture_init import cluster_latents

    if epochs is None:
        t = cfg.train
        epochs = t.pretrain_epochs if t.recipe == "classic" else t.gamma_epochs if t.recipe == "s3vdc" else t.vae_epochs
    t0 = time.perf_counter()
    mu, model, _ = _train_embedding(x, cfg, epochs, seed, "vae", beta=0.0, verbose=verbose)
    _check_kj(len(mu), n_clusters)
    t_ae = time.perf_counter() - t0
    t1 = time.perf_counter()
    init = cluster_latents(mu, n_clusters, method="umap", seed=seed, n_init=n_init,
                           umap_neighbors=umap_neighbors, umap_components=umap_components)
    n2d = BaselineResult("n2d", init.labels(), mu, t_ae + time.perf_counter() - t1, init, model)
    t2 = time.perf_counter()
    km = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit(mu)
    akm = BaselineResult("ae+kmeans", km.labels_.astype(np.int64), mu, t_ae + time.perf_counter() - t2, km, model)
    return [n2d, akm]


BASELINES = {"pca+gmm": pca_gmm, "dl+gmm": dictionary_gmm, "kmeans": kmeans_pixels, "vae+gmm": vae_gmm}
