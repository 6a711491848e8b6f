"""Hyperparameter search with keras-tuner, on one machine or distributed.

:class:`VaDEHyperModel` turns a base :class:`~astrovader.config.RunConfig` and a *search
space* into keras-tuner trials: ``build(hp)`` returns a compiled VaDE (or VAE) whose
architecture, latent size J, optionally K, learning rate, beta and schedule lengths come
from ``hp``; ``fit(hp, model, ...)`` runs the training recipe of the trial's config (the
same schedule callbacks as :func:`astrovader.training.train`). :func:`run_search` drives
a Bayesian, Hyperband or random search and writes ``best.yaml`` (loadable by
``astrovader train --config``), ``summary.md`` and ``trials.csv``. Each trial trains one run:
the base config's ``train.restarts`` is not applied to trials (a search already trains many
runs) and is kept in ``best.yaml``, so training the best config trains its restarts.

Objectives (all maximised; labels are never an objective):

* ``"elbo"`` -- the validation ELBO (``val_elbo``) per epoch.
* ``"calinski_harabasz"`` / ``"silhouette"`` -- computed after training on the
  validation posterior means and the cluster assignments (seed 004 sec. 4.1).

Search spaces are plain dicts (YAML-friendly) mapping ``"section.field"`` names to a
list of choices, a ``{"min", "max", "step", "sampling"}`` range or a fixed value. Two
derived names exist: ``model.filter_scale`` multiplies every entry of the base config's
``filters`` and ``model.kernel_size`` sets every entry of ``kernel_sizes``.

Distributed tuning uses keras-tuner's own chief/worker mode: start one process with
``KERASTUNER_TUNER_ID=chief`` and any number with ``KERASTUNER_TUNER_ID=tuner<i>``, all
with ``KERASTUNER_ORACLE_IP`` / ``KERASTUNER_ORACLE_PORT`` pointing at the chief and the
same ``out_dir`` on a shared file system. The chief runs the oracle and blocks until the
workers have run every trial (it waits forever for dead workers: bound it with a job
time limit). Only the chief writes the result files.
"""

from __future__ import annotations

import copy
import csv
import os
from pathlib import Path

import keras_tuner as kt
import numpy as np

from astrovader.config import ConfigError, RunConfig, save_config
from astrovader.errors import TrainingError
from astrovader.runs import split_validation
from astrovader.training import compile_model, fit_recipe

__all__ = [
    "VaDEHyperModel",
    "default_search_space",
    "apply_hyperparameters",
    "make_tuner",
    "run_search",
    "best_config",
    "write_results",
    "is_worker",
    "OBJECTIVES",
    "TUNERS",
]

OBJECTIVES = {"elbo": "val_elbo", "calinski_harabasz": "calinski_harabasz", "silhouette": "silhouette"}
TUNERS = ("bayesian", "hyperband", "random")
_DERIVED = {"model.filter_scale", "model.kernel_size"}
_WORST = {"calinski_harabasz": 0.0, "silhouette": -1.0}


def is_worker() -> bool:
    """True in a distributed search process that is not the chief (it writes no results)."""
    tid = os.environ.get("KERASTUNER_TUNER_ID", "")
    return "KERASTUNER_ORACLE_IP" in os.environ and "chief" not in tid


