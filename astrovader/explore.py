"""Walking the latent space of a trained model (seed 004 sec. 5.3).

NumPy in, arrays out; :mod:`astrovader.explore_plots` turns the results into PNG strips and
an animated GIF. Every function takes a trained model (``encode``, ``decode`` and, for the
cluster tools, a VaDE's ``cluster_probabilities`` and ``prior``) plus plain arrays, so the
same calls work in a notebook, in ``astrovader explore`` and in ``astrovader evaluate``.

* :func:`tour` -- the highest-gamma member of each cluster, the shortest closed route
  through them in latent space, decoded along straight lines (seed 004 Fig. 10).
* :func:`traversals` -- one latent variable at a time from its data minimum to maximum
  (or quantiles), the others at their mean (seed 004 Fig. 11).
* :func:`deblend` -- interpolate from an object to its most similar member (input-space
  MSE) of the clusters named as clean (seed 004 Fig. 12).
* :func:`filtered_samples` -- samples of component k kept only when p(c=k | z) exceeds a
  threshold (VaDE, Jiang et al. 2017 sec. 4.3).
* :func:`nearest_neighbours` -- the closest objects in latent space.
* :func:`anomaly_scores` -- negative ELBO per object (the model's ``compute_terms``) and
  the decoder variance sigma^2(z) of seed 000 sec. V.

Example::

    from astrovader import explore, explore_plots
    t = explore.tour(model, x)
    explore_plots.tour_strip(t, "tour.png"); explore_plots.tour_gif(t, "tour.gif")
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from astrovader.errors import AstrovaderError, ConfigError, DataError

__all__ = [
    "Tour",
    "Traversal",
    "Deblend",
    "FilteredSamples",
    "route_length",
    "nearest_neighbour_route",
    "shortest_route",
    "interpolate",
    "cluster_stops",
    "tour",
    "traversals",
    "deblend",
    "filtered_samples",
    "nearest_neighbours",
    "anomaly_scores",
    "rank_anomalies",
]


# ---------------------------------------------------------------------- routes
def _distances(points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    return np.sqrt(np.maximum(((p[:, None, :] - p[None, :, :]) ** 2).sum(-1), 0.0))


def route_length(points: np.ndarray, order) -> float:
    """Length of the closed route visiting ``points`` in ``order`` and returning to the start."""
    order = list(order)
    if len(order) < 2:
        return 0.0
    d = _distances(points)
    return float(sum(d[a, b] for a, b in zip(order, order[1:] + order[:1])))


def nearest_neighbour_route(points: np.ndarray, start: int = 0) -> list[int]:
    """Greedy closed route: from ``start``, always go to the closest unvisited point."""
    d = _distances(points)
    n = len(d)
    order, left = [int(start)], set(range(n)) - {int(start)}
    while left:
        here = order[-1]
        nxt = min(left, key=lambda j: (d[here, j], j))
        order.append(nxt)
        left.remove(nxt)
    return order


def _held_karp(d: np.ndarray) -> list[int]:
    """Exact shortest closed route by dynamic programming over subsets (O(2^n n^2))."""
    n = len(d)
    full = 1 << (n - 1)  # subsets of the points 1..n-1 (point 0 is the fixed start)
    cost = np.full((full, n), np.inf)
    parent = np.full((full, n), -1, dtype=int)
    for j in range(1, n):
        cost[1 << (j - 1), j] = d[0, j]
    for mask in range(1, full):
        for j in range(1, n):
            c = cost[mask, j]
            if not np.isfinite(c):
                continue
            for k in range(1, n):
                bit = 1 << (k - 1)
                if mask & bit:
                    continue
                if c + d[j, k] < cost[mask | bit, k]:
                    cost[mask | bit, k] = c + d[j, k]
                    parent[mask | bit, k] = j
    last = int(np.argmin(cost[full - 1, 1:] + d[1:, 0])) + 1
    order, mask = [], full - 1
    while last > 0:
        order.append(last)
        prev = parent[mask, last]
        mask ^= 1 << (last - 1)
        last = prev
    return [0] + order[::-1]


def _two_opt(order: list[int], d: np.ndarray) -> list[int]:
    """Reverse route segments while that shortens the closed route (never lengthens it)."""
    order = list(order)
    n = len(order)
    improved = True
    while improved:
        improved = False
        for i in range(n - 1):
            for j in range(i + 2, n if i > 0 else n - 1):
                a, b, c, e = order[i], order[i + 1], order[j], order[(j + 1) % n]
                if d[a, c] + d[b, e] < d[a, b] + d[c, e] - 1e-12:
                    order[i + 1:j + 1] = order[i + 1:j + 1][::-1]
                    improved = True
    return order


def shortest_route(points: np.ndarray, exact_max: int = 10) -> list[int]:
    """Shortest closed route through ``points`` (a travelling-salesperson tour), from point 0.

    Exact (Held-Karp dynamic programming) for up to ``exact_max`` points. Above that,
    the shortest of networkx's Christofides tour and the nearest-neighbour tours from
    every start, improved by 2-opt; so the route is never longer than the
    nearest-neighbour tour.

    Args:
        points: ``(n, J)`` coordinates (Euclidean distances).
        exact_max: largest ``n`` solved exactly (2^n n^2 steps: 10 takes ~0.1 s).

    Returns:
        A permutation of ``range(n)`` starting at 0.
    """
    d = _distances(points)
    n = len(d)
    if n <= 3:
        return list(range(n))
    if n <= exact_max:
        return _held_karp(d)
    import networkx as nx
    from networkx.algorithms import approximation

    graph = nx.Graph()
    graph.add_weighted_edges_from((i, j, d[i, j]) for i, j in itertools.combinations(range(n), 2))
    cycle = approximation.traveling_salesman_problem(graph, cycle=True, method=approximation.christofides)
    candidates = [list(cycle[:-1])] + [nearest_neighbour_route(points, s) for s in range(n)]
    best = min(candidates, key=lambda o: route_length(points, o))
    best = _two_opt(best, d)
    start = best.index(0)
    return best[start:] + best[:start]


def interpolate(z_a: np.ndarray, z_b: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` points on the straight line from ``z_a`` to ``z_b``, both ends included."""
    if steps < 2:
        raise ConfigError(f"steps={steps}: an interpolation needs at least its 2 ends")
    t = np.linspace(0.0, 1.0, int(steps))[:, None]
    z_a, z_b = np.asarray(z_a, dtype=np.float32), np.asarray(z_b, dtype=np.float32)
    return ((1.0 - t) * z_a + t * z_b).astype(np.float32)


