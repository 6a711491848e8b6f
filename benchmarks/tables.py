"""Markdown renderers for RESULTS.md: one per result family, seed-paper numbers beside ours."""

from __future__ import annotations

import re

from collections import defaultdict
from typing import Any

from benchmarks._common import fmt, mean_sd, pm

# Seed 000 (Astorga+2018) Table I, accuracy by eq. 9 (majority mapping), HiTS, 5 runs.
SEED000_K = {2: 0.9232, 6: 0.9030, 10: 0.9533, 20: 0.9502}
SEED000_J = {2: 0.8869, 5: 0.9187, 10: 0.9473, 21: 0.9533}
SEED000_METHODS = {
    "pca+gmm": "0.934 ± 0.013",
    "dl+gmm": "0.908 ± 0.002",
    "vae+gmm": "0.871 ± 0.007",
    "vade": "0.953 ± 0.001",
    "kl-vae+gmm": "0.554 (β-annealing, sec. VII)",
    "kmeans": "–",
}


def _group(runs, key):
    g = defaultdict(list)
    for r in runs:
        g[r.get(key)].append(r)
    return g


def _vals(runs, key):
    return [r.get(key) for r in runs if not r.get("nan") and r.get(key) is not None]


def _wall(data) -> str:
    return f"{data.get('wall_seconds', float('nan')) / 60:.1f} min"


def data_seed(data) -> int:
    """The data seed a result was generated with (0 = the built-in set the presets were tuned on)."""
    return int(data.get("config", {}).get("data", {}).get("seed") or 0)


def same_stamps(clustering: dict, ceiling: dict) -> bool:
    """Whether a clustering result ran on the stamps a ceiling was measured on (same built-in set,
    data seed 0, same class counts), so its accuracy compares with the classifier's."""
    d, c = clustering.get("data", {}), ceiling.get("data", {})
    return (not data_seed(clustering) and d.get("spec") == c.get("spec")
            and list(d.get("class_counts") or []) == list(c.get("class_counts") or [None]))


def _invariance(m: dict) -> str:
    """The encoder's invariances, as the configuration line names them."""
    if not m.get("rotation_invariant"):
        return ""
    return "rotation- and mirror-invariant encoder, " if m.get("mirror_invariant") else "rotation-invariant encoder, "


def _cfg_line(data) -> str:
    c = data.get("config", {})
    t, m = c.get("train", {}), c.get("model", {})
    d = data.get("data", {})
    if t.get("recipe") == "s3vdc":
        sched = (f"γ-training {t.get('gamma_epochs')} + {t.get('periods')} × (anneal "
                 f"{t.get('anneal_epochs')} + static {t.get('static_epochs')}) epochs")
    else:
        sched = f"{t.get('pretrain')} pretrain {t.get('pretrain_epochs')} + VaDE {t.get('vade_epochs')} epochs"
    sched += f", mixture init `{t.get('init', 'gmm')}`"
    if int(t.get("init_restarts") or 1) > 1:
        sched += f" (most stable of {t['init_restarts']})"
    if int(t.get("anchor_epochs") or 0) > 0:
        sched += f", γ anchored to it for {t['anchor_epochs']} epochs"
    if t.get("recluster"):
        sched += ", final codes re-clustered the same way"
    if int(t.get("restarts") or 1) > 1:
        sched += f", most stable of {t['restarts']} whole runs"
    if t.get("mixed_precision", "none") != "none":
        sched += f", precision `{t['mixed_precision']}`"
    augment = [a for a in ("flips", "rot90", "shift", "shift_fraction", "rotate") if c.get("data", {}).get(a)]
    per = int(m.get("components_per_cluster") or 1)
    seed = data_seed(data)
    origin = f", generated with data seed {seed} (fresh stamps the preset was not tuned on)" if seed else ""
    if d.get("class_fractions"):
        origin += f", imbalanced: {', '.join(f'{f:g}' for f in d['class_fractions'])} of each class kept"
    return (f"Data `{d.get('spec')}` N = {d.get('n')} {tuple(d.get('shape', []))}{origin}; "
            f"{m.get('architecture')} VaDE (J = {m.get('latent_dim')}, AR "
            f"{'on' if m.get('decoder_variance') else 'off'}, "
            f"{_invariance(m)}"
            f"{f'{per} Gaussians per cluster, ' if per > 1 else ''}"
            f"{'augmentation ' + ' + '.join(augment) + ', ' if augment else ''}γ from L = {m.get('mc_samples')} "
            f"z-samples{' (0 = posterior mean)' if m.get('mc_samples') == 0 else ''}), recipe `{t.get('recipe')}` ({sched}, "
            f"lr {t.get('learning_rate')}, batch {t.get('batch_size')}); wall time {_wall(data)}.")


