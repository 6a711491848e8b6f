"""TFRecord shards: our writer, reader and streaming ``tf.data`` source.

Layout of a shard directory written by :func:`write_shards`::

    out_dir/shard-00000.tfrecord ...   one ``tf.train.Example`` per stamp
    out_dir/manifest.json              count, stamp shape, label names, columns, shard list

Each example holds ``image`` (float32 bytes, little-endian), ``shape`` (3 x int64), ``id``
(bytes), ``label`` (int64, -1 when unlabelled) and one ``col/<name>`` feature per extra
column (float or bytes). Every file is written to a temporary name and renamed into place,
and the manifest is written last, so an interrupted write never looks complete.
"""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from astrovader.data.source import Chunk, Source
from astrovader.data.stampset import StampSet
from astrovader.errors import DataError

__all__ = ["write_shards", "ShardSource", "shard_files", "shard_dataset"]

MANIFEST = "manifest.json"
FORMAT = "astrovader-shards"


def _example(image: np.ndarray, sid: str, label: int, cols: dict):
    import tensorflow as tf

    f = tf.train.Feature
    feats = {
        "image": f(bytes_list=tf.train.BytesList(value=[np.ascontiguousarray(image, "<f4").tobytes()])),
        "shape": f(int64_list=tf.train.Int64List(value=list(image.shape))),
        "id": f(bytes_list=tf.train.BytesList(value=[str(sid).encode()])),
        "label": f(int64_list=tf.train.Int64List(value=[int(label)])),
    }
    for name, v in cols.items():
        if isinstance(v, (str, np.str_, bytes)):
            feats[f"col/{name}"] = f(bytes_list=tf.train.BytesList(value=[str(v).encode()]))
        else:
            feats[f"col/{name}"] = f(float_list=tf.train.FloatList(value=[float(v)]))
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


def write_shards(
    stamps: StampSet | Iterable[StampSet],
    out_dir: str | os.PathLike,
    shard_size: int = 1000,
    *,
    overwrite: bool = False,
    progress: bool = False,
) -> dict:
    """Write stamps as TFRecord shards plus ``manifest.json``.

    Args:
        stamps: a :class:`StampSet`, or an iterable of StampSet chunks (streamed conversion
            of inputs larger than memory; all chunks must share shape and columns).
        out_dir: output directory (created; must be empty unless ``overwrite``).
        shard_size: stamps per shard file.
        overwrite: replace shards and manifest written here before (other files are
            never touched).
        progress: show a tqdm progress bar.

    Returns:
        The manifest dict.

    Raises:
        DataError: ``out_dir`` already holds files and ``overwrite`` is False.
    """
    import tensorflow as tf
    from tqdm import tqdm

    out = Path(out_dir)
    if int(shard_size) < 1:
        raise DataError(f"shard_size={shard_size}: give a positive number of stamps per shard")
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a directory; choose another output directory")
    old = []
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise DataError(f"{out}: output directory is not empty; choose a new directory or pass --overwrite")
        if (out / MANIFEST).is_file():
            try:
                old = json.loads((out / MANIFEST).read_text()).get("shards", [])
            except (OSError, ValueError):
                old = []
    out.mkdir(parents=True, exist_ok=True)
    chunks = [stamps] if isinstance(stamps, StampSet) else stamps
    manifest = {"format": FORMAT, "version": 1, "count": 0, "shape": None, "label_names": None,
                "has_labels": None, "columns": None, "shards": [], "shard_size": int(shard_size)}
    writer, tmp, in_shard = None, None, 0
    bar = tqdm(desc=f"writing {out}", unit="stamp", disable=not progress)

    def close():
        nonlocal writer
        if writer is not None:
            writer.close()
            os.replace(tmp, out / manifest["shards"][-1])
            writer = None

    try:
        for chunk in chunks:
            if manifest["shape"] is None:
                manifest["shape"] = [int(s) for s in chunk.images.shape[1:]]
                manifest["label_names"] = chunk.label_names
                manifest["has_labels"] = chunk.labels is not None
                manifest["columns"] = {k: ("str" if v.dtype.kind in "USO" else "float") for k, v in chunk.columns.items()}
            elif list(chunk.images.shape[1:]) != manifest["shape"]:
                raise DataError(f"{chunk.source}: stamp shape {chunk.images.shape[1:]} differs from {manifest['shape']}")
            for i in range(len(chunk)):
                if writer is None:
                    name = f"shard-{len(manifest['shards']):05d}.tfrecord"
                    manifest["shards"].append(name)
                    tmp = out / f".{name}.tmp"
                    writer, in_shard = tf.io.TFRecordWriter(str(tmp)), 0
                label = -1 if chunk.labels is None else int(chunk.labels[i])
                cols = {k: chunk.columns[k][i] for k in manifest["columns"]}
                writer.write(_example(chunk.images[i], chunk.ids[i], label, cols))
                in_shard += 1
                manifest["count"] += 1
                bar.update(1)
                if in_shard >= shard_size:
                    close()
        close()
    finally:
        bar.close()
        if writer is not None:
            writer.close()
            tmp.unlink(missing_ok=True)
    if manifest["count"] == 0:
        raise DataError(f"{out}: no stamps to write; check the input")
    for name in old:
        if name not in manifest["shards"] and name.startswith("shard-"):
            (out / name).unlink(missing_ok=True)
    tmp_m = out / f".{MANIFEST}.tmp"
    tmp_m.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp_m, out / MANIFEST)
    return manifest


