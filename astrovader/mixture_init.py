"""Initialising the mixture prior from the encoder's latents, without labels.

VaDE inherits its clusters from the mixture it starts from. The classic recipe (seed 000
sec. VI; Jiang et al. 2017) fits a diagonal GMM directly on the pretrained latents, whose
clusters are rarely Gaussian: on MNIST such a fit reaches ~0.4 accuracy where the same
latents hold ~0.8-0.9. This module offers the alternatives, all unsupervised:

* ``method="gmm"`` -- a diagonal GMM on the latent means, copied as it is (the classic
  initialisation).
* ``method="umap"`` -- N2D (McConville et al. 2020): UMAP of the latent means to a few
  dimensions (``n_neighbors=20, min_dist=0``), a full-covariance GMM there, and the
  *moments of each found cluster in latent space* copied into the prior:

  Mathematical details::

      r_ik   = p(c = k | u_i)         responsibilities of the GMM on the embedding u
      pi_k   = mean_i r_ik
      mu_k   = sum_i r_ik z_i / sum_i r_ik
      s2_kj  = sum_i r_ik (z_ij - mu_kj)^2 / sum_i r_ik  + floor * var_j(z)

After a deterministic autoencoder pretraining (``train.pretrain: ae``) the encoder's
log-variance head has never been trained (it still outputs log s2 = 0, a posterior as wide
as the whole latent cloud); :func:`narrow_posterior` starts it at a tenth of the clusters'
typical (geometric-mean) variance, so the first VaDE samples stay inside their clusters.

Restarts (``n_restarts`` > 1) repeat the whole clustering with other seeds; the kept one
is the *medoid*: the clustering that agrees best (mean adjusted Rand index) with all
others -- a stability criterion that never looks at labels. Large catalogues are
subsampled (``max_points``), as s3VDC's mini-batch GMM initialisation does (seed 004
sec. 3.3).
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture

from astrovader.config import INIT_METHODS
from astrovader.errors import AstrovaderError

__all__ = ["MixtureInit", "INIT_METHODS", "cluster_latents", "medoid", "moments", "split_components",
           "refine_components", "init_prior", "narrow_posterior"]


@dataclasses.dataclass
class MixtureInit:
    """Result of :func:`cluster_latents`.

    Attributes:
        responsibilities: ``(N, K)`` soft assignments of the clustered points.
        weights, means, variances: the mixture moments in latent space (K,), (K, J), (K, J).
        method: ``"gmm"`` or ``"umap"``.
        scores: per restart, its mean ARI agreement with the other restarts.
        chosen: index of the kept restart.
        index: rows of the training stamps that were clustered (``None``: all of them).
        prior_agreement: set by :func:`init_prior`: the adjusted Rand index between this
            clustering and the clusters the initialised prior assigns the same latents
            (argmax of gamma). Low values mean the found clusters are far from the diagonal
            Gaussians VaDE can represent, and free VaDE epochs will move away from them:
            anchor gamma (``train.anchor_epochs``) or use ``model.components_per_cluster``.
    """

    responsibilities: np.ndarray
    weights: np.ndarray
    means: np.ndarray
    variances: np.ndarray
    method: str
    scores: list
    chosen: int
    index: np.ndarray | None = None
    prior_agreement: float | None = None

    def labels(self) -> np.ndarray:
        return self.responsibilities.argmax(1)


def moments(z: np.ndarray, resp: np.ndarray, floor: float = 1e-3):
    """Weights, means and diagonal variances of the clusters ``resp`` in the space of ``z``.

    Args:
        z: ``(N, J)`` latent means.
        resp: ``(N, K)`` non-negative responsibilities (rows need not be normalised).
        floor: added to each variance as a fraction of the latent's overall variance, so
            a tight or nearly empty cluster never gets a zero variance.

    Returns:
        ``(weights (K,), means (K, J), variances (K, J))``, all float64, weights summing to 1.
    """
    z = np.asarray(z, dtype=np.float64)
    r = np.asarray(resp, dtype=np.float64)
    if z.ndim != 2 or r.ndim != 2 or len(z) != len(r):
        raise AstrovaderError(f"moments: z {z.shape} and responsibilities {r.shape} do not match")
    nk = r.sum(0) + 1e-10
    means = (r.T @ z) / nk[:, None]
    var = (r.T @ z**2) / nk[:, None] - means**2
    var = np.maximum(var, 0.0) + floor * (z.var(0)[None] + 1e-12)
    weights = nk / nk.sum()
    weights = np.maximum(weights, 1e-6)
    return weights / weights.sum(), means, var


def _gmm(u: np.ndarray, k: int, covariance_type: str, seed: int, n_init: int) -> GaussianMixture:
    """A GMM fit; a component collapsed onto identical points (UMAP with min_dist 0 stacks
    duplicate stamps on one spot) is retried with a covariance floor of 1e-4, then 1e-2, of
    the data's variance."""
    u = np.asarray(u, dtype=np.float64)
    scale = float(np.mean(np.var(u, axis=0))) or 1.0
    for reg in (1e-6, 1e-4 * scale, 1e-2 * scale):  # the first is sklearn's classic floor
        try:
            return GaussianMixture(k, covariance_type=covariance_type, reg_covar=reg, max_iter=200,
                                   n_init=n_init, random_state=seed).fit(u)
        except ValueError:  # ill-defined empirical covariance
            continue
    raise AstrovaderError(f"a {k}-component mixture cannot be fitted to these latents (too many identical "
                          "stamps?): lower n_clusters or remove duplicate stamps")


