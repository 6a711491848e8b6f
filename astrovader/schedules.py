"""Training recipes as Keras callbacks that set the loss weights epoch by epoch.

The models hold two non-trainable weights, ``unit_kl_weight`` (KL to N(0, I)) and
``gmm_kl_weight`` (VaDE mixture KL). The callbacks below assign them in
``on_epoch_begin`` from the epoch number alone, so a run resumed by
``keras.callbacks.BackupAndRestore`` picks up exactly where it stopped; the mixture
initialisation is recorded in the prior's ``initialized`` variable (saved with the
model) and never repeated.

* :class:`S3VDC` -- seed 004 sec. 3.3 (Cao et al. 2020): gamma-training, mini-batch GMM
  initialisation, P x (annealing + static) periods.
* :class:`ClassicVaDE` -- seed 000 sec. VI: VAE (or AE) pretraining, GMM on all latents
  (pi = 1/K optionally), then VaDE.
* :class:`KLAnnealing` -- seed 001: beta rising linearly 0 -> 1.
* :class:`NaNGuard` -- stops on a non-finite loss term, restoring the last good weights.
"""

from __future__ import annotations

import numpy as np
import keras

from astrovader.config import TrainConfig
from astrovader.mixture_init import init_prior

__all__ = [
    "S3VDC",
    "ClassicVaDE",
    "KLAnnealing",
    "NaNGuard",
    "fit_gmm_prior",
    "recipe_callbacks",
]