# ---------------------------------------------------------------------- tour
def _require_vade(model, what: str) -> None:
    if not hasattr(model, "prior"):
        raise AstrovaderError(f"{what} needs a VaDE model with clusters; this run is a plain VAE")


def _gamma_and_latents(model, x, gamma, latents):
    if gamma is None:
        gamma = model.cluster_probabilities(x)
    if latents is None:
        latents = model.encode(x)[0]
    return np.asarray(gamma), np.asarray(latents, dtype=np.float32)


def cluster_stops(gamma: np.ndarray) -> np.ndarray:
    """The highest-gamma_k member of each cluster k (argmax gamma = k), ``-1`` if k is empty."""
    gamma = np.asarray(gamma)
    assigned = gamma.argmax(1)
    stops = np.full(gamma.shape[1], -1, dtype=int)
    for k in range(gamma.shape[1]):
        members = np.flatnonzero(assigned == k)
        if len(members):
            stops[k] = members[np.argmax(gamma[members, k])]
    return stops


@dataclass
class Tour:
    """A closed route through the clusters, decoded along straight lines in latent space.

    Attributes:
        clusters: ``(S,)`` cluster ids of the stops in route order.
        objects: ``(S,)`` index of each stop's object, ``-1`` where the cluster has no
            member and its component mean mu_k stands in.
        pi: ``(S,)`` mixture weights pi_k of the stops.
        z: ``(M, J)`` latent path; it ends where it starts when there are 3+ stops.
        images: ``(M, H, W, C)`` decoded path.
        stops: positions of the stops in ``z``/``images`` (the last one is the return
            to the first stop for a closed route).
        length: Euclidean length of the route in latent space.
    """

    clusters: np.ndarray
    objects: np.ndarray
    pi: np.ndarray
    z: np.ndarray
    images: np.ndarray
    stops: np.ndarray
    length: float


