"""Training, scoring, fine-tuning and export of the supervised classifiers (seed 003).

The classifiers of :mod:`astrovader.classifiers` are trained *with labels* (unlike VaDE,
which never sees one). This module holds what a run of one needs:

* :func:`held_out_split` -- the stratified train / held-out split of a run (deterministic
  for a seed, so ``evaluate`` scores exactly the objects training never saw);
* :func:`fit_classifier` -- build, compile and fit a classifier (``model.ensemble`` > 1
  trains that many members from consecutive seeds and averages them: CAPE) under a
  ``tf.distribute`` strategy;
* :func:`fine_tune` -- continue training a trained model on a few labelled examples of
  another domain (the talk's domain-adaptation point);
* :func:`classification_scores` -- accuracy, precision, recall, F1 (binary, positive class
  1), macro F1, the confusion matrix and, for two classes, the DET curve (false-positive vs
  false-negative rate over thresholds, as in the Deep-HiTS talk); :func:`group_accuracy`
  gives the accuracy per sub-type;
* :func:`classifier_inputs` -- stamps or sequences of a run's data as model inputs;
* :func:`export_classifier` -- a SavedModel with a ``classify`` signature.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from astrovader.errors import AstrovaderError, DataError

__all__ = ["held_out_split", "fit_classifier", "augmented_batches", "fine_tune", "classification_scores",
           "group_accuracy", "det_curve", "classifier_inputs", "take", "export_classifier", "load_classifier_data",
           "fit_classifier_run", "evaluate_classifier_run", "predict_classifier_run"]


def held_out_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified indices ``(train, held_out)``: ``fraction`` of each class is held out.

    Both index arrays are sorted. ``fraction <= 0`` holds out nothing.
    """
    labels = np.asarray(labels)
    if fraction <= 0:
        return np.arange(len(labels)), np.zeros(0, np.int64)
    rng = np.random.default_rng([int(seed), 13])
    held = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        held.append(idx[: max(1, int(round(fraction * len(idx))))])
    held = np.sort(np.concatenate(held))
    return np.setdiff1d(np.arange(len(labels)), held), held


def take(inputs: Any, index: Any) -> Any:
    """Rows of stamps ``(N, ...)`` or of an RCNN input dict."""
    if isinstance(inputs, dict):
        return {k: v[index] for k, v in inputs.items()}
    return inputs[index]


def _n(inputs: Any) -> int:
    return len(next(iter(inputs.values()))) if isinstance(inputs, dict) else len(inputs)


def load_classifier_data(cfg_data, architecture: str):
    """The labelled objects of a classifier run: a StampSet (deep_hits) or SequenceSet (rcnn)."""
    if architecture == "rcnn":
        from astrovader.data.sequences import load_sequences

        return load_sequences(cfg_data.spec, n=cfg_data.n, seed=cfg_data.seed, cache_dir=cfg_data.cache_dir)
    from astrovader.data import load

    return load(cfg_data)


def classifier_inputs(data, cfg_model, scaling: str = "asinh") -> Any:
    """Model inputs for a loaded StampSet (conformed to the input shape) or SequenceSet (padded/cut to T)."""
    if cfg_model.architecture == "rcnn":
        from astrovader.classifiers import sequence_inputs

        inputs = sequence_inputs(data, scaling)
        if cfg_model.input_shape is not None:
            t, h, w, c = cfg_model.input_shape
            got = inputs["images"].shape[1:]
            if tuple(got[1:]) != (h, w, c):
                raise DataError(f"{data.source}: frames of shape {tuple(got[1:])}; the model expects {(h, w, c)}")
            if t is not None and got[0] != t:  # pad or cut to the model's sequence length
                pad = max(0, t - got[0])
                inputs = {k: np.pad(v[:, :t], [(0, 0), (0, pad)] + [(0, 0)] * (v.ndim - 2)) for k, v in inputs.items()}
        return inputs
    from astrovader.runs import conform

    x = np.asarray(data.images, np.float32)
    return x if cfg_model.input_shape is None else conform(x, cfg_model.input_shape, source=data.source)