def shard_files(spec: str | os.PathLike) -> tuple[list[str], dict | None]:
    """The ordered shard files of ``spec`` (directory, single file or glob) and its manifest."""
    p = Path(spec)
    if p.is_dir():
        mpath = p / MANIFEST
        try:
            manifest = json.loads(mpath.read_text())
        except (OSError, ValueError):
            raise DataError(f"{mpath}: unreadable shard manifest; rewrite the shards with write_shards") from None
        files = [str(p / s) for s in manifest.get("shards", [])]
        missing = [f for f in files if not os.path.isfile(f)]
        if missing:
            raise DataError(f"{missing[0]}: shard listed in {mpath} is missing; restore it or rewrite the shards")
        return files, manifest
    files = sorted(glob.glob(str(spec)))
    if not files:
        raise DataError(f"{spec}: no TFRecord shards match; check the path")
    return files, None


def _parse_python(raw: bytes, where: str) -> tuple:
    import tensorflow as tf

    try:
        ex = tf.train.Example.FromString(raw).features.feature
        shape = tuple(ex["shape"].int64_list.value)
        img = np.frombuffer(ex["image"].bytes_list.value[0], "<f4").reshape(shape)
    except Exception:  # noqa: BLE001 -- any decoding failure is a foreign/corrupt record
        raise DataError(f"{where}: record is not an astrovader stamp; write shards with write_shards") from None
    cols = {}
    for k, v in ex.items():
        if k.startswith("col/"):
            cols[k[4:]] = v.bytes_list.value[0].decode() if v.bytes_list.value else v.float_list.value[0]
    return img, ex["id"].bytes_list.value[0].decode(), int(ex["label"].int64_list.value[0]), cols


class ShardSource(Source):
    """Stamps stored in TFRecord shards (see :func:`write_shards`), read record by record in order.

    Implements :class:`~astrovader.data.source.Source`; the stamp count comes from the
    manifest (or one pass over the records of shards without one), and :meth:`dataset`
    parses the shards natively in ``tf.data``.
    """

    def __init__(self, spec: str | os.PathLike):
        self.files, self.manifest = shard_files(spec)
        self.spec = str(spec)
        if self.manifest is not None:
            n = int(self.manifest["count"])
        else:
            n = sum(1 for _ in self._records(0))
        super().__init__(self.spec, n, label_names=self.manifest.get("label_names") if self.manifest else None)

    def _records(self, start: int) -> Iterator[tuple[bytes, str]]:
        import tensorflow as tf

        skipped, files = 0, self.files
        if self.manifest is not None and start > 0:  # every shard but the last is full: skip whole files
            per = int(self.manifest.get("shard_size") or 0)
            if per > 0:
                whole = min(start // per, len(files) - 1)
                files, skipped = files[whole:], whole * per
        for f in files:
            try:
                for raw in tf.data.TFRecordDataset(f).as_numpy_iterator():
                    if skipped < start:
                        skipped += 1
                        continue
                    yield raw, f
            except (tf.errors.DataLossError, tf.errors.OpError) as exc:
                raise DataError(
                    f"{f}: corrupt or truncated TFRecord shard ({type(exc).__name__}); rewrite it with to_shards"
                ) from None

    def chunks(self, start: int = 0, stop: int | None = None, batch_size: int = 4096) -> Iterator[Chunk]:
        stop = self.n if stop is None else min(int(stop), self.n)
        if stop <= start:
            return
        buf, done = [], int(start)
        for raw, f in self._records(int(start)):
            buf.append(_parse_python(raw, f))
            done += 1
            if len(buf) == batch_size or done >= stop:
                yield self._chunk(buf)
                buf = []
            if done >= stop:
                return
        if buf:
            yield self._chunk(buf)

    def _chunk(self, recs: list) -> Chunk:
        shapes = {r[0].shape for r in recs}
        if len(shapes) > 1:
            raise DataError(f"{self.spec}: shards mix stamp shapes {sorted(shapes)}; rewrite them with one shape")
        labels = np.array([r[2] for r in recs])
        has = self.manifest["has_labels"] if self.manifest else bool((labels >= 0).any())
        names = sorted(recs[0][3])
        return Chunk(
            raw=np.stack([r[0] for r in recs]).astype(np.float32),
            ids=np.array([r[1] for r in recs]),
            labels=labels if has else None,
            columns={k: np.array([r[3][k] for r in recs]) for k in names},
        )

    def dataset(self):
        """Single raw stamps parsed natively by ``tf.data`` (:func:`shard_dataset`)."""
        return shard_dataset(self.spec)


def shard_dataset(spec: str | os.PathLike, with_ids: bool = False):
    """A ``tf.data.Dataset`` of single stamps (or ``(id, stamp)``) parsed natively from shards.

    Reads files in order with parallel reads; nothing is loaded into memory up front.
    """
    import tensorflow as tf

    files, manifest = shard_files(spec)
    if manifest is None:
        img, *_ = _parse_python(next(iter(tf.data.TFRecordDataset(files[0]).take(1).as_numpy_iterator())), files[0])
        shape = list(img.shape)
    else:
        shape = manifest["shape"]
    spec_ = {"image": tf.io.FixedLenFeature([], tf.string), "id": tf.io.FixedLenFeature([], tf.string)}

    def parse(raw):
        ex = tf.io.parse_single_example(raw, spec_)
        img = tf.reshape(tf.io.decode_raw(ex["image"], tf.float32, little_endian=True), shape)
        return (ex["id"], img) if with_ids else img

    ds = tf.data.TFRecordDataset(files, num_parallel_reads=None)
    return ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
