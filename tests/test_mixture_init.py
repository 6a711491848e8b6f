"""Label-free mixture initialisation: cluster moments, UMAP (N2D) clusters, stable restarts."""

import numpy as np
import pytest

from astrovader.config import ModelConfig, TrainConfig
from astrovader.errors import AstrovaderError
from astrovader.mixture_init import cluster_latents, init_prior, medoid, moments, refine_components, split_components
from astrovader.models import build_model
from astrovader.schedules import ClassicVaDE


def _blobs(n_per=60, j=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 8, size=(k, j))
    scales = rng.uniform(0.3, 1.0, size=(k, j))
    z = np.concatenate([c + s * rng.standard_normal((n_per, j)) for c, s in zip(centres, scales)])
    return z, np.repeat(np.arange(k), n_per)


def test_moments_of_hard_clusters_match_numpy():
    z, y = _blobs()
    resp = np.eye(3)[y]
    w, m, v = moments(z, resp, floor=0.0)
    for k in range(3):
        np.testing.assert_allclose(m[k], z[y == k].mean(0), rtol=1e-10)
        np.testing.assert_allclose(v[k], z[y == k].var(0), rtol=1e-8)
    np.testing.assert_allclose(w, np.full(3, 1 / 3))
    # the floor is a fraction of the overall latent variance
    _, _, v2 = moments(z, resp, floor=0.1)
    np.testing.assert_allclose(v2 - v, 0.1 * np.broadcast_to(z.var(0), v.shape), rtol=1e-8)


def test_moments_of_soft_responsibilities_are_weighted():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(50, 2))
    r = rng.dirichlet([1, 1], size=50)
    w, m, v = moments(z, r, floor=0.0)
    for k in range(2):
        mk = np.average(z, axis=0, weights=r[:, k])
        np.testing.assert_allclose(m[k], mk, rtol=1e-8)
        np.testing.assert_allclose(v[k], np.average((z - mk) ** 2, axis=0, weights=r[:, k]), rtol=1e-6)
    np.testing.assert_allclose(w, r.sum(0) / 50, rtol=1e-6)


def test_umap_initialisation_sets_prior_from_cluster_moments():
    z, y = _blobs()
    cfg = ModelConfig(architecture="mlp", input_shape=(2, 2, 1), latent_dim=4, n_clusters=3,
                      hidden_units=[8])
    model = build_model(cfg)
    init = init_prior(model, z, method="umap", seed=0, umap_neighbors=10, umap_components=2)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(y, init.labels()) == pytest.approx(1.0)  # labels only score
    w, m, v = moments(z, init.responsibilities)
    np.testing.assert_allclose(np.asarray(model.prior.means), m, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.exp(np.asarray(model.prior.log_vars)), v, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(model.prior.pi()), w, rtol=1e-4)
    assert float(model.prior.initialized.numpy()) == 1.0


def _tilted_lines():
    """Two parallel tilted lines of 300 latents each: clusters no diagonal Gaussian pair can hold."""
    rng = np.random.default_rng(0)
    t = rng.uniform(-5, 5, size=300)
    return np.concatenate([np.c_[t, t + 1.0], np.c_[t, t - 1.0]]) + 0.05 * rng.standard_normal((600, 2))


# N2D's 20 neighbours: with 10 the k-NN graph breaks each line into pieces whose UMAP layout, and so
# the clusters found, change with the CPU (AVX2 vs AVX-512 machines; ARI 0.07-0.80 over 4 seeds on one)
LINES_UMAP = dict(umap_neighbors=20, umap_components=2)


def _prior_clusters(z, w, mu, s2, n_clusters):
    """NumPy reference of a prior's clusters (components ordered cluster by cluster):
    argmax_k logsumexp_{c in k} [log pi_c + log N(z | mu_c, diag s2_c)]."""
    from scipy.special import logsumexp

    log_joint = np.log(w) - 0.5 * (np.log(2 * np.pi * s2)[None] + (z[:, None] - mu[None]) ** 2 / s2[None]).sum(-1)
    return logsumexp(log_joint.reshape(len(z), n_clusters, -1), -1).argmax(1)


