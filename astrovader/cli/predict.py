"""``astrovader predict``: per-object clusters, gamma, latents, decoder variance and MSE.

Stamps are streamed in batches (the catalogue never has to fit in memory) and results
are written in parts to ``OUT.parts/part-<first row>.npz``, each atomically (temporary
file + rename). A killed run started again with the same arguments continues after
the last complete part, so no row is lost or written twice; when every batch is done
the parts are joined into ``OUT`` (CSV, or ``.npz`` with one array per column) and the
parts folder is removed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np

from astrovader.cli._common import conform, data_config, load_run, notice
from astrovader.errors import AstrovaderError

__all__ = ["add_parser", "run", "predict_arrays"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "predict", help="cluster, gamma and latents for every stamp of a catalogue (resumable)",
        description="Write one row per stamp: id, cluster, gamma_0..gamma_{K-1}, mu_0..mu_{J-1}, "
        "decoder_variance, mse. Streams in batches with a progress bar; an interrupted run continues "
        "where it stopped when started again with the same arguments.",
    )
    p.add_argument("--run", required=True, metavar="RUN_DIR", help="run directory with model.keras")
    p.add_argument("--data", required=True, metavar="SPEC", help="stamps to predict (preprocessed with the run's data settings)")
    p.add_argument("--out", required=True, metavar="FILE", help="output table: .csv (default) or .npz")
    p.add_argument("--batch-size", type=int, default=256, metavar="B", help="stamps per model call (default: %(default)s)")
    p.add_argument("--part-size", type=int, default=10000, metavar="R",
                   help="rows per checkpointed part; a restart loses at most this much work (default: %(default)s)")
    p.add_argument("--mc-samples", type=int, metavar="L",
                   help="Monte-Carlo samples of z averaged for gamma (default: the model's, seed 000 uses 10)")
    p.add_argument("--overwrite", action="store_true", help="replace FILE and discard unfinished parts")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def predict_arrays(model, x: np.ndarray, batch_size: int = 256, mc_samples: int | None = None) -> dict:
    """Per-object predictions for stamps ``x`` (already conformed to the model)."""
    mu, _ = model.encode(x, batch_size=batch_size)
    mu = np.asarray(mu, dtype=np.float32)
    x_hat = np.asarray(model.decode(mu, batch_size=batch_size))
    out = {"mu": mu, "mse": np.mean((x - x_hat).reshape(len(x), -1) ** 2, axis=1).astype(np.float32),
           "decoder_variance": np.asarray(model.decoder_variance(x, batch_size=batch_size), np.float32).reshape(-1)}
    if hasattr(model, "prior"):
        g = np.asarray(model.cluster_probabilities(x, mc_samples=mc_samples, batch_size=batch_size), np.float32)
        out["gamma"] = g
        out["cluster"] = g.argmax(axis=1).astype(np.int64)
    return out


def _write_part(path: Path, arrays: dict) -> None:
    """Write one part atomically: a reader sees either nothing or the whole part."""
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _completed_parts(parts_dir: Path) -> tuple[list[Path], int]:
    """Contiguous complete parts from row 0 and the next row to do; stray parts are removed."""
    for tmp in parts_dir.glob("*.tmp.npz"):
        tmp.unlink()
    done, nxt = [], 0
    for path in sorted(parts_dir.glob("part-*.npz")):
        start = int(path.stem.split("-")[1])
        if start != nxt:
            path.unlink()  # not contiguous with what is done: redo these rows
            continue
        with np.load(path) as z:
            # input stamps consumed (rows may be fewer when data.nan_policy drops stamps)
            nxt = start + int(z["consumed"]) if "consumed" in z.files else start + len(z["id"])
        done.append(path)
    return done, nxt


def _join(parts: list[Path], out: Path, k: int | None, j: int) -> int:
    cols = ["id"] + (["cluster"] + [f"gamma_{i}" for i in range(k)] if k else []) + \
        [f"mu_{i}" for i in range(j)] + ["decoder_variance", "mse"]
    tmp = out.with_name(out.name + ".tmp")
    n = 0
    if out.suffix == ".npz":
        data = [{k_: v for k_, v in np.load(p).items() if k_ != "consumed"} for p in parts]
        merged = {key: np.concatenate([d[key] for d in data]) for key in (data[0] if data else {})}
        with tmp.open("wb") as f:
            np.savez(f, **merged)
        n = len(merged.get("id", []))
    else:
        with tmp.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for p in parts:
                with np.load(p) as z:
                    blocks = [z["id"].astype(str)[:, None]]
                    if k:
                        blocks += [z["cluster"][:, None].astype(str), np.char.mod("%.6g", z["gamma"])]
                    blocks += [np.char.mod("%.6g", z["mu"]), np.char.mod("%.6g", z["decoder_variance"][:, None]),
                               np.char.mod("%.6g", z["mse"][:, None])]
                    rows = np.concatenate(blocks, axis=1)
                    w.writerows(rows.tolist())
                    n += len(rows)
    os.replace(tmp, out)
    return n


def run(args) -> int:
    from tqdm import tqdm

    from astrovader.data import iter_batches

    if args.batch_size < 1 or args.part_size < 1:
        raise AstrovaderError("--batch-size and --part-size must be at least 1")
    out = Path(args.out)
    if out.suffix not in (".csv", ".npz"):
        raise AstrovaderError(f"{out}: give a .csv or .npz output file")
    parts_dir = out.with_name(out.name + ".parts")
    if args.overwrite:
        out.unlink(missing_ok=True)
        shutil.rmtree(parts_dir, ignore_errors=True)
    elif out.exists():
        raise AstrovaderError(f"{out} exists; use --overwrite or another --out")
    cfg, model = load_run(args.run)
    k = getattr(model, "n_clusters", None)
    j = int(cfg.model.latent_dim)
    dc = data_config(cfg.data, spec=args.data)
    manifest = {"run": str(Path(args.run).resolve()), "data": args.data, "part_size": args.part_size,
                "mc_samples": args.mc_samples, "n_clusters": k, "latent_dim": j}
    parts_dir.mkdir(parents=True, exist_ok=True)
    mpath = parts_dir / "manifest.json"
    if mpath.is_file():
        old = json.loads(mpath.read_text())
        if old != manifest:
            raise AstrovaderError(f"{parts_dir} holds an unfinished prediction with other settings ({old}); "
                                  "use --overwrite to start again")
    else:
        mpath.write_text(json.dumps(manifest, indent=2))
    parts, start = _completed_parts(parts_dir)
    if start:
        notice(f"resuming after {start} rows already predicted in {parts_dir}")
    bar = tqdm(initial=start, unit="stamps", desc="predict", disable=args.no_progress, mininterval=1.0)
    pending: list[dict] = []
    pending_rows, part_start, first = 0, start, True

    def flush():
        nonlocal pending, pending_rows, part_start
        if not pending:
            return
        arrays = {key: np.concatenate([b[key] for b in pending]) for key in pending[0]}
        arrays["consumed"] = np.int64(pending_rows)
        path = parts_dir / f"part-{part_start:012d}.npz"
        _write_part(path, arrays)
        parts.append(path)
        part_start += pending_rows
        pending, pending_rows = [], 0

    for ids, batch in iter_batches(dc, args.batch_size, start=start):
        x = conform(batch, cfg.model.input_shape, quiet=not first)
        first = False
        res = predict_arrays(model, x, batch_size=args.batch_size, mc_samples=args.mc_samples)
        res["id"] = np.asarray(ids).astype(str)
        pending.append(res)
        pending_rows += args.batch_size  # input stamps consumed by this batch
        bar.update(len(x))
        if pending_rows >= args.part_size:
            flush()
    flush()
    bar.close()
    n = _join(parts, out, k, j)
    shutil.rmtree(parts_dir, ignore_errors=True)
    print(f"wrote {n} rows to {out}")
    return 0