def tour(model, x: np.ndarray, gamma: np.ndarray | None = None, latents: np.ndarray | None = None,
         steps: int = 6, exact_max: int = 10) -> Tour:
    """Seed 004 Fig. 10: through the highest-gamma member of every cluster by the shortest route.

    Args:
        model: a trained VaDE.
        x: stamps ``(N, H, W, C)``.
        gamma, latents: ``cluster_probabilities(x)`` and ``encode(x)[0]`` if already known.
        steps: interpolated frames between consecutive stops.
        exact_max: routes through up to this many clusters are exact (see :func:`shortest_route`).

    Returns:
        A :class:`Tour`.
    """
    _require_vade(model, "the tour")
    if steps < 0:
        raise ConfigError(f"steps={steps} must be >= 0")
    gamma, latents = _gamma_and_latents(model, x, gamma, latents)
    objects = cluster_stops(gamma)
    means = np.asarray(model.cluster_means(), dtype=np.float32)
    points = np.where(objects[:, None] >= 0, latents[np.maximum(objects, 0)], means)
    order = shortest_route(points, exact_max=exact_max)
    legs = list(zip(order, order[1:] + order[:1])) if len(order) >= 3 else list(zip(order, order[1:]))
    path, stops = [points[order[0]][None]], [0]
    for a, b in legs:
        path.append(interpolate(points[a], points[b], steps + 2)[1:])
        stops.append(stops[-1] + steps + 1)
    z = np.concatenate(path).astype(np.float32)
    pi = np.asarray(model.cluster_weights(), dtype=np.float64)
    length = float(sum(np.linalg.norm(points[a] - points[b]) for a, b in legs))
    return Tour(clusters=np.asarray(order), objects=objects[order], pi=pi[order], z=z,
                images=np.asarray(model.decode(z)), stops=np.asarray(stops), length=length)


# ---------------------------------------------------------------------- traversals
@dataclass
class Traversal:
    """Latent traversals: row v varies latent variable ``variables[v]``, the others at the mean.

    Attributes:
        variables: ``(V,)`` latent indices.
        values: ``(V, S)`` values taken by the varied variable (centre column: its mean).
        z: ``(V, S, J)`` latent vectors.
        images: ``(V, S, H, W, C)`` decoded.
        mean: ``(J,)`` mean latent vector (decoded in the centre column of every row).
        range_label: ``("min", "max")`` or the quantiles used, for figure labels.
    """

    variables: np.ndarray
    values: np.ndarray
    z: np.ndarray
    images: np.ndarray
    mean: np.ndarray
    range_label: tuple