def test_prior_agreement_shows_when_the_prior_cannot_hold_the_clusters():
    """Two parallel tilted lines: N2D separates them, diagonal Gaussians cannot (no labels used)."""
    from sklearn.metrics import adjusted_rand_score

    z = _tilted_lines()
    cfg = ModelConfig(architecture="mlp", input_shape=(2, 2, 1), latent_dim=2, n_clusters=2, hidden_units=[8])
    model = build_model(cfg)
    init = init_prior(model, z, method="umap", seed=0, **LINES_UMAP)
    assert adjusted_rand_score(np.repeat([0, 1], 300), init.labels()) > 0.95  # labels only score
    # NumPy reference of the prior just set
    pi, mu, s2 = (np.asarray(model.prior.pi()), np.asarray(model.prior.means),
                  np.exp(np.asarray(model.prior.log_vars)))
    ref = adjusted_rand_score(init.labels(), _prior_clusters(z, pi, mu, s2, 2))
    assert init.prior_agreement == pytest.approx(ref, abs=1e-6) and init.prior_agreement < 0.3
    # separable blobs are held by the prior as they were found
    blobs, _ = _blobs()
    cfg = ModelConfig(architecture="mlp", input_shape=(2, 2, 1), latent_dim=4, n_clusters=3, hidden_units=[8])
    assert init_prior(build_model(cfg), blobs, method="umap", seed=0, umap_neighbors=10,
                      umap_components=2).prior_agreement > 0.99


def test_refined_components_assign_the_latents_to_the_found_clusters():
    """Moments copied from two parallel tilted lines misassign them; the discriminative refinement fixes that."""
    from sklearn.metrics import adjusted_rand_score

    z = _tilted_lines()
    found = np.repeat([0, 1], 300)  # the clustering to hold (N2D finds it, see the test above)

    def agreement(w, mu, s2):
        return adjusted_rand_score(found, _prior_clusters(z, w, mu, s2, 2))

    for m in (1, 3):
        copied = split_components(z, found, 2, m, seed=0)
        refined = refine_components(z, found, *copied, 2, steps=400)
        assert agreement(*copied) < 0.3 and agreement(*refined) > 0.95
        w, mu, s2 = refined
        assert w.shape == (2 * m,) and mu.shape == s2.shape == (2 * m, 2) and np.isclose(w.sum(), 1.0)
        assert np.all(s2 >= 1e-3 * z.var(0) - 1e-12)  # the variance floor holds
        sub = refine_components(z, found, *copied, 2, steps=400, max_points=200)  # a subset fits it as well
        assert agreement(*sub) > 0.9
    # through the initialisation: the prior set in the model now keeps the N2D clusters
    cfg = ModelConfig(architecture="mlp", input_shape=(2, 2, 1), latent_dim=2, n_clusters=2, hidden_units=[8])
    init = init_prior(build_model(cfg), z, method="umap", seed=0, refine_steps=400, **LINES_UMAP)
    assert init.prior_agreement > 0.95
    with pytest.raises(Exception, match="init_refine_steps"):
        TrainConfig(init_refine_steps=-1).validate()


def test_refinement_at_uniform_weights_holds_the_clusters_the_prior_starts_with():
    """A prior that starts at pi = 1/K (seed 000 sec. VI) is refined at those weights: refining
    with learned weights and then resetting them loses the clusters (an outer ring of latents)."""
    from sklearn.metrics import adjusted_rand_score

    z = np.random.default_rng(0).standard_normal((600, 2))
    found = (np.hypot(*z.T) > 1.8).astype(int)  # 138 of 600 in the ring
    for m in (1, 3):
        copied = split_components(z, found, 2, m, seed=0)
        uniform = np.full(2 * m, 1.0 / (2 * m))
        learned = refine_components(z, found, *copied, 2, steps=400)  # the cluster sizes' weights, then dropped
        held = refine_components(z, found, uniform, *copied[1:], 2, steps=400, learn_weights=False)
        assert np.array_equal(held[0], uniform)
        reset = adjusted_rand_score(found, _prior_clusters(z, uniform, *learned[1:], 2))
        kept = adjusted_rand_score(found, _prior_clusters(z, *held, 2))
        assert kept > 0.95 and kept > reset + 0.05
    # through the initialisation: pi stays 1/K and the prior keeps the N2D clusters
    cfg = ModelConfig(architecture="mlp", input_shape=(2, 2, 1), latent_dim=2, n_clusters=2, hidden_units=[8])
    model = build_model(cfg)
    init = init_prior(model, _tilted_lines(), method="umap", seed=0, refine_steps=400, uniform_pi=True,
                      **LINES_UMAP)
    assert np.allclose(init.weights, 0.5) and np.allclose(np.asarray(model.prior.pi()), 0.5)
    assert init.prior_agreement > 0.95


