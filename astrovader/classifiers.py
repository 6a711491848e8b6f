"""Supervised classifiers of seed 003: the Deep-HiTS real/bogus CNN and the RCNN sequence classifier.

* :func:`build_deep_hits` -- the rotation-invariant CNN of Cabrera-Vives et al. (2017) for
  21x21 difference stamps (C = 1, or 3 with science and template): the 4 rot90 copies of a
  stamp go through the same convolutions (:class:`~astrovader.layers.RotationStack`), their
  flattened features are averaged (:class:`~astrovader.layers.CyclicPooling`, the talk's
  best "Cyclic Avg. Pool" row) and dense layers end in a softmax over bogus/real. The
  predicted probabilities are exactly invariant to 90-degree rotations of the input.
* :func:`build_rcnn` -- the recurrent convolutional network of Carrasco-Davis et al. (2019):
  a CNN applied to every frame (``TimeDistributed``), its features concatenated with the
  time since the previous frame, an LSTM over the frames with padded frames masked out
  (:class:`FrameFeatures` carries the mask), softmax over the classes. With
  ``sequence_statistics`` (the ``rcnn`` preset) the LSTM also sees each frame's features
  minus the sequence mean, and the head also sees their masked mean, standard deviation,
  maximum and minimum (:class:`SequenceStatistics`).
* :func:`build_ensemble` -- CAPE (Cyclic Avg. Pool Ensemble): one model averaging the
  class probabilities of several trained members.
* :func:`build_classifier` builds either from a :class:`~astrovader.config.ModelConfig`
  (``model.architecture``: ``deep_hits`` or ``rcnn``); :func:`sequence_inputs` turns a
  :class:`~astrovader.data.sequences.SequenceSet` into the RCNN's input dict.

These are plain functional ``keras.Model`` objects compiled with cross-entropy (labels are
used here, unlike VaDE); they save/load as ``.keras`` files and train under any
``tf.distribute`` strategy with the stock ``fit``.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np
from keras import layers, ops

from astrovader.errors import ConfigError, DataError
from astrovader.layers import CyclicPooling, RotationStack

__all__ = ["CLASSIFIER_KINDS", "FrameFeatures", "SequenceStatistics", "build_deep_hits", "build_rcnn", "build_ensemble",
           "build_classifier", "sequence_inputs", "predict_proba", "compile_classifier", "is_classifier"]

CLASSIFIER_KINDS = ("deep_hits", "rcnn")


@keras.saving.register_keras_serializable(package="astrovader")
class FrameFeatures(layers.Layer):
    """Per-frame features for the RCNN's LSTM, with the frame mask attached.

    Call args:
        inputs: ``[h, dt, mask]``: CNN features ``(B, T, F)``, days since the previous frame
            ``(B, T)`` and the valid-frame mask ``(B, T)`` (1 = frame, 0 = padding).

    Returns ``(B, T, F + 1)``: the features and ``log1p(dt)``, zeroed on padded frames; the
    boolean mask is propagated (Keras masking) so the LSTM skips padded frames.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        h, dt, mask = inputs
        m = ops.cast(ops.expand_dims(mask, -1), h.dtype)
        t = ops.log1p(ops.maximum(ops.cast(ops.expand_dims(dt, -1), h.dtype), 0.0))
        return ops.concatenate([h, t], axis=-1) * m

    def compute_mask(self, inputs, previous_mask=None):
        return ops.cast(inputs[2], "bool")

    def compute_output_shape(self, input_shape):
        h = input_shape[0]
        return (*h[:-1], None if h[-1] is None else h[-1] + 1)


