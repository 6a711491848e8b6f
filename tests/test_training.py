"""Real (seconds-long) training runs: VaDE must cluster separable image classes."""

import numpy as np
import pytest

from astrovader.config import ModelConfig, RunConfig, TrainConfig
from astrovader.errors import TrainingError
from astrovader.evaluation import hungarian_accuracy
from astrovader.training import train


def shapes_dataset(n_per=100, size=16, seed=0):
    """Four well-separated classes of 16x16 stamps: blob, ring, horizontal, vertical bar."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    r = np.hypot(xx, yy)
    protos = [np.exp(-(r / 2.0) ** 2), (np.abs(r - 5.5) < 1.2).astype(float),
              (np.abs(yy) < 1.5).astype(float), (np.abs(xx) < 1.5).astype(float)]
    x = np.concatenate([rng.uniform(0.7, 1.0, (n_per, 1, 1)) * p + 0.05 * rng.standard_normal((n_per, size, size))
                        for p in protos])
    y = np.repeat(np.arange(len(protos)), n_per)
    idx = rng.permutation(len(y))
    return x[idx, ..., None].astype("float32"), y[idx]


def _cfg(recipe="s3vdc", **model_kw):
    model = dict(architecture="astrovader", latent_dim=4, n_clusters=4, filters=[8, 8],
                 kernel_sizes=[3], l2=0.0)
    model.update(model_kw)
    return RunConfig(model=ModelConfig(**model),
                     train=TrainConfig(recipe=recipe, batch_size=50, learning_rate=2e-3, gamma_epochs=8,
                                       gmm_batches=8, anneal_epochs=2, static_epochs=3, periods=1))


def test_s3vdc_clusters_separable_classes():
    x, y = shapes_dataset()
    model, history = train(_cfg(), x, verbose=0)
    assert len(history.history["loss"]) == 13
    assert np.all(np.isfinite(history.history["loss"]))
    acc = hungarian_accuracy(y, model.predict_clusters(x))
    assert acc >= 0.95, f"clustering accuracy {acc:.3f} < 0.95"
    assert model.sample(5, cluster=2).shape == (5, 16, 16, 1)
    assert model.sample(3).shape == (3, 16, 16, 1)
    assert model.prototypes().shape == (4, 16, 16, 1)
    with pytest.raises(ValueError, match="out of range"):
        model.sample(1, cluster=4)


def test_decoder_variance_run_is_finite_and_bounded():
    x, _ = shapes_dataset(n_per=25)
    cfg = _cfg(architecture="hits", filters=[8], decoder_variance=True, batch_norm=True)
    cfg.train.gamma_epochs, cfg.train.periods = 2, 1
    model, history = train(cfg, x, verbose=0)
    # BatchNorm's moving statistics track a short run: inference-mode latents (on which the
    # prior is fitted and clusters predicted) stay close to the training-mode ones
    mu_train = np.asarray(model.encoder(x, training=True)[0])
    mu_infer = model.encode(x)[0]
    rel = np.linalg.norm(mu_train - mu_infer) / np.linalg.norm(mu_infer)
    assert rel < 5, f"inference latents differ from training latents by {rel:.0%}"  # 0.99: ~19x
    var = model.decoder_variance(x)
    assert np.all((var >= np.exp(-5) - 1e-6) & (var <= 1.0))
    assert np.all(np.isfinite(history.history["elbo"]))


def test_nan_input_stops_with_clear_message_and_finite_weights():
    x, _ = shapes_dataset(n_per=10)
    x[3, 0, 0, 0] = np.nan
    cfg = _cfg()
    with pytest.raises(TrainingError, match=r"epoch 1: non-finite .*loss"):
        train(cfg, x, verbose=0)


def test_train_applies_the_configured_augmentation(monkeypatch):
    import astrovader.training as training

    seen = []
    real = training.make_dataset

    def spy(images, batch_size, **kw):
        seen.append(kw)
        return real(images, batch_size, **kw)

    monkeypatch.setattr(training, "make_dataset", spy)
    x, _ = shapes_dataset(n_per=5)
    cfg = _cfg("vae")
    cfg.train.vae_epochs = 1
    cfg.data.flips, cfg.data.rot90 = True, True
    train(cfg, x, x[:4], verbose=0)
    assert seen[0]["augment_flips"] and seen[0]["augment_rot90"] and seen[0]["shuffle"]
    assert not seen[1]["shuffle"] and not seen[1].get("augment_flips")  # validation: as is


def test_xla_that_cannot_compile_the_network_is_a_one_line_error():
    """The hits decoder's nearest-neighbour resize has no XLA CPU gradient kernel (TF 2.21)."""
    cfg = RunConfig(model=ModelConfig(architecture="hits", input_shape=(21, 21, 1), latent_dim=2, n_clusters=2,
                                      filters=[4, 4, 4, 4], kernel_sizes=[3, 3, 3, 3]),
                    train=TrainConfig(recipe="s3vdc", batch_size=16, gamma_epochs=1, anneal_epochs=1, static_epochs=0,
                                      periods=1, gmm_batches=1, jit_compile=True))
    x = np.random.default_rng(0).normal(size=(32, 21, 21, 1)).astype("float32")
    try:
        train(cfg, x, verbose=0)
    except TrainingError as exc:  # where XLA can compile it (a GPU, a later TF), training just works
        msg = str(exc)
        assert "\n" not in msg and msg.startswith("train.jit_compile: XLA cannot compile")
        assert "set train.jit_compile: false" in msg