def _acc_table(runs, key, ref, label):
    out = [f"| {label} | ACC majority (eq. 9) ours | seed 000 | ACC Hungarian | NMI | MSE | NaN runs |",
           "|---|---|---|---|---|---|---|"]
    for v, rs in sorted(_group(runs, key).items()):
        out.append(
            f"| {v} | {pm(_vals(rs, 'acc_majority'))} | {fmt(ref.get(v))} | "
            f"{pm(_vals(rs, 'acc_hungarian'))} | {pm(_vals(rs, 'nmi'))} | "
            f"{pm(_vals(rs, 'mse'), 4)} | {sum(bool(r.get('nan')) for r in rs)} |")
    return out


def render_transients(name: str, data: dict[str, Any]) -> list[str]:
    part, runs = data["part"], data["runs"]
    head = [f"## {name}: seed 000 Table I analogue ({part})", "", _cfg_line(data),
            f"Seeds {data.get('seeds')}; class counts {data['data'].get('class_counts')}.", ""]
    if part == "k":
        return head + ["ACC vs K at J = 21 (seed 000 Table Ia):", ""] + _acc_table(runs, "K", SEED000_K, "K")
    if part == "j":
        out = head + ["ACC vs J at K = 10 (seed 000 Table Ib):", ""] + _acc_table(runs, "J", SEED000_J, "J")
        if 21 not in {r.get("J") for r in runs}:
            out += ["", "J = 21, K = 10 is the `vade` row of the baselines table (same settings)."]
        return out
    if part == "ar":
        out = head + ["Auto-regularisation (learned decoder variance, seed 000 sec. V) on vs off, K = 10, J = 21:", "",
                      "| auto-regularisation | ACC majority | ACC Hungarian | NMI | MSE | mean σ² | NaN runs |",
                      "|---|---|---|---|---|---|---|"]
        for v, rs in sorted(_group(runs, "auto_regularisation").items(), reverse=True):
            out.append(f"| {'on' if v else 'off'} | {pm(_vals(rs, 'acc_majority'))} | "
                       f"{pm(_vals(rs, 'acc_hungarian'))} | {pm(_vals(rs, 'nmi'))} | "
                       f"{pm(_vals(rs, 'mse'), 4)} | {pm(_vals(rs, 'decoder_variance_mean'), 4)} | "
                       f"{sum(bool(r.get('nan')) for r in rs)} |")
        on = mean_sd(_vals(_group(runs, "auto_regularisation")[True], "acc_majority"))[0]
        off = mean_sd(_vals(_group(runs, "auto_regularisation")[False], "acc_majority"))[0]
        out += ["", f"Auto-regularisation on beats off (ACC): **{'yes' if on > off else 'no'}** "
                f"(seed 000: AR improves accuracy and reconstruction)."]
        for r in _group(runs, "auto_regularisation").get(True, []):
            avv = r.get("accuracy_vs_variance")
            if avv:
                cells = ", ".join(f"{v:.3g}: {a:.2f}" for v, a in zip(avv["variance_mean"], avv["accuracy"]))
                out += ["", f"Accuracy per decoder-variance decile, seed {r.get('seed')} (seed 000 Fig. 9: "
                        f"accuracy falls as σ² rises) — mean σ²: ACC = {cells}."]
        return out
    # baselines / beta
    out = head + ["Methods at K = 10, J = 21 (seed 000 Table Ic); GMM on each method's codes:", "",
                  "| method | ACC majority (eq. 9) ours | seed 000 | ACC Hungarian | NMI | ARI | time (s) |",
                  "|---|---|---|---|---|---|---|"]
    for m, rs in _group(runs, "method").items():
        t = _vals(rs, "seconds") or _vals(rs, "train_seconds")
        out.append(f"| {m} | {pm(_vals(rs, 'acc_majority'))} | {SEED000_METHODS.get(m, '–')} | "
                   f"{pm(_vals(rs, 'acc_hungarian'))} | {pm(_vals(rs, 'nmi'))} | "
                   f"{pm(_vals(rs, 'ari'))} | {pm(t, 0)} |")
    if part == "baselines":
        g = _group(runs, "method")
        vade = mean_sd(_vals(g.get("vade", []), "acc_majority"))[0]
        best = max((mean_sd(_vals(rs, "acc_majority"))[0] for m, rs in g.items() if m != "vade"), default=float("nan"))
        out += ["", f"Targets: VaDE ACC ≥ 0.96 → **{'yes' if vade >= 0.96 else 'no'}** ({fmt(vade)}); "
                f"≥ 3 points above the best baseline ({fmt(best)}) → **{'yes' if vade - best >= 0.03 else 'no'}**."]
    return out