def _take(data, n_points: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``n_points`` stamps drawn without replacement from an array or a tf.data set."""
    if isinstance(data, np.ndarray):
        if n_points >= len(data):
            return data
        return data[np.sort(rng.choice(len(data), n_points, replace=False))]
    parts, count = [], 0
    for batch in data:
        batch = batch[0] if isinstance(batch, (tuple, list)) else batch
        parts.append(np.asarray(batch))
        count += len(parts[-1])
        if count >= n_points:
            break
    return np.concatenate(parts)[:n_points]


def fit_gmm_prior(model, data, n_points: int | None = None, uniform_pi: bool = False,
                  seed: int = 0, batch_size: int = 256, n_init: int = 5, method: str = "gmm",
                  restarts: int = 1, umap_neighbors: int = 20, umap_components: int = 10):
    """Cluster the posterior means of ``data`` and copy the mixture into the prior.

    Args:
        model: a :class:`~astrovader.models.VaDE`.
        data: stamps (array or tf.data set of batches).
        n_points: use this many stamps (mini-batch GMM initialisation of s3VDC uses
            ``gmm_batches x batch_size``); ``None`` = all.
        uniform_pi: pi = 1/K (seed 000 sec. VI).
        seed: seed of the subsample and of the clustering.
        n_init: GMM restarts, the best (highest likelihood -- no labels) is kept; one
            k-means start often merges two clusters, and the whole run inherits it.
        method: ``"gmm"`` (diagonal GMM on the latents, the classic recipe) or ``"umap"``
            (N2D clusters whose latent moments become the prior); see
            :mod:`astrovader.mixture_init`.
        restarts: whole-clustering restarts, the most stable kept (no labels).
        umap_neighbors, umap_components: UMAP settings for ``method="umap"``.

    Returns:
        the :class:`~astrovader.mixture_init.MixtureInit` that was copied into the prior.
    """
    rng = np.random.default_rng(seed)
    x = _take(data, n_points or (len(data) if isinstance(data, np.ndarray) else 10**9), rng)
    z_mean, _ = model.encode(x, batch_size=batch_size)
    return init_prior(model, z_mean, method=method, uniform_pi=uniform_pi, seed=seed, n_init=n_init,
                      n_restarts=restarts, umap_neighbors=umap_neighbors, umap_components=umap_components)


class _WeightSchedule(keras.callbacks.Callback):
    """Base: subclasses return ``(unit_weight, gmm_weight)`` for an epoch."""

    def weights_for_epoch(self, epoch: int) -> tuple[float, float]:
        raise NotImplementedError

    def on_epoch_begin(self, epoch, logs=None):
        unit, gmm = self.weights_for_epoch(epoch)
        self.model.unit_kl_weight.assign(unit)
        self.model.gmm_kl_weight.assign(gmm)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["unit_kl_weight"] = float(self.model.unit_kl_weight.numpy())
            logs["gmm_kl_weight"] = float(self.model.gmm_kl_weight.numpy())


class S3VDC(_WeightSchedule):
    """The s3VDC recipe (seed 004 sec. 3.3 eqs. 14-16, Table 1 defaults 100/200/25/25/5).

    Mathematical details::

        epochs [0, N_g):        loss = recon + beta * KL(q || N(0, I))      (gamma-training)
        at epoch N_g:           GMM fitted on mu of `gmm_batches` mini-batches
        period p, epoch r of N_a + N_s:
            r <  N_a (annealing): loss = recon + w(r) * KL_VaDE,
                                  w(r) = beta + (1 - beta) * (r / N_a) ** power
            r >= N_a (static):    loss = recon + KL_VaDE
        (both KL_VaDE weights are multiplied by `gmm_weight`, the extra factor of seed 004)

    Args:
        data: training stamps used for the GMM initialisation (array or tf.data set).
        gamma_epochs, gmm_batches, anneal_epochs, static_epochs, periods: schedule
            lengths (N_g, GMM batches, N_a, N_s, P).
        beta: KL weight of the gamma-training phase and the annealing floor.
        power: polynomial order of the annealing ramp (seed 004: cubic).
        gmm_weight: overall weight of the VaDE KL term.
        batch_size: mini-batch size for the GMM initialisation.
        seed: seed of the GMM initialisation.
        init: keyword arguments of :func:`fit_gmm_prior` choosing the initialisation
            (``method``, ``restarts``, ``umap_neighbors``, ``umap_components``).
    """

    def __init__(self, data=None, gamma_epochs: int = 100, gmm_batches: int = 200,
                 anneal_epochs: int = 25, static_epochs: int = 25, periods: int = 5,
                 beta: float = 0.01, power: float = 3.0, gmm_weight: float = 1.0,
                 batch_size: int = 100, seed: int = 0, init: dict | None = None):
        super().__init__()
        self.init = dict(init or {})
        self.data = data
        self.gamma_epochs = int(gamma_epochs)
        self.gmm_batches = int(gmm_batches)
        self.anneal_epochs = int(anneal_epochs)
        self.static_epochs = int(static_epochs)
        self.periods = int(periods)
        self.beta = float(beta)
        self.power = float(power)
        self.gmm_weight = float(gmm_weight)
        self.batch_size = int(batch_size)
        self.seed = seed

    @property
    def total_epochs(self) -> int:
        return self.gamma_epochs + self.periods * (self.anneal_epochs + self.static_epochs)

    def weights_for_epoch(self, epoch: int) -> tuple[float, float]:
        if epoch < self.gamma_epochs:
            return self.beta, 0.0
        r = (epoch - self.gamma_epochs) % max(1, self.anneal_epochs + self.static_epochs)
        if r < self.anneal_epochs:
            w = self.beta + (1.0 - self.beta) * (r / self.anneal_epochs) ** self.power
        else:
            w = 1.0
        return 0.0, self.gmm_weight * w

    def on_epoch_begin(self, epoch, logs=None):
        if epoch >= self.gamma_epochs and float(self.model.prior.initialized.numpy()) < 0.5:
            if self.data is None:
                raise ValueError("S3VDC needs the training data for the GMM initialisation")
            fit_gmm_prior(self.model, self.data, self.gmm_batches * self.batch_size,
                          seed=self.seed, batch_size=self.batch_size, **self.init)
        super().on_epoch_begin(epoch, logs)


class ClassicVaDE(_WeightSchedule):
    """Pretrain -> GMM on all latents -> VaDE (seed 000 sec. VI; Jiang et al. 2017).

    Args:
        data: training stamps for the GMM fit.
        pretrain_epochs: epochs of pretraining (seed 000: 80).
        pretrain: ``"vae"`` (KL to N(0, I), seed 000) or ``"ae"`` (no KL, original VaDE).
        uniform_pi: initialise pi = 1/K (seed 000) instead of the fitted weights.
        seed: seed of the GMM fit.
        init: keyword arguments of :func:`fit_gmm_prior` choosing the initialisation.
    """

    def __init__(self, data=None, pretrain_epochs: int = 80, pretrain: str = "vae",
                 uniform_pi: bool = True, seed: int = 0, init: dict | None = None):
        super().__init__()
        self.init = dict(init or {})
        if pretrain not in ("vae", "ae"):
            raise ValueError("pretrain must be 'vae' or 'ae'")
        self.data = data
        self.pretrain_epochs = int(pretrain_epochs)
        self.pretrain = pretrain
        self.uniform_pi = bool(uniform_pi)
        self.seed = seed

    def weights_for_epoch(self, epoch: int) -> tuple[float, float]:
        if epoch < self.pretrain_epochs:
            return (1.0 if self.pretrain == "vae" else 0.0), 0.0
        return 0.0, 1.0

    def on_epoch_begin(self, epoch, logs=None):
        if epoch >= self.pretrain_epochs and float(self.model.prior.initialized.numpy()) < 0.5:
            if self.data is None:
                raise ValueError("ClassicVaDE needs the training data for the GMM fit")
            fit_gmm_prior(self.model, self.data, None, uniform_pi=self.uniform_pi, seed=self.seed, **self.init)
        super().on_epoch_begin(epoch, logs)


class KLAnnealing(_WeightSchedule):
    """beta rises linearly from ``start`` to ``end`` over ``anneal_epochs`` (seed 001)."""

    def __init__(self, anneal_epochs: int = 10, start: float = 0.0, end: float = 1.0):
        super().__init__()
        self.anneal_epochs = int(anneal_epochs)
        self.start = float(start)
        self.end = float(end)

    def weights_for_epoch(self, epoch: int) -> tuple[float, float]:
        frac = min(1.0, epoch / self.anneal_epochs) if self.anneal_epochs > 0 else 1.0
        return self.start + (self.end - self.start) * frac, 0.0


class NaNGuard(keras.callbacks.Callback):
    """Stop training when a loss term becomes NaN/Inf and restore the last good weights.

    After ``fit`` returns, ``error`` holds a one-line message naming the epoch and the
    offending term(s) (``None`` if training stayed finite); :func:`astrovader.training.train`
    raises it as a :class:`~astrovader.errors.TrainingError`.
    """

    def __init__(self):
        super().__init__()
        self.error = None
        self._good = None

    def on_train_begin(self, logs=None):
        self.error = None
        self._good = [np.array(w) for w in self.model.get_weights()]

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.all(np.isfinite(np.asarray(loss))):
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        bad = sorted(k for k, v in (logs or {}).items()
                     if not np.all(np.isfinite(np.asarray(v, dtype="float64"))))
        weights_ok = all(np.all(np.isfinite(w)) for w in self.model.get_weights())
        if bad or not weights_ok:
            terms = ", ".join(bad) if bad else "model weights"
            self.error = (f"training diverged at epoch {epoch + 1}: non-finite {terms}; the last "
                          "finite weights were restored -- lower the learning rate, enable "
                          "gradient clipping (train.clipnorm) or check the input scaling")
            self.model.set_weights(self._good)
            self.model.stop_training = True
        else:
            self._good = [np.array(w) for w in self.model.get_weights()]


def recipe_callbacks(train_cfg: TrainConfig, data=None) -> list[keras.callbacks.Callback]:
    """The weight-schedule callback(s) for ``train_cfg.recipe`` plus a :class:`NaNGuard`."""
    t = train_cfg
    init = dict(method=t.init, restarts=t.init_restarts, umap_neighbors=t.umap_neighbors,
                umap_components=t.umap_components)
    if t.recipe == "s3vdc":
        sched = S3VDC(data, t.gamma_epochs, t.gmm_batches, t.anneal_epochs, t.static_epochs,
                      t.periods, t.beta, t.anneal_power, t.gmm_weight, t.batch_size, t.seed, init)
    elif t.recipe == "classic":
        sched = ClassicVaDE(data, t.pretrain_epochs, t.pretrain, t.uniform_pi, t.seed, init)
    elif t.recipe == "kl_annealing":
        sched = KLAnnealing(t.anneal_epochs)
    elif t.recipe == "vae":
        sched = KLAnnealing(0, t.beta, t.beta)
    elif t.recipe == "vade":
        sched = ClassicVaDE(data, 0, "vae", t.uniform_pi, t.seed)
    else:
        raise ValueError(f"unknown recipe {t.recipe!r}")
    return [sched, NaNGuard()]
