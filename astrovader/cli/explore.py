"""``astrovader explore``: walk a trained run's latent space (seed 004 sec. 5.3).

Five actions, each writing PNG/GIF/CSV files into ``RUN_DIR/explore/`` (or ``--out``):
``tour``, ``traverse``, ``deblend``, ``neighbours`` and ``anomalies``. The work is done by
:mod:`astrovader.explore` and :mod:`astrovader.explore_plots`; this module parses flags,
loads the run and its stamps, and writes the files.
"""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path

import numpy as np

from astrovader.cli._flags import COUNT, SEED, integer
from astrovader.errors import AstrovaderError

__all__ = ["add_parser", "run", "ACTIONS"]

ACTIONS = ("tour", "traverse", "deblend", "neighbours", "anomalies")

_EPILOG = """\
examples:
  astrovader explore --run runs/hits tour
  astrovader explore --run runs/hits traverse --quantile 0.01
  astrovader explore --run runs/av deblend --object 1234 --clean 0 3 5
  astrovader explore --run runs/hits neighbours --object 77 --count 12
  astrovader explore --run runs/hits anomalies --top 50 --by variance
"""


def _common_flags(p: argparse.ArgumentParser, suppress: bool) -> None:
    """Flags accepted before and after the action (``SUPPRESS`` keeps an action's parser
    from overwriting values given before it)."""
    d = (lambda v: argparse.SUPPRESS) if suppress else (lambda v: v)
    p.add_argument("--run", metavar="RUN_DIR", default=d(None), help="run directory with model.keras (required)")
    p.add_argument("--data", metavar="SPEC", default=d(None),
                   help="stamps to explore (default: the run's data.spec), preprocessed with the run's data settings")
    p.add_argument("--n", type=COUNT, metavar="N", default=d(None), help="use at most N stamps (default: all)")
    p.add_argument("--out", metavar="DIR", default=d(None), help="output folder (default: RUN_DIR/explore)")
    p.add_argument("--seed", type=SEED, metavar="S", default=d(0), help="random seed (default: 0)")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "explore", help="latent tours, traversals, deblending, neighbours and anomalies of a run",
        description="Explore a trained run's latent space (seed 004 sec. 5.3); files go to RUN_DIR/explore/.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common_flags(p, suppress=False)
    actions = p.add_subparsers(dest="action", metavar="ACTION")

    def action(name, help_, description):
        a = actions.add_parser(name, help=help_, description=description)
        _common_flags(a, suppress=True)
        return a

    a = action("tour", "a route through the highest-gamma member of every cluster",
               "Highest-gamma member of each cluster, shortest closed route through them in latent space "
               "(exact up to --exact-max clusters), decoded along straight lines: tour.png, tour.gif, tour.csv.")
    a.add_argument("--steps", type=COUNT, default=6, metavar="N",
                   help="interpolated frames between stops, >= 1 (default: %(default)s)")
    a.add_argument("--exact-max", type=COUNT, default=10, metavar="K",
                   help="solve the route exactly up to K clusters, approximately above (default: %(default)s)")
    a.add_argument("--frame-ms", type=COUNT, default=120, metavar="MS",
                   help="GIF frame time in milliseconds (default: %(default)s)")

    a = action("traverse", "vary one latent variable at a time",
               "One row per latent variable, varied from its data minimum (or --quantile) to its maximum "
               "with the others at their mean; the mean object is framed in the centre: traversals.png.")
    a.add_argument("--steps", type=int, default=9, metavar="N", help="columns per row, odd (default: %(default)s)")
    a.add_argument("--quantile", type=float, metavar="Q",
                   help="go from the Q to the 1-Q quantile instead of min to max (e.g. 0.01)")
    a.add_argument("--variables", type=integer(0), nargs="+", metavar="J", help="latent variables to show (default: all)")

    a = action("deblend", "interpolate from an object to a clean look-alike",
               "Find the member of the --clean clusters most similar to --object (input-space MSE) and "
               "decode the straight latent line between them: deblend_ID.png and deblend_ID.csv.")
    a.add_argument("--object", required=True, metavar="ID", help="id of the object to deblend (or its row number)")
    a.add_argument("--clean", type=integer(0), nargs="+", required=True, metavar="K", help="clusters without companions")
    a.add_argument("--steps", type=integer(2, hint="the 2 ends included"), default=8, metavar="N",
                   help="stamps in the strip, ends included, >= 2 (default: %(default)s)")

    a = action("neighbours", "closest objects in latent space",
               "The objects nearest to --object in latent space (Euclidean distance between posterior means): "
               "neighbours_ID.png and neighbours_ID.csv.")
    a.add_argument("--object", required=True, metavar="ID", help="id of the query object (or its row number)")
    a.add_argument("--count", type=COUNT, default=8, metavar="N", help="neighbours to list (default: %(default)s)")

    a = action("anomalies", "objects the model explains worst",
               "Rank objects by negative ELBO (or decoder variance with the AR head) and write the top ones: "
               "anomalies.csv and anomalies.png.")
    a.add_argument("--top", type=COUNT, default=20, metavar="N", help="objects to list (default: %(default)s)")
    a.add_argument("--by", choices=("elbo", "variance"), default="elbo",
                   help="elbo: negative ELBO from the model's loss terms; variance: decoder variance "
                   "sigma^2(z), needs model.decoder_variance (default: %(default)s)")
    p.set_defaults(func=run)
    return p