@keras.saving.register_keras_serializable(package="astrovader")
class SequenceStatistics(layers.Layer):
    """Masked statistics over time of per-frame features: what a light-curve feature set measures.

    Call args:
        inputs: ``[h, mask]``: per-frame features ``(B, T, F)`` and the valid-frame mask
            ``(B, T)`` (1 = frame, 0 = padding).

    Returns ``(stats, dev)``: ``stats`` ``(B, 4F)`` = the mean over valid frames, the standard
    deviation, and the maximum and minimum of the deviations from the mean; ``dev`` ``(B, T, F)``
    = each frame's deviation from the mean (0 on padding). A sequence without valid frames
    gets zeros.

    Why: the talk's baseline (seed 003, FATS + RF) classifies from amplitude, scatter and
    extremes of the light curve. An LSTM trained on a few thousand sequences does not learn
    those reliably (on ``builtin:sequences`` the plain RCNN confused every variable class
    with the non-variables); handing it the deviations and their statistics does.
    """

    def call(self, inputs):
        h, mask = inputs
        m = ops.cast(ops.expand_dims(mask, -1), h.dtype)
        n = ops.sum(m, axis=1)
        valid = ops.cast(n > 0, h.dtype)
        n = ops.maximum(n, 1.0)
        mean = ops.sum(h * m, axis=1) / n
        dev = (h - ops.expand_dims(mean, 1)) * m
        std = ops.sqrt(ops.sum(ops.square(dev), axis=1) / n + 1e-6) * valid
        far = 1e9 * (1.0 - m)  # padded frames never win the max / min
        hi = ops.max(dev - far, axis=1) * valid
        lo = ops.min(dev + far, axis=1) * valid
        return ops.concatenate([mean, std, hi, lo], axis=-1), dev

    def compute_output_shape(self, input_shape):
        h = input_shape[0]
        f = None if h[-1] is None else 4 * h[-1]
        return (h[0], f), tuple(h)


def _act(slope: float):
    return layers.LeakyReLU(negative_slope=slope) if slope else layers.ReLU()


def build_deep_hits(input_shape: Sequence[int] = (21, 21, 1), n_classes: int = 2,
                    filters: Sequence[int] = (32, 32, 64, 64, 64), dense_units: Sequence[int] = (64, 64),
                    dropout: float = 0.5, leaky_slope: float = 0.01, l2: float = 0.0, pad: int = 3,
                    rotation_invariant: bool = True, name: str = "deep_hits") -> keras.Model:
    """The Deep-HiTS rotation-invariant CNN (seed 003; Cabrera-Vives et al. 2017).

    Layout (stamp 21x21, ``pad`` 3): zero-pad to 27x27 -> [4 rot90 copies] -> conv 4x4
    ``filters[0]`` (valid, 24x24) -> conv 3x3 ``filters[1]`` -> max-pool 2 -> conv 3x3 x 3
    (``filters[2:]``) -> max-pool 2 -> flatten -> cyclic average pooling over the copies ->
    dense ``dense_units`` with dropout -> softmax over ``n_classes``.

    Args:
        input_shape: ``(H, W, C)``, square.
        n_classes: output classes (2: bogus = 0, real = 1).
        filters: conv filters; the first conv is 4x4 valid, the rest 3x3 same, with a 2x2
            max-pool after the 2nd and after the last conv.
        dense_units: dense layers after the pooling.
        dropout: dropout rate after each dense layer.
        leaky_slope: LeakyReLU slope (0 = ReLU, the talk's "Deep-Hits + ReLU" row).
        l2: L2 weight decay.
        pad: zero padding on each side before the convolutions.
        rotation_invariant: pool the 4 rot90 copies (False: one copy, a plain CNN).
    """
    h, w, c = (int(s) for s in input_shape)
    if rotation_invariant and h != w:
        raise DataError(f"stamps of shape {h}x{w}x{c}: the rotation-invariant Deep-HiTS CNN needs square stamps; "
                        f"crop them (data.crop: [{min(h, w)}, {min(h, w)}]) or set model.rotation_invariant: false")
    if len(filters) < 2:
        raise ConfigError(f"model.filters={list(filters)}: deep_hits needs at least 2 conv layers, e.g. [32, 64]")
    reg = keras.regularizers.L2(l2) if l2 else None
    x_in = keras.Input((h, w, c), name="x")
    x = layers.ZeroPadding2D(pad, name="pad")(x_in) if pad else x_in
    if rotation_invariant:
        x = RotationStack(name="rotations")(x)
    x = layers.Conv2D(filters[0], 4, padding="valid", kernel_regularizer=reg, name="conv1")(x)
    x = _act(leaky_slope)(x)
    for i, f in enumerate(filters[1:], start=2):
        x = layers.Conv2D(f, 3, padding="same", kernel_regularizer=reg, name=f"conv{i}")(x)
        x = _act(leaky_slope)(x)
        if i == 2 or i == len(filters):
            x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    if rotation_invariant:
        x = CyclicPooling(name="cyclic_avg_pool")(x)
    for i, u in enumerate(dense_units, start=1):
        x = layers.Dense(u, kernel_regularizer=reg, name=f"dense{i}")(x)
        x = _act(leaky_slope)(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"dropout{i}")(x)
    out = layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(x_in, out, name=name)


