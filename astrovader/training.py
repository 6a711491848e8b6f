"""Strategy selection and fit orchestration.

:func:`get_strategy` picks a ``tf.distribute`` strategy (one per process); :func:`train`
builds and compiles the model inside its scope (:func:`compile_model`) and runs the one fit
sequence (:func:`fit_recipe`: datasets with the *global* batch size, the recipe callbacks of
the training config, NaN guard, ``model.fit``), which keras-tuner trials run too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re

import keras
import numpy as np
import tensorflow as tf

from astrovader.config import RunConfig, recipe_model_kind
from astrovader.data import make_dataset
from astrovader.errors import AstrovaderError, DataError, TrainingError
from astrovader.models import build_model
from astrovader.optimizers import FusedAdam
from astrovader.runs import scale_epochs, split_validation
from astrovader.schedules import AnchorTargets, NaNGuard, recipe_callbacks

__all__ = ["get_strategy", "train", "make_optimizer", "compile_model", "fit_recipe", "model_kind",
           "precision_policy"]

STRATEGIES = ("default", "auto", "mirrored", "multiworker")
_STRATEGY_CACHE: dict = {}


def get_strategy(name: str = "auto"):
    """Return a ``tf.distribute`` strategy.

    Args:
        name: ``"default"`` (no distribution), ``"mirrored"`` (all local GPUs, or all
            logical CPU devices when there is no GPU), ``"multiworker"``
            (``MultiWorkerMirroredStrategy`` configured by the ``TF_CONFIG`` environment
            variable) or ``"auto"`` (mirrored when more than one GPU is visible).

    Strategies are created once per process and reused (TensorFlow allows only one
    multi-worker strategy per process).
    """
    if name not in STRATEGIES:
        raise AstrovaderError(f"--strategy {name!r}: choose one of {', '.join(STRATEGIES)}")
    if name == "auto":
        name = "mirrored" if len(tf.config.list_logical_devices("GPU")) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name not in _STRATEGY_CACHE:
        if name == "mirrored":
            devices = None
            if not tf.config.list_logical_devices("GPU"):
                devices = [d.name for d in tf.config.list_logical_devices("CPU")]
            _STRATEGY_CACHE[name] = tf.distribute.MirroredStrategy(devices=devices)
        else:
            tf_config = os.environ.get("TF_CONFIG")
            if not tf_config:
                raise AstrovaderError("--strategy multiworker needs the TF_CONFIG environment "
                                      "variable (cluster + task); see README 'Running on a cluster'")
            try:
                json.loads(tf_config)
            except json.JSONDecodeError:
                raise AstrovaderError("TF_CONFIG is not valid JSON; see README 'Running on a cluster'") from None
            _STRATEGY_CACHE[name] = tf.distribute.MultiWorkerMirroredStrategy()
    return _STRATEGY_CACHE[name]


def learning_rate(train_cfg, steps_per_epoch: int):
    """``train.learning_rate``, or with ``final_learning_rate`` set a rate that decays every 5
    epochs (staircase) so it reaches ``final_learning_rate`` at the last epoch (seed 004 sec. 4.1)."""
    lr = float(train_cfg.learning_rate)
    if not train_cfg.final_learning_rate:
        return lr
    n_drops = max(1, train_cfg.total_epochs() // 5)
    rate = (float(train_cfg.final_learning_rate) / lr) ** (1.0 / n_drops)
    return keras.optimizers.schedules.ExponentialDecay(
        lr, decay_steps=5 * max(1, steps_per_epoch), decay_rate=rate, staircase=True)


def make_optimizer(train_cfg, steps_per_epoch: int):
    """Adam (:class:`~astrovader.optimizers.FusedAdam`: one fused kernel per variable) with the
    configured clipping, the rate of :func:`learning_rate` and, with ``train.ema`` > 0, a moving
    average of the weights that ``fit`` swaps in at its end (Keras's ``use_ema``)."""
    lr = learning_rate(train_cfg, steps_per_epoch)
    ema = float(getattr(train_cfg, "ema", 0.0))
    kwargs = dict(clipnorm=train_cfg.clipnorm, use_ema=ema > 0, ema_momentum=ema or 0.99)
    if train_cfg.optimizer == "nadam":  # Adam with Nesterov momentum (seed 001 sec. 3)
        return keras.optimizers.Nadam(lr, **kwargs)
    if train_cfg.optimizer != "adam":
        raise AstrovaderError(f"train.optimizer={train_cfg.optimizer!r}: choose 'adam' or 'nadam'")
    return FusedAdam(lr, **kwargs)


def model_kind(recipe: str) -> str:
    """``"vae"`` for the recipes that train a plain VAE (``vae``, ``kl_annealing``), else ``"vade"``."""
    return recipe_model_kind(recipe)


def compile_model(cfg: RunConfig, steps_per_epoch: int):
    """A new model of the recipe's kind, compiled with :func:`make_optimizer`.

    The networks are built in ``train.mixed_precision`` (the model keeps the prior, the
    sampling and the losses in float32); ``train.steps_per_execution`` and
    ``train.jit_compile`` go to ``model.compile``. Call it inside the ``strategy.scope()``
    the model will train under.
    """
    with precision_policy(cfg.train.mixed_precision):
        model = build_model(cfg.model, kind=cfg.model_kind())
    t = cfg.train
    # several steps per call fail under tf.distribute when the last batch is uneven (TF 2.21:
    # "You must feed a value for placeholder tensor ... while/cond"): one step per call there
    strategy = tf.distribute.get_strategy()
    distributed = strategy.num_replicas_in_sync > 1 or isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    spe = 1 if distributed else int(t.steps_per_execution)
    model.compile(optimizer=make_optimizer(t, steps_per_epoch), steps_per_execution=spe,
                  jit_compile="auto" if t.jit_compile is None else bool(t.jit_compile))
    return model


@contextlib.contextmanager
def precision_policy(name: str = "none"):
    """Layers created inside use the Keras dtype policy ``name`` (``none``: float32).

    ``mixed_bfloat16`` / ``mixed_float16`` compute in 16 bits with float32 variables; the
    global policy is restored on exit, so only the layers built inside are affected.
    """
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32" if name in (None, "none") else name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)


def fit_recipe(model, cfg: RunConfig, x_train, x_val=None, callbacks=(), gmm_data=None, **fit_kwargs):
    """The one fit sequence, shared by :func:`train` and :mod:`astrovader.tuning`.

    Batches the stamps for the model's strategy (:func:`astrovader.data.make_dataset`, with
    the configured augmentation), attaches the recipe's schedule callbacks and NaN guard
    (:func:`astrovader.schedules.recipe_callbacks`), runs ``model.fit`` and turns a NaN/Inf
    loss into a :class:`~astrovader.errors.TrainingError`.

    Args:
        model: a compiled model (see :func:`compile_model`).
        cfg: the run configuration.
        x_train: stamps ``(N, H, W, C)`` or a batched ``tf.data.Dataset``.
        x_val: optional validation stamps (array or dataset).
        callbacks: extra Keras callbacks, after the recipe's.
        gmm_data: stamps for the GMM initialisation (default ``x_train``).
        **fit_kwargs: passed to ``model.fit`` (``epochs`` defaults to the recipe's total,
            ``verbose``, ``initial_epoch``...).

    Returns:
        The Keras ``History``.

    Raises:
        TrainingError: if a loss term became NaN/Inf (the last good weights are kept).
    """
    t = cfg.train
    replicas = model.distribute_strategy.num_replicas_in_sync
    train_ds = x_train
    anchor = None
    if isinstance(x_train, np.ndarray):
        # gamma anchoring looks up each stamp's initial responsibilities by row number
        anchored = int(t.anchor_epochs) > 0 and hasattr(model, "anchor_weight") and gmm_data is None
        train_ds = make_dataset(x_train, t.batch_size, shuffle=True, seed=t.seed, replicas=replicas,
                                augment_flips=cfg.data.flips, augment_rot90=cfg.data.rot90,
                                augment_shift=cfg.data.shift_pixels(x_train.shape[1:]), augment_rotate=cfg.data.rotate,
                                with_index=anchored)
        if anchored:
            anchor = AnchorTargets(len(x_train), model.n_clusters)
            train_ds = train_ds.map(lambda d: {"x": d["x"], "anchor": tf.ensure_shape(
                tf.numpy_function(anchor.lookup, [d["index"]], tf.float32), [None, model.n_clusters])})
    val_ds = x_val
    if isinstance(x_val, np.ndarray):
        val_ds = make_dataset(x_val, min(t.batch_size, len(x_val)), shuffle=False, replicas=replicas)
    cbs = recipe_callbacks(t, x_train if gmm_data is None else gmm_data, anchor)
    guard = next(c for c in cbs if isinstance(c, NaNGuard))
    if int(getattr(t, "early_stopping", 0)) > 0 and val_ds is not None:  # seed 001: early stopping
        cbs.append(keras.callbacks.EarlyStopping("val_loss", patience=int(t.early_stopping),
                                                 restore_best_weights=True))
    fit_kwargs.setdefault("epochs", t.total_epochs())
    try:
        history = model.fit(train_ds, validation_data=val_ds, callbacks=[*cbs, *callbacks], shuffle=False,
                            **fit_kwargs)
    except tf.errors.InvalidArgumentError as exc:  # e.g. ResizeNearestNeighborGrad has no XLA CPU kernel
        if t.jit_compile and "XLA" in str(exc):
            found = re.search(r"on (XLA_\w+): (\w+)", str(exc))
            what = f"{found.group(2)} on {found.group(1)}" if found else "an unsupported op"
            raise TrainingError(f"train.jit_compile: XLA cannot compile this network here ({what}); "
                                "set train.jit_compile: false (or null for Keras' choice)") from None
        raise
    if guard.error:
        raise TrainingError(guard.error)
    return history


def train(cfg: RunConfig, x_train, x_val=None, callbacks=(), strategy=None, verbose="auto",
          model=None, gmm_data=None, epochs: int | None = None):
    """Build (unless ``model`` is given), compile and train a model as ``cfg`` says.

    Args:
        cfg: the run configuration; ``cfg.model.input_shape`` is filled from the data and
            its epochs raised to the recipe's minimum updates
            (``train.pretrain_updates``, ``train.schedule_updates``).
        x_train: stamps ``(N, H, W, C)`` or a batched ``tf.data.Dataset`` of stamps (then
            pass ``gmm_data`` too, an array used for the GMM initialisation).
        x_val: validation stamps (array or dataset). When not given and ``x_train`` is an
            array, ``cfg.train.validation_fraction`` of it is held out
            (:func:`astrovader.runs.split_validation`, as ``astrovader train`` does).
        callbacks: extra Keras callbacks (logging, checkpoints...).
        strategy: a ``tf.distribute`` strategy (default: the current one).
        verbose: Keras verbosity (progress bars by default).
        model: an already built and compiled model to continue training.
        gmm_data: stamps for the GMM initialisation (default: the training stamps).
        epochs: total epochs; the recipe's phases are rescaled to add up to it
            (:func:`astrovader.runs.scale_epochs`, like ``--epochs``); ``cfg`` is unchanged.

    Returns:
        ``(model, history)``.

    Raises:
        ConfigError: an invalid configuration.
        DataError: stamps that are not ``(N, H, W, C)``.
        TrainingError: if a loss term became NaN/Inf (the last good weights are kept).
    """
    cfg.validate()
    if epochs is not None:
        cfg = dataclasses.replace(cfg, train=scale_epochs(cfg.train, int(epochs)))
    strategy = strategy or tf.distribute.get_strategy()
    t = cfg.train
    replicas = strategy.num_replicas_in_sync
    if replicas > 1 and t.batch_size % replicas:
        raise AstrovaderError(f"train.batch_size={t.batch_size} is the global batch: make it a multiple "
                              f"of the {replicas} replicas")
    if isinstance(x_train, np.ndarray):
        if x_train.ndim != 4:
            raise DataError(f"training stamps must have shape (N, H, W, C), got {x_train.shape}")
        if x_val is None:
            x_train, x_val = split_validation(x_train, float(t.validation_fraction), int(t.seed))
        cfg.model.input_shape = tuple(int(s) for s in x_train.shape[1:])
        n_steps = t.steps_per_epoch(len(x_train))
    else:
        spec = x_train.element_spec
        spec = spec[0] if isinstance(spec, tuple) else spec
        cfg.model.input_shape = tuple(int(s) for s in spec.shape[1:])
        n_steps = int(x_train.cardinality()) if int(x_train.cardinality()) > 0 else 100
    t.resolve_updates(n_steps)  # train.pretrain_updates / schedule_updates: lengths counted in updates

    with strategy.scope():
        if model is None:
            model = compile_model(cfg, n_steps)
    if model_kind(t.recipe) == "vae" and hasattr(model, "prior"):
        raise AstrovaderError(f"train.recipe={t.recipe!r} trains a VAE; the given model is a VaDE")
    history = fit_recipe(model, cfg, x_train, x_val, callbacks=callbacks, gmm_data=gmm_data,
                         epochs=t.total_epochs(), verbose=verbose)
    return model, history
