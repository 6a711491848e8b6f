"""Report figures and HTML: every figure is written, every <img src> exists and is relative."""

import numpy as np

from astrovader import plots
from astrovader.report import Figure, make_report, missing_images, write_report


def _arrays(n=60, k=3, shape=(12, 12, 1), seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n,) + shape).astype("float32")
    gamma = rng.dirichlet(np.ones(k) * 0.3, size=n)
    history = {"epoch": [0, 1, 2], "loss": [3.0, 2.0, 1.0], "val_loss": [3.5, 2.5, 1.5],
               "reconstruction": [2.0, 1.5, 1.0], "kl_gmm": [0.0, 1.0, 0.5], "val_kl_gmm": [float("nan")] * 3}
    return rng, x, gamma, history


def test_make_report_links_only_existing_files(tmp_path):
    rng, x, gamma, history = _arrays()
    k = gamma.shape[1]
    path = make_report(
        tmp_path / "run", x=x, x_hat=0.5 * x, gamma=gamma, history=history,
        labels=rng.integers(0, 2, len(x)), label_names=["real", "bogus"],
        samples=rng.normal(size=(k, 4, 12, 12, 1)), protos=rng.normal(size=(k, 12, 12, 1)),
        pi=np.ones(k) / k, decoder_variance=rng.uniform(0.01, 0.1, len(x)),
        metrics={"acc_hungarian": 0.9, "baseline": {"pca_gmm": 0.7}}, config_text="model: {}",
        class_confusion=rng.dirichlet(np.ones(k), size=2),
    )
    html = path.read_text()
    assert missing_images(path) == []
    assert html.count("<img") >= 9
    for name in ("loss_curves", "reconstructions", "best_worst", "gallery_top", "gallery_random",
                 "mean_gamma", "mean_gamma_classes", "occupancy", "samples", "prototypes", "mse_vs_variance"):
        assert f"figures/{name}.png" in html
        assert (tmp_path / "run" / "figures" / f"{name}.png").stat().st_size > 1000
    assert "Cluster occupancy" in html and "label real" in html
    assert "baseline.pca_gmm" in html


def test_vae_report_without_gamma(tmp_path):
    _, x, _, history = _arrays(n=20)
    path = make_report(tmp_path, x=x, x_hat=x, history=history)
    assert missing_images(path) == []
    assert "gallery_top" not in path.read_text()


def test_missing_figure_is_left_out(tmp_path):
    plots.loss_curves({"loss": [1.0, 0.5]}, tmp_path / "figures" / "a.png")
    path = write_report(tmp_path, "t", figures=[Figure("A", "figures/a.png"), Figure("B", "figures/nope.png")])
    assert missing_images(path) == []
    assert "figures not produced: B" in path.read_text()


def test_missing_images_detects_bad_links(tmp_path):
    page = tmp_path / "r.html"
    page.write_text("<img src='gone.png'><img src='/abs.png'><img src=\"http://x/y.png\">")
    assert missing_images(page) == ["gone.png", "/abs.png", "http://x/y.png"]


def test_plots_handle_rgb_and_empty(tmp_path):
    rgb = np.random.default_rng(0).uniform(size=(4, 10, 10, 3)).astype("float32")
    assert plots.image_grid(rgb, tmp_path / "g.png", ncols=2)
    assert plots.image_grid(np.zeros((0, 4, 4, 1)), tmp_path / "e.png")
    assert plots.loss_curves({}, tmp_path / "h.png")
