"""Throughput benchmarks: training samples/s, prediction objects/s, input pipeline, memory.

For every preset and batch size: a VaDE is built from the preset (input shape from the
preset or ``--shape``), trained for one epoch on synthetic stamps after a warm-up (tracing)
epoch, and timed; ``cluster_probabilities`` (gamma with the preset's L Monte-Carlo samples)
is timed over ``--predict`` stamps; the ``tf.data`` pipeline of
:func:`astrovader.data.make_dataset` is timed alone (iteration without a model) so the two
rates can be compared. Peak resident memory is that of the whole process so far.

Writes ``benchmarks/results/speed.json`` and regenerates ``benchmarks/RESULTS.md``.
Numbers depend on the machine's load; the JSON records the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _common as C  # noqa: E402

__all__ = ["main", "measure"]

# Input shapes used when a preset's stamps are larger than the built-in data.
DEFAULT_SHAPES = {"astrovader": (64, 64, 1)}


def _make_dataset(x: np.ndarray, batch_size: int):
    try:
        from astrovader.data import make_dataset

        return make_dataset(x, batch_size, shuffle=True, seed=0, cache=True)
    except ImportError:  # data layer missing: an equivalent plain pipeline
        import tensorflow as tf

        ds = tf.data.Dataset.from_tensor_slices(x).cache().shuffle(len(x), seed=0)
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def measure(preset: str, batch_size: int, n_train: int, n_predict: int,
            shape: tuple[int, ...] | None = None, seed: int = 0) -> dict[str, Any]:
    """Time training, prediction and the input pipeline for one preset and batch size."""
    import keras

    from astrovader.config import load_preset
    from astrovader.models import build_model
    from astrovader.training import make_optimizer

    cfg = load_preset(preset)
    shape = tuple(shape or DEFAULT_SHAPES.get(preset) or cfg.model.input_shape or (21, 21, 1))
    cfg.model.input_shape = shape
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.random((n_train, *shape), dtype=np.float32)
    steps = int(np.ceil(n_train / batch_size))
    model = build_model(cfg.model, kind="vade")
    cfg.train.batch_size = batch_size
    model.compile(optimizer=make_optimizer(cfg.train, steps))
    ds = _make_dataset(x, batch_size)

    t0 = time.perf_counter()
    model.fit(ds, epochs=1, verbose=0)  # trace + cache fill
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.fit(ds, epochs=1, verbose=0)
    train_dt = time.perf_counter() - t0

    xp = x[:n_predict] if n_predict <= n_train else rng.random((n_predict, *shape), dtype=np.float32)
    model.cluster_probabilities(xp[: min(len(xp), 256)])  # trace
    t0 = time.perf_counter()
    model.cluster_probabilities(xp)
    pred_dt = time.perf_counter() - t0

    n_seen = 0
    t0 = time.perf_counter()
    for batch in ds:
        n_seen += int(batch.shape[0])
    pipe_dt = time.perf_counter() - t0
    return {
        "preset": preset,
        "architecture": cfg.model.architecture,
        "input_shape": list(shape),
        "latent_dim": cfg.model.latent_dim,
        "n_clusters": cfg.model.n_clusters,
        "mc_samples": cfg.model.mc_samples,
        "batch_size": batch_size,
        "n_train": n_train,
        "warmup_seconds": warm,
        "train_samples_per_s": n_train / train_dt,
        "n_predict": len(xp),
        "predict_objects_per_s": len(xp) / pred_dt,
        "pipeline_samples_per_s": n_seen / pipe_dt,
        "peak_rss_mb": C.peak_rss_mb(),
        "load_average": list(os.getloadavg()),
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.speed",
        description="Training/prediction/input-pipeline throughput per preset and batch size; "
        "writes benchmarks/results/speed.json and regenerates benchmarks/RESULTS.md.",
    )
    p.add_argument("--presets", default="mnist-vade,hits-vade-ar,astrovader",
                   help="comma-separated presets (default mnist-vade,hits-vade-ar,astrovader)")
    p.add_argument("--batch-sizes", type=C.int_list, default=[64, 256],
                   help="comma-separated training batch sizes (default 64,256)")
    p.add_argument("--n-train", type=int, default=2048, help="synthetic stamps per timed epoch (default 2048)")
    p.add_argument("--n-predict", type=int, default=2048, help="stamps for the prediction timing (default 2048)")
    p.add_argument("--results-dir", type=Path, default=C.RESULTS_DIR, help="where speed.json goes")
    p.add_argument("--name", default="speed", help="result name (default speed)")
    p.add_argument("--quick", action="store_true", help="smoke test: demo preset, batch 32, 64 stamps")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    if args.quick:
        presets, args.batch_sizes, args.n_train, args.n_predict = ["demo"], [32], 64, 64
        args.name = "quick_speed" if args.name == "speed" else args.name
    t0 = time.perf_counter()
    rows = []
    for preset in presets:
        for bs in args.batch_sizes:
            r = measure(preset, bs, args.n_train, args.n_predict)
            rows.append(r)
            print(f"{preset} batch {bs}: train {r['train_samples_per_s']:.0f}/s, predict "
                  f"{r['predict_objects_per_s']:.0f}/s, pipeline {r['pipeline_samples_per_s']:.0f}/s, "
                  f"peak {r['peak_rss_mb']:.0f} MiB", flush=True)
    payload = {"experiment": "speed", "rows": rows, "wall_seconds": time.perf_counter() - t0,
               "environment": C.environment()}
    path = C.save_json(args.name, payload, args.results_dir)
    if args.results_dir == C.RESULTS_DIR and not args.quick:
        C.write_results_md()
    print(f"done in {time.perf_counter() - t0:.0f}s: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