def test_medoid_picks_the_clustering_the_others_agree_with():
    a = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    b = np.array([1, 1, 1, 2, 2, 2, 0, 0, 0])  # same partition as a, other names
    c = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2])  # an unrelated partition
    best, scores = medoid([c, a, b])
    assert best in (1, 2) and scores[0] < scores[1] == pytest.approx(scores[2])
    assert medoid([c]) == (0, [1.0])


def test_restarts_choose_by_stability_without_labels():
    z, _ = _blobs(seed=3)
    init = cluster_latents(z, 3, method="gmm", n_restarts=3, seed=5)
    assert len(init.scores) == 3 and init.chosen == int(np.argmax(init.scores))
    # the signature has no place for labels: the choice is a function of z alone
    again = cluster_latents(z, 3, method="gmm", n_restarts=3, seed=5)
    np.testing.assert_array_equal(init.labels(), again.labels())


def test_nan_latents_and_bad_method_are_one_line_errors():
    z, _ = _blobs()
    z[0, 0] = np.nan
    with pytest.raises(AstrovaderError, match="NaN"):
        cluster_latents(z, 3)
    with pytest.raises(AstrovaderError, match="choose one of"):
        cluster_latents(np.zeros((10, 2)), 2, method="kmeans")


def test_classic_recipe_uses_the_configured_initialisation(capsys):
    cfg = ModelConfig(architecture="mlp", input_shape=(4, 4, 1), latent_dim=3, n_clusters=2,
                      hidden_units=[8])
    model = build_model(cfg)
    x = np.random.default_rng(0).uniform(size=(80, 4, 4, 1)).astype("float32")
    t = TrainConfig(recipe="classic", init="umap", init_restarts=2, umap_neighbors=10, umap_components=2,
                    uniform_pi=False)
    cb = ClassicVaDE(x, 0, "ae", uniform_pi=False,
                     init=dict(method=t.init, restarts=t.init_restarts, umap_neighbors=10, umap_components=2))
    cb.set_model(model)
    cb.on_epoch_begin(0)
    z = model.encode(x)[0]
    ref = cluster_latents(z, 2, method="umap", seed=0, n_restarts=2, umap_neighbors=10, umap_components=2)
    np.testing.assert_allclose(np.asarray(model.prior.means), ref.means, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(model.mixture_init.labels(), ref.labels())  # kept for the user to inspect
    assert -1.0 <= model.mixture_init.prior_agreement <= 1.0
    assert (f"the prior keeps its clusters with ARI {model.mixture_init.prior_agreement:.2f}"
            in capsys.readouterr().out)  # the user sees it when the mixture is initialised


def test_train_config_rejects_unknown_init():
    from astrovader.config import ConfigError

    with pytest.raises(ConfigError, match="train.init"):
        TrainConfig(init="spectral").validate()


def test_anchor_mixes_targets_into_gamma_in_log_space():
    from astrovader import losses

    cfg = ModelConfig(architecture="mlp", input_shape=(4, 4, 1), latent_dim=2, n_clusters=3, hidden_units=[8])
    model = build_model(cfg)
    rng = np.random.default_rng(0)
    z_mean = rng.normal(size=(6, 2)).astype("float32")
    z_log_var = rng.normal(-1, 0.1, size=(6, 2)).astype("float32")
    r = np.eye(3, dtype="float32")[[0, 1, 2, 0, 1, 2]]
    prior = model.prior
    lp, m, v = (np.asarray(prior.log_pi()), np.asarray(prior.means), np.asarray(prior.log_vars))

    def kl_with(log_g):
        return np.asarray(losses.gmm_kl(z_mean, z_log_var, log_g, m, v, lp))

    model.anchor_weight.assign(0.0)
    free = np.asarray(model._kl_terms(z_mean, z_mean, z_log_var, None)[1])
    np.testing.assert_allclose(np.asarray(model._kl_terms(z_mean, z_mean, z_log_var, r)[1]), free, rtol=1e-5)
    model.anchor_weight.assign(1.0)  # gamma := the targets (hard: no NaN from 0 log 0)
    on = np.asarray(model._kl_terms(z_mean, z_mean, z_log_var, r)[1])
    np.testing.assert_allclose(on, kl_with(np.log(np.maximum(r, 1e-12))), rtol=1e-4, atol=1e-4)
    model.anchor_weight.assign(0.5)  # the mixture (gamma + r) / 2
    gamma = np.asarray(model.gamma_layer(prior(z_mean)))
    half = np.asarray(model._kl_terms(z_mean, z_mean, z_log_var, r)[1])
    np.testing.assert_allclose(half, kl_with(np.log(0.5 * gamma + 0.5 * r)), rtol=1e-4, atol=1e-4)


def test_anchored_training_follows_the_initial_clustering_without_labels():
    """Anchoring feeds each stamp its own initial responsibilities (looked up by row)."""
    from astrovader.config import RunConfig
    from astrovader.schedules import AnchorTargets
    from astrovader.training import train

    rng = np.random.default_rng(0)
    protos = rng.uniform(size=(3, 4, 4, 1))
    y = np.repeat(np.arange(3), 30)
    x = (protos[y] + 0.05 * rng.normal(size=(90, 4, 4, 1))).astype("float32")
    cfg = RunConfig(model=ModelConfig(architecture="mlp", latent_dim=2, n_clusters=3, hidden_units=[16]),
                    train=TrainConfig(recipe="classic", pretrain="ae", pretrain_epochs=3, vade_epochs=3,
                                      anchor_epochs=2, batch_size=30, init="gmm", uniform_pi=False))
    seen = []
    real_fill = AnchorTargets.fill

    def spy(self, model, data, init=None, batch_size=256):
        real_fill(self, model, data, init, batch_size)
        seen.append((data.shape, self.values.copy(), None if init is None else init.responsibilities))

    AnchorTargets.fill = spy
    try:
        model, hist = train(cfg, x, verbose=0)
    finally:
        AnchorTargets.fill = real_fill
    assert len(seen) == 1 and seen[0][0] == x.shape
    np.testing.assert_allclose(seen[0][1], seen[0][2], rtol=1e-6, atol=1e-7)  # every row: its own initial responsibilities
    assert hist.history["anchor_weight"] == [0.0, 0.0, 0.0, 1.0, 1.0, 0.0]
    assert np.all(np.isfinite(hist.history["loss"]))


def _recluster_run(recluster: bool):
    from astrovader.config import RunConfig
    from astrovader.training import train

    rng = np.random.default_rng(0)
    protos = rng.uniform(size=(3, 4, 4, 1))
    x = (protos[np.repeat(np.arange(3), 30)] + 0.05 * rng.normal(size=(90, 4, 4, 1))).astype("float32")
    cfg = RunConfig(model=ModelConfig(architecture="mlp", latent_dim=2, n_clusters=3, hidden_units=[16]),
                    train=TrainConfig(recipe="classic", pretrain="ae", pretrain_epochs=3, vade_epochs=3,
                                      anchor_epochs=3, batch_size=30, init="gmm", uniform_pi=False,
                                      recluster=recluster))
    model, _ = train(cfg, x, verbose=0)
    return model, x


def test_recluster_copies_the_clusters_of_the_final_codes_into_the_prior():
    """``train.recluster``: after the last epoch the mixture is fitted again, the initialisation's
    way, on the final codes (no labels) -- the anchored phase kept its starting partition."""
    for recluster in (True, False):
        model, x = _recluster_run(recluster)
        ref = cluster_latents(np.asarray(model.encode(x)[0]), 3, method="gmm", seed=0, n_init=5)
        order = np.argsort(ref.means[:, 0])
        prior_means = np.asarray(model.prior.means)
        if recluster:
            np.testing.assert_allclose(prior_means, ref.means, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(np.exp(np.asarray(model.prior.log_vars)), ref.variances, rtol=1e-4)
        else:  # the trained prior, not a fit of the final codes
            assert not np.allclose(np.sort(prior_means[:, 0]), ref.means[order, 0], atol=1e-3)


def test_recluster_is_skipped_when_training_stopped_early():
    cfg = ModelConfig(architecture="mlp", input_shape=(4, 4, 1), latent_dim=2, n_clusters=2, hidden_units=[8])
    model = build_model(cfg)
    cb = ClassicVaDE(np.zeros((20, 4, 4, 1), "float32"), 0, "ae", uniform_pi=False, recluster=True)
    calls = []
    cb.fit_prior = lambda: calls.append(1)
    cb.set_model(model)
    model.prior.initialized.assign(1.0)
    model.stop_training = True  # the NaN guard or early stopping ended the run
    cb.on_train_end()
    assert calls == []
    model.stop_training = False
    model.prior.initialized.assign(0.0)  # stopped before the mixture was ever initialised
    cb.on_train_end()
    assert calls == []


def test_recluster_needs_a_recipe_with_a_mixture_initialisation():
    from astrovader.config import ConfigError

    TrainConfig(recipe="s3vdc", recluster=True).validate()
    with pytest.raises(ConfigError, match="train.recluster"):
        TrainConfig(recipe="vae", recluster=True).validate()


def test_the_schedule_lines_say_when_the_final_codes_are_re_clustered():
    from astrovader.runs import describe_schedule
    from benchmarks.tables import _cfg_line

    for recipe in ("s3vdc", "classic"):
        for recluster in (True, False):
            t = TrainConfig(recipe=recipe, recluster=recluster)
            assert ("then the final codes re-clustered" in describe_schedule(t)) == recluster
            line = _cfg_line({"config": {"train": t.__dict__, "model": {}}})
            assert ("final codes re-clustered the same way" in line) == recluster


def test_components_per_cluster_merge_into_cluster_gamma(tmp_path):
    """Over-clustering: K x m components, gamma per cluster = sum over its components (log space)."""
    import keras
    from scipy.special import logsumexp

    cfg = ModelConfig(architecture="mlp", input_shape=(4, 4, 1), latent_dim=2, n_clusters=3, hidden_units=[8],
                      components_per_cluster=2)
    model = build_model(cfg)
    assert model.n_components == 6 and np.asarray(model.prior.means).shape == (6, 2)
    rng = np.random.default_rng(0)
    z = np.concatenate([c + 0.3 * rng.standard_normal((40, 2)) for c in ([0, 0], [0, 3], [5, 5], [5, 8], [9, 0], [9, 3])])
    y = np.repeat([0, 0, 1, 1, 2, 2], 40)  # 3 clusters, each two blobs: not one Gaussian
    init = cluster_latents(z, 3, method="gmm", seed=0, components_per_cluster=2)
    assert init.means.shape == (6, 2) and np.isclose(init.weights.sum(), 1.0)
    model.prior.set_parameters(init.weights, init.means, init.variances)
    x = rng.uniform(size=(5, 4, 4, 1)).astype("float32")
    g = model.cluster_probabilities(x)
    mu = model.encode(x)[0]
    lj = np.asarray(model.prior(mu), dtype="float64")
    lg = lj - logsumexp(lj, axis=1, keepdims=True)
    np.testing.assert_allclose(g, np.exp(logsumexp(lg.reshape(5, 3, 2), axis=2)), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.cluster_weights(), np.asarray(model.prior.pi()).reshape(3, 2).sum(1), rtol=1e-6)
    assert model.prototypes().shape == (3, 4, 4, 1) and model.sample(4, cluster=2).shape == (4, 4, 4, 1)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.components_per_cluster == 2
    np.testing.assert_array_equal(loaded.cluster_probabilities(x), g)



def test_collapsed_component_is_refitted_with_a_larger_covariance_floor(monkeypatch):
    """sklearn raises ValueError when a component collapses onto identical points (seen with
    UMAP of 4,000 z-scored transients); the fit is retried with a larger floor, and when every
    floor fails the user gets a one-line AstrovaderError, not a traceback."""
    from sklearn.mixture import GaussianMixture

    from astrovader import mixture_init as M

    floors = []

    class Collapsing(GaussianMixture):
        def fit(self, X, y=None):
            floors.append(self.reg_covar)
            if self.reg_covar < 1e-5:
                raise ValueError("Fitting the mixture model failed because some components have ill-defined "
                                 "empirical covariance")
            return super().fit(X, y)

    monkeypatch.setattr(M, "GaussianMixture", Collapsing)
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(-4, 1, (50, 3)), rng.normal(4, 1, (50, 3))])
    init = cluster_latents(z, 2, "gmm", seed=0)
    assert floors[0] == 1e-6 and floors[1] > 1e-5  # sklearn's floor first, then a larger one
    assert sorted(np.bincount(init.labels())) == [50, 50]

    class Failing(GaussianMixture):
        def fit(self, X, y=None):
            raise ValueError("ill-defined empirical covariance")

    monkeypatch.setattr(M, "GaussianMixture", Failing)
    with pytest.raises(AstrovaderError, match="cannot be fitted"):
        cluster_latents(z, 2, "gmm", seed=0)


