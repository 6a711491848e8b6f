"""Training recipes as Keras callbacks that set the loss weights epoch by epoch.

The models hold two non-trainable weights, ``unit_kl_weight`` (KL to N(0, I)) and
``gmm_kl_weight`` (VaDE mixture KL). The callbacks below assign them in
``on_epoch_begin`` from the epoch number alone, so a run resumed by
``keras.callbacks.BackupAndRestore`` picks up exactly where it stopped; the mixture
initialisation is recorded in the prior's ``initialized`` variable (saved with the
model) and never repeated -- except once after the last epoch with ``train.recluster``,
which fits the mixture again on the final codes (:meth:`_WeightSchedule.on_train_end`).

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

from astrovader.config import PRETRAININGS, TrainConfig
from astrovader.errors import ConfigError
from astrovader.mixture_init import init_prior

__all__ = [
    "S3VDC",
    "ClassicVaDE",
    "KLAnnealing",
    "NaNGuard",
    "AnchorTargets",
    "fit_gmm_prior",
    "recipe_callbacks",
]


def _take(data, n_points: int, rng: np.random.Generator):
    """Up to ``n_points`` stamps drawn without replacement from an array or a tf.data set,
    and their row numbers in an array (``None``: all rows, or a dataset)."""
    if isinstance(data, np.ndarray):
        if n_points >= len(data):
            return data, None
        index = np.sort(rng.choice(len(data), n_points, replace=False))
        return data[index], index
    parts, count = [], 0
    for batch in data:
        batch = batch[0] if isinstance(batch, (tuple, list)) else batch
        parts.append(np.asarray(batch))
        count += len(parts[-1])
        if count >= n_points:
            break
    return np.concatenate(parts)[:n_points], None


def fit_gmm_prior(model, data, n_points: int | None = None, uniform_pi: bool = False,
                  seed: int = 0, batch_size: int = 256, n_init: int = 5, method: str = "gmm",
                  restarts: int = 1, umap_neighbors: int = 20, umap_components: int = 10,
                  refine_steps: int = 0):
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
        refine_steps: steps of :func:`~astrovader.mixture_init.refine_components` (0 = copy
            the moments as they are).

    Returns:
        the :class:`~astrovader.mixture_init.MixtureInit` that was copied into the prior.
    """
    rng = np.random.default_rng(seed)
    x, index = _take(data, n_points or (len(data) if isinstance(data, np.ndarray) else 10**9), rng)
    z_mean, _ = model.encode(x, batch_size=batch_size)
    init = init_prior(model, z_mean, method=method, uniform_pi=uniform_pi, seed=seed, n_init=n_init,
                      n_restarts=restarts, umap_neighbors=umap_neighbors, umap_components=umap_components,
                      refine_steps=refine_steps)
    init.index = index
    return init


class AnchorTargets:
    """Per-stamp target responsibilities r ``(N, K)``, shared by a recipe and the input pipeline.

    The recipe fills them with the initial clustering of the training stamps
    (:meth:`fill`); the pipeline looks up the rows of each batch (:meth:`lookup`) and the
    model mixes them into gamma with the weight ``anchor_weight`` (see
    :meth:`astrovader.models.VaDE._kl_terms`). No labels are involved: r comes from the
    unsupervised initialisation only.
    """

    def __init__(self, n: int, n_clusters: int):
        self.values = np.full((int(n), int(n_clusters)), 1.0 / n_clusters, dtype=np.float32)
        self.filled = False

    def lookup(self, index) -> np.ndarray:
        return self.values[np.asarray(index)]

    def fill(self, model, data: np.ndarray, init=None, batch_size: int = 256) -> None:
        """Rows the initialisation clustered get its responsibilities, the others the prior's gamma.

        Without ``init`` (a resumed run) every row gets the current prior's gamma.
        """
        index = None if init is None else init.index
        if init is not None and index is None:
            self.values[:] = init.responsibilities
        else:
            self.values[:] = model.cluster_probabilities(data, mc_samples=0, batch_size=batch_size)
            if init is not None:
                self.values[index] = init.responsibilities
        self.filled = True


def restart_weight_average(model) -> None:
    """Restart the optimiser's moving average of the weights (``train.ema``) at their current values.

    Called when a recipe writes the mixture initialisation into the prior: the average
    must not keep the random prior it replaced, nor the pretraining phase's weights.
    """
    opt = getattr(model, "optimizer", None)
    averages = getattr(opt, "_model_variables_moving_average", None) if getattr(opt, "use_ema", False) else None
    for var, avg in zip(getattr(opt, "_trainable_variables", None) or [], averages or []):
        if avg is not None:
            avg.assign(var)


