"""The interface every stamp reader fulfils (files, arrays, catalogues, TFRecord shards).

A :class:`Source` knows its name, how many stamps it holds and the names of its labels,
and hands out its raw stamps in order as :class:`Chunk` s, from any start index; that is
all :func:`astrovader.data.load` (whole sets) and :func:`astrovader.data.iter_batches`
(streaming, resumable) need, so neither asks which reader it has. A source whose format has
a native ``tf.data`` reader also returns it from :meth:`Source.dataset`.

:class:`IndexedSource` is the base of the readers whose ids, labels and columns are known
up front and whose stamps are read by index range (:mod:`.readers`); the TFRecord reader
(:class:`~astrovader.data.shards.ShardSource`) reads ids and stamps record by record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from astrovader.errors import DataError

__all__ = ["Chunk", "Source", "IndexedSource"]


@dataclass
class Chunk:
    """Consecutive raw stamps of a source with their per-stamp metadata.

    Attributes:
        raw: an ``(n, H, W, C)`` array, or a list of ``(H, W, C)`` arrays when the stamps
            may differ in shape (one file per stamp).
        ids: str array ``(n,)``.
        labels: int array ``(n,)`` or ``None``.
        columns: extra per-stamp arrays of length ``n``.
    """

    raw: Any
    ids: np.ndarray
    labels: np.ndarray | None = None
    columns: dict = field(default_factory=dict)


class Source:
    """A readable collection of stamps.

    Args:
        name: file or dataset name used in messages.
        n: number of stamps.
        label_names: names of the label values, or ``None``.
    """

    def __init__(self, name: str, n: int, label_names: list | None = None):
        self.name, self.n, self.label_names = str(name), int(n), label_names

    def chunks(self, start: int = 0, stop: int | None = None, batch_size: int = 4096) -> Iterator[Chunk]:
        """Stamps ``start`` to ``stop`` (default: all) in order, ``batch_size`` at a time."""
        raise NotImplementedError

    def dataset(self):
        """A ``tf.data.Dataset`` of single raw stamps read natively, or ``None`` (the default)."""
        return None


class _RowIds:
    """The default ids ``"0" .. "n-1"``, made per slice (a million-stamp file needs no id table)."""

    def __init__(self, n: int):
        self.n = int(n)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, slice):
            return np.arange(*index.indices(self.n)).astype(str)
        return np.arange(self.n)[index].astype(str)

    def __array__(self, dtype=None, copy=None):
        return np.arange(self.n).astype(str if dtype is None else dtype)


class IndexedSource(Source):
    """A source with ids, labels and columns in memory that reads any index range of stamps.

    Subclasses implement :meth:`read`.

    Raises:
        DataError: when ids, labels or columns do not have one entry per stamp.
    """

    def __init__(self, name: str, n: int, ids=None, labels=None, label_names=None, columns=None):
        super().__init__(name, n, label_names)
        self.ids = _RowIds(self.n) if ids is None else np.asarray(ids).astype(str)
        self.labels, self.columns = labels, dict(columns or {})
        if labels is not None and len(labels) != self.n:
            raise DataError(f"{name}: {self.n} images but {len(labels)} labels; give one label per image")
        if len(self.ids) != self.n:
            raise DataError(f"{name}: {self.n} images but {len(self.ids)} ids; give one id per image")

    def read(self, lo: int, hi: int) -> np.ndarray | list:
        """Raw stamps ``lo:hi`` as an ``(n, H, W, C)`` array or a list of ``(H, W, C)`` arrays."""
        raise NotImplementedError

    def chunks(self, start: int = 0, stop: int | None = None, batch_size: int = 4096) -> Iterator[Chunk]:
        stop = self.n if stop is None else min(int(stop), self.n)
        for lo in range(int(start), stop, max(1, int(batch_size))):
            hi = min(lo + int(batch_size), stop)
            yield Chunk(
                raw=self.read(lo, hi),
                ids=self.ids[lo:hi],
                labels=None if self.labels is None else np.asarray(self.labels)[lo:hi],
                columns={k: np.asarray(v)[lo:hi] for k, v in self.columns.items()},
            )