def default_search_space(cfg: RunConfig, include_k: bool = False) -> dict:
    """A search space centred on ``cfg``: J, width, kernel size, learning rate, beta, schedule.

    Args:
        cfg: the base configuration (a preset).
        include_k: also search the number of clusters K (between K/2 and 2K).

    Returns:
        A dict in the format of the module docstring (edit it and save it as YAML for
        ``astrovader tune --space``).
    """
    m, t = cfg.model, cfg.train
    space: dict = {
        "model.latent_dim": sorted({max(2, m.latent_dim // 2), m.latent_dim, 2 * m.latent_dim}),
        "model.filter_scale": [0.5, 1.0, 2.0],
        "train.learning_rate": {"min": t.learning_rate / 3, "max": t.learning_rate * 3, "sampling": "log"},
    }
    if m.architecture == "astrovader":
        space["model.kernel_size"] = [3, 5]
    if m.architecture == "mlp":
        del space["model.filter_scale"]
    if t.recipe == "s3vdc":
        space["train.beta"] = {"min": 1e-3, "max": 0.1, "sampling": "log"}
        space["train.gamma_epochs"] = sorted({max(1, t.gamma_epochs // 2), t.gamma_epochs})
        space["train.anneal_epochs"] = sorted({max(1, t.anneal_epochs // 2), t.anneal_epochs})
    elif t.recipe == "classic":
        if t.pretrain_updates:  # the pretraining length is set in updates (a minimum over pretrain_epochs)
            space["train.pretrain_updates"] = sorted({max(1, t.pretrain_updates // 2), t.pretrain_updates})
        else:
            space["train.pretrain_epochs"] = sorted({max(1, t.pretrain_epochs // 2), t.pretrain_epochs})
    elif t.recipe == "vae":
        space["train.beta"] = {"min": 0.1, "max": 1.0, "sampling": "log"}
    if include_k:
        space["model.n_clusters"] = {"min": max(2, m.n_clusters // 2), "max": 2 * m.n_clusters}
    return space


def _check_space(cfg: RunConfig, space: dict) -> None:
    d = cfg.to_dict()
    for name, spec in space.items():
        section, _, field = str(name).partition(".")
        if name not in _DERIVED and (section not in ("model", "train") or field not in d[section]):
            raise ConfigError(f"search space: unknown name {name!r}; use 'model.<field>' or "
                              "'train.<field>' of the config (or model.filter_scale / model.kernel_size)")
        if isinstance(spec, dict) and not {"min", "max"} <= set(spec):
            raise ConfigError(f"search space: {name!r} range needs 'min' and 'max' (optional 'step', 'sampling')")
        if isinstance(spec, list) and not spec:
            raise ConfigError(f"search space: {name!r} has an empty list of choices")


def _declare(hp: kt.HyperParameters, name: str, spec):
    """Declare ``name`` on ``hp`` from a search-space entry and return its value."""
    if isinstance(spec, (list, tuple)):
        return hp.Choice(name, list(spec))
    if isinstance(spec, dict):
        lo, hi = spec["min"], spec["max"]
        sampling = spec.get("sampling", "linear")
        if isinstance(lo, int) and isinstance(hi, int) and not isinstance(spec.get("step", 1), float):
            return hp.Int(name, lo, hi, step=spec.get("step", 1), sampling=sampling)
        return hp.Float(name, float(lo), float(hi), step=spec.get("step"), sampling=sampling)
    return hp.Fixed(name, spec)


def apply_hyperparameters(cfg: RunConfig, values: dict) -> RunConfig:
    """A copy of ``cfg`` with search-space ``values`` (``"section.field": value``) applied."""
    d = copy.deepcopy(cfg.to_dict())
    for name, value in values.items():
        if name.startswith("tuner/"):
            continue
        value = value.item() if isinstance(value, np.generic) else value
        if name == "model.filter_scale":
            d["model"]["filters"] = [max(1, int(round(f * value))) for f in cfg.model.filters]
        elif name == "model.kernel_size":
            d["model"]["kernel_sizes"] = [int(value)] * max(1, len(cfg.model.kernel_sizes))
        else:
            section, _, field = name.partition(".")
            d[section][field] = value
    return RunConfig.from_dict(d, source="search space")


class VaDEHyperModel(kt.HyperModel):
    """keras-tuner hypermodel over astrovader run configurations.

    Args:
        base_cfg: configuration that the search space modifies.
        x_train: training stamps ``(N, H, W, C)`` float32.
        x_val: validation stamps (required: every objective is computed on them).
        search_space: dict (see the module docstring); ``None`` = :func:`default_search_space`.
        objective: ``"elbo"``, ``"calinski_harabasz"`` or ``"silhouette"``.
    """

    def __init__(self, base_cfg: RunConfig, x_train, x_val, search_space: dict | None = None,
                 objective: str = "elbo", name: str = "vade"):
        super().__init__(name=name, tunable=True)
        if objective not in OBJECTIVES:
            raise ConfigError(f"objective={objective!r}: choose one of {', '.join(OBJECTIVES)}")
        if x_val is None or len(x_val) == 0:
            raise ConfigError("the search needs validation stamps (set train.validation_fraction > 0)")
        self.base_cfg = copy.deepcopy(base_cfg)
        self.base_cfg.model.input_shape = tuple(int(s) for s in np.shape(x_train)[1:])
        if objective != "elbo" and self.base_cfg.train.recipe in ("vae", "kl_annealing"):
            raise ConfigError(f"objective={objective!r} scores cluster assignments: use a VaDE "
                              f"recipe, not train.recipe={self.base_cfg.train.recipe!r}")
        self.x_train = np.asarray(x_train, dtype="float32")
        self.x_val = np.asarray(x_val, dtype="float32")
        self.search_space = dict(default_search_space(self.base_cfg) if search_space is None else search_space)
        _check_space(self.base_cfg, self.search_space)
        self.objective = objective

    @property
    def kt_objective(self) -> kt.Objective:
        """The keras-tuner objective (always maximised)."""
        return kt.Objective(OBJECTIVES[self.objective], direction="max")

    def config_for(self, hp: kt.HyperParameters) -> RunConfig:
        """Declare the search space on ``hp`` and return the trial's run configuration."""
        values = {name: _declare(hp, name, spec) for name, spec in self.search_space.items()}
        cfg = apply_hyperparameters(self.base_cfg, values)
        cfg.train.resolve_updates(cfg.train.steps_per_epoch(len(self.x_train)))  # as train() does
        return cfg

    def build(self, hp: kt.HyperParameters):
        cfg = self.config_for(hp)
        return compile_model(cfg, cfg.train.steps_per_epoch(len(self.x_train)))

    def fit(self, hp: kt.HyperParameters, model, *args, **kwargs):
        """Train ``model`` with the trial's recipe; return the history or the clustering score.

        The fit sequence is :func:`astrovader.training.fit_recipe`, as in ``astrovader
        train``. ``args[0]`` / ``validation_data`` replace the stored stamps when given;
        other keyword arguments (``callbacks``, ``epochs`` and ``initial_epoch`` from
        Hyperband, ``verbose``) are passed to ``model.fit``.
        """
        cfg = self.config_for(hp)
        x = np.asarray(args[0], dtype="float32") if args else self.x_train
        x_val = kwargs.pop("validation_data", None)
        x_val = self.x_val if x_val is None else np.asarray(x_val, dtype="float32")
        callbacks = list(kwargs.pop("callbacks", []))
        fit_kw = {"verbose": 0, "epochs": cfg.train.total_epochs(), **kwargs}
        try:
            history = fit_recipe(model, cfg, x, x_val, callbacks=callbacks, **fit_kw)
        except TrainingError as exc:
            raise kt.errors.FailedTrialError(str(exc)) from None
        if self.objective == "elbo":
            return history
        return {self.objective: self.clustering_score(model, x_val),
                "val_elbo": float(history.history["val_elbo"][-1])}

    def clustering_score(self, model, x_val) -> float:
        """Calinski-Harabasz or silhouette of the assignments on the posterior means."""
        from astrovader.evaluation import clustering_scores

        z_mean, _ = model.encode(x_val)
        labels = model.predict_clusters(x_val)
        score = clustering_scores(None, labels, z_mean)[self.objective]
        return float(score) if np.isfinite(score) else _WORST[self.objective]


def make_tuner(hypermodel: VaDEHyperModel, tuner: str = "bayesian", max_trials: int = 10,
               out_dir: str | os.PathLike = "tuning", project_name: str = "search",
               overwrite: bool = False, seed: int = 0, max_epochs: int | None = None,
               executions_per_trial: int = 1, strategy=None):
    """A keras-tuner tuner for ``hypermodel`` writing its trials under ``out_dir/project_name``.

    Args:
        tuner: ``"bayesian"`` (Gaussian-process BO), ``"hyperband"`` or ``"random"``.
        max_trials: upper bound on the number of trials (also for Hyperband).
        max_epochs: Hyperband's largest budget (default: the base recipe's epoch count).
        overwrite: start afresh instead of resuming the search found in ``out_dir``.
        strategy: a ``tf.distribute`` strategy every trial builds and trains under (e.g.
            ``MirroredStrategy`` over the GPUs of a tuning worker).
    """
    if tuner not in TUNERS:
        raise ConfigError(f"--tuner {tuner!r}: choose one of {', '.join(TUNERS)}")
    if int(max_trials) < 1:
        raise ConfigError("--max-trials must be at least 1")
    common = dict(hypermodel=hypermodel, objective=hypermodel.kt_objective, directory=str(out_dir),
                  project_name=project_name, overwrite=overwrite, seed=seed,
                  executions_per_trial=executions_per_trial, distribution_strategy=strategy)
    if tuner == "bayesian":
        return kt.BayesianOptimization(max_trials=max_trials, num_initial_points=min(3, max_trials), **common)
    if tuner == "random":
        return kt.RandomSearch(max_trials=max_trials, **common)
    budget = int(max_epochs or hypermodel.base_cfg.train.total_epochs())
    t = kt.Hyperband(max_epochs=max(2, budget), factor=3, **common)
    t.oracle.max_trials = int(max_trials)
    return t


def run_search(cfg: RunConfig, x_train, x_val=None, tuner: str = "bayesian", max_trials: int = 10,
               out_dir: str | os.PathLike = "tuning", search_space: dict | None = None,
               objective: str = "elbo", overwrite: bool = False, verbose: int = 0, seed: int = 0,
               max_epochs: int | None = None, validation_fraction: float | None = None,
               strategy=None):
    """Run a search and (on the chief or a local run) write the result files.

    Args:
        cfg: base configuration.
        x_train: stamps ``(N, H, W, C)``; when ``x_val`` is ``None`` a fraction
            ``validation_fraction`` (default ``cfg.train.validation_fraction``, or 0.1 if
            that is 0) is held out for validation.
        tuner, max_trials, max_epochs: see :func:`make_tuner`.
        out_dir: output folder: ``search/`` (keras-tuner trials), ``best.yaml``,
            ``summary.md``, ``trials.csv``.
        search_space: see :class:`VaDEHyperModel`.
        objective: ``"elbo"``, ``"calinski_harabasz"`` or ``"silhouette"``.
        overwrite: discard a previous search in ``out_dir`` (default: resume it); ignored
            on distributed workers (only the chief may delete the shared folder).
        verbose: Keras verbosity of each trial's fit.
        strategy: ``tf.distribute`` strategy for every trial (see :func:`make_tuner`).

    Returns:
        the keras-tuner tuner.
    """
    x_train = np.asarray(x_train, dtype="float32")
    if x_val is None:
        frac = validation_fraction or float(cfg.train.validation_fraction) or 0.1
        x_train, x_val = split_validation(x_train, frac, seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    hm = VaDEHyperModel(cfg, x_train, x_val, search_space, objective)
    t = make_tuner(hm, tuner, max_trials, out_dir, overwrite=overwrite and not is_worker(), seed=seed,
                   max_epochs=max_epochs, strategy=strategy)
    t.search(x_train, validation_data=x_val, verbose=verbose)
    if not is_worker():
        write_results(t, out_dir)
    return t


def best_config(tuner) -> RunConfig:
    """The run configuration of the best trial (for ``astrovader train --config``)."""
    hm: VaDEHyperModel = tuner.hypermodel
    trials = [tr for tr in tuner.oracle.get_best_trials(1) if tr.score is not None]
    if not trials:
        raise ConfigError("the search finished no trial successfully; see the trials' messages in trials.csv")
    cfg = hm.config_for(copy.deepcopy(trials[0].hyperparameters))
    cfg.name = f"{hm.base_cfg.name}-tuned"
    cfg.description = (f"Best of a keras-tuner search on {hm.base_cfg.name}: "
                       f"{hm.kt_objective.name} = {trials[0].score:.6g} (trial {trials[0].trial_id}).")
    return cfg


def write_results(tuner, out_dir: str | os.PathLike) -> RunConfig:
    """Write ``best.yaml``, ``trials.csv`` and ``summary.md`` into ``out_dir``; return the best config."""
    out_dir = Path(out_dir)
    trials = list(tuner.oracle.trials.values())
    names = sorted({k for tr in trials for k in tr.hyperparameters.values})
    ranked = sorted(trials, key=lambda tr: (tr.score is None, -(tr.score or 0.0)))
    rows = [{"trial": tr.trial_id, "status": tr.status, "score": tr.score,
             **{k: tr.hyperparameters.values.get(k) for k in names}} for tr in ranked]
    with open(out_dir / "trials.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["trial", "status", "score", *names])
        w.writeheader()
        w.writerows(rows)
    cfg = best_config(tuner)
    save_config(cfg, out_dir / "best.yaml")
    obj = tuner.hypermodel.kt_objective.name
    lines = [f"# Hyperparameter search: {tuner.hypermodel.base_cfg.name}", "",
             f"Tuner: {type(tuner).__name__}; objective: {obj} (max); {len(trials)} trial(s). "
             "Best configuration: `best.yaml` (`astrovader train --config best.yaml`).", "",
             "| rank | trial | status | " + " | ".join([obj, *names]) + " |",
             "|" + "---|" * (4 + len(names))]
    for i, r in enumerate(rows, 1):
        score = "" if r["score"] is None else f"{r['score']:.5g}"
        vals = [f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k]) for k in names]
        lines.append(f"| {i} | {r['trial']} | {r['status']} | " + " | ".join([score, *vals]) + " |")
    (out_dir / "summary.md").write_text("\n".join(lines) + "\n")
    return cfg