def render_galaxies(name: str, data: dict[str, Any]) -> list[str]:
    out = [f"## {name}: VaDE vs baselines on simulated galaxies, and K by Dirichlet process", "",
           _cfg_line(data), f"Class counts {data['data'].get('class_counts')} "
           f"({data.get('n_classes')} simulated classes).", "",
           "| method | ACC Hungarian | ACC majority | NMI | ARI | silhouette |", "|---|---|---|---|---|---|"]
    for m, rs in _group(data["runs"], "method").items():
        out.append(f"| {m} | {pm(_vals(rs, 'acc_hungarian'))} | {pm(_vals(rs, 'acc_majority'))} | "
                   f"{pm(_vals(rs, 'nmi'))} | {pm(_vals(rs, 'ari'))} | {pm(_vals(rs, 'silhouette'))} |")
    for kc in data.get("choose_k", []):
        out += ["", f"Dirichlet-process K choice (seed 004 sec. 4.1; seed 004 found 12 for GZ2) on {kc['embedding']} "
                f"(seed {kc['seed']}): **K = {kc['k']}** in {kc['frequency']:.0%} of "
                f"{len(kc['counts_per_batch'])} mini-batches; histogram {kc['histogram']}."]
    return out


def render_speed(name: str, data: dict[str, Any]) -> list[str]:
    env = data.get("environment", {})
    cpu = f" of {env['cpu']}" if env.get("cpu") else ""
    head = (f"Environment: {env.get('cpu_count')} CPU cores{cpu}, TF {env.get('tensorflow')}; wall time {_wall(data)}; "
            f"load average at the end {data.get('load_average_end', '–')}." + (f" {data['note']}." if data.get("note") else ""))
    if data.get("experiment") == "speed_rss":
        out = [f"## {name}: predict memory vs catalogue size", "", head,
               "Each size predicted by `predict_run` in a fresh process from a memory-mapped uint8 `.npy`.", "",
               "| stamps | stamp shape | file (MiB) | peak RSS (MiB) | stamps/s | load average |", "|---|---|---|---|---|---|"]
        for r in data.get("rows", []):
            out.append(f"| {r['n']:,} | {tuple(r['stamp_shape'])} | {fmt(r.get('file_mb'), 0)} | "
                       f"{fmt(r.get('peak_rss_mb'), 0)} | {fmt(r.get('stamps_per_s'), 0)} | {r.get('load_average')} |")
        if "rss_growth_last_vs_previous" in data:
            g = data["rss_growth_last_vs_previous"]
            out += ["", f"Peak RSS at the largest size vs the one before: {g:+.1%} "
                        f"(target within ±10 %: **{'yes' if abs(g) <= 0.10 else 'no'}**)."]
        return out
    out = [f"## {name}: throughput as fractions of the roof measured in the same run", "", head,
           "Roof: the network's own matmuls/convolutions (forward, + the backward products a training step computes) in "
           "one tight `tf.function` at the same batch size, timed beside the model (best of repeats each). "
           + ("Training FLOPs = 3 x forward (2 x for the encoder's first layer, whose input needs no gradient). "
              if any(r.get("train_mflops_per_sample", 0) < 2.999 * r.get("forward_mflops_per_sample", 0)
                     for r in data.get("rows", [])) else "Training FLOPs = 3 x forward. ")
           + "Predict = latents, reconstruction, decoder variance and gamma per stamp"
           + (", BatchNorm folded into the layers as `astrovader predict` runs it (`model.inference_copy()`)."
              if any(r.get("predict_batchnorm_folded") for r in data.get("rows", [])) else "."), "",
           "| preset | variant | batch | MFLOP/sample (fwd) | train samples/s | train fraction of roof | "
           "… of roof + optimiser (update ms) | forward + gradients alone, of roof | ceiling (update floor ms) | "
           "predict stamps/s (batch) | predict fraction of fwd roof | step overhead (ms, batch 1) | "
           "input pipeline samples/s | peak RSS of the process so far (MiB) | load |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in data.get("rows", []):
        if "error" in r:
            op = re.search(r"compile graph .*?: (\w+) \(No registered", r["error"])
            why = f"XLA cannot compile {op.group(1)} on this device" if op else r["error"][:120]
            out.append(f"| {r['preset']} | {r.get('variant', '')} | {r.get('batch_size', '')} | "
                       f"not run: {why} ||||||||||||")
            continue
        if "train_fraction_of_roof" not in r:  # results written before the roofs existed
            out.append(f"| {r['preset']} | – | {r['batch_size']} | – | {fmt(r.get('train_samples_per_s'), 0)} | – | – | – | – | "
                       f"{fmt(r.get('predict_objects_per_s'), 0)} | – | – | {fmt(r.get('pipeline_samples_per_s'), 0)} | "
                       f"{fmt(r.get('peak_rss_mb'), 0)} | – |")
            continue
        out.append(f"| {r['preset']} | {r['variant']} | {r['batch_size']} | {fmt(r['forward_mflops_per_sample'], 2)} | "
                   f"{fmt(r['train_samples_per_s'], 0)} | {r['train_fraction_of_roof']:.0%} | "
                   f"{r.get('train_fraction_of_roof_plus_optimizer', float('nan')):.0%} "
                   f"({fmt(r.get('optimizer_update_ms'), 1)}) | {_pct(r.get('gradient_fraction_of_roof'))} | "
                   f"{_pct(r.get('train_fraction_ceiling'))} ({fmt(r.get('optimizer_floor_ms'), 1)}) | "
                   f"{fmt(r['predict_stamps_per_s'], 0)} ({r['predict_batch_size']}) | "
                   f"{r['predict_fraction_of_roof']:.0%} | {fmt(r['step_overhead_ms'], 1)} | "
                   f"{fmt(r['pipeline_samples_per_s'], 0)} | {fmt(r['peak_rss_mb'], 0)} | {r['load_average'][0]} |")
    caps = [f"{r['preset']} {cap:.0%}" for r in data.get("rows", []) if r.get("variant") == "default"
            and (cap := optimizer_cap(r)) is not None]
    if caps:
        out += ["", "A training step also applies the optimiser update, an element-wise pass over the weights and both "
                    "Adam moments (timed alone above), so the highest fraction of the matmul roof a step can reach is "
                    "roof time / (roof time + update time): " + ", ".join(caps) + " (default variant)."]
    ceil = [r for r in data.get("rows", []) if r.get("variant") == "default" and "train_fraction_ceiling" in r]
    if ceil:
        out += ["", "A step that computes its gradients and then applies Adam cannot pass the ceiling column: the "
                    "matmuls at the roof plus the update at its floor, Adam's 28 bytes per weight (weight, gradient "
                    "and both moments read; weight and moments written) at the best streaming rate measured in the "
                    "run ("
                    + ", ".join(f"{r['preset']} {r['stream_gb_per_s']:.0f} GB/s, {r['trainable_weights'] / 1e6:.2f}M "
                                f"weights: {r['train_fraction_ceiling']:.0%}" for r in ceil)
                    + "; default variant). The forward + gradients column is the step without any update."]
    return out


def render_gpu_speed(name: str, data: dict[str, Any]) -> list[str]:
    env = data.get("environment", {})
    rows = [r for r in data.get("rows", []) if "error" not in r]
    roofs = {r["precision"]: r["matmul_roof_tflops"] for r in rows}
    out = [f"## {name}: train and predict throughput on {data.get('device', '?')}", "",
           f"Keras {env.get('keras')} on the {data.get('keras_backend')} backend (Python {env.get('python')}), through "
           "`benchmarks/speed_keras.py`: the presets' own networks and VaDE objective (`astrovader.objective`) "
           "trained by `model.fit` with Adam, one XLA program per step; predict = mu, reconstruction, decoder "
           "variance and gamma per stamp. Not astrovader's TensorFlow `train_step`: the device machine has no "
           "TensorFlow. Wall time " + _wall(data) + (f". {data['note']}." if data.get("note") else "."), "",
           "Matmul roof measured in the same run (8192^3 product): "
           + ", ".join(f"{k} {v:.0f} TFLOP/s" for k, v in roofs.items())
           + " (float32 products run as TF32 on the tensor cores, JAX's default precision).", "",
           "| preset | precision | batch | input | MFLOP/sample (fwd) | train samples/s | train TFLOP/s (of roof) | "
           "predict stamps/s (batch) | predict of roof | step overhead (ms, batch 1) | 100M stamps: predict | "
           "100M stamps: one training epoch |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in data.get("rows", []):
        if "error" in r:
            out.append(f"| {r['preset']} | {r.get('precision', '')} | {r.get('batch_size', '')} | "
                       f"not run: {r['error'][:120]} |||||||||")
            continue
        xla = "" if r.get("jit_compile", True) else ", no XLA"
        dp = ", DataParallel" if r.get("data_parallel") else ""
        out.append(f"| {r['preset']} | {r['precision']}{xla}{dp} | {r['batch_size']} | "
                   f"{'x'.join(str(d) for d in r['input_shape'])} | {fmt(r['forward_mflops_per_sample'], 1)} | "
                   f"{fmt(r['train_samples_per_s'], 0)} | {r['train_tflops']:.1f} ({r['train_fraction_of_matmul_roof']:.1%}) | "
                   f"{fmt(r['predict_stamps_per_s'], 0)} ({r['predict_batch_size']}) | "
                   f"{r['predict_fraction_of_matmul_roof']:.1%} | {fmt(r.get('step_overhead_ms'), 2)} | "
                   f"{r['survey_hours_predict']:.2f} h | {r['survey_hours_one_epoch']:.2f} h |")
    if data.get("not_measured"):
        out += ["", f"Not measured: {data['not_measured']}."]
    return out


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.0%}"


def optimizer_cap(row: dict) -> float | None:
    """Highest fraction of the matmul roof a training step can reach once its optimiser update is paid."""
    try:
        roof_ms = 1e3 * row["batch_size"] / row["train_roof_samples_per_s"]
        return roof_ms / (roof_ms + row["optimizer_update_ms"])
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def _methods_table(runs, cols, labels) -> list[str]:
    out = ["| method | " + " | ".join(labels) + " |", "|---" * (len(cols) + 1) + "|"]
    for m, rs in _group(runs, "method").items():
        out.append(f"| {m} | " + " | ".join(pm(_vals(rs, c)) for c in cols) + " |")
    return out


def _best(runs, key, lower=False):
    means = {m: mean_sd(_vals(rs, key))[0] for m, rs in _group(runs, "method").items()}
    return means, (min if lower else max)(means, key=means.get)


def render_seed001(name: str, data: dict[str, Any]) -> list[str]:
    d = data.get("data", {})
    runs = data["runs"]
    out = [f"## {name}: CHASE latents (seed 001) -- SCAE vs CVAE vs IPCA vs SDL on simulated transients", "",
           f"Data `{d.get('spec')}` N = {d.get('n')} {tuple(d.get('shape', []))}, `{d.get('scaling')}` scaling, "
           f"{d.get('split')}; J = 21; {data.get('epochs')} epochs per net (Nadam, early stopping); "
           f"seeds {data.get('seeds')}; wall time {_wall(data)}. DNMSE@100: normalised input-space MSE of the "
           "100 test candidates nearest (in latent space) to a reference set of 10 % of the real transients "
           "(lower is better, Fig. 2a); AUC: one-hidden-layer MLP on 75 % of the test latents (Fig. 2c).", ""]
    out += _methods_table(runs, ["dnmse_at_100", "auc"], ["DNMSE@100", "AUC (latent MLP)"])
    auc, best_auc = _best(runs, "auc")
    dn, best_dn = _best(runs, "dnmse_at_100", lower=True)
    nets = [m for m in auc if m in ("scae", "cvae")]
    lin = [m for m in auc if m in ("ipca", "sdl")]
    if nets and lin:
        ok_auc = max(auc[m] for m in nets) > max(auc[m] for m in lin)
        ok_dn = min(dn[m] for m in nets) < min(dn[m] for m in lin)
        out += ["", f"Seed 001's ordering (VAE/AE latents beat IPCA/SDL): AUC → **{'reproduced' if ok_auc else 'not reproduced'}** "
                f"(best {best_auc}); DNMSE → **{'reproduced' if ok_dn else 'not reproduced'}** (best {best_dn})."]
    return out


def _partial_note(data) -> list[str]:
    return ([f"*Partial result: the run was cut short after {len(data.get('runs', []))} rows "
             "(`.partial.json`); the numbers below are from those rows only.*", ""] if data.get("partial") else [])


def render_seed002(name: str, data: dict[str, Any]) -> list[str]:
    d = data.get("data", {})
    runs = data["runs"]
    if data.get("partial"):
        return [f"## {name}", ""] + _partial_note(data) + render_seed002(name.replace(".partial", ""),
                                                                         {**data, "partial": False})[2:]
    wall = f"; wall time {_wall(data)}" if "wall_seconds" in data else ""
    if "segmentation" in name:
        seeds = sorted({r.get("seed") for r in runs})
        out = [f"## {name}: pixel-wise segmentation (seed 002 sec. 4) on simulated fields", "",
               f"{d.get('fields')} GalSim fields of {d.get('size')}² px per seed, seeds {seeds} "
               f"({len(runs)} fields), truth: {d.get('truth')}; segmentation AE trained {data.get('epochs')} epochs "
               f"on each field's own patches (no labels){wall}. Pixel IoU of the object mask with the truth "
               "(mean ± sd over fields).", "",
               "| method | pixel IoU |", "|---|---|"]
        for m in ("skip_ae_hypercolumns", "ae_hypercolumns", "threshold_2sigma"):
            out.append(f"| {m} | {pm(_vals(runs, m))} |")
        if runs and "true_object_fraction" in runs[0]:
            out += ["", f"True object fraction of the fields: {pm(_vals(runs, 'true_object_fraction'))}."]
        hdf = data.get("hdf")
        if hdf:
            line = (f"Hubble Deep Field (`builtin:hdf`, {tuple(hdf.get('shape', []))}, no truth mask): the skip AE + "
                    f"hypercolumns finds {hdf.get('n_objects')} objects covering {100 * hdf.get('object_fraction', 0):.1f}% "
                    f"of the pixels; sep finds {hdf.get('sep_3sigma_detections')} sources at 3σ (min area 10 px, "
                    "the `builtin:hdf` stamps)")
            if "iou_vs_sep_3sigma" in hdf:
                line += (f", its segmentation map covering {100 * hdf['sep_3sigma_object_fraction']:.1f}%; agreement "
                         f"(IoU) with sep's map: skip AE {fmt(hdf['iou_vs_sep_3sigma'])}, 2σ threshold "
                         f"{fmt(hdf['threshold_2sigma_iou_vs_sep_3sigma'])} "
                         f"({100 * hdf['threshold_2sigma_object_fraction']:.1f}% of the pixels)")
            if "seconds" in hdf:
                line += f"; {hdf['seconds'] / 60:.1f} min"
            out += ["", line + "."]
        return out
    out = [f"## {name}: star/galaxy separation (seed 002) -- V+M vs Vr+M vs A+Vr (vs seed 001's IPCA, SDL)", "",
           f"Data `{d.get('spec')}` N = {d.get('n')} {tuple(d.get('shape', []))}, `{d.get('scaling')}` scaling, "
           f"{d.get('split')}; {data.get('epochs')} epochs per model; seeds {data.get('seeds')}{wall}. "
           "AUC of the 1-D score (Isomap of the latents for V+M, Vr+M and the 2-component IPCA / SDL codes; the "
           "1-D latent itself for A+Vr) over all thresholds, side chosen as max(AUC, 1 - AUC); accuracy at the "
           f"threshold set from the known galaxy fraction ({fmt(d.get('galaxy_fraction'))}); AUC of a latent MLP "
           "(trained on 75 % of the test latents, with labels) for reference. Mean ± sd over seeds.", ""]
    if data.get("note"):
        out += [data["note"], ""]
    cols = ["auc", "auc_tsne", "accuracy", "auc_mlp", "train_seconds"]
    labels = ["AUC (Isomap / 1-D)", "AUC (t-SNE)", "accuracy at known proportion", "AUC (latent MLP)", "train s"]
    if any("auc_standardized" in r for r in runs):
        cols.insert(2, "auc_standardized")
        labels.insert(2, "AUC (Isomap, standardised latents)")
    out += ["| method | " + " | ".join(labels) + " |", "|---" * (len(cols) + 1) + "|"]
    for m, rs in _group(runs, "method").items():
        out.append(f"| {m} | " + " | ".join(pm(_vals(rs, c), 0 if c == "train_seconds" else 3)
                                            if _vals(rs, c) else "–" for c in cols) + " |")
    auc, best = _best(runs, "auc")
    mlp, best_mlp = _best(runs, "auc_mlp")
    vae = [m for m in auc if m in ("V+M", "Vr+M", "A+Vr")]
    lin = [m for m in auc if m in ("ipca", "sdl")]
    if vae and lin:
        ok = max(auc[m] for m in vae) > max(auc[m] for m in lin)
        ok_mlp = max(mlp[m] for m in vae) > max(mlp[m] for m in lin)
        wins = {}
        for key in ("auc", "auc_mlp"):
            by_seed = {}
            for r in runs:
                if r.get(key) is not None:
                    by_seed.setdefault(r["seed"], {})[r["method"]] = r[key]
            wins[key] = (sum(max(v for m, v in ms.items() if m in vae) > max(v for m, v in ms.items() if m in lin)
                             for ms in by_seed.values() if any(m in vae for m in ms) and any(m in lin for m in ms)),
                         len(by_seed))
        out += ["", f"Seed 001's ordering (VAE latents beat IPCA/SDL): 1-D AUC → "
                f"**{'reproduced' if ok else 'not reproduced'}** (best {best} {fmt(auc[best])}, best linear "
                f"{fmt(max(auc[m] for m in lin))}; the best VAE beats the best linear code on {wins['auc'][0]} of "
                f"{wins['auc'][1]} seeds); latent-MLP AUC → **{'reproduced' if ok_mlp else 'not reproduced'}** "
                f"(best {best_mlp} {fmt(mlp[best_mlp])}, best linear {fmt(max(mlp[m] for m in lin))}; "
                f"{wins['auc_mlp'][0]} of {wins['auc_mlp'][1]} seeds)."]
    if "V+M" in auc and ("Vr+M" in auc or "A+Vr" in auc):
        per_seed = {}
        for r in runs:
            per_seed.setdefault(r["seed"], {})[r["method"]] = r.get("auc")
        parts, verdicts = [], []
        for m in ("Vr+M", "A+Vr"):
            diffs = [ms[m] - ms["V+M"] for ms in per_seed.values() if ms.get(m) is not None and ms.get("V+M") is not None]
            if not diffs:
                continue
            md, sd = mean_sd(diffs)
            se = sd / max(1, len(diffs)) ** 0.5
            v = "better" if md - 2 * se > 0 else "worse" if md + 2 * se < 0 else "no clear difference"
            verdicts.append(v)
            parts.append(f"{m} − V+M = {md:+.4f} ± {se:.4f} (s.e., paired over {len(diffs)} seeds, higher on "
                         f"{sum(d > 0 for d in diffs)}): {v}")
        ok = verdicts and all(v == "better" for v in verdicts)
        some = any(v == "better" for v in verdicts)
        out += ["", "Seed 002's claim (the double-peak prior and the hierarchy help over V+M): " + "; ".join(parts)
                + f" → **{'reproduced' if ok else 'partly reproduced' if some else 'not reproduced'}** "
                "(better = the mean paired difference exceeds two standard errors). Per seed (1-D AUC): "
                + "; ".join(f"{s}: " + ", ".join(f"{m} {fmt(v)}" for m, v in ms.items() if v is not None)
                            for s, ms in sorted(per_seed.items())) + "."]
    return out


def render_classifiers(name: str, data: dict[str, Any]) -> list[str]:
    """Deep-HiTS and RCNN (seed 003) results, rendered by :func:`benchmarks.classifiers.render`."""
    from benchmarks.classifiers import render

    return render(name, data)


_SAME_AE = " [same AE]"
_SAME_SEED = " [same seed]"  # a restart of the seed's run (train.restarts); the `vade` row is the one kept
_OWN = (_SAME_AE, " [same run]", _SAME_SEED)  # rows from the VaDE run itself: diagnostics, not baselines
#: Row name of a supervised reference on a VaDE run's own codes (``benchmarks.quality._probe_labels``).
PROBE = "labelled probe"


def clustering_verdict(data: dict[str, Any]) -> list[str]:
    """Target lines of a ``clustering_<set>`` result (issue 9): each 'yes'/'no' with its numbers."""
    runs, key, tg = data["runs"], data.get("score", "acc_hungarian"), data.get("targets", {})
    g = _group(runs, "method")
    vade = _vals(g.get("vade", []), key)
    m, sd = mean_sd(vade)
    n_nan = sum(bool(r.get("nan")) for r in g.get("vade", []))
    base = {k: mean_sd(_vals(rs, key))[0] for k, rs in g.items() if k != "vade" and not k.endswith(_OWN)}
    best = max(base, key=lambda k: base[k], default=None)
    spread = f" ± {fmt(sd)} over {len(vade)} seeds" if len(vade) > 1 else f" on {len(vade)} seed (no spread yet)"
    out = [f"VaDE {key}: {fmt(m)}{spread}, {n_nan} NaN runs."]
    if "acc_mean" in tg:
        out.append(f"- mean ≥ {tg['acc_mean']}: **{'yes' if m >= tg['acc_mean'] else 'no'}**")
    if "acc_sd" in tg:
        out.append(f"- sd ≤ {tg['acc_sd']}: **{'yes' if sd <= tg['acc_sd'] else 'no'}**")
    if "margin" in tg and best is not None:
        out.append(f"- ≥ best baseline ({best} {fmt(base[best])}) + {tg['margin']}: "
                   f"**{'yes' if m >= base[best] + tg['margin'] else 'no'}**")
    elif best is not None:
        out.append(f"- beats every baseline (best: {best} {fmt(base[best])}): **{'yes' if m > base[best] else 'no'}**")
    if "nmi" in tg:
        nmi = mean_sd(_vals(g.get("vade", []), "nmi"))[0]
        out.append(f"- NMI ≥ {tg['nmi']}: **{'yes' if nmi >= tg['nmi'] else 'no'}** ({fmt(nmi)})")
    if "train_minutes" in tg:
        t = max(_vals(g.get("vade", []), "train_seconds"), default=float("nan")) / 60
        out.append(f"- training ≤ {tg['train_minutes']} min per seed: **{'yes' if t <= tg['train_minutes'] else 'no'}** "
                   f"(slowest {t:.1f} min, shared machine)")
    if vade and best is not None:
        lows = [r for r in g["vade"] if not r.get("nan") and r.get(key, 0) <= base[best]]
        out.append(f"- seeds at or below the best baseline: {len(lows)} of {len(vade)}")
    own = _vals(g.get("n2d" + _SAME_AE, []), key)
    if vade and own:  # the strongest route from VaDE's own pretrained codes, without the VaDE phase
        o = mean_sd(own)[0]
        out.append(f"- above N2D on its own pretrained codes (n2d{_SAME_AE} {fmt(o)}): **{'yes' if m > o else 'no'}**")
    need = max([tg.get("acc_mean", 0)] + ([base[best] + tg["margin"]] if "margin" in tg and best else []))

    def against(ref: float) -> str:  # where the target sits; nothing when none is defined (no baselines run)
        return f"; the target ({fmt(need)}) is {'above' if need > ref else 'below'} it" if need > 0 else ""

    probe = _vals(g.get(PROBE + _OWN[1], []), key)
    if vade and probe:
        p = mean_sd(probe)[0]
        out.append(f"- a labelled linear probe of VaDE's own final codes ({PROBE}{_OWN[1]}, 5-fold): {fmt(p)}; "
                   f"VaDE reaches {m / p:.1%} of it{against(p)}")
    if data.get("ceiling") and vade:
        top = max(data["ceiling"]["runs"], key=lambda r: r["acc_trained_on_fresh"])
        c = top["acc_trained_on_fresh"]
        name = data.get("ceiling_name", f"ceiling_{data.get('set')}")
        out.append(f"- supervised ceiling (`{name}`: HGB on {top['features']}, {top['scaling']}, trained "
                   f"on {data['ceiling']['data']['n_fresh']} labelled fresh stamps): {fmt(c)}; VaDE reaches "
                   f"{m / c:.1%} of it{against(c)}")
        own_cv = max(data["ceiling"]["runs"], key=lambda r: r["acc_cv5_benchmark_set"])
        c = own_cv["acc_cv5_benchmark_set"]
        out.append(f"- supervised with the benchmark stamps' own labels (`{name}`: HGB on {own_cv['features']}, "
                   f"{own_cv['scaling']}, 5-fold CV on the {data['ceiling']['data']['n']} stamps): {fmt(c)}; VaDE, "
                   f"without a label, reaches {m / c:.1%} of it{against(c)}")
    return out


def render_ceiling(name: str, data: dict[str, Any]) -> list[str]:
    d = data["data"]
    out = [f"## {name}: how separable `{d['spec']}`'s classes are with labels (supervised reference)", "",
           f"HistGradientBoosting on the `{data['preset']}` preset's stamps ({d['scaling']}) and on the unscaled ones: "
           f"5-fold CV on the {d['n']} benchmark stamps, and trained on {d['n_fresh']} freshly simulated labelled "
           f"stamps (same generator, seed {d['fresh_seed']}) then scored on the benchmark stamps. No clustering can "
           "beat the Bayes rate, which these lower-bound; read the clustering targets against them.", "",
           "| features | scaling | 5-fold CV on the benchmark set | trained on fresh stamps | seconds |",
           "|---|---|---|---|---|"]
    out += [f"| {r['features']} ({r['n_features']}) | {r['scaling']} | {fmt(r['acc_cv5_benchmark_set'])} | "
            f"{fmt(r['acc_trained_on_fresh'])} | {r['seconds']:.0f} |" for r in data["runs"]]
    return out


def render_clustering(name: str, data: dict[str, Any]) -> list[str]:
    key = data.get("score", "acc_hungarian")
    d = data["data"]
    out = [f"## {name}: preset `{data['config'].get('name')}` on `{d.get('spec')}` vs the baselines a user would pick",
           "", _cfg_line(data), f"Class counts {d.get('class_counts')} {d.get('label_names') or ''}; "
           f"seeds {data.get('seeds')}; score `{key}`. Rows marked [same AE] cluster the VaDE run's own "
           "pretrained codes (its initialisation), so VaDE minus them is what the VaDE phase adds."
           + (" Rows marked [same run] score the trained VaDE itself another way (γ at the posterior mean "
              "instead of L samples)." if any(r["method"].startswith("vade, γ") for r in data["runs"]) else "")
           + (f" Rows marked{_SAME_SEED} are the seed's restarts (`train.restarts`: whole runs with seeds s, "
              "s + 1000, ...); the `vade` row is the one the label-free criterion kept."
              if any(r["method"].endswith(_SAME_SEED) for r in data["runs"]) else "")
           + (f" `{PROBE}` rows are no clustering: a logistic regression trained *with* the labels on those "
              "codes (5-fold cross-validated), how much of the classes the codes hold."
              if any(r["method"].startswith(PROBE) for r in data["runs"]) else "")
           + (f" {data['note']}" if data.get("note") else ""), "",
           "| method | ACC Hungarian | ACC majority (eq. 9) | NMI | ARI | seconds | seeds | NaN |",
           "|---|---|---|---|---|---|---|---|"]
    for m, rs in _group(data["runs"], "method").items():
        ok = [r for r in rs if not r.get("nan")]
        out.append(f"| {'**vade**' if m == 'vade' else m} | {pm(_vals(rs, 'acc_hungarian'))} | "
                   f"{pm(_vals(rs, 'acc_majority'))} | {pm(_vals(rs, 'nmi'))} | {pm(_vals(rs, 'ari'))} | "
                   f"{pm(_vals(rs, 'seconds'), 0)} | {len(ok)} | {len(rs) - len(ok)} |")
    # jobs run on separate seeds merge into one file in the order they finished
    vade = sorted((r for r in data["runs"] if r["method"] == "vade" and not r.get("nan")), key=lambda r: r["seed"])
    if vade:
        out += ["", "VaDE per seed: " + ", ".join(f"{r['seed']}: {fmt(r.get(key))}" for r in vade)]
    return out + [""] + clustering_verdict(data)


RENDERERS = [
    ("clustering", render_clustering),
    ("ceiling", render_ceiling),
    ("transients", render_transients),
    ("galaxies", render_galaxies),
    ("speed", render_speed),
    ("gpu_speed", render_gpu_speed),
    ("classifiers", render_classifiers),
    ("seed001", render_seed001),
    ("seed002", render_seed002),
]
