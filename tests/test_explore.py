"""Latent-space exploration (seed 004 sec. 5.3): routes, tour, traversals, deblending,
filtered generation, neighbours, anomalies, and the ``astrovader explore`` smoke tests."""

import csv
import itertools

import numpy as np
import pytest

from astrovader import explore
from astrovader.cli import main
from astrovader.config import ModelConfig, RunConfig, TrainConfig, save_config
from astrovader.errors import AstrovaderError
from astrovader.training import train
from test_training import shapes_dataset

ACTIONS = {
    "tour": ["--steps", "3"],
    "traverse": ["--steps", "5", "--quantile", "0.01"],
    "deblend": ["--object", "7", "--clean", "0", "1"],
    "neighbours": ["--object", "obj0003", "--count", "5"],
    "anomalies": ["--top", "6", "--by", "variance"],
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny VaDE with the decoder-variance head on 4 shape classes, saved as a run directory."""
    x, y = shapes_dataset(n_per=50, size=12)
    cfg = RunConfig(
        model=ModelConfig(architecture="hits", latent_dim=3, n_clusters=4, filters=[8], kernel_sizes=[3], l2=0.0,
                          decoder_variance=True, batch_norm=True),
        train=TrainConfig(recipe="s3vdc", batch_size=50, learning_rate=2e-3, gamma_epochs=6, gmm_batches=4,
                          anneal_epochs=1, static_epochs=2, periods=1))
    model, _ = train(cfg, x, verbose=0)
    root = tmp_path_factory.mktemp("explore")
    data = root / "shapes.npz"
    np.savez(data, images=x, labels=y, ids=np.array([f"obj{i:04d}" for i in range(len(x))]))
    run = root / "run"
    run.mkdir()
    cfg.model.input_shape = list(x.shape[1:])
    cfg.data.spec = str(data)
    save_config(cfg, run / "config.yaml")
    model.save(run / "model.keras")
    return model, x, run, data


# ---------------------------------------------------------------------- routes
def _brute_force(points):
    n = len(points)
    return min(explore.route_length(points, [0, *p]) for p in itertools.permutations(range(1, n)))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_exact_route_is_the_shortest(n):
    points = np.random.default_rng(n).normal(size=(n, 4))
    order = explore.shortest_route(points)
    assert sorted(order) == list(range(n)) and order[0] == 0
    assert explore.route_length(points, order) == pytest.approx(_brute_force(points) if n > 1 else 0.0)


@pytest.mark.parametrize("seed", range(4))
def test_approximate_route_visits_each_once_and_beats_nearest_neighbour(seed):
    points = np.random.default_rng(seed).normal(size=(17, 5))
    order = explore.shortest_route(points, exact_max=10)
    assert sorted(order) == list(range(17)) and order[0] == 0
    length = explore.route_length(points, order)
    for start in range(17):
        assert length <= explore.route_length(points, explore.nearest_neighbour_route(points, start)) + 1e-9


# ---------------------------------------------------------------------- model-based
def test_tour_visits_every_cluster_once(trained):
    model, x, _, _ = trained
    gamma, mu = model.cluster_probabilities(x), model.encode(x)[0]
    t = explore.tour(model, x, steps=4)
    k = model.n_clusters
    assert sorted(t.clusters.tolist()) == list(range(k))
    assert len(t.stops) == k + 1 and np.allclose(t.z[0], t.z[-1])  # closed route
    assignments = gamma.argmax(1)
    points = []
    for c, obj, pos in zip(t.clusters, t.objects, t.stops):
        members = np.flatnonzero(assignments == c)
        assert obj == members[np.argmax(gamma[members, c])]  # highest-gamma member
        np.testing.assert_allclose(t.z[pos], mu[obj], atol=1e-6)
        points.append(mu[obj])
    np.testing.assert_allclose(t.pi, np.asarray(model.prior.pi())[t.clusters], rtol=1e-6)
    assert t.length <= explore.route_length(np.array(points), explore.nearest_neighbour_route(np.array(points))) + 1e-6
    np.testing.assert_allclose(t.images, model.decode(t.z), atol=1e-5)
    assert t.images.shape == (k * 5 + 1,) + x.shape[1:]


def test_traversal_changes_only_its_variable(trained):
    model, x, _, _ = trained
    mu = model.encode(x)[0]
    tr = explore.traversals(model, mu, steps=7)
    j = mu.shape[1]
    mean = mu.mean(0)
    assert tr.z.shape == (j, 7, j) and tr.images.shape == (j, 7) + x.shape[1:]
    for r, v in enumerate(tr.variables):
        others = np.delete(tr.z[r], v, axis=1)
        np.testing.assert_allclose(others, np.broadcast_to(np.delete(mean, v), others.shape), atol=1e-5)
        assert tr.z[r, 0, v] == pytest.approx(mu[:, v].min(), abs=1e-5)
        assert tr.z[r, -1, v] == pytest.approx(mu[:, v].max(), abs=1e-5)
        assert np.all(np.diff(tr.z[r, :, v]) >= 0)
    np.testing.assert_allclose(tr.z[:, 3], np.broadcast_to(mean, (j, j)), atol=1e-5)  # mean object in the centre
    np.testing.assert_allclose(tr.images[:, 3], np.broadcast_to(tr.images[0, 3], tr.images[:, 3].shape), atol=1e-5)
    q = explore.traversals(model, mu, steps=5, quantile=0.1, variables=[1])
    assert q.z[0, 0, 1] == pytest.approx(np.quantile(mu[:, 1], 0.1), abs=1e-5)
    with pytest.raises(ValueError, match="odd"):
        explore.traversals(model, mu, steps=4)


def _numpy_gamma(model, z):
    """p(c | z) of the diagonal Gaussian mixture, written out in NumPy."""
    pi = np.asarray(model.prior.pi(), np.float64)
    mu, var = np.asarray(model.prior.means, np.float64), np.exp(np.asarray(model.prior.log_vars, np.float64))
    log_p = np.log(pi) - 0.5 * (np.log(2 * np.pi * var)[None] + (z[:, None] - mu[None]) ** 2 / var[None]).sum(-1)
    log_p -= log_p.max(1, keepdims=True)
    return np.exp(log_p) / np.exp(log_p).sum(1, keepdims=True)


@pytest.mark.parametrize("cluster", [2, None])
def test_filtered_samples_have_gamma_above_threshold(trained, cluster):
    model, x, _, _ = trained
    fs = explore.filtered_samples(model, 12, cluster=cluster, min_gamma=0.9, temperature=1.5, seed=1)
    assert fs.images.shape == (12,) + x.shape[1:] and fs.draws >= 12
    g = _numpy_gamma(model, fs.z.astype(np.float64))
    assert np.all(g[np.arange(12), fs.clusters] > 0.9)
    if cluster is not None:
        assert np.all(fs.clusters == cluster)
    np.testing.assert_allclose(fs.images, model.decode(fs.z), atol=1e-5)
    with pytest.raises(AstrovaderError, match="threshold"):
        explore.filtered_samples(model, 3, cluster=0, min_gamma=1.0)


def test_deblend_strip_ends_decode_the_two_objects(trained):
    model, x, _, _ = trained
    gamma = model.cluster_probabilities(x)
    target = int(np.flatnonzero(gamma.argmax(1) == 3)[0])
    d = explore.deblend(model, x, target, clean_clusters=[0, 1], steps=6)
    assert d.index == target and gamma[d.partner].argmax() in (0, 1)
    members = np.flatnonzero(np.isin(gamma.argmax(1), [0, 1]))
    mse = ((x[members] - x[target]) ** 2).reshape(len(members), -1).mean(1)
    assert d.partner == members[np.argmin(mse)] and d.mse == pytest.approx(mse.min(), rel=1e-5)
    ends = model.decode(model.encode(x[[target, d.partner]])[0])
    assert d.images.shape == (6,) + x.shape[1:]
    np.testing.assert_allclose(d.images[[0, -1]], ends, atol=1e-5)
    with pytest.raises(AstrovaderError, match="clean clusters"):
        explore.deblend(model, x, target, clean_clusters=[9])


def test_anomaly_ranking_is_the_elbo_from_compute_terms(trained):
    model, x, _, _ = trained
    gen = model.sampling.seed_generator
    state = np.asarray(gen.state.value)
    scores = explore.anomaly_scores(model, x, batch_size=len(x), seed=None)  # draws from the current state
    gen.state.assign(state)
    reference = -np.asarray(model.compute_terms(x, training=False)["elbo"], np.float64)
    np.testing.assert_allclose(scores["neg_elbo"], reference, rtol=1e-5, atol=1e-4)
    order = explore.rank_anomalies(scores, n=10)
    np.testing.assert_array_equal(order, np.argsort(-reference, kind="stable")[:10])
    # seeded scores are reproducible and leave the model's generator where it was
    before = np.asarray(gen.state.value)
    a, b = (explore.anomaly_scores(model, x, batch_size=64, seed=3)["neg_elbo"] for _ in range(2))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.asarray(gen.state.value), before)
    np.testing.assert_allclose(scores["decoder_variance"], model.decoder_variance(x), rtol=1e-6)
    assert explore.rank_anomalies(scores, by="variance", n=1)[0] == np.argmax(scores["decoder_variance"])


def test_nearest_neighbours_match_brute_force():
    z = np.random.default_rng(0).normal(size=(50, 3))
    idx, dist = explore.nearest_neighbours(z, 7, n=5)
    d = np.linalg.norm(z - z[7], axis=1)
    d[7] = np.inf
    np.testing.assert_array_equal(idx, np.argsort(d)[:5])
    np.testing.assert_allclose(dist, np.sort(d)[:5])


# ---------------------------------------------------------------------- command line
def test_explore_help(capsys):
    for action in [None, *ACTIONS]:
        with pytest.raises(SystemExit) as exc:
            main(["explore"] + ([action] if action else []) + ["--help"])
        assert exc.value.code == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].startswith("usage: astrovader explore")
        for i, line in enumerate(lines):  # every flag has help text
            if line.strip().startswith("--") and "  " not in line.strip():
                assert lines[i + 1].startswith(" " * 10), f"{action}: {line!r} has no help"


@pytest.mark.parametrize("action", list(ACTIONS))
def test_explore_smoke(trained, action, capsys):
    _, x, run, data = trained
    assert main(["explore", "--run", str(run), "--data", str(data), action, *ACTIONS[action]]) == 0
    out = run / "explore"
    expected = {"tour": ["tour.png", "tour.gif", "tour.csv"], "traverse": ["traversals.png"],
                "deblend": ["deblend_obj0007.png", "deblend_obj0007.csv"],
                "neighbours": ["neighbours_obj0003.png", "neighbours_obj0003.csv"],
                "anomalies": ["anomalies.png", "anomalies.csv"]}[action]
    for name in expected:
        assert (out / name).stat().st_size > (1000 if name.endswith((".png", ".gif")) else 40), name
    if action == "neighbours":
        rows = list(csv.DictReader((out / "neighbours_obj0003.csv").open()))
        assert len(rows) == 5 and all(r["id"] != "obj0003" for r in rows)
    if action == "anomalies":
        rows = list(csv.DictReader((out / "anomalies.csv").open()))
        assert len(rows) == 6 and set(rows[0]) >= {"id", "neg_elbo", "decoder_variance"}
    if action == "tour":
        from PIL import Image

        assert Image.open(out / "tour.gif").n_frames == 4 * 4 + 1


def test_explore_errors_are_one_line(trained, capsys):
    _, _, run, data = trained
    assert main(["explore", "--run", str(run), "--data", str(data), "neighbours", "--object", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no object with this id" in err and "Traceback" not in err
    assert main(["explore", "--run", str(run)]) == 2
    assert "name an action" in capsys.readouterr().err


def test_report_shows_tour_and_traversals(trained, tmp_path):
    from astrovader.report import make_report, missing_images

    model, x, _, _ = trained
    gamma, mu = model.cluster_probabilities(x), model.encode(x)[0]
    path = make_report(tmp_path, x=x, x_hat=model.decode(mu), gamma=gamma, pi=np.asarray(model.prior.pi()),
                       tour=explore.tour(model, x, gamma=gamma, latents=mu), traversal=explore.traversals(model, mu),
                       ids=[f"obj{i}" for i in range(len(x))])
    html = path.read_text()
    assert missing_images(path) == []
    for name in ("tour.png", "tour.gif", "traversals.png"):
        assert f"figures/{name}" in html and (tmp_path / "figures" / name).stat().st_size > 1000


def test_generate_min_gamma(trained, tmp_path):
    import json

    model, _, run, _ = trained
    out = tmp_path / "gen"
    assert main(["generate", "--run", str(run), "--n", "6", "--cluster", "1", "--min-gamma", "0.9",
                 "--out", str(out), "--format", "npy"]) == 0
    meta = json.loads((out / "generate.json").read_text())
    assert meta["min_gamma"] == 0.9 and meta["draws"] >= 6 and meta["clusters"] == [1] * 6
    assert np.load(out / "samples.npy").shape == (6, 12, 12, 1)


def test_evaluate_report_has_tour_and_traversals(trained):
    from astrovader.report import missing_images
    from astrovader.runs import evaluate_run

    _, _, run, data = trained
    evaluate_run(run, data=str(data), n_samples=2, baseline=False)
    html = (run / "report.html").read_text()
    assert missing_images(run / "report.html") == []
    for name in ("tour.png", "tour.gif", "traversals.png"):
        assert f"figures/{name}" in html


def test_empty_cluster_is_visited_at_its_component_mean(trained):
    model, x, _, _ = trained
    gamma = np.array(model.cluster_probabilities(x))
    gamma[:, 3] = 0.0  # nobody is assigned to cluster 3
    gamma[gamma.sum(1) == 0, 0] = 1.0  # stamps that were all cluster 3 go to cluster 0 (no 0/0 rows)
    gamma /= gamma.sum(1, keepdims=True)
    assert np.isfinite(gamma).all()
    assert explore.cluster_stops(gamma)[3] == -1
    t = explore.tour(model, x, gamma=gamma, steps=2)
    s = int(np.flatnonzero(t.clusters == 3)[0])
    assert t.objects[s] == -1 and sorted(t.clusters.tolist()) == [0, 1, 2, 3]
    np.testing.assert_allclose(t.z[t.stops[s]], np.asarray(model.prior.means)[3], atol=1e-6)
