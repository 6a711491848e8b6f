"""Cut stamps around detected sources in a large FITS/PNG/JPEG/TIFF image.

Example::

    python data_prep/cutouts.py field.fits out/ --size 32 --thresh 3 --format fits

writes ``out/stamps/<id>.fits`` (or ``.png``) and ``out/catalog.csv`` with columns
``id,path,x,y,flux,a,b,theta,npix``, so ``out/`` can be given to ``astrovader`` as a data
path; with ``--format npz`` it writes ``out/stamps.npz`` (images, ids, columns) and
``out/sources.csv`` (id,x,y,flux,...) instead. Existing outputs are never overwritten without
``--overwrite``.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_prep._common import refuse_existing, run_main

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Detect sources (sep) in a large image and cut square stamps.")
    p.add_argument("image", help="input image: FITS (first image HDU) or PNG/JPEG/TIFF")
    p.add_argument("out", help="output directory (gets catalog.csv and stamps/ or stamps.npz)")
    p.add_argument("--size", type=int, default=32, help="stamp side in pixels (default 32)")
    p.add_argument("--thresh", type=float, default=3.0, help="detection threshold in background RMS (default 3)")
    p.add_argument("--min-area", type=int, default=5, help="minimum connected pixels of a detection (default 5)")
    p.add_argument("--max", type=int, default=None, help="keep at most this many stamps, brightest first")
    p.add_argument("--format", choices=("npz", "fits", "png"), default="npz",
                   help="npz: one stamps.npz; fits/png: one file per stamp (png is 8/16-bit, min-max scaled)")
    p.add_argument("--overwrite", action="store_true", help="replace outputs written here before")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns 0 on success, 2 with a one-line error on bad input."""
    args = _parser().parse_args(argv)

    def body() -> int:
        from tqdm import tqdm

        from astrovader.data.detect import detect_and_cut
        from astrovader.data.readers import read_image_file

        out = Path(args.out)
        catalog = out / "catalog.csv"
        for target in ([out / "stamps.npz", out / "sources.csv"] if args.format == "npz" else [catalog]):
            refuse_existing(target, args.overwrite)
        image = read_image_file(args.image)
        stamps, table = detect_and_cut(image, args.size, args.thresh, args.min_area, args.max, source=args.image)
        out.mkdir(parents=True, exist_ok=True)
        ids = [f"src{i:06d}" for i in range(len(stamps))]
        if args.format == "npz":
            paths = ["stamps.npz"] * len(stamps)
            from astrovader.data import StampSet
            from astrovader.data.writers import write_stamps

            write_stamps(StampSet(images=stamps, ids=np.array(ids), columns=table), out / "stamps.npz")
        else:
            (out / "stamps").mkdir(exist_ok=True)
            paths = [f"stamps/{i}.{args.format}" for i in ids]
            for sid, rel, stamp in tqdm(list(zip(ids, paths, stamps)), desc="writing stamps", disable=args.quiet):
                target = out / rel
                refuse_existing(target, args.overwrite)
                tmp = target.with_name(f".{target.name}.tmp")
                if args.format == "fits":
                    from astropy.io import fits

                    data = stamp[..., 0] if stamp.shape[-1] == 1 else np.moveaxis(stamp, -1, 0)
                    fits.PrimaryHDU(data).writeto(tmp, overwrite=True, output_verify="silentfix")
                else:
                    with open(tmp, "wb") as fh:
                        _write_png(fh, stamp)
                os.replace(tmp, target)
        # file stamps: catalog.csv (id,path,...) makes out/ loadable; npz: sources.csv beside stamps.npz
        rows_path = catalog if args.format != "npz" else out / "sources.csv"
        tmp = out / f".{rows_path.name}.tmp"
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["id", *(["path"] if args.format != "npz" else []), *table])
            for i, sid in enumerate(ids):
                w.writerow([sid, *([paths[i]] if args.format != "npz" else []), *(f"{table[k][i]:.6g}" for k in table)])
        os.replace(tmp, rows_path)
        print(f"{len(stamps)} stamps of {args.size}x{args.size} from {args.image} -> {out}")
        return 0

    return run_main(body)


def _write_png(fh, stamp: np.ndarray) -> None:
    from PIL import Image

    lo, hi = float(stamp.min()), float(stamp.max())
    x = (stamp - lo) / (hi - lo) if hi > lo else np.zeros_like(stamp)
    if x.shape[-1] == 1:
        Image.fromarray((x[..., 0] * 65535).round().astype(np.uint16)).save(fh, format="PNG")
    else:
        Image.fromarray((x[..., :3] * 255).round().astype(np.uint8)).save(fh, format="PNG")


if __name__ == "__main__":
    sys.exit(main())