def augmented_batches(images: np.ndarray, labels: np.ndarray, cfg_data, batch_size: int, seed: int = 0,
                      replicas: int = 1):
    """Shuffled ``(stamps, labels)`` batches with the training augmentation of ``cfg_data``
    (``flips``, ``rot90``, ``shift``, ``rotate``; see
    :func:`astrovader.data.pipeline.make_dataset`), each label staying with its stamp."""
    import tensorflow as tf

    from astrovader.data.pipeline import make_dataset

    lab = tf.constant(np.asarray(labels, np.int64))
    ds = make_dataset(np.asarray(images, np.float32), batch_size, seed=seed, augment_flips=bool(cfg_data.flips),
                      augment_rot90=bool(cfg_data.rot90), augment_shift=cfg_data.shift_pixels(np.shape(images)[1:]),
                      augment_rotate=float(cfg_data.rotate), replicas=replicas, with_index=True)
    return ds.map(lambda d: (d["x"], tf.gather(lab, d["index"])))


def fit_classifier(cfg, inputs: Any, labels: np.ndarray, *, strategy=None, callbacks: Sequence = (),
                   verbose: Any = 0, epochs: int | None = None):
    """Build, compile and train the classifier of ``cfg`` (a RunConfig) on labelled inputs.

    ``cfg.model.input_shape`` is filled from the inputs when empty. Stamp (not sequence)
    inputs are augmented as ``cfg.data`` says (:func:`augmented_batches`). With
    ``cfg.model.ensemble`` = M > 1, M members are trained from seeds ``seed .. seed + M - 1``
    and combined by :func:`~astrovader.classifiers.build_ensemble` (CAPE).

    Returns:
        ``(model, histories)``: the (ensemble) model and one Keras History per member.
    """
    import keras
    import tensorflow as tf

    from astrovader.classifiers import build_classifier, build_ensemble, compile_classifier
    from astrovader.training import learning_rate

    strategy = strategy or tf.distribute.get_strategy()
    labels = np.asarray(labels, np.int64)
    if labels.min() < 0 or labels.max() >= cfg.model.n_classes:
        raise DataError(f"labels span {labels.min()}..{labels.max()}; model.n_classes={cfg.model.n_classes} "
                        "needs labels 0..n_classes-1")
    if cfg.model.input_shape is None:
        first = inputs["images"] if isinstance(inputs, dict) else inputs
        cfg.model.input_shape = tuple(int(s) for s in first.shape[1:])
    t = cfg.train
    replicas = strategy.num_replicas_in_sync
    batch = min(int(t.batch_size), _n(inputs))
    batch = max(replicas, batch - batch % replicas)
    d = cfg.data
    augment = bool(d.flips or d.rot90 or d.shift or d.shift_fraction or d.rotate) and not isinstance(inputs, dict)
    members, histories = [], []
    for i in range(max(1, int(cfg.model.ensemble))):
        keras.utils.set_random_seed(int(t.seed) + i)
        with strategy.scope():
            model = compile_classifier(build_classifier(cfg.model), learning_rate(t, -(-_n(inputs) // batch)),
                                       t.clipnorm)
        fit_args = (dict(x=augmented_batches(inputs, labels, d, batch, int(t.seed) + i, replicas),
                         shuffle=False) if augment else dict(x=inputs, y=labels, batch_size=batch, shuffle=True))
        hist = model.fit(**fit_args, epochs=int(epochs or t.total_epochs()),
                         callbacks=list(callbacks) if i == 0 else [], verbose=verbose)
        members.append(model)
        histories.append(hist)
    if len(members) == 1:
        return members[0], histories
    with strategy.scope():
        model = build_ensemble(members)
    return model, histories


def fine_tune(model, inputs: Any, labels: np.ndarray, *, epochs: int = 30, learning_rate: float = 3e-4,
              batch_size: int = 16, seed: int = 0, verbose: Any = 0):
    """Continue training ``model`` on a few labelled examples (e.g. 1% of a new survey's objects).

    All weights are updated with Adam at ``learning_rate``; returns the Keras History.
    """
    import keras

    from astrovader.classifiers import compile_classifier

    keras.utils.set_random_seed(int(seed))
    compile_classifier(model, learning_rate)
    return model.fit(inputs, np.asarray(labels, np.int64), batch_size=min(batch_size, _n(inputs)), epochs=epochs,
                     shuffle=True, verbose=verbose)


def det_curve(y: np.ndarray, score: np.ndarray) -> dict:
    """The DET curve of a binary classifier: false-positive and false-negative rate per threshold.

    Args:
        y: true labels (1 = positive / real).
        score: probability of the positive class.

    Returns:
        ``{"threshold": [...], "fpr": [...], "fnr": [...]}`` (scikit-learn's ``det_curve``).
    """
    from sklearn.metrics import det_curve as _det

    fpr, fnr, thr = _det(np.asarray(y), np.asarray(score))
    return {"threshold": thr.tolist(), "fpr": fpr.tolist(), "fnr": fnr.tolist()}


def classification_scores(y: np.ndarray, proba: np.ndarray, label_names: Sequence[str] | None = None) -> dict:
    """Scores of class probabilities ``proba`` ``(N, K)`` against labels ``y``.

    Returns:
        ``accuracy``, ``macro_f1``, ``confusion`` (rows: true class, columns: predicted),
        ``per_class`` (precision/recall/F1/support per class) and, for K = 2, ``precision``,
        ``recall``, ``f1`` of class 1 and the ``det`` curve.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    y = np.asarray(y, np.int64)
    proba = np.asarray(proba)
    k = proba.shape[1]
    pred = proba.argmax(1)
    labels = list(range(k))
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    names = list(label_names) if label_names is not None else [str(i) for i in labels]
    out = {
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
        "confusion": confusion_matrix(y, pred, labels=labels).tolist(),
        "label_names": names,
        "per_class": {names[i]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                                 "support": int(s[i])} for i in labels},
    }
    if k == 2:
        out.update(precision=float(p[1]), recall=float(r[1]), f1=float(f[1]))
        if len(np.unique(y)) == 2:
            out["det"] = det_curve(y, proba[:, 1])
    return out


def group_accuracy(y: np.ndarray, pred: np.ndarray, groups: np.ndarray) -> dict:
    """Accuracy and count per value of ``groups`` (e.g. the transients' ``subtype`` column)."""
    y, pred, groups = np.asarray(y), np.asarray(pred), np.asarray(groups).astype(str)
    return {g: {"accuracy": float((y[groups == g] == pred[groups == g]).mean()), "n": int((groups == g).sum())}
            for g in sorted(set(groups))}


def export_classifier(model, out_dir: str | os.PathLike, overwrite: bool = False) -> list[str]:
    """SavedModel of a classifier with the signature ``classify`` -> ``{"probabilities", "label"}``.

    Deep-HiTS: ``classify(x)`` with ``x`` ``(n, H, W, C)`` float32. RCNN: ``classify(images,
    dt, mask)`` (see :func:`~astrovader.classifiers.build_rcnn`). Loadable with
    ``tf.saved_model.load`` without astrovader.
    """
    import keras
    import tensorflow as tf

    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise AstrovaderError(f"{out_dir}: already exists and is not empty; choose another --out or pass --overwrite")
    archive = keras.export.ExportArchive()
    archive.track(model)
    if isinstance(model.input, dict):
        specs = {k: tf.TensorSpec((None, *v.shape[1:]), tf.float32, name=k) for k, v in model.input.items()}

        def classify(images, dt, mask):
            p = model({"images": images, "dt": dt, "mask": mask}, training=False)
            return {"probabilities": p, "label": tf.argmax(p, axis=-1)}

        archive.add_endpoint("classify", classify, input_signature=[specs["images"], specs["dt"], specs["mask"]])
    else:
        spec = tf.TensorSpec((None, *model.input.shape[1:]), tf.float32, name="x")

        def classify(x):
            p = model(x, training=False)
            return {"probabilities": p, "label": tf.argmax(p, axis=-1)}

        archive.add_endpoint("classify", classify, input_signature=[spec])
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    with contextlib.redirect_stdout(None):
        archive.write_out(str(tmp), verbose=False)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return ["classify"]


# --------------------------------------------------------------------------- runs (train / evaluate / predict)


def _labels(data) -> np.ndarray:
    y = getattr(data, "labels", None)
    if y is None or len(y) == 0 or (np.asarray(y) < 0).all():
        raise DataError(f"{data.source or 'data'}: the classifiers are trained and scored with labels, and these "
                        "objects have none; give labelled data (class sub-folders, a label column, 'labels' arrays)")
    return np.asarray(y, np.int64)


def fit_classifier_run(cfg, run, *, strategy=None, verbose: Any = 2, data=None):
    """Train the classifier of ``cfg`` into the locked run directory ``run`` (``astrovader train``).

    Loads the labelled objects (or uses ``data``), holds out ``train.validation_fraction`` of
    each class (:func:`held_out_split` with ``train.seed``; ``evaluate`` scores those), trains
    with ``history.csv``, TensorBoard logs and ``BackupAndRestore`` checkpoints (an
    interrupted run resumes at its last finished epoch; with an ensemble, the first member
    is checkpointed) and writes ``model.keras``.

    Returns:
        ``(model, data)``.
    """
    import keras

    from astrovader.config import save_config

    log = logging.getLogger("astrovader")
    if data is None:
        data = load_classifier_data(cfg.data, cfg.model.architecture)
    y = _labels(data)
    inputs = classifier_inputs(data, cfg.model, cfg.data.scaling)
    if cfg.model.input_shape is None:
        first = inputs["images"] if isinstance(inputs, dict) else inputs
        cfg.model.input_shape = tuple(int(s) for s in first.shape[1:])
        log.info(f"building the network for the data's shape {cfg.model.input_shape}")
    tr, te = held_out_split(y, float(cfg.train.validation_fraction), int(cfg.train.seed))
    if len(tr) < cfg.train.batch_size:
        log.info(f"only {len(tr)} training objects: batch size lowered from {cfg.train.batch_size} to {len(tr)}")
        cfg.train.batch_size = len(tr)
    save_config(cfg, run.config)
    callbacks = [keras.callbacks.CSVLogger(str(run.history), append=True),
                 keras.callbacks.BackupAndRestore(str(run.backup), save_freq="epoch", delete_checkpoint=True),
                 keras.callbacks.TensorBoard(log_dir=str(run.logs), write_graph=False)]
    log.info(f"training {cfg.model.architecture} on {len(tr)} labelled objects ({len(te)} held out for "
             f"evaluate); {cfg.train.total_epochs()} epochs" +
             (f", ensemble of {cfg.model.ensemble}" if cfg.model.ensemble > 1 else ""))
    model, _ = fit_classifier(cfg, take(inputs, tr), y[tr], strategy=strategy, callbacks=callbacks, verbose=verbose)
    model.save(run.model_path)
    run.model = model
    return model, data


def _plots(figures: Path, scores: dict) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures.mkdir(parents=True, exist_ok=True)
    out = {}
    fig, ax = plt.subplots(figsize=(4.5, 4))
    cm = np.asarray(scores["confusion"])
    ax.imshow(cm / np.maximum(cm.sum(1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
    names = scores["label_names"]
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    out["confusion"] = figures / "confusion_matrix.png"
    fig.savefig(out["confusion"], dpi=110)
    plt.close(fig)
    if scores.get("det"):
        fig, ax = plt.subplots(figsize=(4.5, 4))
        d = scores["det"]
        ax.loglog(np.maximum(d["fpr"], 1e-4), np.maximum(d["fnr"], 1e-4))
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("false negative rate")
        ax.set_title("DET curve")
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        out["det"] = figures / "det_curve.png"
        fig.savefig(out["det"], dpi=110)
        plt.close(fig)
    return out


def evaluate_classifier_run(run, data: str | None = None, n: int | None = None, *, data_set=None) -> dict:
    """Score a classifier run; write ``metrics.json``, ``figures/`` and ``report.html`` into it.

    Without ``data`` the run's own objects are loaded and only its held-out part is scored
    (``metrics["split"] == "held-out"``); other data are scored whole. Scores: see
    :func:`classification_scores`, plus the accuracy per ``subtype`` when the data have that
    column (``builtin:transients``). The caller holds the run's lock.
    """
    import html
    import json

    from astrovader.evaluation import to_jsonable
    from astrovader.runs import data_config

    cfg, model = run.cfg, run.model
    own = data is None and data_set is None
    if data_set is None:
        data_set = load_classifier_data(data_config(cfg.data, spec=data, n=n), cfg.model.architecture)
    y = _labels(data_set)
    inputs = classifier_inputs(data_set, cfg.model, cfg.data.scaling)
    idx = np.arange(len(y))
    if own and cfg.train.validation_fraction > 0:
        idx = held_out_split(y, float(cfg.train.validation_fraction), int(cfg.train.seed))[1]
    from astrovader.classifiers import predict_proba

    proba = predict_proba(model, take(inputs, idx))
    s = classification_scores(y[idx], proba, data_set.label_names)
    scores = {k: s[k] for k in ("accuracy", "precision", "recall", "f1", "macro_f1") if k in s}
    metrics = {"run": str(run.path), "data": data_set.source or cfg.data.spec, "n_objects": int(len(idx)),
               "split": "held-out" if own and cfg.train.validation_fraction > 0 else "all",
               "scores": scores, "confusion": s["confusion"], "label_names": s["label_names"],
               "per_class": s["per_class"]}
    if "det" in s:
        metrics["det"] = s["det"]
    cols = getattr(data_set, "columns", {}) or {}
    if "subtype" in cols:
        metrics["subtype_accuracy"] = group_accuracy(y[idx], proba.argmax(1), np.asarray(cols["subtype"])[idx])
    run.metrics.write_text(json.dumps(to_jsonable(metrics), indent=1))
    figs = _plots(run.figures, s)
    rows = "".join(f"<tr><td>{k}</td><td>{v:.4f}</td></tr>" for k, v in scores.items())
    sub = "".join(f"<tr><td>{html.escape(k)}</td><td>{v['accuracy']:.4f}</td><td>{v['n']}</td></tr>"
                  for k, v in metrics.get("subtype_accuracy", {}).items())
    imgs = "".join(f'<img src="figures/{p.name}" alt="{k}">' for k, p in figs.items())
    run.report.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(cfg.name)}</title></head><body>"
        f"<h1>{html.escape(cfg.name)} ({cfg.model.architecture}) on {html.escape(metrics['data'])}</h1>"
        f"<p>{metrics['n_objects']} objects ({metrics['split']}).</p><table border=1>{rows}</table>"
        + (f"<h2>Accuracy per subtype</h2><table border=1><tr><th>subtype</th><th>accuracy</th><th>n</th></tr>"
           f"{sub}</table>" if sub else "") + f"<h2>Figures</h2>{imgs}</body></html>")
    return metrics


def predict_classifier_run(run, data: str, out: str | os.PathLike) -> int:
    """Write per-object class probabilities and labels of ``data`` to ``out`` (``.csv`` or ``.npz``)."""
    from astrovader.classifiers import predict_proba
    from astrovader.runs import data_config

    cfg, model = run.cfg, run.model
    data_set = load_classifier_data(data_config(cfg.data, spec=data), cfg.model.architecture)
    proba = predict_proba(model, classifier_inputs(data_set, cfg.model, cfg.data.scaling))
    out = Path(out)
    ids = np.asarray(data_set.ids).astype(str)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    if out.suffix == ".npz":
        with tmp.open("wb") as f:
            np.savez(f, id=ids, label=proba.argmax(1), probabilities=proba)
    else:
        import csv

        with tmp.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "label"] + [f"p_{i}" for i in range(proba.shape[1])])
            for i, p in zip(ids, proba):
                w.writerow([i, int(p.argmax())] + [f"{v:.6g}" for v in p])
    os.replace(tmp, out)
    return len(ids)
