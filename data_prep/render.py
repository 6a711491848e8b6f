"""Render a built-in or synthetic stamp set to ``.npz`` or TFRecord shards.

Example::

    python data_prep/render.py transients out/transients.npz --n 4000 --seed 0
    python data_prep/render.py galaxies out/galaxy_shards --format tfrecord --shard-size 500

The npz holds ``images``, ``labels``, ``ids``, ``label_names`` and ``col_<name>`` columns,
readable by ``astrovader.data.load``. Existing outputs are never overwritten without
``--overwrite``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_prep._common import refuse_existing, run_main

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from astrovader.data import builtin_names

    p = argparse.ArgumentParser(description="Render a built-in/synthetic stamp set to npz or TFRecord shards.")
    p.add_argument("name", choices=builtin_names(), help="dataset to render")
    p.add_argument("out", help="output .npz file, or a directory for --format tfrecord")
    p.add_argument("--n", type=int, default=None, help="number of stamps (default: the set's default size)")
    p.add_argument("--seed", type=int, default=0, help="generation seed (default 0)")
    p.add_argument("--format", choices=("npz", "tfrecord"), default=None,
                   help="output format (default: npz if OUT ends with .npz, else tfrecord)")
    p.add_argument("--shard-size", type=int, default=1000, help="stamps per TFRecord shard (default 1000)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns 0 on success, 2 with a one-line error on bad input."""
    args = _parser().parse_args(argv)

    def body() -> int:
        from astrovader.data import generate_builtin, write_shards

        out = Path(args.out)
        fmt = args.format or ("npz" if out.suffix == ".npz" else "tfrecord")
        if fmt == "npz":
            refuse_existing(out, args.overwrite)
        t0 = time.perf_counter()
        s = generate_builtin(args.name, n=args.n, seed=args.seed, progress=not args.quiet)
        took = time.perf_counter() - t0
        if fmt == "npz":
            from astrovader.data.writers import write_stamps

            write_stamps(s, out)
        else:
            write_shards(s, out, args.shard_size, overwrite=args.overwrite, progress=not args.quiet)
        print(f"builtin:{args.name}: {len(s)} stamps {s.shape} rendered in {took:.1f} s -> {out}")
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
