"""``astrovader data``: inspect stamp sets (``info``) and render built-in sets to files (``render``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from astrovader.cli._common import load_stamps
from astrovader.config import DataConfig
from astrovader.errors import AstrovaderError

__all__ = ["add_parser", "run_info", "run_render", "write_stamps"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("data", help="inspect stamps or render built-in data sets",
                              description="Inspect a stamp set or render a built-in one to a file.")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    i = sub.add_parser("info", help="count, shape, value range, NaN count and label balance",
                       description="Summarise stamps: count, shape, value range, non-finite pixels, label balance.")
    i.add_argument("--data", required=True, metavar="SPEC",
                   help="a directory, CSV catalog, FITS, .npy/.npz, HDF5, TFRecord shards or builtin:NAME")
    i.add_argument("--n", type=int, metavar="N", help="look at the first N stamps only")
    i.add_argument("--json", action="store_true", help="print JSON instead of a table")
    i.set_defaults(func=run_info)
    r = sub.add_parser("render", help="render a built-in/synthetic set to a file",
                       description="Generate a built-in data set and write it: .npz (images, labels, ids), "
                       ".npy (images), .fits (cube), .h5, or .png (a contact sheet of the first stamps).")
    r.add_argument("name", metavar="NAME", help="built-in set (e.g. transients, galaxies, digits, mnist5k, hdf)")
    r.add_argument("--n", type=int, default=1000, metavar="N", help="number of stamps (default: %(default)s)")
    r.add_argument("--seed", type=int, default=0, metavar="S", help="generation seed (default: %(default)s)")
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


def write_stamps(stamps, out: Path) -> None:
    """Write a StampSet to ``out`` in the format given by its suffix."""
    out.parent.mkdir(parents=True, exist_ok=True)
    x = np.asarray(stamps.images, dtype=np.float32)
    suffix = out.suffix.lower()
    if suffix == ".npz":
        extra = {"labels": stamps.labels} if stamps.labels is not None else {}
        if stamps.label_names is not None:
            extra["label_names"] = np.asarray(stamps.label_names, dtype=str)
        np.savez_compressed(out, images=x, ids=np.asarray(stamps.ids, dtype=str), **extra)
    elif suffix == ".npy":
        np.save(out, x)
    elif suffix in (".fits", ".fit"):
        from astropy.io import fits

        cube = np.moveaxis(x, -1, 1) if x.shape[-1] > 1 else x[..., 0]
        hdus = [fits.PrimaryHDU(cube)]
        if stamps.labels is not None:
            hdus.append(fits.BinTableHDU.from_columns(
                [fits.Column(name="id", format="32A", array=np.asarray(stamps.ids, dtype=str)),
                 fits.Column(name="label", format="K", array=np.asarray(stamps.labels))], name="LABELS"))
        fits.HDUList(hdus).writeto(out, overwrite=True)
    elif suffix in (".h5", ".hdf5"):
        import h5py

        with h5py.File(out, "w") as f:
            f["images"] = x
            f["ids"] = np.asarray(stamps.ids, dtype="S")
            if stamps.labels is not None:
                f["labels"] = stamps.labels
    elif suffix == ".png":
        from astrovader.plots import image_grid

        image_grid(x[:100], out, ncols=10, title=stamps.source)
    else:
        raise AstrovaderError(f"{out}: unknown output format; use .npz, .npy, .fits, .h5 or .png")


def run_render(args) -> int:
    name = args.name.removeprefix("builtin:")
    try:
        from astrovader.data import builtin_names

        names = list(builtin_names())
    except ImportError:
        names = []
    if names and name not in names:
        raise AstrovaderError(f"unknown built-in set {name!r}; choose one of {', '.join(names)}")
    if args.n < 1:
        raise AstrovaderError("--n must be at least 1")
    stamps = load_stamps(DataConfig(spec=f"builtin:{name}", n=args.n, seed=args.seed))
    out = Path(args.out)
    write_stamps(stamps, out)
    print(f"wrote {len(stamps)} stamps of shape {tuple(stamps.images.shape[1:])} to {out}")
    return 0
