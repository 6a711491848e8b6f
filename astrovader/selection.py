"""Choosing the number of clusters K without labels (seed 004 sec. 4.1).

AstroVaDEr fits many Dirichlet-process Bayesian Gaussian mixtures -- scikit-learn's
``BayesianGaussianMixture`` with ``weight_concentration_prior_type="dirichlet_process"`` --
to mini-batches of embedded samples. The stick-breaking prior drives the weights of
unneeded components to ~0, so with a generous ``max_components`` each fit reports how many
components the data support; the number that recurs most often across mini-batches is the
"stable" K. This needs one trained embedding (e.g. a VAE, or the gamma-training phase of
s3VDC) rather than one full model per candidate K.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import numpy as np
from sklearn.mixture import BayesianGaussianMixture

from astrovader.errors import AstrovaderError

__all__ = ["KSelection", "choose_k", "choose_k_from_model"]


@dataclasses.dataclass
class KSelection:
    """Result of :func:`choose_k`.

    Attributes:
        k: the stable number of components (mode over mini-batches; ties -> smaller K).
        frequency: fraction of mini-batches that gave ``k``.
        counts_per_batch: number of components above the weight threshold per mini-batch.
        weights_per_batch: sorted (descending) mixture weights of each fit.
        histogram: ``{n_components: n_batches}``.
        max_components: the truncation level used.
        weight_threshold: the weight a component needed to count.
    """

    k: int
    frequency: float
    counts_per_batch: list[int]
    weights_per_batch: list[list[float]]
    histogram: dict[int, int]
    max_components: int
    weight_threshold: float

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form (for JSON)."""
        d = dataclasses.asdict(self)
        d["histogram"] = {str(k): v for k, v in sorted(self.histogram.items())}
        return d

    def summary(self) -> str:
        """One line for logs and the CLI."""
        hist = ", ".join(f"{k}:{v}" for k, v in sorted(self.histogram.items()))
        return (
            f"K = {self.k} (in {self.frequency:.0%} of {len(self.counts_per_batch)} mini-batches; "
            f"components with weight > {self.weight_threshold:g} per batch -> {{{hist}}})"
        )


def choose_k(
    latents: Any,
    max_components: int = 20,
    n_batches: int = 20,
    batch_size: int = 1000,
    weight_threshold: float = 0.01,
    covariance_type: str = "full",
    weight_concentration_prior: float | None = None,
    max_iter: int = 500,
    seed: int = 0,
) -> KSelection:
    """Stable number of mixture components from Dirichlet-process GMMs on mini-batches.

    Mathematical details::

        for b = 1..n_batches:
            Z_b  = random mini-batch of the latents (without replacement)
            w_b  = weights of a DP-GMM (stick-breaking, truncated at max_components) on Z_b
            n_b  = #{k : w_b,k > weight_threshold}
        K = mode(n_1, ..., n_B)

    Args:
        latents: embedded samples ``(N, J)``, e.g. the encoder means ``mu``.
        max_components: truncation level of the Dirichlet process; choose it larger than
            the K you expect.
        n_batches: number of mini-batches (independent fits).
        batch_size: samples per mini-batch (clipped to N; each fit then uses a different
            seed).
        weight_threshold: a component counts when its weight exceeds this.
        covariance_type: ``"full"`` or ``"diag"`` (``"diag"`` is faster for large J).
        weight_concentration_prior: gamma_0 of the DP (sklearn default ``1/max_components``);
            smaller values favour fewer components.
        max_iter: EM iterations per fit.
        seed: seed for the mini-batches and the fits.

    Returns:
        A :class:`KSelection`.

    Raises:
        AstrovaderError: on non-finite latents or invalid settings.
    """
    z = np.asarray(latents, dtype=np.float64)
    if z.ndim != 2:
        raise AstrovaderError(f"latents: expected shape (N, J), got {z.shape}")
    if not np.all(np.isfinite(z)):
        raise AstrovaderError("latents contain NaN/Inf: check the model (training diverged?)")
    if max_components < 1 or n_batches < 1 or batch_size < 2:
        raise AstrovaderError("choose_k: max_components and n_batches must be >= 1, batch_size >= 2")
    if covariance_type not in ("full", "diag", "tied", "spherical"):
        raise AstrovaderError(
            f"covariance_type={covariance_type!r}: choose full, diag, tied or spherical"
        )
    n = len(z)
    size = min(int(batch_size), n)
    if size < max_components:
        raise AstrovaderError(
            f"choose_k: a mini-batch of {size} samples is too small for max_components="
            f"{max_components}; give more samples or lower max_components"
        )
    rng = np.random.default_rng(seed)
    counts, weights = [], []
    for b in range(int(n_batches)):
        idx = rng.choice(n, size=size, replace=False)
        bgm = BayesianGaussianMixture(
            n_components=int(max_components),
            covariance_type=covariance_type,
            weight_concentration_prior_type="dirichlet_process",
            weight_concentration_prior=weight_concentration_prior,
            max_iter=int(max_iter),
            random_state=int(rng.integers(2**31 - 1)),
        )
        bgm.fit(z[idx])
        w = np.sort(bgm.weights_)[::-1]
        counts.append(int((w > weight_threshold).sum()))
        weights.append([float(v) for v in w])
    hist = Counter(counts)
    best = max(hist.values())
    k = min(c for c, v in hist.items() if v == best)
    return KSelection(
        k=int(k),
        frequency=best / len(counts),
        counts_per_batch=counts,
        weights_per_batch=weights,
        histogram=dict(hist),
        max_components=int(max_components),
        weight_threshold=float(weight_threshold),
    )


def choose_k_from_model(model: Any, x: Any, batch_size: int = 256, **kwargs: Any) -> KSelection:
    """Embed ``x`` with ``model.encode`` (posterior means) and run :func:`choose_k`.

    Args:
        model: any model with ``encode(x, batch_size=...) -> (mu, log_var)`` (VAE or VaDE).
        x: stamps ``(N, H, W, C)``.
        batch_size: batch size for encoding.
        **kwargs: passed to :func:`choose_k`.

    Returns:
        A :class:`KSelection`.
    """
    mu, _ = model.encode(np.asarray(x, dtype=np.float32), batch_size=batch_size)
    return choose_k(np.asarray(mu), **kwargs)
