"""``astrovader segment``: pixel-wise segmentation of a field and star/galaxy labels (seed 002 sec. 4).

A skip-connection autoencoder is trained on the field's own patches, its hypercolumns are
clustered per pixel into background / object, and each object is labelled star or galaxy
from a trained run's latents. The work is :func:`astrovader.segmentation.segment_field`.
"""

from __future__ import annotations

import argparse

from astrovader.cli._flags import COUNT, COUNT0, SEED

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "segment", help="segment a field into background / stars / galaxies (seed 002 sec. 4)",
        description="Train a skip-connection autoencoder on the field's patches, cluster its hypercolumns per "
        "pixel into background / object, and label each object star or galaxy with a trained run's latents. "
        "Writes OUT/labels.fits (0 background, 1 star, 2 galaxy), OUT/overlay.png and OUT/segment.json.",
    )
    p.add_argument("--data", required=True, metavar="FIELD",
                   help="the field: a FITS, .npy or image file, builtin:hdf (Hubble Deep Field) or "
                   "builtin:field[:SEED] (a simulated field with known masks: the pixel IoU is reported)")
    p.add_argument("--run", metavar="RUN_DIR", help="trained run whose encoder labels the objects "
                   "(e.g. a sun-ae-vae run); without it objects are not classified")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--epochs", type=COUNT, default=10, metavar="N",
                   help="epochs of the segmentation autoencoder on the field's patches (default: %(default)s)")
    p.add_argument("--no-skips", action="store_true", help="plain AE without skip connections (seed 002 Fig. 5b)")
    p.add_argument("--min-area", type=COUNT0, default=5, metavar="PX",
                   help="drop objects smaller than this many pixels (default: %(default)s)")
    p.add_argument("--seed", type=SEED, default=0, metavar="S", help="random seed (default: %(default)s)")
    p.set_defaults(func=run, command_name="segment")
    return p


def run(args) -> int:
    import json
    from pathlib import Path

    from astrovader.errors import AstrovaderError
    from astrovader.runs import Run, _output_dir
    from astrovader.segmentation import load_field, pixel_iou, segment_field, simulate_field, write_segmentation

    if args.epochs < 1:
        raise AstrovaderError("--epochs must be at least 1")
    truth = None
    if args.data.startswith("builtin:field"):
        tail = args.data.split(":", 2)[2] if args.data.count(":") >= 2 else "0"
        if not tail.isdigit():
            raise AstrovaderError(f"--data {args.data}: give builtin:field or builtin:field:SEED with a "
                                  "non-negative integer SEED, e.g. builtin:field:3")
        seed = int(tail)
        sim = simulate_field(seed=seed)
        image, truth = sim["image"], sim["mask"]
    else:
        image = load_field(args.data)
    run_ = Run.open(args.run) if args.run else None
    out = _output_dir(Path(args.out))
    try:
        seg = segment_field(image, run=run_, epochs=args.epochs, skips=not args.no_skips,
                            min_area=args.min_area, seed=args.seed)
    except ValueError as exc:
        raise AstrovaderError(f"{args.data}: {exc}") from None
    paths = write_segmentation(seg, out)
    info = {"data": args.data, "run": args.run, "shape": list(image.shape), **seg.info}
    if truth is not None:
        info["pixel_iou"] = pixel_iou(seg.objects > 0, truth)
    (out / "segment.json").write_text(json.dumps(info, indent=2))
    print(f"{info['n_objects']} objects ({100 * info['object_fraction']:.1f}% of the pixels)"
          + (f"; {info['n_stars']} stars, {info['n_galaxies']} galaxies" if run_ is not None else "")
          + (f"; pixel IoU {info['pixel_iou']:.3f}" if truth is not None else ""))
    print("wrote " + ", ".join(str(p) for p in paths) + f", {out / 'segment.json'}")
    return 0