def _umap(z: np.ndarray, n_components: int, n_neighbors: int, min_dist: float, seed: int) -> np.ndarray:
    try:
        import umap
    except ImportError:  # pragma: no cover - umap-learn is an install requirement
        raise AstrovaderError("the 'umap' mixture initialisation needs umap-learn: pip install umap-learn") from None
    n_neighbors = int(min(n_neighbors, len(z) - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_jobs/random_state notices
        reducer = umap.UMAP(n_components=int(min(n_components, z.shape[1])), n_neighbors=n_neighbors,
                            min_dist=min_dist, random_state=seed, n_jobs=1)
        return reducer.fit_transform(z)


def medoid(labelings: list) -> tuple[int, list[float]]:
    """The most stable of several clusterings of the same points (no labels involved).

    Returns the index of the labelling with the highest mean adjusted Rand index to the
    others, and those mean ARIs (1.0 for a single labelling).
    """
    if len(labelings) == 1:
        return 0, [1.0]
    scores = [float(np.mean([adjusted_rand_score(a, b) for j, b in enumerate(labelings) if j != i]))
              for i, a in enumerate(labelings)]
    return int(np.argmax(scores)), scores


def split_components(z: np.ndarray, labels: np.ndarray, n_clusters: int, m: int, seed: int = 0,
                     variance_floor: float = 1e-3):
    """m diagonal Gaussians per cluster: a GMM fitted to each cluster's latents (over-clustering).

    Returns ``(weights (K m,), means (K m, J), variances (K m, J))`` ordered cluster by
    cluster; weight = cluster fraction x sub-component weight. A cluster with fewer than
    ``2 m`` members is repeated at its own moments with a negligible weight.
    """
    z = np.asarray(z, dtype=np.float64)
    floor = variance_floor * (z.var(0) + 1e-12)
    w_out, m_out, v_out = [], [], []
    for k in range(n_clusters):
        zk = z[labels == k]
        frac = max(len(zk), 1) / len(z)
        if len(zk) >= 2 * m:
            g = GaussianMixture(m, covariance_type="diag", reg_covar=1e-6, random_state=seed, n_init=2).fit(zk)
            w, mu, var = g.weights_, g.means_, g.covariances_
        else:  # too few members to split
            mu = np.repeat((zk.mean(0) if len(zk) else z.mean(0))[None], m, 0)
            var = np.repeat((zk.var(0) if len(zk) > 1 else z.var(0))[None], m, 0)
            w = np.r_[1.0, np.full(m - 1, 1e-6)]
        w_out.append(frac * w / w.sum())
        m_out.append(mu)
        v_out.append(var + floor)
    w = np.maximum(np.concatenate(w_out), 1e-8)
    return w / w.sum(), np.concatenate(m_out), np.concatenate(v_out)


def refine_components(z: np.ndarray, labels: np.ndarray, weights: np.ndarray, means: np.ndarray,
                      variances: np.ndarray, n_clusters: int, steps: int = 400, learning_rate: float = 0.01,
                      variance_floor: float = 1e-3, max_points: int = 20000, learn_weights: bool = True):
    """Make a diagonal mixture assign the latents to the clusters it was copied from.

    Moments copied from non-Gaussian clusters (:func:`moments`, :func:`split_components`)
    can put a broad component of one cluster over another's latents, so the prior's own
    gamma disagrees with the clustering (low ``prior_agreement``). This takes ``steps``
    Adam steps on (log pi, mu, log sigma^2), from the copied values, that maximise the
    clustering's conditional likelihood under the mixture -- a discriminative fit to the
    unsupervised cluster labels, never to true labels.

    Mathematical details::

        log p(k | z_i) = logsumexp_{c in k} [log pi_c + log N(z_i; mu_c, s2_c)]
                         - logsumexp_c [log pi_c + log N(z_i; mu_c, s2_c)]
        maximise  mean_i log p(labels_i | z_i),   s2_c >= floor * var(z)

    Components are ordered cluster by cluster (K m rows, m = rows / K). At most
    ``max_points`` latents (a fixed random subset) enter the fit, so memory stays flat in the
    catalogue size. ``learn_weights=False`` keeps pi as given (a prior that starts at
    pi = 1/K, seed 000 sec. VI, is refined at those weights, not at weights it then drops).

    Returns:
        ``(weights, means, variances)`` of the same shapes.
    """
    import tensorflow as tf

    z, labels = np.asarray(z, np.float64), np.asarray(labels)
    if len(z) > max_points:
        keep = np.random.default_rng(0).choice(len(z), int(max_points), replace=False)
        z, labels = z[keep], labels[keep]
    floor = np.log(variance_floor * (z.var(0) + 1e-12))
    m = len(weights) // n_clusters
    log_w = tf.Variable(np.log(np.maximum(weights, 1e-12)), dtype=tf.float64)
    mu = tf.Variable(np.asarray(means, np.float64))
    log_v = tf.Variable(np.log(np.asarray(variances, np.float64)))
    zt, lab = tf.constant(z), tf.constant(labels.astype(np.int64))
    opt = tf.keras.optimizers.Adam(learning_rate)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            lv = tf.maximum(log_v, floor)
            log_p = (-0.5 * tf.reduce_sum((zt[:, None] - mu[None]) ** 2 / tf.exp(lv)[None] + lv[None], -1)
                     + tf.nn.log_softmax(log_w)[None])
            log_cluster = tf.nn.log_softmax(tf.reduce_logsumexp(tf.reshape(log_p, (-1, n_clusters, m)), -1), -1)
            loss = -tf.reduce_mean(tf.gather(log_cluster, lab, batch_dims=1))
        variables = [log_w, mu, log_v] if learn_weights else [mu, log_v]
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables))

    for _ in range(int(steps)):
        step()
    return (tf.nn.softmax(log_w).numpy(), mu.numpy(), np.exp(np.maximum(log_v.numpy(), floor)))