def test_untrained_log_variance_head_starts_inside_the_clusters():
    """After AE pretraining the z_log_var head is all zeros (s2 = 1, wider than the latent cloud);
    the initialisation sets it to 0.1 x the clusters' geometric-mean variance; a trained head is kept."""
    from astrovader.mixture_init import narrow_posterior

    cfg = ModelConfig(architecture="mlp", input_shape=(8, 8, 1), latent_dim=2, n_clusters=2,
                      hidden_units=[8], batch_norm=False, seed=0)
    model = build_model(cfg)
    model(np.zeros((1, 8, 8, 1), "float32"))
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(-1, 0.1, (100, 2)), rng.normal(1, 0.01, (100, 2))])
    init = init_prior(model, z, method="gmm", seed=0)
    kernel, bias = model.encoder.get_layer("z_log_var").get_weights()
    expect = np.log(0.1) + np.average(np.log(init.variances), axis=0, weights=init.weights)
    np.testing.assert_allclose(bias, expect, rtol=1e-5)
    assert np.all(kernel == 0) and np.all(np.exp(bias) < 0.1 ** 2)  # narrower than the wide cluster
    _, log_var = model.encode(np.zeros((3, 8, 8, 1), "float32"))
    np.testing.assert_allclose(log_var, np.broadcast_to(expect, log_var.shape), rtol=1e-5)
    head = model.encoder.get_layer("z_log_var")
    head.set_weights([kernel + 0.5, bias])  # trained by a VAE pretraining
    assert not narrow_posterior(model, init.variances, init.weights)
    np.testing.assert_array_equal(head.get_weights()[0], kernel + 0.5)


