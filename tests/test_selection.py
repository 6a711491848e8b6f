"""Choosing K with Dirichlet-process mixtures on mini-batches (seed 004 sec. 4.1)."""

import json

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from astrovader.errors import AstrovaderError
from astrovader.selection import choose_k, choose_k_from_model


@pytest.fixture(autouse=True)
def _seed():
    np.random.seed(0)


@pytest.mark.parametrize("n_blobs,cov", [(4, "full"), (6, "diag")])
def test_finds_known_number_of_blobs(n_blobs, cov):
    z, _ = make_blobs(
        n_samples=3000, n_features=5, centers=n_blobs, cluster_std=1.0,
        center_box=(-20, 20), random_state=1,
    )
    sel = choose_k(z, max_components=15, n_batches=8, batch_size=600, covariance_type=cov, seed=0)
    assert sel.k == n_blobs
    assert sel.frequency >= 0.75
    assert len(sel.counts_per_batch) == 8 and len(sel.weights_per_batch[0]) == 15
    assert sum(sel.histogram.values()) == 8
    assert f"K = {n_blobs}" in sel.summary()
    json.dumps(sel.to_dict())


def test_is_deterministic_for_a_seed():
    z, _ = make_blobs(n_samples=500, n_features=3, centers=3, random_state=0)
    a = choose_k(z, max_components=8, n_batches=3, batch_size=200, seed=5)
    b = choose_k(z, max_components=8, n_batches=3, batch_size=200, seed=5)
    assert a.counts_per_batch == b.counts_per_batch and a.weights_per_batch == b.weights_per_batch


def test_from_model_uses_encoder_means():
    z, _ = make_blobs(n_samples=800, n_features=4, centers=3, center_box=(-20, 20), random_state=2)

    class Enc:
        def encode(self, x, batch_size=256):
            return x.reshape(len(x), -1), np.zeros((len(x), 4))

    sel = choose_k_from_model(Enc(), z.reshape(-1, 2, 2, 1), max_components=10, n_batches=4,
                              batch_size=400, covariance_type="diag")
    assert sel.k == 3


def test_bad_inputs():
    with pytest.raises(AstrovaderError, match="NaN"):
        choose_k(np.full((50, 2), np.nan))
    with pytest.raises(AstrovaderError, match="too small"):
        choose_k(np.zeros((10, 2)), max_components=20)
    with pytest.raises(AstrovaderError, match="covariance_type"):
        choose_k(np.zeros((100, 2)), covariance_type="banana")
