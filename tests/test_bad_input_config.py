"""Bad configuration values: a typed error naming the file, the field and the fix, never a traceback.

From the command line every case is one ``astrovader: error:`` line with exit status 2 and
no output written; from Python the core modules (config, networks, models, layers, losses)
raise :class:`~astrovader.errors.ConfigError` / :class:`~astrovader.errors.DataError`
(both ``ValueError`` subclasses) for a user's mistake.
"""

from pathlib import Path

import numpy as np
import pytest
import yaml

from astrovader import losses
from astrovader.config import DataConfig, ModelConfig, RunConfig, load_preset
from astrovader.errors import ConfigError, DataError
from cli_helpers import tiny_config, user_error


BAD_VALUES = [
    ("model", {"architecture": "vgg16"}, ["model.architecture='vgg16'", "choose one of", "astrovader, hits"]),
    ("model", {"latent_dim": 0}, ["model.latent_dim", "positive integer"]),
    ("model", {"latent_dim": "ten"}, ["model.latent_dim='ten'", "whole number"]),
    ("model", {"n_clusters": None}, ["model.n_clusters is empty"]),
    ("model", {"reconstruction": "l1"}, ["model.reconstruction='l1'", "mse, bce, gaussian"]),
    ("model", {"reconstruction": "gaussian", "decoder_variance": False}, ["model.decoder_variance: true"]),
    ("model", {"kind": "ae", "decoder_variance": True}, ["model.decoder_variance: false"]),
    ("model", {"filters": [8, -4]}, ["model.filters", "positive whole number"]),
    ("train", {"batch_size": "big"}, ["train.batch_size='big'"]),
    ("train", {"learning_rate": "fast"}, ["train.learning_rate='fast'", "give a number"]),
    ("train", {"periods": -1}, ["train.periods=-1", ">= 0"]),
    ("train", {"validation_fraction": 1.5}, ["train.validation_fraction", "[0, 1)"]),
    ("data", {"scaling": "log"}, ["data.scaling='log'", "asinh"]),
    ("data", {"nan_policy": "ignore"}, ["data.nan_policy='ignore'", "fill"]),
    ("data", {"crop": [0, 8]}, ["data.crop", "positive"]),
    ("data", {"clip": [1, 0]}, ["data.clip", "low must be below high"]),
    ("data", {"flips": "yes"}, ["data.flips='yes'", "true or false"]),
]


@pytest.mark.parametrize("section, values, needles", BAD_VALUES,
                         ids=[f"{s}.{next(iter(v))}={next(iter(v.values()))}" for s, v, _ in BAD_VALUES])
def test_bad_value_in_a_config_file(tmp_path, capsys, section, values, needles):
    path = tiny_config(tmp_path / "bad.yaml")
    cfg = yaml.safe_load(path.read_text())
    cfg[section].update(values)
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    user_error(capsys, ["train", "--config", path, "--data", "unused.npz", "--out", out], path, *needles)
    assert not out.exists()  # rejected before anything was written


@pytest.mark.parametrize("field, value, needle", [("architecture", "resnet", "model.architecture='resnet'"),
                                                  ("latent_dim", 0, "model.latent_dim"),
                                                  ("reconstruction", "poisson", "model.reconstruction='poisson'")])
def test_bad_value_in_a_preset(tmp_path, capsys, monkeypatch, field, value, needle):
    cfg = load_preset("demo").to_dict()
    cfg["model"][field] = value
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("ASTROVADER_PRESETS", str(tmp_path))
    user_error(capsys, ["train", "--preset", "broken", "--out", tmp_path / "run"], tmp_path / "broken.yaml", needle)
    user_error(capsys, ["demo", "--preset", "broken", "--out", tmp_path / "demo"], needle)
    assert not (tmp_path / "run").exists() and not (tmp_path / "demo").exists()


@pytest.mark.parametrize("flags, needle", [(["--latent-dim", "0"], "model.latent_dim"),
                                           (["--clusters", "0"], "model.n_clusters"),
                                           (["--batch-size", "0"], "train.batch_size"),
                                           (["--epochs", "0"], "--epochs"),
                                           (["--n", "0"], "data.n=0"),
                                           (["--seed", "-1"], "seed=-1")])
def test_bad_value_on_the_command_line(tmp_path, capsys, flags, needle):
    user_error(capsys, ["train", "--config", tiny_config(tmp_path / "c.yaml"), "--out", tmp_path / "run", *flags], needle)
    assert not (tmp_path / "run").exists()


