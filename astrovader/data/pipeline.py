"""Loading, streaming and ``tf.data`` input pipelines.

* :func:`load` reads a whole input (path or ``builtin:NAME``) into a preprocessed
  :class:`~astrovader.data.StampSet`.
* :func:`iter_batches` streams ``(ids, images)`` batches in order from any input, starting at
  a stamp offset, so prediction over catalogues larger than memory can resume.
* :func:`make_dataset` builds the training ``tf.data.Dataset``: cache -> shuffle -> batch
  (global batch size) -> vectorised random flips / 90-degree rotations -> prefetch.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Iterator

import numpy as np

from astrovader.config import DataConfig
from astrovader.data.preprocessing import fit_stamp, preprocess as _preprocess
from astrovader.data.readers import open_source
from astrovader.data.source import Source
from astrovader.data.stampset import StampSet
from astrovader.errors import DataError

__all__ = ["load", "iter_batches", "count", "make_dataset", "as_config"]


def as_config(spec_or_cfg: Any, **overrides: Any) -> DataConfig:
    """A :class:`DataConfig` from a spec string, path, dict or DataConfig (``None`` overrides ignored)."""
    if isinstance(spec_or_cfg, DataConfig):
        cfg = dataclasses.replace(spec_or_cfg)
    elif isinstance(spec_or_cfg, dict):
        cfg = DataConfig(**spec_or_cfg)
    elif isinstance(spec_or_cfg, (str, os.PathLike)):
        cfg = DataConfig(spec=str(spec_or_cfg))
    else:
        raise DataError(f"data spec {spec_or_cfg!r}: give a path, 'builtin:NAME' or a DataConfig")
    for k, v in overrides.items():
        if v is not None:
            setattr(cfg, k, v)
    return cfg


def _stack(arrays: Any, ids: np.ndarray, cfg: DataConfig, source: str) -> tuple[np.ndarray, bool]:
    """Stack per-file stamps; mixed shapes are reconciled only by data.grayscale/crop/resize."""
    if isinstance(arrays, np.ndarray):
        return arrays, False
    shapes = [a.shape for a in arrays]
    if len(set(shapes)) <= 1:
        return (np.stack(arrays) if arrays else np.zeros((0, 1, 1, 1), np.float32)), False
    if cfg.resize is not None or cfg.crop is not None or cfg.grayscale:
        fitted = [fit_stamp(a, cfg) for a in arrays]
        shapes2 = [a.shape for a in fitted]
        if len(set(shapes2)) == 1:
            return np.stack(fitted), True
        shapes = shapes2
    first = shapes[0]
    j = next(i for i, s in enumerate(shapes) if s != first)
    raise DataError(
        f"{source}: stamp {ids[j]!s} has shape {shapes[j]} but {ids[0]!s} has {first}; "
        "set data.resize (and data.grayscale for mixed bands) or give stamps of one shape"
    )


def _finish(s: StampSet, cfg: DataConfig, shaped: bool, do_preprocess: bool) -> StampSet:
    if not do_preprocess:
        return s
    pcfg = dataclasses.replace(cfg, crop=None, resize=None, grayscale=False) if shaped else cfg
    images, keep = _preprocess(s.images, pcfg, ids=s.ids, source=s.source, return_keep=True)
    if not keep.all():
        s = s.subset(keep)
        s.meta["dropped_nonfinite"] = int((~keep).sum())
    s.images = images
    return s


def _read(src: Source, cfg: DataConfig, start: int, stop: int, batch_size: int,
          do_preprocess: bool) -> Iterator[StampSet]:
    """Chunks of ``src`` (stamps ``start:stop``) as shaped and preprocessed StampSets."""
    for c in src.chunks(start, stop, batch_size):
        images, shaped = _stack(c.raw, c.ids, cfg, src.name)
        s = StampSet(images=images, labels=c.labels, ids=c.ids, label_names=src.label_names,
                     columns=c.columns, source=src.name)
        yield _finish(s, cfg, shaped, do_preprocess)


def _builtin(cfg: DataConfig) -> StampSet:
    from astrovader.data.builtin import load_builtin

    return load_builtin(cfg.spec.split(":", 1)[1], n=cfg.n, seed=cfg.seed, cache_dir=cfg.cache_dir)


def load(
    spec_or_cfg: Any,
    n: int | None = None,
    *,
    seed: int | None = None,
    cache_dir: str | None = None,
    label_column: str | None = None,
    preprocess: bool = True,
) -> StampSet:
    """Read stamps from a path or ``builtin:NAME`` and preprocess them.

    Args:
        spec_or_cfg: a path, ``"builtin:NAME"`` or a :class:`~astrovader.config.DataConfig`
            (whose preprocessing fields are applied; a plain path uses the defaults:
            no scaling, NaN/Inf is an error).
        n: read only the first ``n`` stamps (built-in sets are generated with ``n``).
        seed: built-in generation seed (overrides the config's).
        cache_dir: built-in cache directory (overrides the config's).
        label_column: catalog label column(s) (overrides the config's).
        preprocess: apply the config's preprocessing; ``False`` returns raw pixels (for
            ``astrovader data info`` on files with NaNs).

    Returns:
        A :class:`StampSet` with float32 ``(N, H, W, C)`` images.

    Raises:
        DataError: with a one-line message naming the file (and catalog line) and the fix.
    """
    cfg = as_config(spec_or_cfg, n=n, seed=seed, cache_dir=cache_dir, label_column=label_column)
    if cfg.n is not None and int(cfg.n) < 1:
        raise DataError(f"data.n={cfg.n}: give a positive number of stamps or leave it empty")
    if cfg.spec.startswith("builtin:"):
        return _finish(_builtin(cfg), cfg, False, preprocess)
    src = open_source(cfg.spec, cfg.label_column)
    hi = src.n if cfg.n is None else min(int(cfg.n), src.n)
    sets = list(_read(src, cfg, 0, hi, max(hi, 1), preprocess)) if hi else []
    if not sets:
        raise DataError(f"{src.name}: no stamps found; check the input")
    return sets[0]


def iter_batches(
    spec_or_cfg: Any,
    batch_size: int,
    start: int = 0,
    *,
    preprocess: bool = True,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream ``(ids, images)`` batches in input order, beginning at stamp ``start``.

    Only one batch of raw stamps is in memory at a time for files, catalogs, FITS cubes,
    ``.npy`` (memory-mapped), HDF5 and TFRecord shards; built-in sets are generated/loaded
    whole. ``start`` counts *input* stamps, so with ``nan_policy: drop`` a batch may be
    shorter than ``batch_size``; resume with ``start = start + stamps consumed``.

    Args:
        spec_or_cfg: a path, ``builtin:NAME`` or DataConfig (preprocessing applied per batch).
        batch_size: stamps per batch.
        start: index of the first input stamp to yield.
        preprocess: apply the config's preprocessing.

    Yields:
        ``(ids, images)``: str array ``(b,)`` and float32 ``(b, H, W, C)``.
    """
    cfg = as_config(spec_or_cfg)
    batch_size, start = int(batch_size), int(start)
    if batch_size < 1 or start < 0:
        raise DataError(f"batch_size={batch_size}, start={start}: give batch_size >= 1 and start >= 0")
    limit = None if cfg.n is None else int(cfg.n)
    if cfg.spec.startswith("builtin:"):
        s = _builtin(cfg)
        for lo in range(start, len(s), batch_size):
            chunk = _finish(s.subset(slice(lo, lo + batch_size)), cfg, False, preprocess)
            yield chunk.ids, chunk.images
        return
    src = open_source(cfg.spec, cfg.label_column)
    stop = src.n if limit is None else min(limit, src.n)
    for chunk in _read(src, cfg, start, stop, batch_size, preprocess):
        yield chunk.ids, chunk.images


def count(spec_or_cfg: Any) -> int:
    """Number of input stamps that :func:`iter_batches` reads (before ``nan_policy: drop``)."""
    cfg = as_config(spec_or_cfg)
    limit = None if cfg.n is None else int(cfg.n)
    n = len(_builtin(cfg)) if cfg.spec.startswith("builtin:") else open_source(cfg.spec, cfg.label_column).n
    return n if limit is None else min(limit, n)


def _augment(images, seeds, flips: bool, rot90: bool):
    """Random per-image flips and 90-degree rotations of a batch (stateless, seeded).

    Every combination is an element of the square's symmetry group, written as an optional
    transpose followed by optional up-down / left-right reversals: rot90 by k is
    (k=1: T, UD), (k=2: UD, LR), (k=3: T, LR); flips toggle UD / LR after it. Three
    ``tf.where`` selections per batch, no per-image Python work.
    """
    import tensorflow as tf

    b = tf.shape(images)[0]
    u = tf.random.stateless_uniform([b, 3], seed=tf.stack([seeds, tf.constant(0, tf.int64)]))
    zeros = tf.zeros([b], tf.bool)
    transpose, ud, lr = zeros, zeros, zeros
    if rot90:
        k = tf.cast(tf.floor(u[:, 0] * 4.0), tf.int32)
        transpose = tf.logical_or(tf.equal(k, 1), tf.equal(k, 3))
        ud = tf.logical_or(tf.equal(k, 1), tf.equal(k, 2))
        lr = tf.logical_or(tf.equal(k, 2), tf.equal(k, 3))
    if flips:
        ud = tf.math.logical_xor(ud, u[:, 1] < 0.5)
        lr = tf.math.logical_xor(lr, u[:, 2] < 0.5)

    def pick(mask, a, c):
        return tf.where(tf.reshape(mask, [-1, 1, 1, 1]), a, c)

    if rot90:
        images = pick(transpose, tf.transpose(images, [0, 2, 1, 3]), images)
    images = pick(ud, tf.reverse(images, [1]), images)
    return pick(lr, tf.reverse(images, [2]), images)


def _affine(images, seeds, shift: float, degrees: float):
    """Random per-image rotation (up to ``degrees``) and shift (up to ``shift`` px), bilinear.

    The small affine jitter of DEC-DA (Guo et al. 2018: shifts of ~10% and rotations of
    10 degrees in autoencoder pretraining and clustering), which makes the learned codes
    of handwriting and of stamps with imperfect centring cluster by shape. Borders are
    filled by reflection so noisy backgrounds keep their texture.

    Mathematical details::

        output pixel (x, y) <- input at  R(-theta) [(x, y) - c - d] + c
        c = image centre, d ~ U(-shift, shift)^2, theta ~ U(-degrees, degrees)
    """
    import tensorflow as tf

    shape = tf.shape(images)
    b = shape[0]
    h, w = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    u = tf.random.stateless_uniform([b, 3], seed=tf.stack([seeds, tf.constant(1, tf.int64)]),
                                    minval=-1.0, maxval=1.0)
    theta = u[:, 0] * (degrees * np.pi / 180.0)
    dx, dy = u[:, 1] * shift, u[:, 2] * shift
    cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
    cos, sin = tf.cos(theta), tf.sin(theta)
    zeros = tf.zeros_like(cos)
    transforms = tf.stack([cos, sin, cx - cos * (cx + dx) - sin * (cy + dy),
                           -sin, cos, cy + sin * (cx + dx) - cos * (cy + dy), zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=shape[1:3], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="REFLECT")


def make_dataset(
    images: Any,
    batch_size: int,
    shuffle: bool = True,
    augment_flips: bool | None = None,
    augment_rot90: bool | None = None,
    augment_shift: float | None = None,
    augment_rotate: float | None = None,
    seed: int = 0,
    cache: bool | str = True,
    drop_remainder: bool = False,
    shuffle_buffer: int | None = None,
    replicas: int = 1,
    with_index: bool = False,
):
    """The training ``tf.data.Dataset`` (images only; labels are never used in training).

    Args:
        images: float32 ``(N, H, W, C)`` array, a :class:`StampSet`, or a path /
            ``builtin:NAME`` / DataConfig to stream (TFRecord shards are parsed natively;
            other inputs through :func:`iter_batches`), preprocessed per the config.
        batch_size: the *global* batch size (a ``tf.distribute`` strategy splits it).
        shuffle: reshuffle every epoch (deterministic for ``seed``).
        augment_flips: random horizontal/vertical flips (seed 004); ``None`` = the
            config's ``flips`` (False for arrays).
        augment_rot90: random multiples of 90-degree rotations (square stamps only);
            ``None`` = the config's ``rot90``.
        augment_shift: random sub-pixel shifts of up to this many pixels along each axis;
            ``None`` = the config's ``shift`` (or ``shift_fraction`` of the stamp side).
        augment_rotate: random rotations by up to this many degrees either way;
            ``None`` = the config's ``rotate``.
        seed: shuffle/augmentation seed.
        cache: ``True`` caches decoded stamps in memory, a string caches to that file,
            ``False`` disables (for streamed inputs larger than memory use a file or False).
        drop_remainder: drop the last short batch.
        shuffle_buffer: shuffle buffer size (default: all stamps for arrays, 10,000 for
            streamed inputs).
        replicas: number of ``tf.distribute`` replicas the batches are split over. With
            more than one, every batch is made divisible by it (the batch size is rounded
            down; per epoch fewer than ``replicas`` stamps of an array, or a streamed
            input's last short batch, are left out): an empty per-replica batch crashes
            TensorFlow's fused kernels and Keras builds its metrics from the first batch,
            which must split evenly.
        with_index: (arrays only) yield ``{"x": batch, "index": row numbers}`` so per-stamp
            training targets can be looked up (:mod:`astrovader.schedules` anchoring).

    Returns:
        A dataset of float32 batches ``(b, H, W, C)`` (or the dicts above), prefetched.
    """
    import tensorflow as tf

    cfg = None
    if isinstance(images, StampSet):
        images = images.images
    if isinstance(images, (str, os.PathLike, DataConfig, dict)):
        cfg = as_config(images)
        if cfg.spec.startswith("builtin:"):  # generated in memory anyway
            images = load(cfg).images
    if cfg is not None and not isinstance(images, np.ndarray):
        ds, shape = _stream_dataset(cfg)
        buffer = shuffle_buffer or 10_000
        shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    else:
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4 or len(images) == 0:
            raise DataError(f"make_dataset: expected non-empty stamps (N, H, W, C), got shape {images.shape}")
        shape = images.shape[1:]
        ds = tf.data.Dataset.from_tensor_slices(
            {"x": images, "index": np.arange(len(images), dtype=np.int64)} if with_index else images)
        buffer = shuffle_buffer or len(images)
        shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    flips = bool(cfg.flips if (augment_flips is None and cfg is not None) else augment_flips)
    rot = bool(cfg.rot90 if (augment_rot90 is None and cfg is not None) else augment_rot90)
    shift = float((cfg.shift_pixels(shape) if cfg is not None else 0.0) if augment_shift is None else augment_shift)
    angle = float((cfg.rotate if cfg is not None else 0.0) if augment_rotate is None else augment_rotate)
    if shift < 0 or angle < 0:
        raise DataError(f"augmentation shift={shift} / rotate={angle}: give non-negative maxima (pixels, degrees)")
    if rot and shape[0] != shape[1]:
        raise DataError(f"90-degree rotations need square stamps, got {shape[0]}x{shape[1]}; set rot90: false or crop")
    if int(batch_size) < 1:
        raise DataError(f"batch_size={batch_size}: give a positive batch size")
    if cache:
        ds = ds.cache(cache if isinstance(cache, str) else "")
    if shuffle:
        ds = ds.shuffle(int(buffer), seed=int(seed), reshuffle_each_iteration=True)
    if replicas > 1:
        if isinstance(images, np.ndarray):
            if len(images) < replicas:
                raise DataError(f"{len(images)} stamps cannot be split over {replicas} replicas: "
                                f"give at least {replicas}")
            ds = ds.take(len(images) // replicas * replicas)
        else:
            drop_remainder = True
        batch_size = max(replicas, int(batch_size) // replicas * replicas)
    ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    if with_index and cfg is not None and not isinstance(images, np.ndarray):
        raise DataError("with_index needs the stamps as an array")

    def on_images(fn):  # apply an image transform to the batch, or to the "x" of a dict batch
        return (lambda d, s: {**d, "x": fn(d["x"], s)}) if with_index else fn

    if flips or rot:
        rnd = tf.data.Dataset.random(seed=int(seed), rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, rnd)).map(
            on_images(lambda x, s: _augment(x, s, flips, rot)), num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True)
    if shift > 0 or angle > 0:
        rnd = tf.data.Dataset.random(seed=int(seed) + 1, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, rnd)).map(
            on_images(lambda x, s: _affine(x, s, shift, angle)), num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True)
    opts = tf.data.Options()
    opts.experimental_distribute.auto_shard_policy = shard_policy
    return ds.with_options(opts).prefetch(tf.data.AUTOTUNE)


def _stream_dataset(cfg: DataConfig):
    """Unbatched dataset of preprocessed stamps streamed from ``cfg.spec`` and the stamp shape."""
    import tensorflow as tf

    ids, first = next(iter_batches(dataclasses.replace(cfg, n=1, nan_policy="fill"), 1))
    shape = tuple(first.shape[1:])
    spec = cfg.spec
    native = None
    if not spec.startswith("builtin:") and cfg.n is None:
        native = open_source(spec, cfg.label_column).dataset()
    if native is not None:  # a format with its own tf.data reader (TFRecord shards): preprocess in the pipeline

        def prep(batch):
            return _preprocess(batch, cfg, source=spec)

        ds = native.batch(256).map(
            lambda b: tf.ensure_shape(tf.numpy_function(prep, [b], tf.float32), (None,) + shape),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        return ds.unbatch(), shape

    def gen():
        for _, batch in iter_batches(cfg, 256):
            yield from batch

    ds = tf.data.Dataset.from_generator(gen, output_signature=tf.TensorSpec(shape, tf.float32))
    return ds, shape
