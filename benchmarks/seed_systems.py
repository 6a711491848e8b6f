"""Benchmarks of the other seed systems: CHASE latents (seed 001), star/galaxy VAEs (seed 002).

Experiments (``--experiments``, comma-separated):

* ``seed001`` -- SCAE vs CVAE vs incremental PCA vs online sparse dictionary learning on
  the simulated transients (``chase`` scaling, J = 21). The stamps are split into thirds
  (train / validation for early stopping / test, as seed 001); on the test third: DNMSE at
  n = 100 with real transients as the reference class (seed 001 Fig. 2a) and the AUC of a
  one-hidden-layer MLP trained on 75 % of the test latents (Fig. 2c). Writes
  ``results/seed001_transients.json``.
* ``seed002`` -- V+M (VAE, N(0, I) prior, latents -> Isomap 1-D -> threshold) vs Vr+M (the
  double-peak VAE ``sun-vae-dp``) vs A+Vr (the hierarchical ``sun-ae-vae``, whose 1-D
  latent is thresholded directly) on ``builtin:stargal5`` (5 bands, ``asinh_peak``
  scaling by default: ``--scaling``), AUC over the threshold, 5 seeds; the threshold is
  set from the known galaxy fraction. Seed 001's linear baselines (IPCA, SDL with 2
  components, fitted on the same train third) go through the same Isomap / t-SNE / MLP
  scoring. Writes ``results/seed002_stargal.json``; :data:`SEED002_NOTE` says why the
  configuration is what it is.
* ``segmentation`` -- pixel IoU of the skip-connection AE + hypercolumn segmentation
  (:mod:`astrovader.segmentation`) on simulated fields with known masks. Writes
  ``results/seed002_segmentation.json``.

``--quick`` runs everything tiny (1 epoch, 1 seed, few stamps) to check the plumbing.
Labels are used only to score. Run from a frozen copy of the package when others edit it::

    python -m benchmarks.seed_systems --experiments seed001,seed002,segmentation
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import _common as C

EXPERIMENTS = ("seed001", "seed002", "segmentation")


def _split_thirds(n: int, seed: int):
    idx = np.random.default_rng(seed).permutation(n)
    b = 2 * n // 3
    return np.sort(idx[:b]), np.sort(idx[b:])  # train (+ validation inside), test


def _train(preset: str, x_train: np.ndarray, epochs: int, seed: int, batch_size: int | None = None, **model):
    from astrovader.config import load_preset
    from astrovader.runs import scale_epochs
    from astrovader.training import train

    cfg = load_preset(preset)
    for k, v in model.items():
        setattr(cfg.model, k, v)
    cfg.train = scale_epochs(cfg.train, epochs)
    if cfg.train.recipe == "kl_annealing":  # anneal over the first third of the shortened run
        cfg.train.anneal_epochs = max(1, min(cfg.train.anneal_epochs, epochs // 3))
    cfg.train.seed = cfg.model.seed = seed
    if batch_size:
        cfg.train.batch_size = batch_size
    cfg.train.batch_size = min(cfg.train.batch_size, len(x_train))
    import keras

    keras.utils.set_random_seed(seed)
    from astrovader.runs import split_validation

    xt, xv = split_validation(x_train, cfg.train.validation_fraction, seed)
    t0 = time.time()
    model_, hist = train(cfg, xt, xv, verbose=0)
    return model_, {"train_seconds": time.time() - t0, "epochs_run": len(hist.history["loss"]),
                    "epochs": epochs, "final_loss": float(hist.history["loss"][-1])}, cfg


def _partial(args, result: dict) -> None:
    """Save the rows so far (``<name>.partial.json``) so that an interrupted run keeps them."""
    name = result["experiment"]
    C.save_json(f"{name}.partial", {**result, "partial": True}, args.results_dir)


def run_seed001(args) -> dict:
    from astrovader.compare import dnmse_curve, latent_baselines, latent_roc

    n = args.n or (300 if args.quick else 4000)
    x, y = C.load_stamps("builtin:transients", n=n, seed=0, scaling="chase")
    runs = []
    for seed in args.seeds:
        tr, te = _split_thirds(len(x), seed)
        xt, xe, ye = x[tr], x[te], y[te]
        rng = np.random.default_rng(seed)
        pos = np.flatnonzero(ye == 1)
        ref = np.zeros(len(ye), bool)
        ref[rng.choice(pos, size=max(10, len(pos) // 10), replace=False)] = True
        latents, extra = {}, {}
        for name, preset in (("scae", "chase-scae"), ("cvae", "chase-cvae")):
            model, info, cfg = _train(preset, xt, args.epochs, seed)
            latents[name] = np.asarray(model.encode(xe)[0])
            extra[name] = info
            extra[name]["test_mse"] = float(np.mean((model.reconstruct(xe) - xe) ** 2))
        t0 = time.time()
        for name, z in latent_baselines(xe, 21, fit_on=xt, seed=seed).items():
            latents[name] = z
            extra[name] = {"train_seconds": (time.time() - t0) / 2}
        for name, z in latents.items():
            at = min(100, int((~ref).sum()))
            runs.append({"seed": seed, "method": name, **extra[name],
                         "dnmse_at_100": dnmse_curve(z, xe, ref, [at])["dnmse"][0],
                         "dnmse_curve": dnmse_curve(z, xe, ref)["dnmse"],
                         "auc": latent_roc(z, ye, seed=seed)["auc"]})
            print(f"seed001 seed={seed} {name}: AUC {runs[-1]['auc']:.3f} DNMSE@100 {runs[-1]['dnmse_at_100']:.4f}",
                  flush=True)
    return {"experiment": "seed001_transients", "seeds": args.seeds, "epochs": args.epochs,
            "data": {"spec": "builtin:transients", "n": int(len(x)), "shape": list(x.shape[1:]), "scaling": "chase",
                     "split": "2/3 train (early-stopping validation inside) / 1/3 test"},
            "runs": runs}


#: why the seed002 benchmark runs as it does (written into the JSON and the markdown)
SEED002_NOTE = (
    "Configuration chosen once, from one diagnostic on seed 0 (600 stamps), before the 5-seed run: the first "
    "attempt (`asinh` in noise units, 600 stamps, 6 epochs = 18 optimiser steps) was at chance (V+M Isomap AUC "
    "0.515, latent MLP 0.607) because the VAE had not learned yet (loss = the data's variance) and, trained "
    "longer (30 epochs), its latents ordered the stamps by brightness (MLP 0.962 but Isomap 0.735); pixels alone "
    "separate the classes (PCA-2 -> Isomap 0.976 with `asinh_peak`, logistic regression 0.98-0.999). "
    "Star vs galaxy is a question of shape, so the stamps are scaled to their own peak (`asinh_peak`, "
    "brightness-invariant) and trained for 30 epochs; the latents go to Isomap/t-SNE unstandardised (a collapsed "
    "latent would otherwise weigh as much as the informative one; `auc_standardized` keeps the other reading).")


def run_seed002(args) -> dict:
    from astrovader.compare import latent_baselines, latent_roc, manifold_scores, threshold_scores

    n = args.n or (150 if args.quick else 1500)
    scaling = args.scaling
    x, y = C.load_stamps("builtin:stargal5", n=n, seed=0, scaling=scaling)
    galaxy_fraction = float(np.mean(y == 1))  # the "known class proportion" of seed 002 sec. 3.1.1
    runs = []
    result = {"experiment": "seed002_stargal", "seeds": args.seeds, "epochs": args.epochs,
              "data": {"spec": "builtin:stargal5", "n": int(len(x)), "shape": list(x.shape[1:]), "scaling": scaling,
                       "galaxy_fraction": galaxy_fraction, "split": "2/3 train / 1/3 test"},
              "note": SEED002_NOTE, "runs": runs}
    t_start = time.time()
    methods = [("V+M", "sun-vae-dp", {"prior": "normal"}, True),
               ("Vr+M", "sun-vae-dp", {}, True),
               ("A+Vr", "sun-ae-vae", {}, False)]

    def score(row, z, te, manifold, seed):
        for mname in (("isomap", "tsne") if manifold else ("none",)):
            s = manifold_scores(z, mname, seed=seed) if manifold else z[:, 0]
            res = threshold_scores(s, y[te], positive=1, proportion=galaxy_fraction)
            key = "" if mname in ("isomap", "none") else f"_{mname}"
            row[f"auc{key}"] = res["auc"]
            row[f"accuracy{key}"] = res["accuracy"]
        if manifold:
            s = manifold_scores(z, "isomap", seed=seed, standardize=True)
            row["auc_standardized"] = threshold_scores(s, y[te], positive=1, proportion=galaxy_fraction)["auc"]
        row["auc_mlp"] = latent_roc(z, y[te], seed=seed)["auc"]

    for seed in args.seeds:
        tr, te = _split_thirds(len(x), seed)
        for name, preset, model_kw, manifold in methods:
            model, info, cfg = _train(preset, x[tr], args.epochs, seed, **model_kw)
            z = np.asarray(model.encode(x[te])[0])
            row = {"seed": seed, "method": name, "preset": preset, **model_kw, **info}
            score(row, z, te, manifold, seed)
            runs.append(row)
            print(f"seed002 seed={seed} {name}: AUC {row['auc']:.3f} (MLP {row['auc_mlp']:.3f}) "
                  f"{info['train_seconds']:.0f} s", flush=True)
            result["wall_seconds"] = time.time() - t_start
            _partial(args, result)
        # seed 001's linear baselines with as many components as V+M's latents, fitted on the same train third
        t0 = time.time()
        for name, z in latent_baselines(x[te], 2, fit_on=x[tr], seed=seed).items():
            row = {"seed": seed, "method": name, "train_seconds": (time.time() - t0) / 2}
            score(row, z, te, True, seed)
            runs.append(row)
            print(f"seed002 seed={seed} {name}: AUC {row['auc']:.3f} (MLP {row['auc_mlp']:.3f})", flush=True)
        result["wall_seconds"] = time.time() - t_start
        _partial(args, result)
    result.pop("wall_seconds", None)
    return result


def _sep_mask(image: np.ndarray, thresh: float = 3.0, min_area: int = 10) -> np.ndarray:
    """sep's segmentation map of a field (band mean, background subtracted, ``thresh`` x global RMS) as a mask.

    The same detection as ``builtin:hdf``'s stamps (:func:`astrovader.data.detect.detect_and_cut`);
    on the real Hubble Deep Field there is no truth, so this is a reference to agree with.
    """
    import sep

    det = np.ascontiguousarray(np.asarray(image, np.float64).reshape(*image.shape[:2], -1).mean(-1))
    bkg = sep.Background(det)
    _, segmap = sep.extract(det - bkg, thresh, err=bkg.globalrms, minarea=min_area, segmentation_map=True)
    return np.asarray(segmap) > 0


def run_segmentation(args) -> dict:
    from astrovader.segmentation import benchmark_fields

    n_fields = args.n or (2 if args.quick else 6)  # --n: fields per seed
    res = {"experiment": "seed002_segmentation", "seeds": args.seeds, "epochs": args.epochs, "runs": []}
    t_start = time.time()
    for seed in args.seeds:
        part = benchmark_fields(n_fields=n_fields, size=64 if args.quick else 96, epochs=args.epochs,
                                seeds=[seed], quick=args.quick)
        res["data"] = part["data"]
        res["runs"] += part["runs"]
        res["wall_seconds"] = time.time() - t_start
        _partial(args, res)
    res.pop("experiment")
    res.pop("wall_seconds", None)
    if not args.quick:  # the real Hubble Deep Field image: no truth mask, count objects against sep's
        from astrovader.data.builtin import _hdf_raw
        from astrovader.segmentation import load_field, segment_field

        from astrovader.segmentation import pixel_iou, threshold_mask

        t0 = time.time()
        image = load_field("builtin:hdf")
        seg = segment_field(image, epochs=args.epochs, seed=args.seeds[0])
        sep_mask = _sep_mask(image)
        res["hdf"] = {**seg.info, "shape": list(image.shape), "sep_3sigma_detections": int(len(_hdf_raw()[0])),
                      "sep_3sigma_object_fraction": float(sep_mask.mean()),
                      "iou_vs_sep_3sigma": pixel_iou(seg.objects > 0, sep_mask),
                      "threshold_2sigma_object_fraction": float(threshold_mask(image, 2.0).mean()),
                      "threshold_2sigma_iou_vs_sep_3sigma": pixel_iou(threshold_mask(image, 2.0), sep_mask),
                      "seconds": time.time() - t0}
        print(f"segmentation hdf: {res['hdf']}", flush=True)
    return {"experiment": "seed002_segmentation", "seeds": args.seeds, "epochs": args.epochs, **res}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.seed_systems", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiments", type=C.str_list, default=",".join(EXPERIMENTS),
                   help=f"comma-separated experiments: {', '.join(EXPERIMENTS)} (default: all)")
    p.add_argument("--seeds", type=C.int_list, default=[0, 1, 2, 3, 4], help="training seeds (default: 0,1,2,3,4)")
    p.add_argument("--epochs", type=int, default=20, help="epochs per model (default: %(default)s)")
    p.add_argument("--n", type=int, default=None,
                   help="number of stamps (default: 4000 transients, 1500 stargal5) or of fields per seed (default 6)")
    p.add_argument("--scaling", default="asinh_peak",
                   help="seed002 stamp scaling (default: %(default)s, brightness-invariant; see SEED002_NOTE)")
    p.add_argument("--quick", action="store_true", help="tiny smoke run: 1 epoch, 1 seed, few stamps")
    p.add_argument("--results-dir", type=Path, default=C.RESULTS_DIR,
                   help="folder for the JSON results (default: benchmarks/results)")
    p.add_argument("--no-markdown", action="store_true", help="do not regenerate RESULTS.md")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    names = args.experiments
    bad = [e for e in names if e not in EXPERIMENTS]
    if bad:
        print(f"error: unknown experiment(s) {', '.join(bad)}; choose from {', '.join(EXPERIMENTS)}", file=sys.stderr)
        return 2
    if args.quick:
        args.epochs, args.seeds = 1, args.seeds[:1]
    fns = {"seed001": run_seed001, "seed002": run_seed002, "segmentation": run_segmentation}
    for name in names:
        t0 = time.time()
        res = fns[name](args)
        res["wall_seconds"] = time.time() - t0
        res["environment"] = C.environment()
        path = C.save_json(res.pop("experiment"), {"experiment": name, **res}, args.results_dir)
        print(f"wrote {path}", flush=True)
    if not args.no_markdown:
        C.write_results_md(args.results_dir, args.results_dir.parent / "RESULTS.md"
                           if args.results_dir != C.RESULTS_DIR else C.RESULTS_MD)
    return 0


if __name__ == "__main__":
    sys.exit(main())