def cluster_latents(z: np.ndarray, n_clusters: int, method: str = "umap", seed: int = 0,
                    n_restarts: int = 1, n_init: int = 5, umap_components: int = 10,
                    umap_neighbors: int = 20, umap_min_dist: float = 0.0,
                    variance_floor: float = 1e-3, components_per_cluster: int = 1,
                    refine_steps: int = 0, uniform_pi: bool = False) -> MixtureInit:
    """Cluster latent means and return the mixture moments in latent space (no labels).

    Args:
        z: ``(N, J)`` latent means.
        n_clusters: K.
        method: ``"gmm"`` (diagonal GMM on ``z``) or ``"umap"`` (N2D: UMAP -> full GMM).
        seed: seed of the first restart (restart r uses ``seed + r``).
        n_restarts: independent clusterings; the medoid by mean ARI is kept.
        n_init: GMM restarts within one clustering (best likelihood kept).
        umap_components, umap_neighbors, umap_min_dist: UMAP settings (N2D: 10, 20, 0).
        variance_floor: see :func:`moments`.
        components_per_cluster: m > 1 describes each found cluster by m diagonal
            Gaussians (:func:`split_components`); the moments then have K m rows.
        refine_steps: > 0 refines those moments so the mixture assigns the latents to
            the found clusters (:func:`refine_components`).
        uniform_pi: the prior will start at pi = 1/K (seed 000 sec. VI), so the refinement
            holds the weights there (the returned weights are uniform).

    Returns:
        A :class:`MixtureInit`.
    """
    if method not in INIT_METHODS:
        raise AstrovaderError(f"mixture initialisation {method!r}: choose one of {', '.join(INIT_METHODS)}")
    z = np.asarray(z, dtype=np.float64)
    if not np.all(np.isfinite(z)):
        raise AstrovaderError("the encoder produced NaN/Inf latents; the pretraining diverged "
                              "(lower train.learning_rate or check the input scaling)")
    if len(z) < n_clusters:
        raise AstrovaderError(f"{len(z)} stamps cannot initialise {n_clusters} clusters: give more data")
    runs, params = [], []
    for r in range(max(1, int(n_restarts))):
        s = int(seed) + r
        if method == "gmm":  # the mixture itself lives in latent space: keep its parameters
            gmm = _gmm(z, n_clusters, "diag", s, n_init)
            runs.append(gmm.predict_proba(z))
            params.append((gmm.weights_, gmm.means_, gmm.covariances_))
        else:
            u = _umap(z, umap_components, umap_neighbors, umap_min_dist, s)
            runs.append(_gmm(u, n_clusters, "full", s, n_init).predict_proba(u))
            params.append(moments(z, runs[-1], variance_floor))
    best, scores = medoid([r.argmax(1) for r in runs])
    if components_per_cluster > 1:
        params[best] = split_components(z, runs[best].argmax(1), n_clusters, components_per_cluster, seed,
                                        variance_floor)
    if refine_steps > 0:
        weights, means, variances = params[best]
        if uniform_pi:
            weights = np.full(len(weights), 1.0 / len(weights))
        params[best] = refine_components(z, runs[best].argmax(1), weights, means, variances, n_clusters,
                                         refine_steps, variance_floor=variance_floor, learn_weights=not uniform_pi)
    return MixtureInit(runs[best], *params[best], method, scores, best)


