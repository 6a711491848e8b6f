"""Convert any supported input to TFRecord shards, streaming batch by batch.

Example::

    python data_prep/to_shards.py stamps/catalog.csv out/shards --shard-size 2000
    python data_prep/to_shards.py big_cube.fits out/shards --resize 64 64 --grayscale

Inputs: directories or CSV catalogs of PNG/JPEG/TIFF/FITS, FITS cubes, npy/npz, HDF5,
other shards or ``builtin:NAME``. Labels, ids and catalog columns are carried over when
the whole input fits in memory; with ``--stream`` only ids and images are (larger than
memory inputs). Existing shards are never overwritten without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_prep._common import run_main

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Convert stamps (any supported input) to TFRecord shards.")
    p.add_argument("input", help="path (dir, CSV, FITS, npy/npz, HDF5, shards) or builtin:NAME")
    p.add_argument("out", help="output directory for shard-*.tfrecord and manifest.json")
    p.add_argument("--shard-size", type=int, default=1000, help="stamps per shard (default 1000)")
    p.add_argument("--n", type=int, default=None, help="convert only the first N stamps")
    p.add_argument("--label-column", default=None, help="catalog label column (or 'a,b,c' vote fractions)")
    p.add_argument("--grayscale", action="store_true", help="average the bands into one channel")
    p.add_argument("--resize", type=int, nargs=2, metavar=("H", "W"), default=None, help="resize stamps to H W")
    p.add_argument("--nan-policy", choices=("error", "fill", "drop"), default="error",
                   help="what to do with NaN/Inf pixels (default error)")
    p.add_argument("--stream", action="store_true",
                   help="stream batch by batch (inputs larger than memory; keeps ids and images only)")
    p.add_argument("--batch-size", type=int, default=1024, help="stamps read per batch with --stream")
    p.add_argument("--overwrite", action="store_true", help="replace shards written there before")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns 0 on success, 2 with a one-line error on bad input."""
    args = _parser().parse_args(argv)

    def body() -> int:
        from astrovader.config import DataConfig
        from astrovader.data import StampSet, iter_batches, load, write_shards
        from astrovader.errors import DataError

        out = Path(args.out)
        if out.is_dir() and any(out.iterdir()) and not args.overwrite:
            raise DataError(f"{out}: output directory is not empty; choose a new directory or pass --overwrite")
        cfg = DataConfig(spec=args.input, n=args.n, grayscale=args.grayscale, resize=args.resize,
                         nan_policy=args.nan_policy, label_column=args.label_column)
        if args.stream:
            chunks = (StampSet(images=x, ids=ids, source=args.input) for ids, x in iter_batches(cfg, args.batch_size))
        else:
            chunks = load(cfg)
        m = write_shards(chunks, out, args.shard_size, overwrite=args.overwrite, progress=not args.quiet)
        print(f"{m['count']} stamps {tuple(m['shape'])} -> {len(m['shards'])} shard(s) in {out}")
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