def build_rcnn(input_shape: Sequence[int] = (25, 21, 21, 1), n_classes: int = 7,
               filters: Sequence[int] = (16, 32), dense_units: Sequence[int] = (64,), lstm_units: int = 64,
               dropout: float = 0.3, leaky_slope: float = 0.0, l2: float = 0.0, sequence_statistics: bool = True,
               name: str = "rcnn") -> keras.Model:
    """The RCNN image-sequence classifier (seed 003; Carrasco-Davis et al. 2019).

    Inputs (a dict): ``images`` ``(B, T, H, W, C)``, ``dt`` ``(B, T)`` days since the previous
    frame, ``mask`` ``(B, T)`` 1 for real frames, 0 for padding. Every frame goes through the
    same CNN (3x3 convs with 2x2 max-pooling, flatten, dense ``dense_units``); the features
    and log(1 + dt) feed an LSTM of ``lstm_units`` that skips masked frames; its last state
    gives the softmax over ``n_classes``. Sequences of other lengths are padded or cut to ``T``
    (:func:`astrovader.supervised.classifier_inputs`).

    ``sequence_statistics`` (ours, not in seed 003): the LSTM receives each frame's features
    and their deviation from the sequence mean, and the softmax head sees the LSTM state
    together with the masked mean, scatter and extremes of the features
    (:class:`SequenceStatistics`) through a dense layer of ``lstm_units``. On
    ``builtin:sequences`` this lifts macro F1 from about 0.55 to above the light-curve random
    forest (benchmarks/RESULTS.md, ``classifiers_rcnn``). ``False`` builds the talk's plain RCNN.
    """
    if len(input_shape) != 4 or any(s is None for s in input_shape):
        raise ConfigError(f"model.input_shape={tuple(input_shape)}: the RCNN needs (T, H, W, C) with a fixed number of frames T")
    t, h, w, c = (int(s) for s in input_shape)
    reg = keras.regularizers.L2(l2) if l2 else None
    frame = keras.Input((h, w, c), name="frame")
    f = frame
    for i, nf in enumerate(filters, start=1):
        f = layers.Conv2D(nf, 3, padding="same", kernel_regularizer=reg, name=f"conv{i}")(f)
        f = _act(leaky_slope)(f)
        f = layers.MaxPooling2D(2, name=f"pool{i}")(f)
    f = layers.Flatten()(f)
    for i, u in enumerate(dense_units, start=1):
        f = layers.Dense(u, kernel_regularizer=reg, name=f"dense{i}")(f)
        f = _act(leaky_slope)(f)
    cnn = keras.Model(frame, f, name="frame_cnn")

    images = keras.Input((t, h, w, c), name="images")
    dt = keras.Input((t,), name="dt")
    mask = keras.Input((t,), name="mask")
    feats = layers.TimeDistributed(cnn, name="per_frame_cnn")(images)
    if sequence_statistics:
        stats, dev = SequenceStatistics(name="sequence_statistics")([feats, mask])
        feats = layers.Concatenate(name="features_and_deviations")([feats, dev])
    seq = FrameFeatures(name="frame_features")([feats, dt, mask])
    z = layers.LSTM(lstm_units, kernel_regularizer=reg, name="lstm")(seq)
    if sequence_statistics:
        z = layers.Concatenate(name="state_and_statistics")([z, stats])
        z = layers.Dense(lstm_units, kernel_regularizer=reg, name="head")(z)
        z = _act(leaky_slope)(z)
    if dropout:
        z = layers.Dropout(dropout, name="dropout")(z)
    out = layers.Dense(n_classes, activation="softmax", name="probabilities")(z)
    return keras.Model({"images": images, "dt": dt, "mask": mask}, out, name=name)