def traversals(model, latents: np.ndarray, steps: int = 9, quantile: float | None = None,
               variables=None) -> Traversal:
    """Seed 004 Fig. 11: each latent variable from its data minimum to maximum.

    Columns run from the minimum (or the ``quantile``) of the variable over ``latents``
    to its mean (centre column) and on to the maximum (or ``1 - quantile``); every other
    variable stays at its mean, so the centre column is the same "mean object" in every row.

    Args:
        model: a trained VAE or VaDE (only ``decode`` is used).
        latents: posterior means ``(N, J)`` of the data.
        steps: columns, odd (so that the mean sits in the centre).
        quantile: e.g. ``0.01`` to go from the 1% to the 99% quantile instead of min to max.
        variables: latent indices to show (default all).

    Returns:
        A :class:`Traversal`.
    """
    latents = np.asarray(latents, dtype=np.float64)
    if latents.ndim != 2 or len(latents) == 0:
        raise DataError("latents must be a non-empty (N, J) array of posterior means")
    if steps < 3 or steps % 2 == 0:
        raise ConfigError(f"steps={steps}: use an odd number >= 3 so the mean sits in the centre column")
    if quantile is not None and not 0.0 <= quantile < 0.5:
        raise ConfigError(f"quantile={quantile}: use a value in [0, 0.5), e.g. 0.01")
    j = latents.shape[1]
    variables = np.arange(j) if variables is None else np.asarray(variables, dtype=int)
    if len(variables) == 0 or variables.min() < 0 or variables.max() >= j:
        raise ConfigError(f"variables={variables.tolist()}: give latent indices in 0..{j - 1}")
    mean = latents.mean(0)
    if quantile:
        lo, hi = np.quantile(latents, [quantile, 1.0 - quantile], axis=0)
        label = (f"q{quantile:g}", f"q{1 - quantile:g}")
    else:
        lo, hi = latents.min(0), latents.max(0)
        label = ("min", "max")
    half = steps // 2
    values = np.stack([np.concatenate([np.linspace(lo[v], mean[v], half + 1),
                                       np.linspace(mean[v], hi[v], half + 1)[1:]]) for v in variables])
    z = np.repeat(np.repeat(mean[None, None], len(variables), 0), steps, 1)
    for r, v in enumerate(variables):
        z[r, :, v] = values[r]
    z = z.astype(np.float32)
    images = np.asarray(model.decode(z.reshape(-1, j)))
    return Traversal(variables=variables, values=values, z=z,
                     images=images.reshape((len(variables), steps) + images.shape[1:]),
                     mean=mean.astype(np.float32), range_label=label)


# ---------------------------------------------------------------------- deblending
@dataclass
class Deblend:
    """An object, its most similar clean-cluster member, and the latent line between them.

    Attributes:
        index, partner: object indices of the two ends.
        cluster, partner_cluster: their clusters (argmax gamma).
        mse: input-space mean squared error between the two stamps.
        z: ``(S, J)`` interpolation from ``encode(x[index])`` to ``encode(x[partner])``.
        images: ``(S, H, W, C)`` decoded; the ends are the reconstructions of the two objects.
    """

    index: int
    partner: int
    cluster: int
    partner_cluster: int
    mse: float
    z: np.ndarray
    images: np.ndarray


def deblend(model, x: np.ndarray, index: int, clean_clusters, gamma: np.ndarray | None = None,
            latents: np.ndarray | None = None, steps: int = 8) -> Deblend:
    """Seed 004 Fig. 12: interpolate from an object with companions to a clean look-alike.

    Args:
        model: a trained VaDE.
        x: stamps ``(N, H, W, C)``.
        index: the object to deblend.
        clean_clusters: clusters whose members are clean (no companions); the partner is
            the member of these with the smallest input-space MSE to ``x[index]``.
        gamma, latents: ``cluster_probabilities(x)`` and ``encode(x)[0]`` if already known.
        steps: images in the strip, ends included.

    Raises:
        AstrovaderError: when the clean clusters have no member other than the object.
    """
    _require_vade(model, "deblending")
    x = np.asarray(x, dtype=np.float32)
    if not 0 <= int(index) < len(x):
        raise AstrovaderError(f"object index {index} is out of range (0..{len(x) - 1})")
    k = int(model.n_clusters)
    clean = sorted({int(c) for c in clean_clusters})
    if not clean or clean[0] < 0 or clean[-1] >= k:
        raise AstrovaderError(f"clean clusters {clean}: name one or more of 0..{k - 1}")
    gamma, latents = _gamma_and_latents(model, x, gamma, latents)
    assigned = gamma.argmax(1)
    candidates = np.flatnonzero(np.isin(assigned, clean) & (np.arange(len(x)) != int(index)))
    if len(candidates) == 0:
        raise AstrovaderError(f"clusters {clean} have no member to compare with; name other clean clusters")
    diff = (x[candidates] - x[int(index)][None]).reshape(len(candidates), -1)
    mse = np.mean(diff.astype(np.float64) ** 2, axis=1)
    partner = int(candidates[np.argmin(mse)])
    z = interpolate(latents[int(index)], latents[partner], steps)
    return Deblend(index=int(index), partner=partner, cluster=int(assigned[int(index)]),
                   partner_cluster=int(assigned[partner]), mse=float(mse.min()), z=z,
                   images=np.asarray(model.decode(z)))


