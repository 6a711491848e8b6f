"""The in-memory container for a set of image stamps and its summary.

A :class:`StampSet` holds float32 images ``(N, H, W, C)``, optional integer labels (used for
evaluation only, never for training), string ids and any extra catalog columns (continuous
simulation parameters, sub-types, vote fractions, detection positions...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from astrovader.errors import DataError

__all__ = ["StampSet", "info"]


@dataclass
class StampSet:
    """Images plus optional labels, ids and per-stamp columns.

    Args:
        images: float32 array ``(N, H, W, C)``.
        labels: int array ``(N,)`` or ``None`` (evaluation only).
        ids: string array ``(N,)``; defaults to ``"0"``, ``"1"``, ...
        label_names: name of each label value, or ``None``.
        columns: extra per-stamp arrays of length ``N`` (catalog columns, simulation
            parameters, sub-types).
        source: where the stamps came from (a path or ``builtin:NAME``), used in messages.
        meta: free-form provenance (e.g. ``{"dropped_nonfinite": 3}``).
    """

    images: np.ndarray
    labels: np.ndarray | None = None
    ids: np.ndarray | None = None
    label_names: list | None = None
    columns: dict = field(default_factory=dict)
    source: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.ids is None:
            self.ids = np.array([str(i) for i in range(n)])
        else:
            self.ids = np.asarray(self.ids).astype(str)
        if len(self.ids) != n:
            raise DataError(f"{self.source or 'stamps'}: {n} images but {len(self.ids)} ids; give one id per image")
        if self.labels is not None:
            self.labels = np.asarray(self.labels)
            if len(self.labels) != n:
                raise DataError(
                    f"{self.source or 'stamps'}: {n} images but {len(self.labels)} labels; give one label per image"
                )
            self.labels = self.labels.astype(np.int64)
        for name, col in list(self.columns.items()):
            col = np.asarray(col)
            if len(col) != n:
                raise DataError(
                    f"{self.source or 'stamps'}: column {name!r} has {len(col)} values for {n} images; "
                    "give one value per image"
                )
            self.columns[name] = col

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple:
        """Shape of one stamp ``(H, W, C)``."""
        return tuple(self.images.shape[1:])

    def subset(self, index: Any) -> "StampSet":
        """Rows selected by an index array, slice or boolean mask (a new StampSet)."""
        return StampSet(
            images=self.images[index],
            labels=None if self.labels is None else self.labels[index],
            ids=self.ids[index],
            label_names=self.label_names,
            columns={k: v[index] for k, v in self.columns.items()},
            source=self.source,
            meta=dict(self.meta),
        )


def info(stamps: StampSet) -> dict:
    """Summary of a stamp set for ``astrovader data info``.

    Args:
        stamps: the set to describe.

    Returns:
        A JSON-serialisable dict with ``count``, ``shape``, ``dtype``, ``min``, ``max``,
        ``mean``, ``std`` (over finite pixels), ``nonfinite_pixels``, ``nonfinite_stamps``,
        ``label_counts`` (``{name: count}`` or ``None``), ``columns`` and ``source``.
    """
    x = stamps.images
    finite = np.isfinite(x)
    vals = x[finite]
    out: dict = {
        "source": stamps.source,
        "count": int(len(x)),
        "shape": [int(s) for s in x.shape[1:]],
        "dtype": str(x.dtype),
        "min": float(vals.min()) if vals.size else None,
        "max": float(vals.max()) if vals.size else None,
        "mean": float(vals.mean()) if vals.size else None,
        "std": float(vals.std()) if vals.size else None,
        "nonfinite_pixels": int(x.size - finite.sum()),
        "nonfinite_stamps": int((~finite.reshape(len(x), -1).all(axis=1)).sum()) if len(x) else 0,
        "label_counts": None,
        "columns": sorted(stamps.columns),
    }
    if stamps.labels is not None:
        values, counts = np.unique(stamps.labels, return_counts=True)
        names = stamps.label_names
        out["label_counts"] = {
            (str(names[v]) if names is not None and 0 <= v < len(names) else str(int(v))): int(c)
            for v, c in zip(values, counts)
        }
    out.update({k: v for k, v in stamps.meta.items() if isinstance(v, (int, float, str))})
    return out