def _object_index(ids: np.ndarray, spec: str) -> int:
    """Row of the object whose id is ``spec``; a bare number not among the ids is a row number."""
    hits = np.flatnonzero(ids == str(spec))
    if len(hits):
        return int(hits[0])
    if re.fullmatch(r"\d+", str(spec)) and int(spec) < len(ids):
        return int(spec)
    raise AstrovaderError(f"--object {spec}: no object with this id among the {len(ids)} stamps "
                          f"(ids look like {', '.join(ids[:3])})")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name))[:60]


def _write_csv(path: Path, header, rows) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _load(args):
    from astrovader.data import load
    from astrovader.runs import Run, conform, data_config

    run = Run.open(args.run)
    stamps = load(data_config(run.cfg.data, spec=args.data, n=args.n))
    x = conform(stamps.images, run.cfg.model.input_shape)
    return run.model, x, np.asarray(stamps.ids).astype(str)


def run(args) -> int:
    from astrovader import explore, explore_plots

    if not getattr(args, "action", None):
        raise AstrovaderError(f"name an action: astrovader explore --run RUN_DIR {{{','.join(ACTIONS)}}}")
    if not args.run:
        raise AstrovaderError("--run RUN_DIR is required")
    model, x, ids = _load(args)
    out = Path(args.out) if args.out else Path(args.run) / "explore"
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    latents = np.asarray(model.encode(x)[0]) if args.action != "anomalies" else None
    gamma = model.cluster_probabilities(x) if args.action in ("tour", "deblend") and hasattr(model, "prior") else None

    if args.action == "tour":
        t = explore.tour(model, x, gamma=gamma, latents=latents, steps=args.steps, exact_max=args.exact_max)
        written += [Path(explore_plots.tour_strip(t, out / "tour.png", ids=ids)),
                    Path(explore_plots.tour_gif(t, out / "tour.gif", frame_ms=args.frame_ms, ids=ids))]
        _write_csv(out / "tour.csv", ["stop", "cluster", "pi", "id", "index"],
                   [[i, int(c), float(p), ids[o] if o >= 0 else "", int(o)]
                    for i, (c, p, o) in enumerate(zip(t.clusters, t.pi, t.objects))])
        written.append(out / "tour.csv")
        print(f"route through {len(t.clusters)} clusters: {' -> '.join(map(str, t.clusters))} (length {t.length:.3f})")
    elif args.action == "traverse":
        tr = explore.traversals(model, latents, steps=args.steps, quantile=args.quantile, variables=args.variables)
        written.append(Path(explore_plots.traversal_grid(tr, out / "traversals.png")))
    elif args.action == "deblend":
        i = _object_index(ids, args.object)
        d = explore.deblend(model, x, i, args.clean, gamma=gamma, latents=latents, steps=args.steps)
        stem = f"deblend_{_safe(ids[i])}"
        labels = {0: f"id {ids[i]} (k={d.cluster})", len(d.images) - 1: f"id {ids[d.partner]} (k={d.partner_cluster})"}
        written.append(Path(explore_plots.image_strip(
            d.images, out / f"{stem}.png", labels=labels,
            title=f"deblending {ids[i]}: latent line to its closest clean look-alike (MSE {d.mse:.3g})")))
        _write_csv(out / f"{stem}.csv", ["role", "id", "index", "cluster", "mse"],
                   [["object", ids[i], i, d.cluster, 0.0], ["partner", ids[d.partner], d.partner, d.partner_cluster, d.mse]])
        written.append(out / f"{stem}.csv")
    elif args.action == "neighbours":
        i = _object_index(ids, args.object)
        idx, dist = explore.nearest_neighbours(latents, i, n=args.count)
        stem = f"neighbours_{_safe(ids[i])}"
        titles = [f"query {ids[i]}"] + [f"{ids[j]}  d={dd:.2g}" for j, dd in zip(idx, dist)]
        written.append(Path(explore_plots.gallery(np.concatenate([x[[i]], x[idx]]), titles, out / f"{stem}.png",
                                                  title=f"nearest neighbours of {ids[i]} in latent space",
                                                  first_framed=True)))
        _write_csv(out / f"{stem}.csv", ["rank", "id", "index", "distance"],
                   [[r + 1, ids[j], int(j), float(dd)] for r, (j, dd) in enumerate(zip(idx, dist))])
        written.append(out / f"{stem}.csv")
    else:
        scores = explore.anomaly_scores(model, x, seed=args.seed)
        order = explore.rank_anomalies(scores, by=args.by, n=args.top)
        var = scores["decoder_variance"]
        header = ["rank", "id", "index", "neg_elbo"] + (["decoder_variance"] if var is not None else [])
        rows = [[r + 1, ids[j], int(j), float(scores["neg_elbo"][j])] + ([float(var[j])] if var is not None else [])
                for r, j in enumerate(order)]
        _write_csv(out / "anomalies.csv", header, rows)
        key = scores["neg_elbo"] if args.by == "elbo" else var
        what = "-ELBO" if args.by == "elbo" else "σ²"
        written += [Path(explore_plots.gallery(x[order], [f"{ids[j]}  {what}={key[j]:.3g}" for j in order],
                                               out / "anomalies.png",
                                               title=f"most anomalous objects by {'negative ELBO' if args.by == 'elbo' else 'decoder variance'}")),
                    out / "anomalies.csv"]
    for p in written:
        print(f"wrote {p}")
    return 0
