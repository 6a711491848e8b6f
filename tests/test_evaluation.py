"""Metrics in astrovader.evaluation against hand-computed cases."""

import json

import numpy as np
import pytest

from astrovader.errors import AstrovaderError
from astrovader.evaluation import (
    accuracy_vs_variance,
    best_worst,
    cluster_mapping,
    clustering_scores,
    contingency,
    evaluate_model,
    hungarian_accuracy,
    majority_accuracy,
    mean_gamma_confusion,
    occupancy,
    occupancy_table,
    reconstruction_mse,
    to_jsonable,
)


@pytest.fixture(autouse=True)
def _seed():
    np.random.seed(0)


# y_true: 3 classes; y_pred: a relabelled clustering with one mistake.
Y_TRUE = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
Y_PERM = np.array([7, 7, 7, 3, 3, 3, 5, 5, 5, 3])  # 7->0, 3->1, 5->2; last object wrong


def test_permuted_labels_give_perfect_accuracy():
    perm = np.array([2, 0, 1])[Y_TRUE]
    assert hungarian_accuracy(Y_TRUE, perm) == 1.0
    assert majority_accuracy(Y_TRUE, perm) == 1.0
    s = clustering_scores(Y_TRUE, perm)
    assert s["nmi"] == pytest.approx(1.0) and s["ari"] == pytest.approx(1.0)


def test_one_mistake_with_arbitrary_cluster_ids():
    assert hungarian_accuracy(Y_TRUE, Y_PERM) == pytest.approx(0.9)
    assert majority_accuracy(Y_TRUE, Y_PERM) == pytest.approx(0.9)
    assert cluster_mapping(Y_TRUE, Y_PERM) == {3: 1, 5: 2, 7: 0}


def test_contingency_table():
    table, clusters, classes = contingency(Y_TRUE, Y_PERM)
    assert clusters.tolist() == [3, 5, 7] and classes.tolist() == [0, 1, 2]
    assert table.tolist() == [[0, 3, 1], [0, 0, 3], [3, 0, 0]]


def test_more_clusters_than_classes():
    # 2 classes, 4 clusters: class 0 split over clusters 0/1, class 1 over 2/3.
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    c = np.array([0, 0, 1, 1, 2, 2, 2, 3])
    # Hungarian: one cluster per class -> best is cluster 0 (2) + cluster 2 (3) = 5/8.
    assert hungarian_accuracy(y, c) == pytest.approx(5 / 8)
    # Majority (seed 000 eq. 9): every cluster pure -> 1.
    assert majority_accuracy(y, c) == 1.0
    m = cluster_mapping(y, c, method="hungarian")
    assert sorted(m.values()).count(-1) == 2
    assert cluster_mapping(y, c, method="majority") == {0: 0, 1: 0, 2: 1, 3: 1}


def test_fewer_clusters_than_classes():
    # 3 classes, 2 clusters: cluster 0 = classes 0 and 1, cluster 1 = class 2.
    y = np.array([0, 0, 1, 1, 1, 2, 2])
    c = np.array([0, 0, 0, 0, 0, 1, 1])
    # Best matching: cluster 0 -> class 1 (3), cluster 1 -> class 2 (2) = 5/7.
    assert hungarian_accuracy(y, c) == pytest.approx(5 / 7)
    assert majority_accuracy(y, c) == pytest.approx(5 / 7)


def test_majority_differs_from_hungarian_when_clusters_share_a_class():
    y = np.array([0, 0, 0, 0, 1, 1])
    c = np.array([0, 0, 1, 1, 1, 1])  # cluster 1 majority is a tie (2 vs 2) -> class 0
    assert majority_accuracy(y, c) == pytest.approx(4 / 6)
    assert hungarian_accuracy(y, c) == pytest.approx(4 / 6)
    c2 = np.array([0, 0, 1, 1, 2, 2])  # every cluster pure, 3 clusters for 2 classes
    assert majority_accuracy(y, c2) == 1.0
    assert hungarian_accuracy(y, c2) == pytest.approx(4 / 6)


def test_nmi_ari_hand_values():
    # Independent partition: NMI 0; ARI of this 2x2 case is -0.5 (hand-computed).
    y = np.array([0, 0, 1, 1])
    c = np.array([0, 1, 0, 1])
    s = clustering_scores(y, c)
    assert s["nmi"] == pytest.approx(0.0, abs=1e-12)
    # ARI = (sum_ij C(n_ij,2) - a*b/C(n,2)) / (0.5(a+b) - a*b/C(n,2)); a=b=2, C(4,2)=6.
    assert s["ari"] == pytest.approx((0 - 4 / 6) / (2 - 4 / 6))
    assert s["n_clusters_used"] == 2