def build_ensemble(members: Sequence[keras.Model], name: str = "cape") -> keras.Model:
    """CAPE: one model whose output is the mean of the members' class probabilities.

    All members must take the same inputs (trained e.g. from different seeds).
    """
    members = list(members)
    if not members:
        raise ConfigError("an ensemble needs at least one member (model.ensemble >= 1)")
    if len(members) == 1:
        return members[0]
    first = members[0]
    if isinstance(first.input, dict):
        inputs = {k: keras.Input(v.shape[1:], name=k, dtype=v.dtype) for k, v in first.input.items()}
    else:
        inputs = keras.Input(first.input.shape[1:], name="x", dtype=first.input.dtype)
    for i, m in enumerate(members):
        m.name = f"member{i}"  # unique layer names inside the ensemble
    outs = [m(inputs) for m in members]
    return keras.Model(inputs, layers.Average(name="mean_probabilities")(outs), name=name)


def build_classifier(cfg) -> keras.Model:
    """The classifier named by ``cfg.architecture`` (a :class:`~astrovader.config.ModelConfig`), uncompiled."""
    if cfg.input_shape is None:
        raise ConfigError("model.input_shape is needed to build a classifier: set it, e.g. [21, 21, 1]")
    if cfg.architecture == "deep_hits":
        return build_deep_hits(cfg.input_shape, cfg.n_classes, cfg.filters, cfg.dense_units, cfg.dropout,
                               cfg.leaky_slope, cfg.l2, rotation_invariant=cfg.rotation_invariant)
    if cfg.architecture == "rcnn":
        return build_rcnn(cfg.input_shape, cfg.n_classes, cfg.filters, cfg.dense_units, cfg.lstm_units,
                          cfg.dropout, cfg.leaky_slope, cfg.l2, cfg.sequence_statistics)
    raise ConfigError(f"model.architecture={cfg.architecture!r} is not a classifier; "
                     f"choose one of {', '.join(CLASSIFIER_KINDS)}")


def compile_classifier(model: keras.Model, learning_rate: Any = 1e-3, clipnorm: float | None = None) -> keras.Model:
    """Compile with Adam (``learning_rate``: a number or a Keras schedule), sparse categorical
    cross-entropy and accuracy."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=clipnorm),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def is_classifier(model: Any) -> bool:
    """True for a Deep-HiTS / RCNN / CAPE model (its output is named ``probabilities`` or is an ensemble mean)."""
    names = {getattr(layer, "name", "") for layer in getattr(model, "layers", [])}
    return bool(names & {"probabilities", "mean_probabilities"})


def sequence_inputs(seqs, scaling: str = "asinh") -> dict:
    """The RCNN's input dict from a :class:`~astrovader.data.sequences.SequenceSet`."""
    from astrovader.data.sequences import scale_sequences, time_differences

    mask = np.asarray(seqs.mask, bool)
    images = scale_sequences(seqs.images, scaling) * mask[:, :, None, None, None]
    return {"images": images.astype(np.float32), "dt": time_differences(seqs.times, mask),
            "mask": mask.astype(np.float32)}


def predict_proba(model: keras.Model, inputs: Any, batch_size: int = 256) -> np.ndarray:
    """Class probabilities ``(N, n_classes)`` for stamps ``(N, H, W, C)`` or an RCNN input dict."""
    return np.asarray(model.predict(inputs, batch_size=batch_size, verbose=0), np.float32)
