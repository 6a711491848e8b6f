"""Local keras-tuner searches: search spaces, a 1-trial search whose best.yaml trains, CLI."""

import keras_tuner as kt
import numpy as np
import pytest

from _subprocs import tiny_run
from astrovader.cli import main
from astrovader.cli import tune as cli_tune
from astrovader.config import ConfigError, RunConfig, load_config
from astrovader.training import train
from astrovader import tuning


def _cfg(**model):
    return RunConfig.from_dict({
        "name": "tiny",
        "model": {"architecture": "astrovader", "latent_dim": 2, "n_clusters": 2, "filters": [4, 8],
                  "kernel_sizes": [5, 3], "mc_samples": 1, **model},
        "train": {"recipe": "s3vdc", "batch_size": 16, "gamma_epochs": 1, "periods": 1,
                  "anneal_epochs": 1, "static_epochs": 0, "gmm_batches": 2},
    })


def test_apply_hyperparameters_and_space_checks():
    cfg = _cfg()
    out = tuning.apply_hyperparameters(cfg, {"model.filter_scale": 2.0, "model.kernel_size": 3,
                                             "model.latent_dim": np.int64(6), "train.beta": 0.05,
                                             "tuner/epochs": 3})
    assert out.model.filters == [8, 16] and out.model.kernel_sizes == [3, 3]
    assert out.model.latent_dim == 6 and out.train.beta == 0.05
    assert cfg.model.filters == [4, 8]  # the base config is not modified
    space = tuning.default_search_space(cfg, include_k=True)
    assert {"model.latent_dim", "model.kernel_size", "train.learning_rate", "model.n_clusters"} <= set(space)
    x = np.zeros((20, 8, 8, 1), "float32")
    with pytest.raises(ConfigError, match="unknown name 'model.widht'"):
        tuning.VaDEHyperModel(cfg, x, x, {"model.widht": [1, 2]})
    with pytest.raises(ConfigError, match="objective"):
        tuning.VaDEHyperModel(cfg, x, x, objective="accuracy")
    with pytest.raises(ConfigError, match="validation"):
        tuning.VaDEHyperModel(cfg, x, None)
    hp = kt.HyperParameters()
    hm = tuning.VaDEHyperModel(cfg, x, x, {"train.learning_rate": {"min": 1e-4, "max": 1e-2, "sampling": "log"},
                                           "model.latent_dim": {"min": 2, "max": 6, "step": 2},
                                           "model.n_clusters": 3})
    trial_cfg = hm.config_for(hp)
    assert 1e-4 <= trial_cfg.train.learning_rate <= 1e-2 and trial_cfg.model.n_clusters == 3
    assert isinstance(hp.get("model.latent_dim"), int)
    assert cli_tune.TUNERS == tuning.TUNERS and cli_tune.OBJECTIVES == tuple(tuning.OBJECTIVES)


def test_a_pretraining_set_in_updates_is_tuned_in_updates_and_resolved_per_trial():
    cfg = _cfg()
    cfg.train.recipe, cfg.train.pretrain, cfg.train.pretrain_epochs, cfg.train.pretrain_updates = "classic", "ae", 1, 10
    space = tuning.default_search_space(cfg)
    assert space["train.pretrain_updates"] == [5, 10] and "train.pretrain_epochs" not in space
    x = np.zeros((20, 8, 8, 1), "float32")  # batch 16: 2 steps per epoch
    hm = tuning.VaDEHyperModel(cfg, x, x, {"train.pretrain_updates": [10]})
    assert hm.config_for(kt.HyperParameters()).train.pretrain_epochs == 5  # as train() would run it


def test_one_trial_search_gives_loadable_best_config_that_trains(tmp_path):
    x, _ = tiny_run(tmp_path, n=48, size=8)
    space = {"model.latent_dim": [2, 3], "train.learning_rate": {"min": 5e-4, "max": 2e-3, "sampling": "log"}}
    tuner = tuning.run_search(_cfg(), x, tuner="bayesian", max_trials=1, out_dir=tmp_path / "out",
                              search_space=space)
    assert len(tuner.oracle.trials) == 1
    best = load_config(tmp_path / "out" / "best.yaml")
    assert best.model.latent_dim in (2, 3) and best.model.input_shape == (8, 8, 1)
    assert best.model.filters == [4, 8] and "val_elbo" in best.description
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "COMPLETED" in summary and "train.learning_rate" in summary
    assert (tmp_path / "out" / "trials.csv").read_text().count("\n") == 2
    model, history = train(best, x, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    assert model.latent_dim == best.model.latent_dim


@pytest.mark.slow
def test_cli_tune_clustering_objective_and_hyperband(tmp_path, capsys):
    _, cfg_path = tiny_run(tmp_path, n=40, size=8)
    space = tmp_path / "space.yaml"
    space.write_text("model.latent_dim: [2, 3]\n")
    code = main(["tune", "--config", str(cfg_path), "--tuner", "hyperband", "--max-trials", "2",
                 "--objective", "calinski_harabasz", "--space", str(space), "--out", str(tmp_path / "t")])
    assert code == 0
    assert "best configuration" in capsys.readouterr().out
    rows = (tmp_path / "t" / "trials.csv").read_text().strip().splitlines()
    assert len(rows) <= 3 and rows[0].startswith("trial,status,score")
    scores = [float(r.split(",")[2]) for r in rows[1:] if ",COMPLETED," in r]
    assert scores and all(s >= 0 for s in scores)  # Calinski-Harabasz (0 = one cluster used)
    assert load_config(tmp_path / "t" / "best.yaml").model.latent_dim in (2, 3)
    # bad input: one line, exit 2
    assert main(["tune", "--config", str(cfg_path), "--space", str(tmp_path / "nope.yaml"),
                 "--out", str(tmp_path / "u")]) == 2
    assert "search-space file not found" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.multi_device
def test_search_under_mirrored_strategy(tmp_path):
    from astrovader.training import get_strategy

    strategy = get_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2  # conftest: 2 logical CPU devices
    x, _ = tiny_run(tmp_path, n=32, size=8)
    tuner = tuning.run_search(_cfg(), x, tuner="random", max_trials=1, out_dir=tmp_path / "m",
                              search_space={"model.latent_dim": [2]}, strategy=strategy)
    trial = next(iter(tuner.oracle.trials.values()))
    assert trial.status == "COMPLETED" and np.isfinite(trial.score)