# ---------------------------------------------------------------------- generation
@dataclass
class FilteredSamples:
    """Generated stamps whose own component is unambiguous: p(c = k | z) > ``min_gamma``.

    Attributes:
        images: ``(n, H, W, C)``; z: ``(n, J)``; clusters: ``(n,)`` component of each sample;
        gamma: ``(n, K)`` p(c | z); draws: how many z were drawn to keep ``n``.
    """

    images: np.ndarray
    z: np.ndarray
    clusters: np.ndarray
    gamma: np.ndarray
    draws: int


def _gamma_of_z(model, z: np.ndarray) -> np.ndarray:
    """p(cluster | z) ``(N, K)`` (a cluster's components summed)."""
    log_joint = np.asarray(model.prior(z), dtype=np.float64)
    log_joint -= log_joint.max(1, keepdims=True)
    g = np.exp(log_joint)
    g = g / g.sum(1, keepdims=True)
    return g.reshape(len(g), model.n_clusters, -1).sum(2)


def filtered_samples(model, n: int, cluster: int | None = None, min_gamma: float = 0.9,
                     temperature: float = 1.0, seed: int | None = None,
                     max_draws: int | None = None) -> FilteredSamples:
    """Sample z from component k, keep it only when p(c = k | z) > ``min_gamma``.

    Mathematical details::

        c ~ Cat(pi) (or c = cluster),  z = mu_c + T sigma_c eps,  eps ~ N(0, I)
        keep z  iff  gamma_c(z) = pi_c N(z | mu_c, sigma_c^2) / sum_k pi_k N(z | mu_k, sigma_k^2) > t

    (the VaDE paper's "unambiguous" samples; seed 004 sec. 5.3 steps 1-4 without the filter).

    Args:
        model: a trained VaDE.
        n: samples to keep.
        cluster: component to sample (default: c ~ Cat(pi) per draw).
        min_gamma: threshold t in [0, 1).
        temperature: T, scale of the component standard deviations.
        seed: NumPy seed.
        max_draws: give up after this many draws (default ``max(10000, 1000 n)``).

    Raises:
        AstrovaderError: when fewer than ``n`` draws pass the threshold within ``max_draws``.
    """
    _require_vade(model, "filtered generation")
    k_count = int(model.n_clusters)
    if n < 1:
        raise AstrovaderError("the number of samples must be at least 1")
    if not 0.0 <= min_gamma < 1.0:
        raise AstrovaderError(f"min_gamma={min_gamma}: use a threshold in [0, 1), e.g. 0.9")
    if cluster is not None and not 0 <= int(cluster) < k_count:
        raise AstrovaderError(f"cluster {cluster}: the model has {k_count} clusters (0..{k_count - 1})")
    rng = np.random.default_rng(seed)
    pi = np.asarray(model.cluster_weights(), dtype=np.float64)
    means = np.asarray(model.cluster_means(), dtype=np.float64)  # each cluster's heaviest component
    sigmas = np.exp(0.5 * np.asarray(model.cluster_log_vars(), dtype=np.float64))
    max_draws = int(max_draws or max(10000, 1000 * n))
    kept_z, kept_c, kept_g, draws = [], [], [], 0
    while sum(len(c) for c in kept_c) < n and draws < max_draws:
        batch = min(max(4 * n, 256), max_draws - draws)
        comps = (np.full(batch, int(cluster)) if cluster is not None
                 else rng.choice(k_count, size=batch, p=pi / pi.sum()))
        z = (means[comps] + temperature * sigmas[comps] * rng.standard_normal((batch, means.shape[1])))
        z = z.astype(np.float32)
        g = _gamma_of_z(model, z)
        keep = g[np.arange(batch), comps] > min_gamma
        kept_z.append(z[keep])
        kept_c.append(comps[keep])
        kept_g.append(g[keep])
        draws += batch
    z, comps, g = (np.concatenate(a) for a in (kept_z, kept_c, kept_g))
    if len(z) < n:
        which = f"component {cluster}" if cluster is not None else "the mixture"
        raise AstrovaderError(
            f"only {len(z)} of {draws} draws from {which} have gamma > {min_gamma}; "
            "lower --min-gamma or --temperature, or pick another cluster")
    z, comps, g = z[:n], comps[:n], g[:n]
    return FilteredSamples(images=np.asarray(model.decode(z)), z=z, clusters=comps, gamma=g, draws=draws)


