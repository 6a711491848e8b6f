"""``astrovader generate``: synthetic stamps from a trained run's mixture prior.

z = mu_k + T * sigma_k * eps (seed 004 sec. 5.3 steps 1-4), decoded; written as PNG
files, one ``.npy`` array or one FITS cube.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from astrovader.cli._common import load_run
from astrovader.errors import AstrovaderError

__all__ = ["add_parser", "run", "write_images"]

FORMATS = ("png", "npy", "fits")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "generate", help="generate synthetic stamps from a trained run",
        description="Sample z from the learned Gaussian mixture (or one component) and decode it.",
    )
    p.add_argument("--run", required=True, metavar="RUN_DIR", help="run directory with model.keras")
    p.add_argument("--n", type=int, required=True, metavar="N", help="number of stamps to generate")
    p.add_argument("--cluster", type=int, metavar="K", help="sample only from mixture component K (default: from the whole mixture)")
    p.add_argument("--temperature", type=float, default=1.0, metavar="T",
                   help="scale of the component standard deviations; <1 gives more typical stamps (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default: %(default)s)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--format", choices=FORMATS, default="png",
                   help="png: one 8-bit file per stamp (min-max scaled); npy: samples.npy (float32, N x H x W x C); "
                   "fits: samples.fits cube (default: %(default)s)")
    p.set_defaults(func=run)
    return p


def write_images(images: np.ndarray, out: str | Path, fmt: str, prefix: str = "sample") -> list[Path]:
    """Write ``(N, H, W, C)`` stamps to ``out`` as png files, one npy array or one FITS cube."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    images = np.asarray(images, dtype=np.float32)
    if fmt == "npy":
        path = out / f"{prefix}s.npy"
        np.save(path, images)
        return [path]
    if fmt == "fits":
        from astropy.io import fits

        path = out / f"{prefix}s.fits"
        cube = np.moveaxis(images, -1, 1) if images.shape[-1] > 1 else images[..., 0]
        hdu = fits.PrimaryHDU(cube)
        hdu.header["CREATOR"] = "astrovader generate"
        hdu.writeto(path, overwrite=True)
        return [path]
    if fmt != "png":
        raise AstrovaderError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    from PIL import Image

    paths = []
    for i, img in enumerate(images):
        lo, hi = float(img.min()), float(img.max())
        u8 = np.clip((img - lo) / max(hi - lo, 1e-12) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        u8 = u8[..., 0] if u8.shape[-1] == 1 else u8[..., :3]
        path = out / f"{prefix}_{i:05d}.png"
        Image.fromarray(u8).save(path)
        paths.append(path)
    return paths


def run(args) -> int:
    if args.n < 1:
        raise AstrovaderError("--n must be at least 1")
    if args.temperature <= 0:
        raise AstrovaderError("--temperature must be > 0")
    cfg, model = load_run(args.run)
    k = getattr(model, "n_clusters", None)
    if args.cluster is not None:
        if k is None:
            raise AstrovaderError(f"{args.run}: this run is a plain VAE without clusters; drop --cluster")
        if not 0 <= args.cluster < k:
            raise AstrovaderError(f"--cluster {args.cluster}: the model has {k} clusters (0..{k - 1})")
    images = model.sample(args.n, cluster=args.cluster, temperature=args.temperature, seed=args.seed)
    paths = write_images(images, args.out, args.format)
    meta = {"run": str(args.run), "n": args.n, "cluster": args.cluster, "temperature": args.temperature,
            "seed": args.seed, "format": args.format, "shape": list(np.asarray(images).shape[1:])}
    (Path(args.out) / "generate.json").write_text(json.dumps(meta, indent=2))
    where = paths[0] if len(paths) == 1 else Path(args.out)
    print(f"wrote {args.n} stamp(s) to {where}")
    return 0
