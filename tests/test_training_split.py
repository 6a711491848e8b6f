"""training.train holds out train.validation_fraction and rescales epochs like the command line."""

import numpy as np

import astrovader.training as training
from astrovader import runs
from astrovader.config import ModelConfig, RunConfig, TrainConfig


def _tiny(recipe="vae", **train_kw):
    model = ModelConfig(architecture="mlp", hidden_units=[8], latent_dim=2, n_clusters=2, l2=0.0)
    train = dict(recipe=recipe, batch_size=10, vae_epochs=1, gamma_epochs=1, gmm_batches=2, periods=1,
                 anneal_epochs=1, static_epochs=1)
    train.update(train_kw)
    return RunConfig(model=model, train=TrainConfig(**train))


def _spy(monkeypatch, name):
    seen = []
    real = getattr(training, name)

    def spy(*args, **kw):
        seen.append((args, kw))
        return real(*args, **kw)

    monkeypatch.setattr(training, name, spy)
    return seen


def _stamps(n=40):
    return np.random.default_rng(0).normal(size=(n, 6, 6, 1)).astype("float32")


def test_train_holds_out_the_validation_fraction(monkeypatch):
    seen = _spy(monkeypatch, "make_dataset")
    x = _stamps()
    _, history = training.train(_tiny(validation_fraction=0.25), x, verbose=0)
    expected_train, expected_val = runs.split_validation(x, 0.25, seed=0)  # the split `astrovader train` makes
    (train_images, _), (val_images, _) = seen[0][0], seen[1][0]
    assert len(train_images) == 30 and len(val_images) == 10
    np.testing.assert_array_equal(train_images, expected_train)
    np.testing.assert_array_equal(val_images, expected_val)
    assert "val_loss" in history.history


def test_no_split_without_a_fraction_or_with_given_validation_stamps(monkeypatch):
    seen = _spy(monkeypatch, "make_dataset")
    x = _stamps()
    _, history = training.train(_tiny(), x, verbose=0)
    assert len(seen) == 1 and len(seen[0][0][0]) == 40 and "val_loss" not in history.history
    seen.clear()
    training.train(_tiny(validation_fraction=0.25), x, x[:5], verbose=0)
    assert len(seen[0][0][0]) == 40 and len(seen[1][0][0]) == 5  # the caller's split wins


def test_epochs_rescale_the_recipe_like_the_command_line(monkeypatch):
    seen = _spy(monkeypatch, "recipe_callbacks")
    cfg = _tiny("s3vdc", gamma_epochs=10, anneal_epochs=5, static_epochs=5, periods=2)
    _, history = training.train(cfg, _stamps(20), verbose=0, epochs=3)
    scheduled = seen[0][0][0]
    assert scheduled == runs.scale_epochs(cfg.train, 3)
    assert scheduled.total_epochs() == 3 and scheduled.periods >= 1  # the VaDE phase is kept, not cut off
    assert len(history.history["loss"]) == 3
    assert cfg.train.total_epochs() == 30  # the caller's config is unchanged


def test_ema_restarts_at_the_mixture_initialisation_and_ends_on_the_average():
    import keras

    seen = {}

    class Probe(keras.callbacks.Callback):  # runs after the recipe's callback, which initialises the prior
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                opt = self.model.optimizer
                seen["gap"] = max(float(np.max(np.abs(np.asarray(v) - np.asarray(a))))
                                  for v, a in zip(opt._trainable_variables, opt._model_variables_moving_average))
                seen["prior"] = np.asarray(self.model.prior.means).copy()

        def on_train_end(self, logs=None):
            opt = self.model.optimizer
            seen["final"] = [np.asarray(a).copy() for a in opt._model_variables_moving_average]
            seen["vars"] = opt._trainable_variables

    model, _ = training.train(_tiny("s3vdc", ema=0.9), _stamps(), verbose=0, callbacks=[Probe()])
    assert model.optimizer.use_ema and model.optimizer.ema_momentum == 0.9
    assert seen["gap"] == 0.0  # the average restarted at the freshly initialised prior (and encoder)
    assert not np.allclose(np.asarray(model.prior.means), seen["prior"])  # the prior then trained on
    for var, avg in zip(seen["vars"], seen["final"]):  # fit ends on the averaged weights
        np.testing.assert_array_equal(np.asarray(var), avg)


def test_ema_must_be_a_momentum():
    import pytest

    from astrovader.errors import ConfigError

    with pytest.raises(ConfigError, match="train.ema"):
        _tiny(ema=1.0).train.validate()


