"""Benchmarks of the supervised classifiers of seed 003 (Deep-HiTS real/bogus CNN, RCNN).

Experiments (``--experiments``; each writes ``benchmarks/results/classifiers_<name>.json``):

* ``deep_hits`` -- the ``deep-hits`` preset on ``builtin:transients``: one stratified
  held-out split (20%), one model per seed; accuracy, precision, recall, F1, accuracy per
  ``subtype`` and the DET curve on the held-out stamps, beside a HistGradientBoosting
  classifier on the raw pixels (same split) and CAPE, the average of the seeds' models.
* ``rcnn`` -- the ``rcnn`` preset on ``builtin:sequences`` (30% held out) beside a random
  forest on aperture-photometry light-curve features; then domain adaptation: each model is
  scored on ``builtin:sequences-shifted`` (other seeing, noise and gain) before and after
  fine-tuning on 1% of its objects (stratified), on the remaining 99%.

Labels train these supervised models; the held-out objects are never trained on and no
setting is chosen on them. ``--quick`` runs everything on tiny data for 1 epoch (a smoke
test; results are written to ``--results-dir``, by default a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

if __package__ in (None, ""):  # allow `python benchmarks/classifiers.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _common as C  # noqa: E402

__all__ = ["main", "EXPERIMENTS", "render"]


def _preset(name: str, args, **train):
    from astrovader.config import load_preset

    cfg = load_preset(name)
    if args.epochs:
        cfg.train.supervised_epochs = args.epochs
    for k, v in train.items():
        setattr(cfg.train, k, v)
    if args.width != 1.0:
        cfg.model.filters = [max(2, int(round(f * args.width))) for f in cfg.model.filters]
    return cfg


def thin_det(det: dict | None, points: int = 200) -> dict | None:
    """At most ``points`` roughly evenly spaced points of a DET curve (keeps the JSON small)."""
    if not det or len(det["fpr"]) <= points:
        return det
    idx = np.unique(np.linspace(0, len(det["fpr"]) - 1, points).round().astype(int))
    return {k: [v[i] for i in idx] for k, v in det.items()}


def _det_fields(scores: dict) -> dict:
    """The (thinned) DET curve and the false-negative rate at a false-positive rate <= 1%, from the full curve."""
    return {"det": thin_det(scores.get("det")), "fnr_at_fpr_1pct": _det_at(scores, 0.01)}


def run_deep_hits(args, log: Callable[[str], None]) -> dict[str, Any]:
    from astrovader.classifier_baselines import pixel_boosting
    from astrovader.classifiers import predict_proba
    from astrovader.config import DataConfig
    from astrovader.data import load
    from astrovader.supervised import classification_scores, fit_classifier, group_accuracy, held_out_split

    cfg = _preset("deep-hits", args)
    n = args.n_transients or cfg.data.n
    raw = load(DataConfig(spec="builtin:transients", n=n, seed=0))
    x = load(DataConfig(spec="builtin:transients", n=n, seed=0, scaling=cfg.data.scaling)).images
    y, sub = raw.labels, raw.columns["subtype"]
    tr, te = held_out_split(y, cfg.train.validation_fraction, 0)
    log(f"deep_hits: {len(tr)} training / {len(te)} held-out stamps, filters {cfg.model.filters}, "
        f"{cfg.train.supervised_epochs} epochs")
    runs, probas = [], []
    for seed in args.seeds:
        cfg.train.seed = cfg.model.seed = seed
        t0 = time.time()
        model, _ = fit_classifier(cfg, x[tr], y[tr], verbose=0)
        p = predict_proba(model, x[te])
        probas.append(p)
        s = classification_scores(y[te], p, raw.label_names)
        row = {"seed": seed, "method": "deep-hits", "train_seconds": time.time() - t0,
               **{k: s[k] for k in ("accuracy", "precision", "recall", "f1", "macro_f1", "confusion")},
               "subtype_accuracy": group_accuracy(y[te], p.argmax(1), sub[te]), **_det_fields(s)}
        runs.append(row)
        log(f"  seed {seed}: deep-hits accuracy {row['accuracy']:.4f} ({row['train_seconds']:.0f} s)")
        if args.no_hgb:
            continue
        t0 = time.time()
        pb = pixel_boosting(raw.images[tr], y[tr], raw.images[te], seed=seed)
        s = classification_scores(y[te], pb, raw.label_names)
        runs.append({"seed": seed, "method": "hgb-pixels", "train_seconds": time.time() - t0,
                     **{k: s[k] for k in ("accuracy", "precision", "recall", "f1", "macro_f1", "confusion")},
                     "subtype_accuracy": group_accuracy(y[te], pb.argmax(1), sub[te]), **_det_fields(s)})
        log(f"  seed {seed}: HGB pixels accuracy {s['accuracy']:.4f}")
    if args.no_hgb:  # HGB depends only on the stamps, the split and the seed: keep the rows measured before
        old = args.results_dir / "classifiers_deep_hits.json"
        old = json.loads(old.read_text()) if old.is_file() else {}
        kept = [r for r in old.get("runs", []) if r["method"] == "hgb-pixels" and r["seed"] in args.seeds
                and old["data"]["n"] == n]
        runs += kept
        log(f"  HGB: kept {len(kept)} rows of the existing result (--no-hgb)")
    if len(probas) > 1:  # CAPE: average of the seeds' models on the same held-out stamps
        p = np.mean(probas, axis=0)
        s = classification_scores(y[te], p, raw.label_names)
        runs.append({"seed": "all", "method": f"cape-{len(probas)}",
                     **{k: s[k] for k in ("accuracy", "precision", "recall", "f1", "macro_f1", "confusion")},
                     "subtype_accuracy": group_accuracy(y[te], p.argmax(1), sub[te]), **_det_fields(s)})
        log(f"  CAPE ({len(probas)} models): accuracy {s['accuracy']:.4f}")
    return {"experiment": "classifiers_deep_hits", "seeds": args.seeds, "config": cfg.to_dict(),
            "data": {"spec": "builtin:transients", "n": n, "n_train": len(tr), "n_held_out": len(te),
                     "class_counts": np.bincount(y).tolist()},
            "targets": {"accuracy_mean": 0.985}, "runs": runs}


def run_rcnn(args, log: Callable[[str], None]) -> dict[str, Any]:
    from astrovader.classifier_baselines import light_curve_features, light_curve_forest
    from astrovader.classifiers import predict_proba, sequence_inputs
    from astrovader.data.sequences import load_sequences
    from astrovader.supervised import classification_scores, fine_tune, fit_classifier, held_out_split, take

    cfg = _preset("rcnn", args)
    seqs = load_sequences("builtin:sequences", n=args.n_sequences, seed=0, progress=False)
    shifted = load_sequences("builtin:sequences-shifted", n=args.n_shifted, seed=1, progress=False)
    y, ys = seqs.labels, shifted.labels
    inputs, inputs_s = sequence_inputs(seqs, cfg.data.scaling), sequence_inputs(shifted, cfg.data.scaling)
    tr, te = held_out_split(y, cfg.train.validation_fraction, 0)
    rest, ft = held_out_split(ys, args.label_fraction, 0)  # ft: the 1% labelled examples of the new survey
    feats = light_curve_features(seqs.images, seqs.times, seqs.mask)
    feats_s = light_curve_features(shifted.images, shifted.times, shifted.mask)
    log(f"rcnn: {len(tr)} training / {len(te)} held-out sequences; shifted set: {len(ft)} labelled for "
        f"fine-tuning, {len(rest)} scored; {cfg.train.supervised_epochs} epochs")
    runs = []
    keys = ("accuracy", "macro_f1", "confusion", "per_class")

    def payload(rows):
        return {"experiment": "classifiers_rcnn", "seeds": [r["seed"] for r in rows if r["method"] == "rcnn"],
                "config": cfg.to_dict(),
                "data": {"spec": "builtin:sequences", "n": len(seqs), "n_train": len(tr), "n_held_out": len(te),
                         "shifted_spec": "builtin:sequences-shifted", "n_shifted": len(shifted),
                         "n_fine_tune": len(ft), "n_shifted_scored": len(rest),
                         "label_fraction": args.label_fraction, "label_names": seqs.label_names,
                         "max_epochs": int(seqs.images.shape[1])},
                "fine_tune_epochs": args.fine_tune_epochs, "runs": rows}

    for seed in args.seeds:
        cfg.train.seed = cfg.model.seed = seed
        t0 = time.time()
        model, _ = fit_classifier(cfg, take(inputs, tr), y[tr], verbose=0)
        secs = time.time() - t0
        s = classification_scores(y[te], predict_proba(model, take(inputs, te)), seqs.label_names)
        before = classification_scores(ys[rest], predict_proba(model, take(inputs_s, rest)), seqs.label_names)
        fine_tune(model, take(inputs_s, ft), ys[ft], epochs=args.fine_tune_epochs, seed=seed)
        after = classification_scores(ys[rest], predict_proba(model, take(inputs_s, rest)), seqs.label_names)
        runs.append({"seed": seed, "method": "rcnn", "train_seconds": secs, **{k: s[k] for k in keys},
                     "shifted_before": {k: before[k] for k in keys}, "shifted_after": {k: after[k] for k in keys}})
        log(f"  seed {seed}: rcnn macro F1 {s['macro_f1']:.3f}, acc {s['accuracy']:.3f}; shifted acc "
            f"{before['accuracy']:.3f} -> {after['accuracy']:.3f} after fine-tuning ({secs:.0f} s)")
        t0 = time.time()
        pr = light_curve_forest(feats[tr], y[tr], feats[te], seed=seed)
        s = classification_scores(y[te], pr, seqs.label_names)
        before = classification_scores(ys[rest], light_curve_forest(feats[tr], y[tr], feats_s[rest], seed=seed),
                                       seqs.label_names)
        runs.append({"seed": seed, "method": "lc-features-rf", "train_seconds": time.time() - t0,
                     **{k: s[k] for k in keys}, "shifted_before": {k: before[k] for k in keys}})
        log(f"  seed {seed}: light-curve RF macro F1 {s['macro_f1']:.3f}, acc {s['accuracy']:.3f}")
        if getattr(args, "save_partial", None):  # a result per finished seed, in case the run is cut short
            args.save_partial(payload(runs))
    return payload(runs)


# ----------------------------------------------------------------------------- RESULTS.md
def _vals(runs, key, sub=None):
    out = []
    for r in runs:
        v = r.get(sub, {}) if sub else r
        if isinstance(v, dict) and isinstance(v.get(key), (int, float)):
            out.append(float(v[key]))
    return out


def _det_at(run: dict, fpr: float) -> float | None:
    d = run.get("det")
    if not d:
        return None
    f, n = np.asarray(d["fpr"]), np.asarray(d["fnr"])
    ok = f <= fpr
    return float(n[ok].min()) if ok.any() else None


def _render_deep_hits(name: str, data: dict[str, Any]) -> list[str]:
    from collections import defaultdict

    runs = data["runs"]
    groups = defaultdict(list)
    for r in runs:
        groups[r["method"]].append(r)
    c, d = data.get("config", {}), data["data"]
    m = c.get("model", {})
    out = [f"## {name}: Deep-HiTS real/bogus CNN (seed 003) on simulated transients", "",
           f"Data `{d['spec']}` N = {d['n']}: {d['n_train']} training / {d['n_held_out']} held-out stamps "
           f"(stratified, the same split for every seed); class counts {d.get('class_counts')}. Model: "
           f"`deep-hits` preset, filters {m.get('filters')} (width x{data.get('width', 1.0)}), dense "
           f"{m.get('dense_units')}, {c.get('train', {}).get('supervised_epochs')} epochs, scaling "
           f"`{c.get('data', {}).get('scaling')}`, training flips {'on' if c.get('data', {}).get('flips') else 'off'}; seeds "
           f"{data.get('seeds')}; wall time {data.get('wall_seconds', 0) / 60:.1f} min. HGB: scikit-learn "
           "HistGradientBoostingClassifier on the raw SNR pixels. CAPE: the mean probability of the "
           "seeds' models.", "",
           "| method | accuracy | precision | recall | F1 | FNR at FPR ≤ 1% | reference (talk, HiTS) |",
           "|---|---|---|---|---|---|---|"]
    ref = {"deep-hits": "DH 99.45 ± 0.02 / 99.37 / 99.55 / 99.45"}
    for meth, rs in groups.items():
        fnr = [v for v in (r.get("fnr_at_fpr_1pct", _det_at(r, 0.01)) for r in rs) if v is not None]
        out.append(f"| {meth} | {C.pm(_vals(rs, 'accuracy'), 4)} | {C.pm(_vals(rs, 'precision'), 4)} | "
                   f"{C.pm(_vals(rs, 'recall'), 4)} | {C.pm(_vals(rs, 'f1'), 4)} | {C.pm(fnr, 4)} | "
                   f"{ref.get(meth, 'CAPE 99.53 ± 0.01' if meth.startswith('cape') else '–')} |")
    subtypes = sorted({s for r in runs for s in r.get("subtype_accuracy", {})})
    out += ["", "Held-out accuracy per subtype (mean over seeds; n per subtype in brackets):", "",
            "| method | " + " | ".join(f"{s} ({runs[0]['subtype_accuracy'].get(s, {}).get('n', '?')})"
                                       for s in subtypes) + " |",
            "|---|" + "---|" * len(subtypes)]
    for meth, rs in groups.items():
        out.append(f"| {meth} | " + " | ".join(
            C.fmt(float(np.mean([r["subtype_accuracy"][s]["accuracy"] for r in rs
                                 if s in r.get("subtype_accuracy", {})])))
            for s in subtypes) + " |")
    acc = C.mean_sd(_vals(groups.get("deep-hits", []), "accuracy"))[0]
    target = data.get("targets", {}).get("accuracy_mean", 0.985)
    out += ["", f"Target: deep-hits accuracy ≥ {target} over {len(groups.get('deep-hits', []))} seeds → "
            f"**{'yes' if acc >= target else 'no'}** ({C.fmt(acc, 4)})."]
    return out


def _render_rcnn(name: str, data: dict[str, Any]) -> list[str]:
    runs, d, c = data["runs"], data["data"], data.get("config", {})
    rc = [r for r in runs if r["method"] == "rcnn"]
    rf = [r for r in runs if r["method"] == "lc-features-rf"]
    out = [f"## {name}: RCNN image-sequence classifier (seed 003) vs light-curve features + RF", "",
           f"Data `{d['spec']}`: {d['n']} sequences of up to {d.get('max_epochs')} 21x21 frames, 7 classes "
           f"{d.get('label_names')}; {d['n_train']} training / {d['n_held_out']} held out (stratified). "
           f"Shifted set `{d['shifted_spec']}` (FWHM 3-5 px instead of 2-3.5, sky noise 12-30 instead of "
           f"6-14 counts, gain 0.6): {d['n_fine_tune']} labelled objects ({d['label_fraction']:.0%}) for "
           f"fine-tuning ({data.get('fine_tune_epochs')} epochs), {d['n_shifted_scored']} scored. "
           f"`rcnn` preset, {c.get('train', {}).get('supervised_epochs')} epochs; seeds {data.get('seeds')}; "
           f"wall time {data.get('wall_seconds', 0) / 60:.1f} min. The RF uses {len(rf)} x 500 trees on 18 "
           "aperture-photometry light-curve features (the talk's FATS + RF)."
           + (f" **Partial result: the run was stopped after {len(rc)} seed(s).**" if data.get("partial") else ""),
           "",
           "| method | macro F1 | accuracy | shifted set: accuracy (no fine-tuning) | after fine-tuning on 1% | "
           "shifted macro F1 before → after |", "|---|---|---|---|---|---|"]
    for meth, rs in (("rcnn", rc), ("lc-features-rf", rf)):
        after = _vals(rs, "accuracy", "shifted_after")
        out.append(f"| {meth} | {C.pm(_vals(rs, 'macro_f1'))} | {C.pm(_vals(rs, 'accuracy'))} | "
                   f"{C.pm(_vals(rs, 'accuracy', 'shifted_before'))} | {C.pm(after) if after else '–'} | "
                   f"{C.pm(_vals(rs, 'macro_f1', 'shifted_before'))} → "
                   f"{C.pm(_vals(rs, 'macro_f1', 'shifted_after')) if after else '–'} |")
    names = d.get("label_names") or []
    if rc and names:
        out += ["", "Held-out F1 per class (mean over seeds):", "", "| method | " + " | ".join(names) + " |",
                "|---|" + "---|" * len(names)]
        for meth, rs in (("rcnn", rc), ("lc-features-rf", rf)):
            out.append(f"| {meth} | " + " | ".join(
                C.fmt(float(np.mean([r["per_class"][k]["f1"] for r in rs]))) for k in names) + " |")
        cm = np.sum([np.asarray(r["confusion"]) for r in rc], axis=0)
        out += ["", "RCNN confusion matrix, summed over seeds (rows: true, columns: predicted, order as above):",
                "", "```", *(" ".join(f"{v:5d}" for v in row) for row in cm), "```"]
    f_rc, f_rf = C.mean_sd(_vals(rc, "macro_f1"))[0], C.mean_sd(_vals(rf, "macro_f1"))[0]
    b, a = C.mean_sd(_vals(rc, "accuracy", "shifted_before"))[0], C.mean_sd(_vals(rc, "accuracy", "shifted_after"))[0]
    out += ["", f"Targets: RCNN beats the light-curve RF in macro F1 → **{'yes' if f_rc > f_rf else 'no'}** "
            f"({C.fmt(f_rc)} vs {C.fmt(f_rf)}); fine-tuning on 1% of the shifted set improves accuracy → "
            f"**{'yes' if a > b else 'no'}** ({C.fmt(b)} → {C.fmt(a)})."]
    return out


def render(name: str, data: dict[str, Any]) -> list[str]:
    """Markdown for one ``classifiers_*.json`` result (used by :mod:`benchmarks.tables`)."""
    if data.get("experiment") == "classifiers_deep_hits":
        return _render_deep_hits(name, data)
    if data.get("experiment") == "classifiers_rcnn":
        return _render_rcnn(name, data)
    return []


EXPERIMENTS = {"deep_hits": run_deep_hits, "rcnn": run_rcnn}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.classifiers", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--experiments", nargs="+", choices=sorted(EXPERIMENTS), default=sorted(EXPERIMENTS),
                   help="experiments to run (default: all)")
    p.add_argument("--seeds", type=C.int_list, default=[0, 1, 2, 3, 4],
                   help="comma-separated seeds (default: 0,1,2,3,4)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the preset's)")
    p.add_argument("--width", type=float, default=1.0,
                   help="multiply the presets' conv filter counts by this (default: 1 = the presets' widths)")
    p.add_argument("--n-transients", type=int, default=None,
                   help="builtin:transients stamps (default: the deep-hits preset's data.n)")
    p.add_argument("--n-sequences", type=int, default=2100, help="builtin:sequences objects (default: %(default)s)")
    p.add_argument("--n-shifted", type=int, default=1400,
                   help="builtin:sequences-shifted objects (default: %(default)s)")
    p.add_argument("--label-fraction", type=float, default=0.01,
                   help="fraction of the shifted set labelled for fine-tuning (default: %(default)s)")
    p.add_argument("--fine-tune-epochs", type=int, default=30, help="fine-tuning epochs (default: %(default)s)")
    p.add_argument("--results-dir", type=Path, default=None,
                   help="where to write the JSON (default: benchmarks/results; with --quick a temporary folder)")
    p.add_argument("--no-hgb", action="store_true",
                   help="deep_hits: do not retrain the HGB baseline; keep its rows from the existing result "
                        "file when that used the same number of stamps")
    p.add_argument("--quick", action="store_true", help="smoke test: tiny data, 1 epoch, 1 seed")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.seeds, args.epochs, args.width = args.seeds[:1] if len(args.seeds) < 5 else [0], 1, 0.25
        args.n_transients, args.n_sequences, args.n_shifted, args.fine_tune_epochs = 40, 21, 14, 1
        args.label_fraction = 0.1
    results_dir = args.results_dir = args.results_dir or (
        Path(tempfile.mkdtemp(prefix="av-bench-")) if args.quick else C.RESULTS_DIR)

    def log(msg: str) -> None:
        print(msg, flush=True)

    for name in args.experiments:
        t0 = time.time()

        def save_partial(payload, t0=t0):
            payload.update(wall_seconds=time.time() - t0, quick=bool(args.quick), width=args.width, partial=True)
            C.save_json(payload["experiment"], payload, results_dir)

        args.save_partial = save_partial
        payload = EXPERIMENTS[name](args, log)
        payload.update(wall_seconds=time.time() - t0, environment=C.environment(), quick=bool(args.quick),
                       width=args.width, partial=False)
        path = C.save_json(payload["experiment"], payload, results_dir)
        log(f"wrote {path}")
    if not args.quick and results_dir == C.RESULTS_DIR:
        C.write_results_md()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
