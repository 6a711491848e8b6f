"""Run directories and everything done with them, for Python and the command line alike.

A *run directory* holds everything one training run produces::

    RUN_DIR/config.yaml     resolved configuration (input_shape filled in)
    RUN_DIR/model.keras     the trained model (written when training finishes)
    RUN_DIR/history.csv     one row per epoch (Keras CSVLogger, appended on resume)
    RUN_DIR/logs/           TensorBoard event files
    RUN_DIR/backup/         Keras BackupAndRestore state (removed when training finishes)
    RUN_DIR/metrics.json, RUN_DIR/report.html, RUN_DIR/figures/   from :func:`evaluate_run`
    RUN_DIR/savedmodel/     from :func:`export_run`
    RUN_DIR/restarts/       with ``train.restarts`` > 1: one run directory per restart and
                            ``chosen.json`` (which one ``model.keras`` is; see :func:`fit_run`)

:class:`Run` creates, opens and locks one; :func:`fit_run`, :func:`evaluate_run`,
:func:`predict_run`, :func:`merge_predictions`, :func:`generate_run` and :func:`export_run`
are the ``train``, ``evaluate``, ``predict``, ``predict-merge``, ``generate`` and ``export``
subcommands without the flag parsing,
so the same seed gives the same ``metrics.json`` from Python and from the shell::

    from astrovader import runs
    from astrovader.config import load_preset

    cfg = runs.configure(load_preset("demo"), epochs=4, seed=1)
    model, stamps, run = runs.fit_run(cfg, "runs/demo")
    metrics = runs.evaluate_run(run, stamps=stamps)
    runs.predict_run(run, "catalog.csv", "runs/demo/predictions.csv")

Progress notes ("resized stamps...", "resuming after epoch 3") go to the ``astrovader``
logger at INFO level (the command line prints them to stderr).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from astrovader.config import DataConfig, RunConfig, TrainConfig, load_config, save_config
from astrovader.errors import AstrovaderError, ConfigError, DataError
from astrovader.locks import WriteLock

__all__ = [
    "Run",
    "configure",
    "scale_epochs",
    "describe_schedule",
    "split_validation",
    "data_config",
    "conform",
    "labels_of",
    "read_history",
    "fit_run",
    "restart_config",
    "negative_elbo",
    "evaluate_run",
    "predict_arrays",
    "predict_run",
    "parse_shard",
    "shard_range",
    "shard_path",
    "read_shard_info",
    "merge_predictions",
    "generate_run",
    "export_run",
]

log = logging.getLogger("astrovader")


# --------------------------------------------------------------------------- run directories


class Run:
    """A run directory: its paths, its configuration, its model and its write lock.

    Use :meth:`create` to start (or resume) training into a directory and :meth:`open` to
    use a finished run. A run is a context manager that releases its lock on exit.

    Attributes:
        path, config, model_path, history, logs, backup, metrics, report, figures,
        savedmodel, restarts: paths inside the directory (see the module docstring).
        cfg: the run's :class:`~astrovader.config.RunConfig` (``None`` until known).
    """

    LOCK_NAME = ".astrovader.lock"

    def __init__(self, path: str | os.PathLike, cfg: RunConfig | None = None):
        self.path = Path(path)
        self.config = self.path / "config.yaml"
        self.model_path = self.path / "model.keras"
        self.history = self.path / "history.csv"
        self.logs = self.path / "logs"
        self.backup = self.path / "backup"
        self.metrics = self.path / "metrics.json"
        self.report = self.path / "report.html"
        self.figures = self.path / "figures"
        self.savedmodel = self.path / "savedmodel"
        self.restarts = self.path / "restarts"
        self.cfg = cfg
        self._model = None
        self._lock = WriteLock(self.path, self.path / self.LOCK_NAME, hint="wait for it to finish")

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    # -- locking
    def lock(self) -> "Run":
        """Take the exclusive write lock of the directory (see :mod:`astrovader.locks`).

        Raises:
            LockedError: another process is writing this run.
        """
        self._lock.acquire()
        return self

    def unlock(self) -> None:
        self._lock.release()

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc) -> None:
        self.unlock()

    # -- state
    @property
    def finished(self) -> bool:
        """True when training wrote ``model.keras`` and left no checkpoint behind."""
        return self.model_path.is_file() and not self.backup.exists()

    def require_model(self) -> None:
        """Raise a user-facing error unless the run holds a config and a trained model."""
        if not self.path.is_dir():
            raise AstrovaderError(f"{self.path}: run directory not found; train one with `astrovader train`")
        if not self.config.is_file():
            raise AstrovaderError(f"{self.path}: no config.yaml here; is this a run directory?")
        if not self.model_path.is_file():
            hint = (" (training was interrupted: continue it with `astrovader train --resume`)"
                    if self.backup.exists() else "")
            raise AstrovaderError(f"{self.path}: no model.keras yet{hint}")

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Run":
        """A finished run: reads ``config.yaml`` (the model is loaded on first use of :attr:`model`).

        Raises:
            AstrovaderError: no such run, or it holds no trained model yet.
        """
        run = cls(path)
        run.require_model()
        run.cfg = load_config(run.config)
        return run

    @property
    def model(self):
        """The trained model from ``model.keras`` (loaded once)."""
        if self._model is None:
            import keras

            import astrovader.classifiers  # noqa: F401  (registers the classifiers' layers)
            import astrovader.models  # noqa: F401  (registers the serialisable classes)

            self.require_model()
            import zipfile

            if not zipfile.is_zipfile(self.model_path):
                raise AstrovaderError(f"{self.model_path}: not a .keras archive (damaged or truncated); "
                                      "restore it from a copy or train the run again")
            try:
                self._model = keras.models.load_model(self.model_path, compile=False)
            except Exception as exc:  # noqa: BLE001 -- a corrupted or foreign file: say which
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise AstrovaderError(
                    f"{self.model_path}: cannot load the model ({type(exc).__name__}: {first[:200]}); "
                    "the file is damaged or not an astrovader model: restore it or train the run again"
                ) from None
        return self._model

    @model.setter
    def model(self, value) -> None:
        self._model = value

    @classmethod
    def create(cls, path: str | os.PathLike, resume: bool = False, overwrite: bool = False) -> "Run":
        """Lock ``path`` for training and prepare it; returns the locked run.

        Args:
            path: run directory (created).
            resume: continue the run found there (its ``config.yaml`` is read).
            overwrite: replace a run found there (its model, history, logs, checkpoints,
                metrics, report and SavedModel are removed; other files are kept).

        Raises:
            AstrovaderError: the directory already holds a run and neither ``resume`` nor
                ``overwrite`` is given, or there is nothing to resume.
            LockedError: another process is writing the run.
        """
        run = cls(path)
        if resume and not run.config.is_file():
            raise AstrovaderError(f"{run.path}: nothing to resume (no config.yaml); drop --resume to start a new run")
        _output_dir(run.path)
        run.lock()
        try:
            if resume:
                run.cfg = load_config(run.config)
            elif run.model_path.is_file() or run.backup.exists() or run.history.is_file() or run.restarts.exists():
                if not overwrite:
                    what = "a trained model" if run.model_path.is_file() else "an unfinished run"
                    raise AstrovaderError(
                        f"{run.path} already holds {what}; use --resume to continue it, --overwrite to replace "
                        "it, or choose another --out")
                log.info(f"--overwrite: replacing the run in {run.path}")
                for p in (run.model_path, run.history, run.metrics, run.report):
                    p.unlink(missing_ok=True)
                for d in (run.backup, run.logs, run.figures, run.savedmodel, run.restarts):
                    shutil.rmtree(d, ignore_errors=True)
        except BaseException:
            run.unlock()
            raise
        return run


def read_history(path: str | os.PathLike) -> dict[str, list[float]]:
    """Columns of ``history.csv`` as float lists (empty dict if the file is missing)."""
    path = Path(path)
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    out: dict[str, list[float]] = {}
    for row in rows:
        for k, v in row.items():
            try:
                out.setdefault(k, []).append(float(v))
            except (TypeError, ValueError):
                out.setdefault(k, []).append(float("nan"))
    return out


def _truncate_history(run: Run) -> int:
    """Keep only history rows of epochs the checkpoint has finished; returns that epoch count."""
    meta = run.backup / "training_metadata.json"
    done = 0
    if meta.is_file():
        try:
            done = int(json.loads(meta.read_text())["epoch"])
        except (ValueError, KeyError):
            done = 0
    if run.history.is_file():
        with run.history.open(newline="") as f:
            rows = list(csv.reader(f))
        if rows:
            header, body = rows[0], rows[1:]
            keep = [r for r in body if r and r[0].strip().isdigit() and int(r[0]) < done]
            tmp = run.history.with_suffix(".csv.tmp")
            with tmp.open("w", newline="") as f:
                w = csv.writer(f)
                w.writerow(header)
                w.writerows(keep)
            os.replace(tmp, run.history)
    return done


# --------------------------------------------------------------------------- configuration


def scale_epochs(train: TrainConfig, total: int) -> TrainConfig:
    """A copy of ``train`` whose recipe phases are rescaled to add up to ``total`` epochs.

    The proportions of the preset are kept as far as integers allow: e.g. s3VDC
    100 + 5 x (25 + 25) scaled to 20 epochs gives 6 + 2 x (3 + 4). (``training.train(...,
    epochs=N)`` instead stops the unchanged schedule after N epochs.)

    Raises:
        ConfigError: ``total < 1``.
    """
    if total < 1:
        raise ConfigError("--epochs must be at least 1")
    t = TrainConfig(**{**train.__dict__})
    t.pretrain_updates = t.schedule_updates = 0  # the epochs asked for are the length, not a minimum
    if t.recipe == "s3vdc":
        full = t.total_epochs()
        if total < 3:
            t.gamma_epochs, t.periods = total, 0
        else:
            gamma = max(1, round(total * t.gamma_epochs / full))
            rest = total - gamma
            periods = max(1, min(t.periods, rest // 2))
            per = rest // periods
            gamma += rest - per * periods
            anneal = min(per - 1, max(1, round(per * t.anneal_epochs / max(1, t.anneal_epochs + t.static_epochs))))
            t.gamma_epochs, t.periods, t.anneal_epochs, t.static_epochs = gamma, periods, anneal, per - anneal
    elif t.recipe == "classic":
        full = t.total_epochs()
        pre = round(total * t.pretrain_epochs / full) if total > 1 else 0
        t.pretrain_epochs = min(max(pre, 1 if total > 1 else 0), total - 1) if total > 1 else 0
        t.vade_epochs = total - t.pretrain_epochs
    elif t.recipe == "vade":
        t.vade_epochs = total
    elif t.recipe == "supervised":
        t.supervised_epochs = total
    else:
        t.vae_epochs = total
    if t.total_epochs() != total:  # a recipe whose phases this function does not know yet
        raise ConfigError(f"train.recipe={t.recipe!r}: cannot rescale its phases to {total} epochs; "
                          "set the phase lengths in a config instead of --epochs")
    return t


def describe_schedule(t: TrainConfig) -> str:
    """One line describing the recipe's phases, e.g. ``s3VDC: 6 gamma-training + 2 x (3 + 4)``."""
    then = ", then the final codes re-clustered" if t.recluster else ""
    if t.recipe == "s3vdc" and t.periods == 0:
        return f"s3VDC: {t.gamma_epochs} gamma-training epoch(s) only (too few epochs for the VaDE phases)"
    if t.recipe == "s3vdc":
        return (f"s3VDC: {t.gamma_epochs} gamma-training + {t.periods} x ({t.anneal_epochs} annealing + "
                f"{t.static_epochs} static) = {t.total_epochs()} epochs{then}")
    if t.recipe == "classic":
        return (f"classic VaDE: {t.pretrain_epochs} {t.pretrain.upper()} pretraining + {t.vade_epochs} VaDE "
                f"epochs{then}")
    return f"{t.recipe}: {t.total_epochs()} epochs"


