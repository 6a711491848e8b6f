"""``astrovader data``: inspect stamp sets (``info``) and render built-in sets to files (``render``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from astrovader.cli._common import load_stamps
from astrovader.cli._flags import COUNT, SEED
from astrovader.config import DataConfig
from astrovader.errors import AstrovaderError

__all__ = ["add_parser", "run_info", "run_render"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("data", help="inspect stamps or render built-in data sets",
                              description="Inspect a stamp set or render a built-in one to a file.")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    i = sub.add_parser("info", help="count, shape, value range, NaN count and label balance",
                       description="Summarise stamps: count, shape, value range, non-finite pixels, label balance.")
    i.add_argument("--data", required=True, metavar="SPEC",
                   help="a directory, CSV catalog, FITS, .npy/.npz, HDF5, TFRecord shards or builtin:NAME")
    i.add_argument("--n", type=COUNT, metavar="N", help="look at the first N stamps only")
    i.add_argument("--json", action="store_true", help="print JSON instead of a table")
    i.set_defaults(func=run_info)
    r = sub.add_parser("render", help="render a built-in/synthetic set to a file",
                       description="Generate a built-in data set and write it: .npz (images, labels, ids), "
                       ".npy (images), .fits (cube), .h5, or .png (a contact sheet of the first stamps).")
    r.add_argument("name", metavar="NAME", help="built-in set (e.g. transients, galaxies, digits, mnist5k, hdf)")
    r.add_argument("--n", type=COUNT, default=1000, metavar="N", help="number of stamps (default: %(default)s)")
    r.add_argument("--seed", type=SEED, default=0, metavar="S", help="generation seed (default: %(default)s)")
    r.add_argument("--out", required=True, metavar="FILE", help="output file: .npz, .npy, .fits, .h5 or .png")
    r.set_defaults(func=run_render)
    return p


def run_info(args) -> int:
    from astrovader.data import info

    stamps = load_stamps(DataConfig(spec=args.data, n=args.n))
    summary = info(stamps)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    for key in ("source", "count", "shape", "dtype", "min", "max", "mean", "std", "nonfinite_pixels",
                "nonfinite_stamps"):
        if key in summary:
            val = summary[key]
            print(f"{key:>18s}: {val:.6g}" if isinstance(val, float) else f"{key:>18s}: {val}")
    labels = summary.get("label_counts")
    if labels:
        total = sum(labels.values())
        print(f"{'labels':>18s}:")
        for name, count in labels.items():
            print(f"{name:>22s}  {count:7d}  {count / total:6.1%}")
    else:
        print(f"{'labels':>18s}: none")
    for key, val in summary.items():
        if key not in ("source", "count", "shape", "dtype", "min", "max", "mean", "std", "nonfinite_pixels",
                       "nonfinite_stamps", "label_counts") and val not in (None, [], {}):
            print(f"{key:>18s}: {val}")
    return 0


def run_render(args) -> int:
    from astrovader.data import builtin_names

    name = args.name.removeprefix("builtin:")
    names = list(builtin_names())
    if name not in names:
        raise AstrovaderError(f"unknown built-in set {name!r}; choose one of {', '.join(names)}")
    if args.n < 1:
        raise AstrovaderError("--n must be at least 1")
    out = Path(args.out)
    if out.suffix.lower() not in (".npz", ".npy", ".fits", ".fit", ".h5", ".hdf5", ".png"):
        raise AstrovaderError(f"{out}: unknown output format; use .npz, .npy, .fits, .h5 or .png")
    stamps = load_stamps(DataConfig(spec=f"builtin:{name}", n=args.n, seed=args.seed))
    from astrovader.data.writers import write_stamps

    write_stamps(stamps, out)
    print(f"wrote {len(stamps)} stamps of shape {tuple(stamps.images.shape[1:])} to {out}")
    return 0