def test_data_config_validate():
    assert DataConfig().validate() == DataConfig()
    cfg = DataConfig(crop=12, resize=["16", 16.0], clip=[-1, "1"], n="100", shift=2, fill_value="0.5",
                     spec=Path("stamps") / "a.npz")
    assert cfg.validate() is cfg
    assert (cfg.crop, cfg.resize, cfg.clip, cfg.n, cfg.shift, cfg.fill_value, cfg.spec) == \
        ([12, 12], [16, 16], [-1.0, 1.0], 100, 2.0, 0.5, str(Path("stamps") / "a.npz"))
    for kw, match in [({"spec": ""}, "data.spec is empty"), ({"spec": None}, "data.spec is empty"),
                      ({"n": 0}, "data.n=0"), ({"n": 2.5}, "data.n=2.5: give a whole number"),
                      ({"scaling": "sqrt"}, "data.scaling='sqrt'"), ({"nan_policy": None}, "data.nan_policy"),
                      ({"resize": [8]}, r"data.resize=\[8\]: give \[height, width\]"),
                      ({"clip": "x"}, "data.clip='x'"), ({"rotate": -5}, "data.rotate"),
                      ({"grayscale": "no"}, "data.grayscale='no'"), ({"seed": "s"}, "data.seed='s'")]:
        with pytest.raises(ConfigError, match=match):
            DataConfig(**kw).validate()


def test_architecture_specific_checks():
    with pytest.raises(ConfigError, match="deep_hits needs at least 2 conv layers"):
        ModelConfig(architecture="deep_hits", filters=[8]).validate()
    with pytest.raises(ConfigError, match=r"train.seed=4294967296: give a seed in 0\.\.4294967295"):
        RunConfig.from_dict({"train": {"seed": 2**32}})


def test_run_config_validates_its_data_section():
    d = load_preset("demo").to_dict()
    d["data"]["scaling"] = "log"
    with pytest.raises(ConfigError, match="data.scaling='log'"):
        RunConfig.from_dict(d)
    cfg = load_preset("demo")
    cfg.data.crop = [0, 0]
    with pytest.raises(ConfigError, match="data.crop"):
        cfg.validate()


def test_numbers_written_as_strings_are_converted():
    d = load_preset("demo").to_dict()
    d["train"].update(learning_rate="1e-3", batch_size="64", clipnorm=None)  # PyYAML reads 1e-3 as a string
    d["model"].update(latent_dim=4.0, batch_norm=1)
    cfg = RunConfig.from_dict(d)
    assert cfg.train.learning_rate == 1e-3 and cfg.train.batch_size == 64 and cfg.train.clipnorm is None
    assert cfg.model.latent_dim == 4 and type(cfg.model.latent_dim) is int and cfg.model.batch_norm is True
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


# --------------------------------------------------------------------------- core modules, from Python


def _mlp(**kw):
    return ModelConfig(**{"architecture": "mlp", "input_shape": (4, 4, 1), "hidden_units": [4], "latent_dim": 2,
                          "n_clusters": 2, **kw})


def test_core_modules_raise_typed_errors():
    from astrovader.layers import RotationStack
    from astrovader.models import build_model
    from astrovader.networks import build_networks

    with pytest.raises(ConfigError, match="model.kind='gan'"):
        build_model(_mlp(), kind="gan")
    with pytest.raises(ConfigError, match="model.input_shape is not set"):
        build_networks(_mlp(input_shape=None))
    with pytest.raises(ConfigError, match="model.output_activation='sigmoidd'"):
        build_networks(_mlp(output_activation="sigmoidd"))
    with pytest.raises(ConfigError, match="model.reconstruction='l1'"):
        losses.reconstruction_loss("l1", np.zeros((1, 4)), np.zeros((1, 4)))
    with pytest.raises(DataError, match="square stamps"):
        RotationStack()(np.zeros((1, 4, 6, 1), "float32"))

    vae, vade = build_model(_mlp(), kind="vae"), build_model(_mlp(), kind="vade")
    with pytest.raises(ConfigError, match="a VAE has no clusters"):
        vae.sample(1, cluster=0)
    with pytest.raises(ConfigError, match=r"cluster=2 is out of range.*\(0\.\.1\)"):
        vade.sample(1, cluster=2)
    with pytest.raises(DataError, match="no input stamps"):
        vade.encode(np.zeros((0, 4, 4, 1), "float32"))
    assert issubclass(ConfigError, ValueError) and issubclass(DataError, ValueError)  # old `except ValueError` works
