"""Helpers shared by the subcommands: messages, run directories, data loading, shapes.

A *run directory* holds everything one training run produces::

    RUN_DIR/config.yaml     resolved configuration (input_shape filled in)
    RUN_DIR/model.keras     the trained model (written when training finishes)
    RUN_DIR/history.csv     one row per epoch (Keras CSVLogger, appended on --resume)
    RUN_DIR/logs/           TensorBoard event files
    RUN_DIR/backup/         Keras BackupAndRestore state (removed when training finishes)
    RUN_DIR/metrics.json, RUN_DIR/report.html, RUN_DIR/figures/   from ``evaluate``
    RUN_DIR/savedmodel/     from ``export``
"""

from __future__ import annotations

import csv
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from astrovader.config import DataConfig, RunConfig, load_config
from astrovader.errors import AstrovaderError

__all__ = ["notice", "RunDir", "load_stamps", "conform", "read_history", "load_run", "data_config"]


def notice(message: str) -> None:
    """Print an informational line to stderr (stdout stays for results)."""
    print(f"astrovader: {message}", file=sys.stderr, flush=True)


class RunDir:
    """Paths inside a run directory (see the module docstring)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.config = self.path / "config.yaml"
        self.model = self.path / "model.keras"
        self.history = self.path / "history.csv"
        self.logs = self.path / "logs"
        self.backup = self.path / "backup"
        self.metrics = self.path / "metrics.json"
        self.report = self.path / "report.html"
        self.figures = self.path / "figures"
        self.savedmodel = self.path / "savedmodel"

    def require_model(self) -> None:
        """Raise a user-facing error unless the run holds a config and a trained model."""
        if not self.path.is_dir():
            raise AstrovaderError(f"{self.path}: run directory not found; train one with `astrovader train`")
        if not self.config.is_file():
            raise AstrovaderError(f"{self.path}: no config.yaml here; is this a run directory?")
        if not self.model.is_file():
            hint = " (training was interrupted: continue it with `astrovader train --resume`)" if self.backup.exists() else ""
            raise AstrovaderError(f"{self.path}: no model.keras yet{hint}")


def data_config(cfg_data: DataConfig, spec: str | None = None, n: int | None = None) -> DataConfig:
    """The run's data settings (preprocessing) applied to another ``spec`` and/or count.

    A new ``spec`` drops the run's stamp count (all stamps are used unless ``n``).
    """
    changes: dict[str, Any] = {}
    if spec is not None:
        changes["spec"] = spec
        changes["n"] = None
    if n is not None:
        changes["n"] = int(n)
    return replace(cfg_data, **changes)


def load_stamps(cfg_data: DataConfig):
    """Load a :class:`~astrovader.data.StampSet` with the data layer (errors are DataError)."""
    from astrovader.data import load

    return load(cfg_data)


def conform(images: np.ndarray, input_shape: tuple | None, quiet: bool = False) -> np.ndarray:
    """Make stamps match the network's ``input_shape`` (never a shape traceback).

    Bands are averaged to one channel when the network takes one band (seed 004 grey
    scale), a single band is repeated when it takes several; the spatial size is changed
    with a bilinear resize. A notice says what was done.

    Args:
        images: ``(N, H, W, C)`` stamps.
        input_shape: ``(H, W, C)`` of the network (``None``: returned unchanged).
        quiet: suppress the notice (for repeated batches).

    Raises:
        AstrovaderError: when the band counts cannot be reconciled (e.g. 3 -> 2).
    """
    images = np.asarray(images, dtype=np.float32)
    if input_shape is None or images.ndim != 4:
        return images
    h, w, c = (int(s) for s in input_shape)
    H, W, C = images.shape[1:]
    if C != c:
        if c == 1:
            images = images.mean(axis=-1, keepdims=True, dtype=np.float32)
        elif C == 1:
            images = np.repeat(images, c, axis=-1)
        else:
            raise AstrovaderError(
                f"the stamps have {C} bands but the model takes {c}; set data.grayscale or pick "
                "a preset for this band count"
            )
        if not quiet:
            notice(f"converted stamps from {C} to {c} band(s) to match the model")
    if (H, W) != (h, w):
        from astrovader.data.preprocessing import resize

        images = resize(images, [h, w])
        if not quiet:
            notice(f"resized stamps from {H}x{W} to {h}x{w} (the model's input size)")
    return images


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


def load_run(run_dir: str | os.PathLike) -> tuple[RunConfig, Any]:
    """Read ``config.yaml`` and ``model.keras`` of a finished run."""
    import keras

    import astrovader.models  # noqa: F401  (registers the serialisable classes)

    rd = RunDir(run_dir)
    rd.require_model()
    cfg = load_config(rd.config)
    try:
        model = keras.models.load_model(rd.model, compile=False)
    except Exception as exc:  # corrupted / foreign file: say which
        raise AstrovaderError(f"{rd.model}: cannot load the model ({type(exc).__name__}: {exc})") from None
    return cfg, model


def labels_of(stamps) -> np.ndarray | None:
    """Labels of a stamp set, or ``None`` when absent/negative (unlabelled)."""
    y = getattr(stamps, "labels", None)
    if y is None:
        return None
    y = np.asarray(y)
    if y.size == 0 or (y < 0).all():
        return None
    return y
