"""Input-pipeline throughput of :func:`astrovader.data.make_dataset` vs the model's speed.

Measures images/s delivered by the tf.data pipeline (in-memory arrays: cache -> shuffle ->
batch -> augment -> prefetch; and streamed TFRecord shards with per-batch preprocessing)
for 21x21 and 64x64 stamps, with and without random flips + 90-degree rotations, and the
time to generate the built-in simulated sets. Prints a markdown table and writes
``benchmarks/results/data_throughput.json``.

The model trains at ~500 img/s on 21x21 HiTS stamps and ~150 img/s on 64x64 (2-core CPU,
batch 100; see DESIGN.md): the pipeline must deliver well above that so input never starves
training. Example::

    python benchmarks/data_throughput.py            # full run (~1-2 min)
    python benchmarks/data_throughput.py --quick    # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["main", "measure"]

MODEL_SPEED = {21: 500.0, 64: 150.0}  # img/s, training on the 2-core CPU (DESIGN.md)


def measure(ds, epochs: int) -> tuple[float, float]:
    """(first-epoch img/s, median img/s of the following epochs) for a dataset of batches.

    The first epoch fills the cache; the median of the later epochs resists interference
    from other processes on a shared machine.
    """
    rates = []
    for _ in range(epochs + 1):
        t0 = time.perf_counter()
        n = sum(int(b.shape[0]) for b in ds)
        rates.append(n / (time.perf_counter() - t0))
    return rates[0], float(np.median(rates[1:]))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Measure make_dataset throughput (images/s) against the model's speed.")
    p.add_argument("--n21", type=int, default=20000, help="number of 21x21 stamps (default 20000)")
    p.add_argument("--n64", type=int, default=5000, help="number of 64x64 stamps (default 5000)")
    p.add_argument("--batch-size", type=int, default=100, help="global batch size (default 100)")
    p.add_argument("--epochs", type=int, default=5, help="timed epochs after the first (default 5)")
    p.add_argument("--no-generation", action="store_true", help="skip timing the built-in set generation")
    p.add_argument("--quick", action="store_true", help="tiny sizes, nothing written (smoke test)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "data_throughput.json"),
                   help="JSON output path")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 0."""
    args = _parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from astrovader.config import DataConfig
    from astrovader.data import StampSet, make_dataset, write_shards

    if args.quick:
        args.n21, args.n64, args.epochs = 400, 200, 1
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size, n in ((21, args.n21), (64, args.n64)):
            x = rng.normal(size=(n, size, size, 1)).astype(np.float32)
            for aug in (False, True):
                ds = make_dataset(x, args.batch_size, shuffle=True, augment_flips=aug, augment_rot90=aug, seed=0)
                first, steady = measure(ds, args.epochs)
                rows.append({"size": size, "source": "array", "augment": aug, "n": n,
                             "first_epoch_img_s": first, "img_s": steady})
            shard_dir = Path(tmp) / f"s{size}"
            write_shards(StampSet(images=x), shard_dir, shard_size=2000)
            cfg = DataConfig(spec=str(shard_dir), scaling="chase")
            for cache in (False, True):
                ds = make_dataset(cfg, args.batch_size, shuffle=True, augment_flips=True, augment_rot90=True,
                                  seed=0, cache=cache)
                first, steady = measure(ds, args.epochs)
                rows.append({"size": size, "source": "shards+chase" + (" (cached)" if cache else ""),
                             "augment": True, "n": n, "first_epoch_img_s": first, "img_s": steady})
    for r in rows:
        r["model_img_s"] = MODEL_SPEED[r["size"]]
        r["headroom"] = r["img_s"] / r["model_img_s"]
    gen = []
    if not args.no_generation:
        from astrovader.data import generate_builtin

        for name, n in (("transients", 4000), ("galaxies", 2000)):
            n = 200 if args.quick else n
            t0 = time.perf_counter()
            generate_builtin(name, n=n, seed=0)
            gen.append({"name": name, "n": n, "seconds": time.perf_counter() - t0})
    lines = ["| stamps | source | flips+rot90 | first epoch img/s | steady img/s | model img/s | headroom |",
             "|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['size']}x{r['size']} | {r['source']} | {'yes' if r['augment'] else 'no'} | "
                     f"{r['first_epoch_img_s']:,.0f} | {r['img_s']:,.0f} | {r['model_img_s']:.0f} | {r['headroom']:.0f}x |")
    for g in gen:
        lines.append(f"\nbuiltin:{g['name']} n={g['n']}: generated in {g['seconds']:.1f} s")
    print("\n".join(lines))
    if not args.quick:
        payload = {
            "experiment": "data_throughput", "batch_size": args.batch_size, "epochs": args.epochs,
            "rows": rows, "generation": gen, "markdown": "\n".join(lines),
            "environment": {"python": platform.python_version(), "tensorflow": tf.__version__,
                            "cpu_count": os.cpu_count(), "load_avg_1min": os.getloadavg()[0],
                            "date": time.strftime("%Y-%m-%d %H:%M:%S")},
        }
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmpf = out.with_name(f".{out.name}.tmp")
        tmpf.write_text(json.dumps(payload, indent=1))
        os.replace(tmpf, out)
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