def init_prior(model, z: np.ndarray, method: str = "umap", uniform_pi: bool = False, **kwargs) -> MixtureInit:
    """Cluster the latent means ``z`` (see :func:`cluster_latents`) and set ``model.prior``.

    Args:
        model: a :class:`~astrovader.models.VaDE`.
        z: ``(N, J)`` latent means of (a sample of) the training stamps.
        method: ``"gmm"`` or ``"umap"``.
        uniform_pi: set pi = 1/K (seed 000 sec. VI) instead of the cluster weights.
        **kwargs: passed to :func:`cluster_latents`.

    Returns:
        The :class:`MixtureInit`, with ``prior_agreement`` set; also kept as
        ``model.mixture_init`` (in memory only).
    """
    m = getattr(model, "components_per_cluster", 1)
    init = cluster_latents(z, model.n_clusters, method=method, components_per_cluster=m, uniform_pi=uniform_pi,
                           **kwargs)
    k = len(init.weights)
    weights = np.full(k, 1.0 / k) if uniform_pi else init.weights
    model.prior.set_parameters(weights, init.means, init.variances)
    narrow_posterior(model, init.variances, init.weights)
    log_gamma = model._cluster_log_gamma(model.prior(np.asarray(z, dtype="float32")))
    init.prior_agreement = float(adjusted_rand_score(init.labels(), np.asarray(log_gamma).argmax(1)))
    model.mixture_init = init  # for inspection after training; not saved with the model
    return init


def narrow_posterior(model, variances: np.ndarray, weights: np.ndarray, fraction: float = 0.1) -> bool:
    """Start q(z | x) at ``fraction`` x the components' geometric-mean variance per latent
    dimension, if the encoder's ``z_log_var`` head is untrained (all zeros: an AE pretraining
    never gives it a gradient). A head trained by a VAE pretraining is kept.

    Returns whether the head was set.
    """
    try:
        head = model.encoder.get_layer("z_log_var")
    except (AttributeError, ValueError):
        return False
    kernel, bias = head.get_weights()
    if np.any(kernel) or np.any(bias):
        return False
    w = np.asarray(weights, np.float64) / np.sum(weights)
    log_within = w @ np.log(np.asarray(variances, np.float64))  # log space: clusters of every width count
    head.set_weights([kernel, (np.log(fraction) + log_within).astype(bias.dtype)])
    return True