def configure(cfg: RunConfig, *, data: str | None = None, n: int | None = None, epochs: int | None = None,
              batch_size: int | None = None, learning_rate: float | None = None, clusters: int | None = None,
              latent_dim: int | None = None, seed: int | None = None, restarts: int | None = None) -> RunConfig:
    """``cfg`` with the command line's overrides applied (``None`` keeps a value), validated.

    A new ``data`` spec drops the preset's stamp count (all the user's stamps are used
    unless ``n``); ``epochs`` rescales the recipe (:func:`scale_epochs`); ``seed`` seeds
    the data, the weights and the shuffling; ``restarts`` sets ``train.restarts``.
    """
    cfg = cfg.override("data", spec=data, n=n, seed=seed)
    if data is not None and n is None:
        cfg.data.n = None  # the preset's stamp count is for its built-in set
    cfg = cfg.override("model", n_clusters=clusters, latent_dim=latent_dim, seed=seed)
    cfg = cfg.override("train", batch_size=batch_size, learning_rate=learning_rate, seed=seed, restarts=restarts)
    if epochs is not None:
        cfg.train = scale_epochs(cfg.train, epochs)
        log.info(f"schedule for {epochs} epoch(s): {describe_schedule(cfg.train)}")
    return cfg.validate()


def data_config(cfg_data: DataConfig, spec: str | None = None, n: int | None = None) -> DataConfig:
    """The run's data settings (preprocessing) applied to another ``spec`` and/or count.

    A new ``spec`` drops the run's stamp count (all stamps are used unless ``n``).
    """
    changes: dict[str, Any] = {}
    if spec is not None:
        changes["spec"] = str(spec)
        changes["n"] = None
    if n is not None:
        changes["n"] = int(n)
    return replace(cfg_data, **changes)