def test_pretrain_updates_raise_the_classic_pretraining_on_small_sets():
    t = TrainConfig(recipe="classic", pretrain_epochs=200, pretrain_updates=4000)
    assert t.resolve_updates(20).pretrain_epochs == 200  # 5,000 stamps, batch 256: the preset's length
    assert t.resolve_updates(8).pretrain_epochs == 500  # 1,797 stamps: as many updates, not epochs
    assert t.resolve_updates(8).pretrain_epochs == 500  # idempotent
    assert TrainConfig(recipe="classic", pretrain_epochs=7).resolve_updates(1).pretrain_epochs == 7  # off
    assert TrainConfig(recipe="s3vdc", pretrain_updates=99).resolve_updates(1).gamma_epochs == 10  # classic only
    assert TrainConfig(batch_size=100).steps_per_epoch(2500) == 25
    assert TrainConfig(batch_size=100).steps_per_epoch(30) == 1  # the batch lowered to the set
    import pytest

    from astrovader.errors import ConfigError

    with pytest.raises(ConfigError, match="train.pretrain_updates"):
        TrainConfig(recipe="classic", pretrain_updates=-1).validate()


def test_schedule_updates_scale_every_s3vdc_phase_on_small_sets():
    def demo(**kw):  # the demo preset's schedule: 6 + 2 x (3 + 4) = 20 epochs
        return TrainConfig(recipe="s3vdc", gamma_epochs=6, anneal_epochs=3, static_epochs=4, periods=2, **kw)

    t = demo(schedule_updates=500)
    assert t.resolve_updates(25).total_epochs() == 20  # 2,500 stamps, batch 100: the preset as given
    t.resolve_updates(5)  # 500 stamps: 5x every phase, the same 500 updates
    assert (t.gamma_epochs, t.anneal_epochs, t.static_epochs, t.periods) == (30, 15, 20, 2)
    assert t.resolve_updates(5).total_epochs() == 100  # idempotent
    t = demo(schedule_updates=500).resolve_updates(10)  # x2.5, each phase rounded up
    assert (t.gamma_epochs, t.anneal_epochs, t.static_epochs) == (15, 8, 10) and t.total_epochs() * 10 >= 500
    assert demo(schedule_updates=500).resolve_updates(100).total_epochs() == 20  # a minimum: large sets keep it
    assert demo().resolve_updates(1).total_epochs() == 20  # off
    assert TrainConfig(recipe="classic", pretrain_epochs=7, schedule_updates=99).resolve_updates(1).total_epochs() == 17
    import pytest

    from astrovader.errors import ConfigError

    with pytest.raises(ConfigError, match="train.schedule_updates"):
        demo(schedule_updates=-1).validate()
    from astrovader.runs import scale_epochs

    assert scale_epochs(demo(schedule_updates=500), 10).resolve_updates(1).total_epochs() == 10  # --epochs N wins


def test_train_and_fit_run_pretrain_for_the_updates_and_explicit_epochs_win(tmp_path, monkeypatch):
    seen = _spy(monkeypatch, "recipe_callbacks")
    cfg = _tiny("classic", pretrain="ae", pretrain_epochs=1, vade_epochs=1, pretrain_updates=12)
    _, history = training.train(cfg, _stamps(40), verbose=0)  # 4 batches of 10 -> 3 pretraining epochs
    assert seen[-1][0][0].pretrain_epochs == 3 and len(history.history["loss"]) == 4
    _, history = training.train(_tiny("classic", pretrain="ae", pretrain_epochs=1, vade_epochs=1,
                                      pretrain_updates=12), _stamps(40), verbose=0, epochs=2)
    assert len(history.history["loss"]) == 2  # --epochs N is the length asked for, not raised
    cfg = _tiny("classic", pretrain="ae", pretrain_epochs=1, vade_epochs=1, pretrain_updates=12)
    _, stamps, run = runs.fit_run(cfg, tmp_path / "run", verbose=0,
                                  stamps=type("S", (), {"images": _stamps(20), "labels": None})())
    assert runs.Run.open(tmp_path / "run").cfg.train.pretrain_epochs == 6  # 2 batches of 10; saved with the run
    assert len(runs.read_history(run.history)["loss"]) == 7


def test_train_and_fit_run_make_the_s3vdc_schedule_updates(tmp_path):
    cfg = _tiny("s3vdc", schedule_updates=12)  # 1 + 1 x (1 + 1) = 3 epochs
    _, history = training.train(cfg, _stamps(20), verbose=0)  # 2 batches of 10: 6 updates -> every phase x2
    assert len(history.history["loss"]) == 6 and cfg.train.gamma_epochs == 2
    _, _, run = runs.fit_run(_tiny("s3vdc", schedule_updates=12), tmp_path / "run", verbose=0,
                             stamps=type("S", (), {"images": _stamps(20), "labels": None})())
    saved = runs.Run.open(tmp_path / "run").cfg.train  # the raised schedule is saved with the run (resume)
    assert (saved.gamma_epochs, saved.total_epochs()) == (2, 6) and len(runs.read_history(run.history)["loss"]) == 6
