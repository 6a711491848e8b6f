"""astrovader: Variational Deep Embedding for astronomical image stamps.

Unsupervised clustering and generation of image stamps (galaxy cutouts, transient
difference stamps) with a convolutional VAE whose latent prior is a learnable Gaussian
mixture (VaDE). The public names below are imported lazily so that ``import astrovader``
(and ``astrovader --help``) does not start TensorFlow.

Example::

    import astrovader as av
    cfg = av.load_preset("demo")
    stamps = av.data.load("builtin:transients")
    model, history = av.train(cfg, stamps.images)
    gamma = model.cluster_probabilities(stamps.images)
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "RunConfig": "astrovader.config",
    "ModelConfig": "astrovader.config",
    "TrainConfig": "astrovader.config",
    "DataConfig": "astrovader.config",
    "load_config": "astrovader.config",
    "load_preset": "astrovader.config",
    "save_config": "astrovader.config",
    "VAE": "astrovader.models",
    "VaDE": "astrovader.models",
    "build_model": "astrovader.models",
    "train": "astrovader.training",
    "get_strategy": "astrovader.training",
    "S3VDC": "astrovader.schedules",
    "ClassicVaDE": "astrovader.schedules",
    "KLAnnealing": "astrovader.schedules",
    "NaNGuard": "astrovader.schedules",
    "export_saved_model": "astrovader.export",
    "fit_recipe": "astrovader.training",
    "compile_model": "astrovader.training",
    "Run": "astrovader.runs",
    "configure": "astrovader.runs",
    "scale_epochs": "astrovader.runs",
    "split_validation": "astrovader.runs",
    "fit_run": "astrovader.runs",
    "evaluate_run": "astrovader.runs",
    "predict_run": "astrovader.runs",
    "generate_run": "astrovader.runs",
    "export_run": "astrovader.runs",
    "AstrovaderError": "astrovader.errors",
    "ConfigError": "astrovader.errors",
    "DataError": "astrovader.errors",
    "TrainingError": "astrovader.errors",
    "LockedError": "astrovader.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in ("data", "evaluation", "baselines", "selection", "layers", "losses", "networks",
                "tuning", "distributed", "schedules", "export", "training", "models", "config",
                "explore", "explore_plots", "runs", "locks", "report", "plots",
                "classifiers", "supervised", "classifier_baselines"):
        return importlib.import_module(f"astrovader.{name}")
    raise AttributeError(f"module 'astrovader' has no attribute {name!r}")