def split_validation(images: np.ndarray, fraction: float, seed: int):
    """Hold out a random ``fraction`` of the stamps: returns ``(train, validation or None)``.

    Both parts keep the input order. No split (``None``) when ``fraction <= 0`` or with
    fewer than 10 stamps; at least one stamp is held out otherwise.
    """
    if fraction <= 0 or len(images) < 10:
        return images, None
    idx = np.random.default_rng(seed).permutation(len(images))
    n_val = max(1, int(round(fraction * len(images))))
    return images[np.sort(idx[n_val:])], images[np.sort(idx[:n_val])]


def conform(images: np.ndarray, input_shape, quiet: bool = False, source: str | None = None) -> np.ndarray:
    """Stamps made to match a network's ``input_shape`` (see :func:`astrovader.data.preprocessing.conform`).

    Logs what was changed unless ``quiet``; ``source`` (the data spec) is named in errors.
    """
    from astrovader.data.preprocessing import conform as _conform

    try:
        images, notes = _conform(images, input_shape)
    except DataError as exc:
        if source:
            raise DataError(f"{source}: {exc}") from None
        raise
    if not quiet:
        for note in notes:
            log.info(note)
    return images


def labels_of(stamps) -> np.ndarray | None:
    """Labels of a stamp set, or ``None`` when absent/negative (unlabelled)."""
    y = getattr(stamps, "labels", None)
    if y is None:
        return None
    y = np.asarray(y)
    if y.size == 0 or (y < 0).all():
        return None
    return y