def test_silhouette_and_ch_hand_values():
    # Two clusters on a line: {0, 1} and {10, 11}.
    z = np.array([[0.0], [1.0], [10.0], [11.0]])
    c = np.array([0, 0, 1, 1])
    s = clustering_scores(None, c, z)
    # point 0: a=1, b=mean(10,11)=10.5 -> s=(10.5-1)/10.5; point 1: a=1, b=9.5 -> 8.5/9.5
    expect = np.mean([9.5 / 10.5, 8.5 / 9.5, 8.5 / 9.5, 9.5 / 10.5])
    assert s["silhouette"] == pytest.approx(expect)
    # CH = [B/(k-1)] / [W/(n-k)]; B = 4*(5.5-5.5)... centroids 0.5,10.5, mean 5.5
    b = 2 * 25 + 2 * 25
    w = 4 * 0.25
    assert s["calinski_harabasz"] == pytest.approx((b / 1) / (w / 2))
    assert "acc_hungarian" not in s


def test_silhouette_nan_with_one_cluster_and_subset_is_seeded():
    z = np.random.default_rng(0).normal(size=(50, 3))
    s = clustering_scores(None, np.zeros(50, int), z)
    assert np.isnan(s["silhouette"]) and np.isnan(s["calinski_harabasz"])
    c = (z[:, 0] > 0).astype(int)
    a = clustering_scores(None, c, z, max_silhouette=20, seed=3)["silhouette"]
    b = clustering_scores(None, c, z, max_silhouette=20, seed=3)["silhouette"]
    full = clustering_scores(None, c, z, max_silhouette=0)["silhouette"]
    assert a == b and np.isfinite(full)


def test_bad_inputs_raise_astrovader_error():
    with pytest.raises(AstrovaderError, match="one label per object"):
        hungarian_accuracy([0, 1], [0])
    with pytest.raises(AstrovaderError, match="integers"):
        majority_accuracy([0.5, 1.0], [0, 1])
    with pytest.raises(AstrovaderError, match="hungarian"):
        cluster_mapping([0], [0], method="best")


GAMMA = np.array(
    [
        [0.90, 0.05, 0.05],
        [0.60, 0.40, 0.00],
        [0.10, 0.85, 0.05],
        [0.00, 0.45, 0.55],
        [0.00, 0.02, 0.98],
    ]
)


def test_occupancy_counts_hand_computed():
    occ = occupancy(GAMMA, cuts=(0.5, 0.8, 0.95))
    assert occ["argmax"] == [2, 1, 2]
    assert occ["gamma>0.5"] == [2, 1, 2]
    assert occ["gamma>0.8"] == [1, 1, 1]
    assert occ["gamma>0.95"] == [0, 0, 1]
    assert occ["any_gamma>0.8"] == 3 and occ["any_gamma>0.95"] == 1
    occ2 = occupancy(GAMMA, cuts=(0.3,))
    assert occ2["gamma>0.3"] == [2, 3, 2] and occ2["any_gamma>0.3"] == 5
    table = occupancy_table(occ)
    assert table.splitlines()[0].startswith("| component | 0 | 1 | 2")
    assert "| gamma>0.95 | 0 | 0 | 1 |" in table


def test_occupancy_silhouette_per_component():
    z = np.array([[0.0], [0.5], [10.0], [20.0], [20.5]])
    occ = occupancy(GAMMA, latents=z)
    sil = occ["mean_silhouette"]
    assert len(sil) == 3 and sil[1] == pytest.approx(0.0)  # singleton cluster -> 0
    assert sil[0] > 0.9 and sil[2] > 0.9


def test_mean_gamma_confusion_hand_computed():
    y = np.array([0, 0, 1, 1, 1])
    m = mean_gamma_confusion(GAMMA, y)
    assert m.shape == (2, 3)
    np.testing.assert_allclose(m[0], [0.75, 0.225, 0.025])
    np.testing.assert_allclose(m[1], [0.1 / 3, 1.32 / 3, 1.58 / 3])
    # K x K overlap (seed 004 Fig. 5) with argmax labels; an empty row is nan.
    kk = mean_gamma_confusion(GAMMA, GAMMA.argmax(1), n_labels=4)
    assert kk.shape == (4, 3) and np.all(np.isnan(kk[3]))
    np.testing.assert_allclose(kk[1], GAMMA[2])