def test_a_run_killed_while_re_clustering_redoes_it_on_resume(tmp_path, monkeypatch):
    """The re-clustering runs before the last checkpoint is deleted: an interrupted run is
    unfinished, and ``--resume`` re-clusters the restored final codes without another epoch."""
    from astrovader import runs
    from astrovader.config import load_config
    from astrovader.data import load
    from astrovader.schedules import S3VDC
    from cli_helpers import tiny_config, tiny_npz

    data = tiny_npz(tmp_path / "tiny.npz", n=80)
    cfg = runs.configure(load_config(tiny_config(tmp_path / "tiny.yaml")), data=str(data), seed=3)
    cfg = cfg.override("train", recluster=True)
    stamps = load(cfg.data)
    real_fit = S3VDC.fit_prior
    calls = []

    def killed_on_the_second_fit(self):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # stands in for SIGKILL during the re-clustering
        return real_fit(self)

    monkeypatch.setattr(S3VDC, "fit_prior", killed_on_the_second_fit)
    with pytest.raises(KeyboardInterrupt):
        runs.fit_run(cfg, tmp_path / "run", verbose=0, stamps=stamps)
    run = runs.Run(tmp_path / "run")
    assert not run.finished and run.backup.is_dir()
    monkeypatch.setattr(S3VDC, "fit_prior", real_fit)
    model, _, run = runs.fit_run(None, tmp_path / "run", resume=True, verbose=0)
    assert run.finished and len(runs.read_history(run.history)["loss"]) == cfg.train.total_epochs()
    t = run.cfg.train
    x_train, _ = runs.split_validation(runs.conform(stamps.images, run.cfg.model.input_shape, quiet=True),
                                       float(t.validation_fraction), int(t.seed))
    ref = cluster_latents(np.asarray(model.encode(x_train)[0]), 2, method=t.init, seed=t.seed, n_init=5,
                          components_per_cluster=run.cfg.model.components_per_cluster)
    np.testing.assert_allclose(np.asarray(model.prior.means), ref.means, rtol=1e-4, atol=1e-5)