def _output_dir(path: Path, flag: str = "--out") -> Path:
    """Create the output folder ``path``; a path that cannot be created is a one-line error."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise AstrovaderError(f"{path}: a file is in the way (this must be a folder); "
                              f"move the file or choose another {flag}") from None
    except OSError as exc:
        raise AstrovaderError(f"{path}: cannot create this folder ({exc.strerror or type(exc).__name__}); "
                              f"check the path and its permissions or choose another {flag}") from None
    return path


def _load_stamps(cfg_data: DataConfig):
    from astrovader.data import load

    return load(cfg_data)


# --------------------------------------------------------------------------- train


def fit_run(cfg: RunConfig | None, out: str | os.PathLike, *, resume: bool = False, overwrite: bool = False,
            strategy: str = "default", verbose: int | str = 2, stamps=None, callbacks=()):
    """Train ``cfg`` into the run directory ``out`` (what ``astrovader train`` does).

    Seeds Keras from ``cfg.train.seed``, fits the stamps to the network's input shape (or
    builds the network for the stamps' shape when ``cfg.model.input_shape`` is empty),
    lowers the batch size to the stamp count, holds out ``train.validation_fraction`` of
    the stamps (:func:`split_validation`) and trains with :func:`astrovader.training.train`
    plus ``history.csv``, TensorBoard logs and ``BackupAndRestore`` checkpoints (so
    ``resume=True`` continues a killed run after its last finished epoch).

    With ``train.restarts`` = R > 1 it trains R whole runs (:func:`restart_config`: seeds
    moved by ``RESTART_SEED_STRIDE``; restart 0 is the single run) into ``RUN_DIR/restarts/``
    and keeps the most stable one: the restart whose clusters agree best with the others'
    (mean adjusted Rand index; ties to the lowest :func:`negative_elbo`), on the held-out
    stamps when ``validation_fraction`` > 0, else on the training stamps. No labels are read;
    ``resume=True`` continues the unfinished restart.

    Args:
        cfg: resolved configuration (ignored on ``resume``: ``RUN_DIR/config.yaml`` is used).
        out: run directory.
        resume: continue from ``RUN_DIR/backup``.
        overwrite: replace an existing run.
        strategy: name for :func:`astrovader.training.get_strategy`.
        verbose: Keras fit verbosity.
        stamps: an already loaded StampSet (default: load ``cfg.data``).
        callbacks: extra Keras callbacks (after the run's own).

    Returns:
        ``(model, stamps, run)``; ``model`` and ``stamps`` are ``None`` when resuming a run
        that had already finished.

    Raises:
        AstrovaderError: an existing run without ``resume``/``overwrite``, no stamps, ...
        LockedError: another process is writing ``out``.
        TrainingError: the loss became NaN/Inf.
    """
    from astrovader.training import get_strategy

    # created before any TensorFlow op (data loading may resize with TF): a multi-worker
    # strategy must configure the collectives at program start-up
    dist = get_strategy(strategy)
    if strategy == "multiworker":  # every worker writes its own files; the chief writes `out`
        from astrovader.distributed import worker_run_dir

        out = worker_run_dir(out, dist)
    run = Run.create(out, resume=resume, overwrite=overwrite)
    with run:
        if resume:
            cfg = run.cfg
            if run.finished:
                log.info(f"{run.path}: training already finished ({cfg.train.total_epochs()} epochs); "
                         "nothing to resume")
                return None, None, run
            if int(cfg.train.restarts) > 1:
                log.info(f"resuming {run.path}: {cfg.train.restarts} restarts")
            else:
                done = _truncate_history(run)
                log.info(f"resuming {run.path} after epoch {done} of {cfg.train.total_epochs()}")
        run.cfg = cfg
        if cfg.train.recipe == "supervised":  # Deep-HiTS / RCNN classifiers (seed 003), trained with labels
            from astrovader.supervised import fit_classifier_run

            model, stamps = fit_classifier_run(cfg, run, strategy=dist, verbose=verbose, data=stamps)
            return model, stamps, run
        if stamps is None:
            stamps = _load_stamps(cfg.data)
        images = stamps.images
        if len(images) == 0:
            raise DataError(f"{cfg.data.spec}: no stamps to train on")
        shape = tuple(int(s) for s in images.shape[1:])
        if cfg.model.input_shape is None:
            cfg.model.input_shape = shape
            log.info(f"building the network for the data's stamp shape {shape}")
        else:
            images = conform(images, cfg.model.input_shape, source=cfg.data.spec)
        if len(images) < cfg.train.batch_size:
            log.info(f"only {len(images)} stamps: batch size lowered from {cfg.train.batch_size} to {len(images)}")
            cfg.train.batch_size = len(images)
        # one split for every restart, so that they are compared on the same stamps
        split = split_validation(images, float(cfg.train.validation_fraction), int(cfg.train.seed))
        if int(cfg.train.restarts) > 1:
            model = _fit_restarts(cfg, run, split, dist, verbose, callbacks, resume)
        else:
            model = _fit_once(cfg, run, split, dist, verbose, callbacks)
        run.model = model
    return model, stamps, run


def _fit_once(cfg: RunConfig, run: Run, split, dist, verbose, callbacks):
    """Train ``cfg`` on ``split = (x_train, x_val)`` into the locked ``run``; returns the model."""
    import keras

    from astrovader.training import train

    x_train, x_val = split
    given = cfg.train.total_epochs()
    if cfg.train.resolve_updates(cfg.train.steps_per_epoch(len(x_train))).total_epochs() != given:
        minimum = "pretrain_updates" if cfg.train.recipe == "classic" else "schedule_updates"
        log.info(f"training raised from {given} to {cfg.train.total_epochs()} epochs: at least "
                 f"train.{minimum}={getattr(cfg.train, minimum)} updates on {len(x_train)} stamps")
    save_config(cfg, run.config)
    keras.utils.set_random_seed(int(cfg.train.seed))
    callbacks = [
        keras.callbacks.CSVLogger(str(run.history), append=True),
        keras.callbacks.BackupAndRestore(str(run.backup), save_freq="epoch", delete_checkpoint=True),
        keras.callbacks.TensorBoard(log_dir=str(run.logs), write_graph=False),
        *callbacks,
    ]
    log.info(f"training on {len(x_train)} stamps of shape {tuple(x_train.shape[1:])}"
             + (f" ({len(x_val)} for validation)" if x_val is not None else "")
             + f"; {describe_schedule(cfg.train)}")
    t0 = time.time()
    model, _history = train(cfg, x_train, x_val, callbacks=callbacks, strategy=dist, verbose=verbose)
    model.save(run.model_path)
    log.info(f"trained in {time.time() - t0:.0f} s; wrote {run.model_path}")
    return model


RESTART_SEED_STRIDE = 1000


def restart_config(cfg: RunConfig, index: int) -> RunConfig:
    """The configuration of restart ``index`` of a ``train.restarts`` run: one whole run with the
    model and training seeds moved by ``RESTART_SEED_STRIDE * index`` (restart 0 is the run
    ``train.restarts: 1`` would train) and ``restarts`` 1."""
    step = RESTART_SEED_STRIDE * int(index)
    return (cfg.override("train", restarts=1, seed=int(cfg.train.seed) + step)
            .override("model", seed=int(cfg.model.seed) + step))


def negative_elbo(model, x: np.ndarray, seed: int = 0) -> float:
    """Mean per-stamp negative ELBO of ``model`` on ``x`` (seed 000 eq. 5; inference mode): how
    ``train.restarts`` breaks a tie between equally stable runs (no labels).

    Unlike the training loss it carries no schedule weights, anchor or penalty, so runs (and a
    saved model) compare on the likelihood bound alone. The one latent draw per stamp comes
    from ``seed`` (the model's sampling state is restored afterwards) in batches of 256: every
    model sees the same noise (common random numbers), so two models differ by their weights,
    not by the draw.
    """
    batch_size = 256
    gen = getattr(getattr(model, "sampling", None), "seed_generator", None)
    saved = None if gen is None else np.asarray(gen.state)
    if gen is not None:
        gen.state.assign(np.array([int(seed), 0], dtype=saved.dtype))
    try:
        total = 0.0
        for i in range(0, len(x), batch_size):
            terms = model.compute_terms(np.asarray(x[i:i + batch_size], dtype="float32"), training=False)
            total -= float(np.sum(np.asarray(terms["elbo"], dtype=np.float64)))
    finally:
        if gen is not None:
            gen.state.assign(saved)
    return total / max(1, len(x))


def _fit_restarts(cfg: RunConfig, run: Run, split, dist, verbose, callbacks, resume: bool):
    """``train.restarts`` whole runs into ``RUN_DIR/restarts/<i>``; keeps the most stable one.

    On the held-out stamps (the training stamps when none are held out) each restart's
    clusters are compared with the others'; the one with the highest mean adjusted Rand index
    to them (:func:`astrovader.mixture_init.medoid`, as ``train.init_restarts`` chooses its
    clustering) is kept -- a restart that split or merged clusters differently disagrees with
    the rest. Ties (two restarts, or models without clusters) go to the lowest
    :func:`negative_elbo`. Labels are never read.

    Each restart is a run directory of its own, so ``resume`` continues the unfinished one and
    skips the finished ones. The kept restart's ``model.keras`` and ``history.csv`` are copied
    into ``RUN_DIR``; ``RUN_DIR/restarts/chosen.json`` records every restart's seed, agreement
    and negative ELBO and the index kept.
    """
    from astrovader.mixture_init import medoid

    save_config(cfg, run.config)
    n = int(cfg.train.restarts)
    x_train, x_val = split
    x_score = x_val if x_val is not None else x_train
    record, models, clusters = [], [], []
    for i in range(n):
        sub_cfg = restart_config(cfg, i)
        sub = Run(run.restarts / str(i))
        if sub.finished:
            log.info(f"{sub.path}: restart {i} ({n} in all) already finished")
            model = sub.model
        else:
            again = resume and sub.config.is_file()
            log.info(f"{sub.path}: {'resuming ' if again else ''}restart {i} ({n} in all), seed {sub_cfg.train.seed}")
            with Run.create(sub.path, resume=again, overwrite=not again) as sub:
                if again:
                    _truncate_history(sub)
                model = _fit_once(sub_cfg, sub, split, dist, verbose, callbacks)
        models.append(model)
        if hasattr(model, "cluster_probabilities"):
            clusters.append(np.asarray(model.cluster_probabilities(x_score)).argmax(1))
        record.append({"index": i, "seed": int(sub_cfg.train.seed), "negative_elbo": negative_elbo(model, x_score),
                       "path": f"restarts/{i}"})
    agreement = medoid(clusters)[1] if len(clusters) == n else [1.0] * n
    for r, a in zip(record, agreement):
        r["agreement"] = float(a)
    chosen = min(range(n), key=lambda i: (-round(agreement[i], 6), record[i]["negative_elbo"]))
    where = "held-out" if x_val is not None else "training"
    tmp = run.restarts / "chosen.json.tmp"
    tmp.write_text(json.dumps(
        {"criterion": f"highest mean adjusted Rand index of the clusters to the other restarts', then "
                      f"lowest negative ELBO, on the {where} stamps (no labels)",
         "chosen": chosen, "restarts": record}, indent=1))
    os.replace(tmp, run.restarts / "chosen.json")
    # the model last: its presence marks the run finished
    for name, dst in (("history.csv", run.history), ("model.keras", run.model_path)):
        tmp = dst.with_name(dst.name + ".tmp")
        shutil.copyfile(run.restarts / str(chosen) / name, tmp)
        os.replace(tmp, dst)
    summary = ", ".join(f"{r['agreement']:.3f} / {r['negative_elbo']:.4f}" for r in record)
    log.info(f"kept restart {chosen} ({run.restarts / str(chosen)}); agreement / negative ELBO on the {where} "
             f"stamps: {summary}")
    return models[chosen]


# --------------------------------------------------------------------------- evaluate


def _open(run: Run | str | os.PathLike) -> Run:
    return run if isinstance(run, Run) else Run.open(run)


def _baseline(images: np.ndarray, y: np.ndarray, n_clusters: int, latent_dim: int, seed: int) -> dict:
    from astrovader.baselines import pca_gmm
    from astrovader.evaluation import hungarian_accuracy, majority_accuracy

    t0 = time.time()
    pred = pca_gmm(images, n_clusters=n_clusters, n_components=latent_dim, seed=seed)
    pred = getattr(pred, "labels", pred)
    if isinstance(pred, tuple):
        pred = pred[0]
    pred = np.asarray(pred)
    return {"acc_hungarian": hungarian_accuracy(y, pred), "acc_majority": majority_accuracy(y, pred),
            "seconds": time.time() - t0,
            "n_components": latent_dim, "n_clusters": n_clusters}


def evaluate_run(run: Run | str | os.PathLike, data: str | None = None, n: int | None = None, *,
                 stamps=None, n_samples: int = 8, baseline: bool = True, seed: int = 0) -> dict:
    """Evaluate a run on stamps; write ``metrics.json``, ``figures/`` and ``report.html`` into it.

    Args:
        run: a :class:`Run` or its directory.
        data: stamps to evaluate on (default: the run's ``data.spec``), preprocessed with the
            run's data settings; ``n`` limits their number.
        stamps: an already loaded StampSet (instead of ``data``/``n``).
        n_samples: generated samples per cluster in the report.
        baseline: also score a PCA+GMM baseline (when the stamps have labels).
        seed: seed for galleries and samples.

    Returns:
        The metrics dict (as written to ``metrics.json``).

    Raises:
        LockedError: another process is writing the run.
    """
    import yaml

    from astrovader import explore
    from astrovader.evaluation import evaluate_model, headline_score, to_jsonable
    from astrovader.report import make_report, save_metrics

    run = _open(run)
    with run.lock():
        cfg, model = run.cfg, run.model
        if cfg.train.recipe == "supervised":  # classifiers: accuracy, F1, DET curve, confusion matrix
            from astrovader.supervised import evaluate_classifier_run

            return evaluate_classifier_run(run, data, n, data_set=stamps)
        if stamps is None:
            stamps = _load_stamps(data_config(cfg.data, spec=data, n=n))
        x = conform(stamps.images, cfg.model.input_shape, source=stamps.source)
        y = labels_of(stamps)
        t0 = time.time()
        res = evaluate_model(model, x, y, seed=seed)  # every number, once; the report only renders
        is_vade = "gamma" in res
        mu, gamma = res["latents"], res.get("gamma")
        metrics: dict = {"run": str(run.path), "data": stamps.source or cfg.data.spec, "n_objects": int(len(x)),
                         "scores": res["scores"]}
        if is_vade:
            metrics["occupancy"] = res["occupancy"]
            metrics["confusion"] = res["confusion"]
            metrics["confusion_rows"] = res["confusion_rows"]
            if "accuracy_vs_variance" in res:
                metrics["accuracy_vs_variance"] = res["accuracy_vs_variance"]
            pi = np.asarray(model.cluster_weights())
            metrics["pi"] = pi
        else:
            pi = None
        if y is not None and is_vade:  # the accuracy this clustering is judged by (and the CLIs print)
            metrics["headline"] = headline_score(cfg.model.n_clusters, len(np.unique(y)))
            if baseline:
                metrics["baseline_pca_gmm"] = _baseline(x, y, cfg.model.n_clusters, cfg.model.latent_dim, seed)
        samples = protos = None
        if is_vade and n_samples > 0:
            samples = np.stack([model.sample(n_samples, cluster=k, seed=seed + k) for k in range(model.n_clusters)])
            protos = model.prototypes()
        elif n_samples > 0:
            samples = model.sample(n_samples * 4, seed=seed).reshape((4, n_samples) + tuple(x.shape[1:]))
        variance = res.get("variance") if is_vade and getattr(model, "variance_head", None) is not None else None
        if (run.restarts / "chosen.json").is_file():  # train.restarts: which run this is, and why
            metrics["restarts"] = json.loads((run.restarts / "chosen.json").read_text())
        metrics["seconds"] = time.time() - t0
        save_metrics(to_jsonable(metrics), run.metrics)
        summary = {k: v for k, v in metrics["scores"].items() if isinstance(v, (int, float))}
        if "baseline_pca_gmm" in metrics:
            summary["baseline_pca_gmm_acc"] = metrics["baseline_pca_gmm"]["acc_hungarian"]
        tour = explore.tour(model, x, gamma=gamma, latents=mu) if is_vade else None
        traversal = explore.traversals(model, np.asarray(mu))
        make_report(
            run.path, x=x, x_hat=res["reconstructions"], mse=res["mse"], gamma=gamma,
            history=read_history(run.history), labels=y,
            label_names=getattr(stamps, "label_names", None), samples=samples, protos=protos, pi=pi,
            decoder_variance=variance, metrics=summary, confusion=res.get("cluster_confusion"),
            occupancy=res.get("occupancy"),
            class_confusion=res.get("confusion") if is_vade and y is not None else None,
            title=f"astrovader report: {cfg.name} on {stamps.source or cfg.data.spec}",
            config_text=yaml.safe_dump(cfg.to_dict(), sort_keys=False), seed=seed,
            tour=tour, traversal=traversal, ids=stamps.ids,
        )
    return metrics


# --------------------------------------------------------------------------- predict


def predict_arrays(model, x: np.ndarray, batch_size: int = 256, mc_samples: int | None = None) -> dict:
    """Per-object predictions for stamps ``x`` (already conformed to the model).

    One encoder pass per batch gives the latents, the reconstruction (for the MSE), the
    decoder variance and gamma (``model.predict_objects``); models without it (the
    autoencoders of :mod:`astrovader.autoencoders`) are asked quantity by quantity.

    Returns:
        ``{"mu": (N, J), "mse": (N,), "decoder_variance": (N,)}`` plus, for a VaDE,
        ``"gamma": (N, K)`` and ``"cluster": (N,)``.
    """
    from astrovader.evaluation import reconstruction_mse

    if hasattr(model, "predict_objects"):
        res = model.predict_objects(x, mc_samples=mc_samples, batch_size=batch_size)
        mu, x_hat, var, g = res["mu"], res["x_hat"], res["decoder_variance"], res.get("gamma")
    else:
        mu, _ = model.encode(x, batch_size=batch_size)
        x_hat = model.decode(np.asarray(mu, dtype=np.float32), batch_size=batch_size)
        var = model.decoder_variance(x, batch_size=batch_size)
        g = (model.cluster_probabilities(x, mc_samples=mc_samples, batch_size=batch_size)
             if hasattr(model, "prior") else None)
    out = {"mu": np.asarray(mu, dtype=np.float32), "mse": reconstruction_mse(x, x_hat).astype(np.float32),
           "decoder_variance": np.asarray(var, np.float32).reshape(-1)}
    if g is not None:
        g = np.asarray(g, np.float32)
        out["gamma"] = g
        out["cluster"] = g.argmax(axis=1).astype(np.int64)
    return out


def _write_part(path: Path, arrays: dict) -> None:
    """Write one part atomically: a reader sees either nothing or the whole part (the file being
    written is ``.part-*.npz.tmp``, which no ``part-*.npz`` pattern matches)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def _completed_parts(parts_dir: Path, first: int = 0) -> tuple[list[Path], int]:
    """Contiguous complete parts from row ``first`` and the next row to do; stray parts are removed."""
    for tmp in parts_dir.glob(".part-*.npz.tmp"):
        tmp.unlink()
    done, nxt = [], int(first)
    for path in sorted(parts_dir.glob("part-*.npz")):
        start = int(path.stem.split("-")[1])
        if start != nxt:
            path.unlink()  # not contiguous with what is done: redo these rows
            continue
        with np.load(path) as z:
            # input stamps consumed (rows may be fewer when data.nan_policy drops stamps)
            nxt = start + int(z["consumed"]) if "consumed" in z.files else start + len(z["id"])
        done.append(path)
    return done, nxt


def _columns(k: int | None, j: int) -> list[str]:
    return ["id"] + (["cluster"] + [f"gamma_{i}" for i in range(k)] if k else []) + \
        [f"mu_{i}" for i in range(j)] + ["decoder_variance", "mse"]


def _join(parts: list[Path], tmp: Path, fmt: str, k: int | None, j: int, extra: dict | None = None) -> int:
    """Write the parts into ``tmp`` as one table (a ``.csv`` part by part); returns the rows written.

    ``extra`` arrays (the shard description) are stored beside the columns of an ``.npz``.
    """
    rows = 0
    if fmt == ".npz":
        data = [{k_: v for k_, v in np.load(p).items() if k_ != "consumed"} for p in parts]
        merged = {key: np.concatenate([d[key] for d in data]) for key in (data[0] if data else {})}
        if not data:  # an empty shard (more shards than stamps) still has every column
            merged = {"id": np.zeros(0, str), "mu": np.zeros((0, j), np.float32), "mse": np.zeros(0, np.float32),
                      "decoder_variance": np.zeros(0, np.float32)}
            if k:
                merged.update(gamma=np.zeros((0, k), np.float32), cluster=np.zeros(0, np.int64))
        with tmp.open("wb") as f:
            np.savez(f, **merged, **(extra or {}))
        rows = len(merged["id"])
    else:
        with tmp.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(_columns(k, j))
            for p in parts:
                with np.load(p) as z:
                    blocks = [z["id"].astype(str)[:, None]]
                    if k:
                        blocks += [z["cluster"][:, None].astype(str), np.char.mod("%.6g", z["gamma"])]
                    blocks += [np.char.mod("%.6g", z["mu"]), np.char.mod("%.6g", z["decoder_variance"][:, None]),
                               np.char.mod("%.6g", z["mse"][:, None])]
                    w.writerows(np.concatenate(blocks, axis=1).tolist())
                    rows += len(z["id"])
    return rows


# -- shards: one worker of an array job predicts one contiguous block of the catalogue


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` (0 <= I < N, e.g. ``$SLURM_ARRAY_TASK_ID/8``) as ``(I, N)``.

    Raises:
        AstrovaderError: not of that form.
    """
    try:
        i, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise AstrovaderError(f"--shard {text!r}: give I/N, e.g. 0/8 (shards are numbered 0..N-1)") from None
    _check_shard(i, n)
    return i, n


def _check_shard(i: int, n: int) -> None:
    if n < 1 or not 0 <= i < n:
        raise AstrovaderError(f"--shard {i}/{n}: give I/N with N >= 1 and 0 <= I < N "
                              "(shards are numbered 0..N-1, like `sbatch --array=0-<N-1>`)")


def shard_range(total: int, index: int, count: int) -> tuple[int, int]:
    """Input stamps ``[lo, hi)`` of shard ``index`` of ``count``: contiguous blocks of near-equal size.

    Depends only on the catalogue size and ``count``, so N independent workers partition a
    catalogue exactly: every stamp belongs to one shard.
    """
    _check_shard(index, count)
    return index * total // count, (index + 1) * total // count


def shard_path(out: str | os.PathLike, index: int, count: int) -> Path:
    """The file shard ``index`` of ``count`` writes for the table ``out``: ``STEM.shard-I-of-N.SUFFIX``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.shard-{index:0{len(str(count - 1))}d}-of-{count}{out.suffix}")


def _info_sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".shard.json")


def read_shard_info(path: str | os.PathLike) -> dict:
    """What a shard output records about itself (``index``, ``count``, ``first``, ``stop``, ``total``...).

    Stored in the ``.npz`` as ``shard_info`` (JSON), or beside a ``.csv`` as ``FILE.shard.json``.

    Raises:
        DataError: ``path`` is missing or is not a shard written by ``predict --shard``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: shard file not found; run its `astrovader predict --shard I/N` first")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if "shard_info" not in z.files:
                    raise DataError(f"{path}: not written by `astrovader predict --shard` (no shard_info); "
                                    "give the shard files of one prediction")
                return json.loads(str(z["shard_info"]))
        side = _info_sidecar(path)
        if not side.is_file():
            raise DataError(f"{path}: no {side.name} beside it, so it is not a shard of `astrovader predict "
                            "--shard` (or the .shard.json was not copied with it)")
        return json.loads(side.read_text())
    except (OSError, ValueError, KeyError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: cannot read its shard description ({type(exc).__name__}); "
                        "the file is damaged: predict this shard again") from None


def _shard_batches(dc: DataConfig, batch_size: int, start: int, stop: int):
    """``(ids, images, stamps consumed)`` for input stamps ``[start, stop)``, ``batch_size`` at a time."""
    from astrovader.data.pipeline import iter_batches

    pos = start
    full = start + (stop - start) // batch_size * batch_size
    if full > start:
        for ids, batch in iter_batches(dc, batch_size, start=start):
            yield ids, batch, batch_size
            pos += batch_size
            if pos >= full:
                break
    if pos < stop:
        for ids, batch in iter_batches(dc, stop - pos, start=pos):
            yield ids, batch, stop - pos
            break


def predict_run(run: Run | str | os.PathLike, data: str, out: str | os.PathLike, *, batch_size: int = 256,
                part_size: int = 10000, mc_samples: int | None = None, overwrite: bool = False,
                progress: bool = False, shard: tuple[int, int] | None = None) -> int:
    """Per-object predictions for every stamp of ``data``, written to ``out`` (``.csv`` or ``.npz``).

    One row per stamp: id, cluster, gamma_0..gamma_{K-1}, mu_0..mu_{J-1}, decoder_variance,
    mse. Stamps are streamed in batches (the catalogue never has to fit in memory) and
    results are written in parts to ``OUT.parts/part-<first row>.npz``, each atomically. A
    killed run started again with the same arguments continues after the last complete
    part, so no row is lost or written twice; when every batch is done the parts are joined
    into ``out``, the table is checked to hold exactly one row per input stamp and the parts
    folder is removed. ``out`` is locked for the whole run (``OUT.lock``): a second writer
    gets a :class:`~astrovader.errors.LockedError`.

    With ``shard=(I, N)`` only the I-th of N contiguous blocks of the catalogue is predicted
    (:func:`shard_range`) into its own file :func:`shard_path` (``OUT.shard-I-of-N``) with its
    own parts folder and lock, so the N workers of an array job run, fail and resume
    independently; the file records I, N and its rows for :func:`merge_predictions`. A shard
    whose file is already complete is not predicted again (a re-submitted array job only
    redoes the unfinished shards).

    Args:
        run: a :class:`Run` or its directory.
        data: the stamps (any ``--data`` spec), preprocessed with the run's data settings.
        out: the output table (with ``shard``: the merged table the shards are named after).
        batch_size: stamps per model call.
        part_size: rows per checkpointed part (a restart loses at most this much work).
        mc_samples: Monte-Carlo samples of z averaged for gamma (default: the model's).
        overwrite: replace ``out`` and discard unfinished parts.
        progress: show a progress bar on stderr.
        shard: ``(I, N)``: predict shard I of N only.

    Returns:
        The number of rows written (in the shard, with ``shard``).
    """
    from tqdm import tqdm

    from astrovader.data.pipeline import count

    if batch_size < 1 or part_size < 1:
        raise AstrovaderError("--batch-size and --part-size must be at least 1")
    out = Path(out)
    if out.suffix not in (".csv", ".npz"):
        raise AstrovaderError(f"{out}: give a .csv or .npz output file")
    if shard is not None:
        _check_shard(*shard)
        out = shard_path(out, *shard)
    if out.is_dir():
        raise AstrovaderError(f"{out} is a directory; give a .csv or .npz file name for --out")
    if not out.parent.is_dir():
        raise AstrovaderError(f"{out.parent}: folder not found; create it or choose another --out")
    run = _open(run)
    parts_dir = out.with_name(out.name + ".parts")
    with WriteLock(out, out.with_name(out.name + ".lock")):
        if overwrite:  # the old table stays until the new one replaces it
            shutil.rmtree(parts_dir, ignore_errors=True)
        elif out.exists() and (done := _finished_shard(out, run, data, shard)) is not None:
            log.info(f"{out} is already complete ({done['rows']} rows); nothing to do")
            return int(done["rows"])
        elif out.exists():
            raise AstrovaderError(f"{out} exists; use --overwrite or another --out")
        cfg, model = run.cfg, run.model
        if cfg.train.recipe == "supervised":  # classifiers: id, label, class probabilities
            if shard is not None:
                raise AstrovaderError("--shard is for clustering runs; predict a classifier run without it")
            from astrovader.supervised import predict_classifier_run

            return predict_classifier_run(run, data, out)
        k = getattr(model, "n_clusters", None)
        j = int(cfg.model.latent_dim)
        if hasattr(model, "inference_copy"):  # BatchNorm folded into the layers: same outputs, faster
            model = model.inference_copy()
        dc = data_config(cfg.data, spec=data)
        total = count(dc)
        lo, hi = shard_range(total, *shard) if shard is not None else (0, total)
        manifest = {"run": str(run.path.resolve()), "data": str(data), "part_size": part_size,
                    "mc_samples": mc_samples, "n_clusters": k, "latent_dim": j}
        if shard is not None:
            manifest.update(shard=list(shard), first=lo, stop=hi, total=total)
        parts_dir.mkdir(parents=True, exist_ok=True)
        mpath = parts_dir / "manifest.json"
        if mpath.is_file():
            old = json.loads(mpath.read_text())
            if old != manifest:
                raise AstrovaderError(f"{parts_dir} holds an unfinished prediction with other settings ({old}); "
                                      "use --overwrite to start again")
        else:
            mpath.write_text(json.dumps(manifest, indent=2))
        parts, start = _completed_parts(parts_dir, first=lo)
        if start > lo:
            log.info(f"resuming after {start - lo} rows already predicted in {parts_dir}")
        pending: list[dict] = []
        pending_rows, part_start, first = 0, start, True

        def flush():
            nonlocal pending, pending_rows, part_start
            if not pending:
                return
            arrays = {key: np.concatenate([b[key] for b in pending]) for key in pending[0]}
            arrays["consumed"] = np.int64(pending_rows)
            path = parts_dir / f"part-{part_start:012d}.npz"
            _write_part(path, arrays)
            parts.append(path)
            part_start += pending_rows
            pending, pending_rows = [], 0

        with tqdm(initial=start - lo, total=hi - lo, unit="stamps", desc="predict", disable=not progress,
                  mininterval=1.0) as bar:
            for ids, batch, consumed in _shard_batches(dc, batch_size, start, hi):
                x = conform(batch, cfg.model.input_shape, quiet=not first, source=str(data))
                first = False
                res = predict_arrays(model, x, batch_size=batch_size, mc_samples=mc_samples)
                res["id"] = np.asarray(ids).astype(str)
                pending.append(res)
                pending_rows += consumed  # input stamps consumed by this batch
                bar.update(consumed)
                if pending_rows >= part_size:
                    flush()
            flush()
        n_rows = 0
        for p in parts:
            with np.load(p) as z:
                n_rows += len(z["id"])
        expected = hi - lo
        exact = cfg.data.nan_policy != "drop"
        if (n_rows != expected) if exact else (n_rows > expected):
            raise RuntimeError(f"{out}: {n_rows} rows for {expected} input stamps; the parts in "
                               f"{parts_dir} are kept")
        extra = None
        if shard is not None:  # what predict-merge checks: which block of which catalogue this is
            info = {**manifest, "index": shard[0], "count": shard[1], "rows": n_rows, "format": out.suffix,
                    "columns": _columns(k, j), "nan_policy": cfg.data.nan_policy}
            if out.suffix == ".npz":
                extra = {"shard_info": np.array(json.dumps(info))}
            else:
                side = _info_sidecar(out)
                side_tmp = side.with_name(side.name + ".tmp")
                side_tmp.write_text(json.dumps(info, indent=2))
                os.replace(side_tmp, side)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        try:
            n_rows = _join(parts, tmp, out.suffix, k, j, extra=extra)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        shutil.rmtree(parts_dir, ignore_errors=True)
    return n_rows


def _finished_shard(out: Path, run: Run, data: str, shard: tuple[int, int]) -> dict | None:
    """The shard description of ``out`` when it is this very shard, complete; else ``None``."""
    if shard is None:
        return None
    try:
        info = read_shard_info(out)
    except DataError:
        return None
    same = (info.get("run") == str(run.path.resolve()) and info.get("data") == str(data)
            and [info.get("index"), info.get("count")] == list(shard))
    return info if same else None


def merge_predictions(parts: list[str | os.PathLike], out: str | os.PathLike, *, overwrite: bool = False) -> int:
    """Join the shard files of ``predict --shard I/N`` (all N of them) into the table ``out``.

    The shards are checked before anything is written: all come from one prediction (same
    run, data, N and columns), each of 0..N-1 is given exactly once, each holds the rows of
    its block of the catalogue, and every id appears exactly once overall. Rows are written
    in catalogue order; ``out`` is written atomically and locked while it is written.

    Args:
        parts: the shard files (``.csv`` with their ``.shard.json``, or ``.npz``), any order.
        out: the merged table, of the shards' format.
        overwrite: replace an existing ``out``.

    Returns:
        The number of rows written.

    Raises:
        DataError: a shard is missing, given twice, from another prediction or incomplete,
            or an id appears more than once.
    """
    if not parts:
        raise DataError("give the shard files to merge, e.g. predictions.shard-*-of-8.csv")
    out = Path(out)
    paths = [Path(p) for p in parts]
    infos = [read_shard_info(p) for p in paths]
    ref, ref_path = infos[0], paths[0]
    for p, info in zip(paths, infos):
        for key in ("count", "total", "run", "data", "columns", "format", "mc_samples"):
            if info.get(key) != ref.get(key):
                raise DataError(f"{p}: {key}={info.get(key)!r} but {ref_path} has {ref.get(key)!r}; "
                                "merge the shards of one prediction only")
    if out.suffix != ref["format"]:
        raise DataError(f"{out}: the shards are {ref['format']} files; give an --out ending in {ref['format']}")
    n_shards = int(ref["count"])
    by_index: dict[int, Path] = {}
    for p, info in zip(paths, infos):
        i = int(info["index"])
        if i in by_index:
            raise DataError(f"shard {i}/{n_shards} given twice ({by_index[i]} and {p}); give each shard once")
        by_index[i] = p
    missing = sorted(set(range(n_shards)) - set(by_index))
    if missing:
        shown = ", ".join(str(i) for i in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise DataError(f"{len(missing)} of {n_shards} shards missing (shard {shown}); run "
                        f"`astrovader predict --shard I/{n_shards}` for them, then merge again")
    order = [by_index[i] for i in range(n_shards)]
    info_of = {p: info for p, info in zip(paths, infos)}
    ids = []
    for p in order:
        info = info_of[p]
        got = _read_ids(p)
        want = int(info["stop"]) - int(info["first"])
        if len(got) != int(info["rows"]) or (len(got) != want and info.get("nan_policy") != "drop"):
            raise DataError(f"{p}: {len(got)} rows for the {want} stamps of shard {info['index']}/{n_shards}; "
                            "the file is truncated: predict this shard again with --overwrite")
        ids.append(got)
    ids = np.concatenate(ids)
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        dup = uniq[counts > 1]
        raise DataError(f"{int((counts > 1).sum())} id(s) appear more than once across the shards (e.g. "
                        f"{dup[0]!r} {int(counts[counts > 1][0])} times); every input id must appear exactly once: "
                        "give each object a unique id in the catalogue")
    expected = int(ref["total"])
    if len(ids) != expected and ref.get("nan_policy") != "drop":
        raise DataError(f"the shards hold {len(ids)} ids for {expected} input stamps; predict the missing ones again")
    if out.exists() and not overwrite:
        raise AstrovaderError(f"{out} exists; use --overwrite or another --out")
    if not out.parent.is_dir():
        raise AstrovaderError(f"{out.parent}: folder not found; create it or choose another --out")
    with WriteLock(out, out.with_name(out.name + ".lock")):
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        try:
            if out.suffix == ".npz":
                data = []
                for p in order:
                    with np.load(p, allow_pickle=False) as z:
                        data.append({key: z[key] for key in z.files if key != "shard_info"})
                with tmp.open("wb") as f:
                    np.savez(f, **{key: np.concatenate([d[key] for d in data]) for key in data[0]})
            else:
                with tmp.open("w", newline="") as f:
                    for i, p in enumerate(order):
                        with p.open(newline="") as src:
                            header = src.readline()
                            if i == 0:
                                f.write(header)
                            shutil.copyfileobj(src, f)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    return len(ids)


def _read_ids(path: Path) -> np.ndarray:
    """The id column of a prediction table (``.csv`` or ``.npz``)."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return z["id"].astype(str)
    with path.open(newline="") as f:
        r = csv.reader(f)
        header = next(r, None)
        if not header or header[0] != "id":
            raise DataError(f"{path}: no id column; is this a table written by `astrovader predict`?")
        return np.array([row[0] for row in r if row], dtype=str)



# --------------------------------------------------------------------------- generate, export


def generate_run(run: Run | str | os.PathLike, n: int, out: str | os.PathLike, fmt: str = "png", *,
                 cluster: int | None = None, temperature: float = 1.0, seed: int = 0,
                 min_gamma: float | None = None) -> list[Path]:
    """Sample ``n`` stamps from the run's mixture prior and write them to the folder ``out``.

    z = mu_k + T * sigma_k * eps (seed 004 sec. 5.3 steps 1-4), decoded; written as one
    PNG/FITS file per stamp (``fmt`` ``png``/``fits``) or one ``samples.npy`` array
    (``npy``), plus ``generate.json`` with the settings. With ``min_gamma`` a draw is kept
    only when p(c = k | z) > ``min_gamma`` for its component k
    (:func:`astrovader.explore.filtered_samples`).

    Returns:
        The written stamp files.
    """
    from astrovader.data.writers import write_stamp_files, write_stamps

    if n < 1:
        raise AstrovaderError("--n must be at least 1")
    if temperature <= 0:
        raise AstrovaderError("--temperature must be > 0")
    run = _open(run)
    model = run.model
    k = getattr(model, "n_clusters", None)
    if min_gamma is not None and k is None:
        raise AstrovaderError(f"{run.path}: this run is a plain VAE without clusters; drop --min-gamma")
    if cluster is not None:
        if k is None:
            raise AstrovaderError(f"{run.path}: this run is a plain VAE without clusters; drop --cluster")
        if not 0 <= cluster < k:
            raise AstrovaderError(f"--cluster {cluster}: the model has {k} clusters (0..{k - 1})")
    out = _output_dir(Path(out))
    meta_extra = {}
    if min_gamma is None:
        images = np.asarray(model.sample(n, cluster=cluster, temperature=temperature, seed=seed))
    else:
        from astrovader.explore import filtered_samples

        kept = filtered_samples(model, n, cluster=cluster, min_gamma=min_gamma, temperature=temperature, seed=seed)
        images = kept.images
        meta_extra = {"min_gamma": min_gamma, "draws": kept.draws, "acceptance": n / kept.draws,
                      "clusters": kept.clusters.tolist()}
    out = Path(out)
    if fmt == "npy":
        paths = [write_stamps(images, out / "samples.npy")]
    elif fmt == "fits":
        paths = [write_stamps(images, out / "samples.fits", creator="astrovader generate")]
    else:
        paths = write_stamp_files(images, out, fmt, prefix="sample")
    meta = {"run": str(run.path), "n": n, "cluster": cluster, "temperature": temperature,
            "seed": seed, "format": fmt, "shape": list(images.shape[1:]), **meta_extra}
    (out / "generate.json").write_text(json.dumps(meta, indent=2))
    return paths


def export_run(run: Run | str | os.PathLike | Any, out: str | os.PathLike, overwrite: bool = False) -> list[str]:
    """Export a run's model (or a model) as a TensorFlow SavedModel in ``out``; returns the signature names.

    See :func:`astrovader.export.export_saved_model` for the signatures.
    """
    from astrovader.export import export_saved_model

    model = _open(run).model if isinstance(run, (Run, str, os.PathLike)) else run
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise AstrovaderError(f"{out} exists and is not empty; use --overwrite or another --out")
        if out.is_dir():
            shutil.rmtree(out)
        else:
            out.unlink()
    _output_dir(out.parent)
    sigs = export_saved_model(model, str(out))
    return sorted(sigs) if sigs is not None else []