def test_accuracy_vs_variance_bins_and_global_mapping():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    c = np.array([0, 0, 0, 1, 1, 1, 1, 0])  # mapping: 0->0, 1->1; objects 3 and 7 wrong
    var = np.array([0.1, 0.2, 0.3, 0.9, 0.15, 0.25, 0.35, 0.8])
    out = accuracy_vs_variance(y, c, var, n_bins=2)
    assert out["count"] == [4, 4]
    assert out["accuracy"] == [1.0, 0.5]
    assert out["variance_max"][0] == pytest.approx(0.25)
    assert out["variance_mean"][1] == pytest.approx(np.mean([0.3, 0.35, 0.8, 0.9]))
    with pytest.raises(AstrovaderError, match="n_bins"):
        accuracy_vs_variance(y, c, var, n_bins=9)


def test_reconstruction_mse_and_best_worst():
    x = np.zeros((4, 2, 2, 1))
    x_hat = np.zeros_like(x)
    x_hat[1] = 1.0
    x_hat[2, 0, 0, 0] = 2.0  # mse = 4/4 = 1
    x_hat[3, 0, 0, 0] = 1.0  # mse = 0.25
    mse = reconstruction_mse(x, x_hat)
    np.testing.assert_allclose(mse, [0.0, 1.0, 1.0, 0.25])
    best, worst = best_worst(mse, 2)
    assert best.tolist() == [0, 3] and worst.tolist() == [2, 1]
    best, worst = best_worst([1.0, np.nan, 0.5], 1)
    assert best.tolist() == [2] and worst.tolist() == [1]
    with pytest.raises(AstrovaderError, match="must match"):
        reconstruction_mse(x, x_hat[:2])


class _FakeModel:
    """The model API of notes/API.md on a 2-cluster toy: cluster = sign of the mean pixel."""

    def encode(self, x, batch_size=256):
        m = x.reshape(len(x), -1).mean(1, keepdims=True)
        return np.concatenate([m, -m], 1), np.zeros((len(x), 2))

    def decode(self, z):
        return np.repeat(z[:, :1], 4, axis=1).reshape(-1, 2, 2, 1)

    def cluster_probabilities(self, x):
        m = x.reshape(len(x), -1).mean(1)
        p = 1 / (1 + np.exp(-10 * m))
        return np.stack([1 - p, p], 1)

    def decoder_variance(self, x):
        return np.abs(x.reshape(len(x), -1)).std(1) + 0.01


def test_evaluate_model_with_fake_model():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20)
    x = (np.where(y == 1, 1.0, -1.0)[:, None, None, None] + 0.1 * rng.normal(size=(40, 2, 2, 1)))
    out = evaluate_model(_FakeModel(), x.astype("float32"), y, batch_size=7, n_bins=4)
    assert out["scores"]["acc_hungarian"] == 1.0
    assert out["scores"]["silhouette"] > 0.8
    assert out["occupancy"]["argmax"] == [20, 20]
    assert out["confusion"].shape == (2, 2) and out["confusion"][1, 1] > 0.99
    assert len(out["accuracy_vs_variance"]["accuracy"]) == 4
    assert out["mse"].shape == (40,) and out["scores"]["mse_mean"] < 0.05
    json.dumps(to_jsonable(out))  # everything converts
    unlabelled = evaluate_model(_FakeModel(), x.astype("float32"))
    assert "acc_hungarian" not in unlabelled["scores"]
    assert unlabelled["confusion"].shape == (2, 2)


def test_evaluate_model_with_real_vade():
    from astrovader.config import ModelConfig
    from astrovader.models import build_model

    cfg = ModelConfig(architecture="mlp", input_shape=(4, 4, 1), latent_dim=3, n_clusters=3,
                      hidden_units=[8], decoder_variance=True, reconstruction="gaussian", mc_samples=2)
    model = build_model(cfg, kind="vade")
    x = np.random.default_rng(0).normal(size=(30, 4, 4, 1)).astype("float32")
    y = np.repeat([0, 1, 2], 10)
    out = evaluate_model(model, x, y, batch_size=16, n_bins=3)
    assert out["gamma"].shape == (30, 3)
    np.testing.assert_allclose(out["gamma"].sum(1), 1.0, atol=1e-5)
    assert out["latents"].shape == (30, 3) and out["mse"].shape == (30,)
    assert np.all((out["variance"] >= np.exp(-5) - 1e-6) & (out["variance"] <= 1 + 1e-6))
    assert 0.0 <= out["scores"]["acc_hungarian"] <= 1.0


def test_headline_score_is_majority_only_with_more_clusters_than_classes():
    from astrovader.evaluation import headline_score

    assert headline_score(2, 2) == "acc_hungarian"
    assert headline_score(3, 10) == "acc_hungarian"
    assert headline_score(10, 2) == "acc_majority"  # seed 000: K = 10 clusters of real and bogus stamps