# ---------------------------------------------------------------------- neighbours, anomalies
def nearest_neighbours(latents: np.ndarray, index: int, n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` objects closest to object ``index`` in latent space (Euclidean, itself excluded).

    Returns:
        ``(indices, distances)``, nearest first.
    """
    latents = np.asarray(latents, dtype=np.float64)
    if not 0 <= int(index) < len(latents):
        raise AstrovaderError(f"object index {index} is out of range (0..{len(latents) - 1})")
    d = np.sqrt(((latents - latents[int(index)]) ** 2).sum(1))
    d[int(index)] = np.inf
    n = min(int(n), len(latents) - 1)
    idx = np.argsort(d, kind="stable")[:n]
    return idx, d[idx]


def anomaly_scores(model, x: np.ndarray, batch_size: int = 256, seed: int | None = 0) -> dict:
    """Per-object negative ELBO from the model's ``compute_terms`` and decoder variance.

    The negative ELBO (reconstruction term + KL, seed 000 eq. 5 / seed 004 eq. 11) uses one
    reparameterised z per object, drawn by the model's sampling layer; with ``seed`` the
    layer's generator is set from it for the call and restored afterwards (reproducible
    scores, training randomness untouched); ``seed=None`` draws from its current state.

    Returns:
        ``{"neg_elbo": (N,), "decoder_variance": (N,) or None}``; the variance is
        sigma^2(z) at the posterior mean, present only with the AR head (seed 000 sec. V).
    """
    import keras

    x = np.asarray(x, dtype=np.float32)
    if len(x) == 0:
        raise AstrovaderError("no stamps to score")
    gen = model.sampling.seed_generator
    saved = np.asarray(gen.state.value)
    if seed is not None:
        gen.state.assign(keras.random.SeedGenerator(int(seed)).state.value)
    try:
        neg = [-np.asarray(model.compute_terms(x[i:i + batch_size], training=False)["elbo"], dtype=np.float64)
               for i in range(0, len(x), batch_size)]
    finally:
        if seed is not None:
            gen.state.assign(saved)
    var = None
    if getattr(model, "variance_head", None) is not None:
        var = np.asarray(model.decoder_variance(x, batch_size=batch_size), dtype=np.float64)
    return {"neg_elbo": np.concatenate(neg), "decoder_variance": var}


def rank_anomalies(scores: dict, by: str = "elbo", n: int | None = None) -> np.ndarray:
    """Object indices, most anomalous first: by ``"elbo"`` (negative ELBO) or ``"variance"``."""
    if by not in ("elbo", "variance"):
        raise AstrovaderError(f"rank by {by!r}: choose 'elbo' or 'variance'")
    key = scores["neg_elbo"] if by == "elbo" else scores.get("decoder_variance")
    if key is None:
        raise AstrovaderError("ranking by decoder variance needs a model with the decoder-variance head "
                              "(model.decoder_variance: true); rank by elbo instead")
    order = np.argsort(-np.asarray(key), kind="stable")
    return order if n is None else order[:int(n)]
