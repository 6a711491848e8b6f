"""DNMSE curves, latent-MLP ROC, the manifold threshold baseline and `astrovader compare-latents`."""

import json

import numpy as np
import pytest

from astrovader import compare


def _two_classes(n=200, d=30, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, d)) + 3.0 * y[:, None] * (np.arange(d) < 5)[None]
    return x, y


def test_dnmse_curve_matches_brute_force():
    x, y = _two_classes(60, 8)
    z = x[:, :3]
    ref = np.zeros(60, bool)
    ref[[1, 3, 5, 7]] = True
    c = compare.dnmse_curve(z, x, ref, ns=[1, 5, 56])
    cand = np.flatnonzero(~ref)
    dist = np.array([np.min(np.linalg.norm(z[ref] - z[i], axis=1)) for i in cand])
    order = cand[np.argsort(dist, kind="stable")]
    energy = np.mean(np.sum(x[ref] ** 2, 1))
    per = np.array([np.mean(np.sum((x[ref] - x[i]) ** 2, 1)) / energy for i in order])
    np.testing.assert_array_equal(c["order"], order)
    np.testing.assert_allclose(c["dnmse"], [per[:1].mean(), per[:5].mean(), per.mean()], rtol=1e-8)


def test_informative_latents_give_lower_dnmse_and_higher_auc():
    x, y = _two_classes()
    ref = np.zeros(len(y), bool)
    ref[np.flatnonzero(y == 1)[:10]] = True
    good, noise = x[:, :5], np.random.default_rng(1).normal(size=(len(y), 5))
    at = lambda z: compare.dnmse_curve(z, x, ref, [50])["dnmse"][0]  # noqa: E731
    assert at(good) < at(noise)
    assert compare.latent_roc(good, y, seed=0)["auc"] > 0.9
    r = compare.latent_roc(noise, y, seed=0)
    assert r["auc"] < 0.8 and r["n_test"] == 50


def test_baselines_are_minibatch_and_shaped():
    x, _ = _two_classes(300, 40)
    codes = compare.latent_baselines(x.reshape(300, 40, 1, 1), 6, batch_size=64)
    assert set(codes) == {"ipca", "sdl"} and codes["ipca"].shape == codes["sdl"].shape == (300, 6)
    with pytest.raises(ValueError):
        compare.latent_baselines(x, 3, names=["nope"])


def test_manifold_threshold_baseline():
    x, y = _two_classes(160, 10)
    s = compare.manifold_scores(x[:, :5], "isomap")
    assert s.shape == (160,)
    res = compare.threshold_scores(s, y, proportion=0.5)
    assert res["auc"] > 0.9 and res["accuracy"] > 0.8
    flipped = compare.threshold_scores(-x[:, 0], y)
    assert flipped["flipped"] and flipped["auc"] > 0.8
    assert compare.manifold_scores(x[:40, :5], "tsne").shape == (40,)
    np.testing.assert_array_equal(compare.manifold_scores(x[:, :1]), x[:, 0])


def test_compare_latents_cli(tmp_path, capsys):
    from astrovader.cli import main

    rng = np.random.default_rng(0)
    n = 80
    y = np.arange(n) % 2
    yy, xx = np.mgrid[:21, :21]
    blob = np.exp(-((yy - 10) ** 2 + (xx - 10) ** 2) / 6.0)
    images = rng.normal(size=(n, 21, 21, 1)) * 0.3
    images[y == 1] += 3 * blob[..., None]
    images[y == 0, :, 10, 0] += 2.0  # "bad columns"
    np.savez(tmp_path / "d.npz", images=images.astype("float32"), labels=y)
    run = tmp_path / "scae"
    assert main(["train", "--preset", "chase-scae", "--data", str(tmp_path / "d.npz"), "--out", str(run),
                 "--epochs", "1", "--batch-size", "20", "--verbose", "0"]) in (0, None)
    out = tmp_path / "cmp"
    assert main(["compare-latents", "--runs", str(run), "--baselines", "ipca,sdl", "--data",
                 str(tmp_path / "d.npz"), "--reference-label", "1", "--out", str(out)]) == 0
    res = json.loads((out / "compare_latents.json").read_text())
    assert set(res["methods"]) == {"chase-scae", "ipca", "sdl"}
    assert (out / "dnmse.png").stat().st_size > 1000 and (out / "roc.png").stat().st_size > 1000
    for m in res["methods"].values():
        assert 0 <= m["auc"] <= 1 and np.isfinite(m["dnmse_at_100"])
    assert "DNMSE@100" in capsys.readouterr().out
    assert main(["compare-latents", "--runs", str(run), "--baselines", "pca", "--data", str(tmp_path / "d.npz")]) == 2