class _WeightSchedule(keras.callbacks.Callback):
    """Base: subclasses return ``(unit_weight, gmm_weight)`` for an epoch.

    Recipes that initialise a mixture (``init_epoch`` is not ``None``) can *anchor* the
    first ``anchor_epochs`` VaDE epochs to that initialisation: with an
    :class:`AnchorTargets` ``anchor`` the model's ``anchor_weight`` is 1 during those
    epochs and 0 otherwise.
    """

    init_epoch: int | None = None
    anchor: AnchorTargets | None = None
    anchor_epochs: int = 0
    recluster: bool = False

    def weights_for_epoch(self, epoch: int) -> tuple[float, float]:
        raise NotImplementedError

    def _initialise(self, epoch: int) -> None:
        """Fit the mixture at ``init_epoch`` (once: a resumed run keeps its prior)."""
        if self.init_epoch is None or epoch < self.init_epoch:
            return
        init = None
        if float(self.model.prior.initialized.numpy()) < 0.5:
            if self.data is None:
                raise ConfigError(f"{type(self).__name__} needs the training data for the mixture initialisation: "
                                  "pass data= (the training stamps)")
            init = self.fit_prior()
            restart_weight_average(self.model)
            if (self.params or {}).get("verbose", 1):
                print(f"mixture initialised ({init.method}): the prior keeps its clusters with ARI "
                      f"{init.prior_agreement:.2f} (no labels; low: anchor gamma)", flush=True)
        anchoring = epoch < self.init_epoch + self.anchor_epochs
        if self.anchor is not None and anchoring and (init is not None or not self.anchor.filled):
            self.anchor.fill(self.model, self.data, init)

    def fit_prior(self):
        raise NotImplementedError

    def on_train_end(self, logs=None):
        """``recluster``: fit the mixture again, the initialisation's way, on the final codes.

        It runs before ``BackupAndRestore`` deletes the last epoch's checkpoint (recipe
        callbacks come first), so a run killed here redoes it on ``--resume``. A run that
        stopped early (NaN guard, early stopping) or never reached the initialisation
        keeps its prior.
        """
        if (not self.recluster or getattr(self.model, "stop_training", False)
                or float(self.model.prior.initialized.numpy()) < 0.5):
            return
        init = self.fit_prior()
        if (self.params or {}).get("verbose", 1):
            print(f"final codes re-clustered ({init.method}): the prior keeps those clusters with ARI "
                  f"{init.prior_agreement:.2f} (no labels)", flush=True)

    def on_epoch_begin(self, epoch, logs=None):
        self._initialise(epoch)
        unit, gmm = self.weights_for_epoch(epoch)
        self.model.unit_kl_weight.assign(unit)
        self.model.gmm_kl_weight.assign(gmm)
        if hasattr(self.model, "anchor_weight"):
            start = self.init_epoch if self.init_epoch is not None else 0
            on = self.anchor is not None and start <= epoch < start + self.anchor_epochs
            self.model.anchor_weight.assign(1.0 if on else 0.0)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["unit_kl_weight"] = float(self.model.unit_kl_weight.numpy())
            logs["gmm_kl_weight"] = float(self.model.gmm_kl_weight.numpy())
            if hasattr(self.model, "anchor_weight"):
                logs["anchor_weight"] = float(self.model.anchor_weight.numpy())


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
        anchor, anchor_epochs: :class:`AnchorTargets` of the training stamps (``data``
            must then be that array) and the number of epochs after the initialisation
            during which gamma is anchored to it (see :class:`_WeightSchedule`).
        recluster: after the last epoch, initialise the mixture again from the final codes
            (see :meth:`_WeightSchedule.on_train_end`).
    """

    def __init__(self, data=None, gamma_epochs: int = 100, gmm_batches: int = 200,
                 anneal_epochs: int = 25, static_epochs: int = 25, periods: int = 5,
                 beta: float = 0.01, power: float = 3.0, gmm_weight: float = 1.0,
                 batch_size: int = 100, seed: int = 0, init: dict | None = None,
                 anchor: AnchorTargets | None = None, anchor_epochs: int = 0, recluster: bool = False):
        super().__init__()
        self.init = dict(init or {})
        self.anchor, self.anchor_epochs, self.recluster = anchor, int(anchor_epochs), bool(recluster)
        self.init_epoch = int(gamma_epochs)
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

    def fit_prior(self):
        return fit_gmm_prior(self.model, self.data, self.gmm_batches * self.batch_size,
                             seed=self.seed, batch_size=self.batch_size, **self.init)


class ClassicVaDE(_WeightSchedule):
    """Pretrain -> GMM on all latents -> VaDE (seed 000 sec. VI; Jiang et al. 2017).

    Args:
        data: training stamps for the GMM fit.
        pretrain_epochs: epochs of pretraining (seed 000: 80).
        pretrain: ``"vae"`` (KL to N(0, I), seed 000), ``"ae"`` (no KL, z = mu: the original
            VaDE) or ``"noisy_ae"`` (no KL, z sampled with the encoder's variance).
        uniform_pi: initialise pi = 1/K (seed 000) instead of the fitted weights.
        seed: seed of the GMM fit.
        init: keyword arguments of :func:`fit_gmm_prior` choosing the initialisation.
        anchor, anchor_epochs, recluster: see :class:`S3VDC`.
    """

    def __init__(self, data=None, pretrain_epochs: int = 80, pretrain: str = "vae",
                 uniform_pi: bool = True, seed: int = 0, init: dict | None = None,
                 anchor: AnchorTargets | None = None, anchor_epochs: int = 0, recluster: bool = False):
        super().__init__()
        self.init = dict(init or {})
        self.anchor, self.anchor_epochs, self.recluster = anchor, int(anchor_epochs), bool(recluster)
        self.init_epoch = int(pretrain_epochs)
        if pretrain not in PRETRAININGS:
            raise ConfigError(f"train.pretrain={pretrain!r}: choose one of {', '.join(PRETRAININGS)}")
        self.data = data
        self.pretrain_epochs = int(pretrain_epochs)
        self.pretrain = pretrain
        self.uniform_pi = bool(uniform_pi)
        self.seed = seed

    def on_train_begin(self, logs=None):
        # read when the train step is traced, i.e. after this
        self.model.sample_without_kl = self.pretrain == "noisy_ae"

    def weights_for_epoch(self, epoch: int) -> tuple[float, float]:
        if epoch < self.pretrain_epochs:
            return (1.0 if self.pretrain == "vae" else 0.0), 0.0
        return 0.0, 1.0

    def fit_prior(self):
        return fit_gmm_prior(self.model, self.data, None, uniform_pi=self.uniform_pi, seed=self.seed, **self.init)


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

    The loss is looked at every ``check_every`` steps and at every epoch end, never after
    each step: reading a value back from the device each step would stall the pipeline of
    queued steps. The guard is safe for Keras's asynchronous callback dispatch
    (``async_safe``), so it does not by itself make ``fit`` wait for every step.

    After ``fit`` returns, ``error`` holds a one-line message naming the epoch and the
    offending term(s) (``None`` if training stayed finite); :func:`astrovader.training.train`
    raises it as a :class:`~astrovader.errors.TrainingError`.

    Args:
        check_every: steps between looks at the running loss within an epoch.
    """

    async_safe = True

    def __init__(self, check_every: int = 50):
        super().__init__()
        if int(check_every) < 1:
            raise ConfigError(f"train.nan_check_every={check_every!r} must be >= 1")
        self.check_every = int(check_every)
        self.error = None
        self._good = None
        self._next_check = self.check_every

    def on_train_begin(self, logs=None):
        self.error = None
        self._good = [np.array(w) for w in self.model.get_weights()]

    def on_epoch_begin(self, epoch, logs=None):
        self._next_check = self.check_every

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 < self._next_check:  # ``batch`` is the last step run (several per execution)
            return
        self._next_check = batch + 1 + self.check_every
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


def recipe_callbacks(train_cfg: TrainConfig, data=None, anchor: AnchorTargets | None = None
                     ) -> list[keras.callbacks.Callback]:
    """The weight-schedule callback(s) for ``train_cfg.recipe`` plus a :class:`NaNGuard`.

    ``anchor``: the :class:`AnchorTargets` of ``data`` (an array) that the input pipeline
    feeds to the model, for ``train.anchor_epochs`` > 0.
    """
    t = train_cfg
    init = dict(method=t.init, restarts=t.init_restarts, umap_neighbors=t.umap_neighbors,
                umap_components=t.umap_components, refine_steps=t.init_refine_steps)
    anchoring = dict(anchor=anchor, anchor_epochs=t.anchor_epochs, recluster=t.recluster)
    if t.recipe == "s3vdc":
        sched = S3VDC(data, t.gamma_epochs, t.gmm_batches, t.anneal_epochs, t.static_epochs,
                      t.periods, t.beta, t.anneal_power, t.gmm_weight, t.batch_size, t.seed, init, **anchoring)
    elif t.recipe == "classic":
        sched = ClassicVaDE(data, t.pretrain_epochs, t.pretrain, t.uniform_pi, t.seed, init, **anchoring)
    elif t.recipe == "kl_annealing":
        sched = KLAnnealing(t.anneal_epochs)
    elif t.recipe == "vae":
        sched = KLAnnealing(0, t.beta, t.beta)
    elif t.recipe == "vade":
        sched = ClassicVaDE(data, 0, "vae", t.uniform_pi, t.seed)
    else:
        raise ConfigError(f"train.recipe={t.recipe!r}: choose s3vdc, classic, kl_annealing, vae or vade")
    return [sched, NaNGuard(int(getattr(t, "nan_check_every", 50)))]
