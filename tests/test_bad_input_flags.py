"""Nonsense numeric flags and library arguments: one ``astrovader: error:`` line, exit 2 (issue 10).

Flag values out of range fail while the command line is parsed, before a run is opened
or a model built, so these tests need no trained run: ``--run`` may not even exist. The
library functions below raise ConfigError/DataError (never a plain ValueError) for a
user's mistake.
"""

import numpy as np
import pytest

from astrovader.errors import AstrovaderError, ConfigError, DataError
from cli_helpers import user_error

_RUN = "no-such-run"

# (argv after the subcommand, words the error line must contain)
_CASES = [
    (["evaluate", "--run", _RUN, "--samples", "-1"], ["evaluate", "--samples", "-1", ">= 0"]),
    (["predict", "--run", _RUN, "--data", "x.npy", "--out", "{tmp}/p.csv", "--batch-size", "0"], ["predict", "--batch-size", ">= 1"]),
    (["predict", "--run", _RUN, "--data", "x.npy", "--out", "{tmp}/p.csv", "--part-size", "-5"], ["--part-size", ">= 1"]),
    (["predict", "--run", _RUN, "--data", "x.npy", "--out", "{tmp}/p.csv", "--mc-samples", "-1"], ["--mc-samples", ">= 0"]),
    (["evaluate", "--run", _RUN, "--n", "0"], ["--n", ">= 1"]),
    (["evaluate", "--run", _RUN, "--seed", "-1"], ["--seed", "0..4294967295"]),
    (["choose-k", "--run", _RUN, "--weight-threshold", "2"], ["choose-k", "--weight-threshold", "(0, 1)"]),
    (["choose-k", "--run", _RUN, "--weight-threshold", "0"], ["--weight-threshold", "(0, 1)"]),
    (["choose-k", "--run", _RUN, "--max-components", "0"], ["--max-components", ">= 1"]),
    (["choose-k", "--run", _RUN, "--batches", "-3"], ["--batches"]),
    (["choose-k", "--run", _RUN, "--batch-size", "1"], ["--batch-size", ">= 2"]),
    (["explore", "--run", _RUN, "tour", "--steps", "0"], ["explore tour", "--steps", ">= 1"]),
    (["explore", "--run", _RUN, "tour", "--frame-ms", "0"], ["--frame-ms"]),
    (["explore", "--run", _RUN, "neighbours", "--object", "3", "--count", "0"], ["--count", ">= 1"]),
    (["explore", "--run", _RUN, "anomalies", "--top", "0"], ["--top", ">= 1"]),
    (["explore", "--run", _RUN, "deblend", "--object", "1", "--clean", "0", "--steps", "1"], ["--steps", ">= 2"]),
    (["explore", "--run", _RUN, "--n", "-4", "anomalies"], ["--n", ">= 1"]),
    (["explore", "--run", _RUN, "anomalies", "--seed", "-1"], ["--seed"]),
    (["generate", "--run", _RUN, "--n", "0", "--out", "{tmp}/out"], ["generate", "--n", ">= 1"]),
    (["generate", "--run", _RUN, "--n", "2", "--temperature", "0", "--out", "{tmp}/out"], ["--temperature", "> 0"]),
    (["generate", "--run", _RUN, "--n", "2", "--temperature", "nan", "--out", "{tmp}/out"], ["--temperature"]),
    (["generate", "--run", _RUN, "--n", "2", "--min-gamma", "1", "--out", "{tmp}/out"], ["--min-gamma", "[0, 1)"]),
    (["generate", "--run", _RUN, "--n", "2", "--cluster", "-1", "--out", "{tmp}/out"], ["--cluster", ">= 0"]),
    (["generate", "--run", _RUN, "--n", "two", "--out", "{tmp}/out"], ["--n", "'two' is not a whole number"]),
    (["tune", "--out", "{tmp}/out", "--max-trials", "0"], ["tune", "--max-trials", ">= 1"]),
    (["tune", "--out", "{tmp}/out", "--epochs", "-2"], ["--epochs", ">= 1"]),
    (["tune", "--out", "{tmp}/out", "--validation-fraction", "1.5"], ["--validation-fraction", "(0, 1)"]),
    (["tune", "--out", "{tmp}/out", "--n", "0"], ["--n"]),
    (["segment", "--data", "builtin:field", "--out", "{tmp}/out", "--epochs", "0"], ["segment", "--epochs", ">= 1"]),
    (["segment", "--data", "builtin:field", "--out", "{tmp}/out", "--min-area", "-1"], ["--min-area", ">= 0"]),
    (["compare-latents", "--runs", _RUN, "--out", "{tmp}/out", "--n-reference", "0"], ["--n-reference"]),
    (["compare-latents", "--runs", _RUN, "--out", "{tmp}/out", "--n", "-1"], ["--n"]),
    (["data", "render", "digits", "--n", "0", "--out", "{tmp}/out/d.npz"], ["data render", "--n", ">= 1"]),
    (["data", "render", "digits", "--n", "5", "--seed", "-2", "--out", "{tmp}/out/d.npz"], ["--seed"]),
    (["data", "info", "--data", "builtin:digits", "--n", "0"], ["data info", "--n"]),
    (["train", "--out", "{tmp}/out", "--strategy", "nonsense"], ["train", "--strategy", "invalid choice"]),
]


@pytest.mark.parametrize("argv, needles", _CASES, ids=[" ".join(a[:1] + a[3:]) for a, _ in _CASES])
def test_nonsense_flag_fails_at_parsing(tmp_path, capsys, argv, needles):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    line = user_error(capsys, argv, *needles)
    assert "--help" in line  # says where to look
    assert not (tmp_path / "out").exists()
    assert capsys.readouterr().out == ""


def test_help_and_version_still_exit_zero(capsys):
    from astrovader.cli import main

    for argv in (["--version"], ["evaluate", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
    assert "usage: astrovader evaluate" in capsys.readouterr().out


def test_missing_required_flag_is_one_line(capsys):
    user_error(capsys, ["generate", "--n", "2"], "generate", "--run", "--out", "required")


def test_segment_builtin_field_seed_must_be_a_number(tmp_path, capsys):
    user_error(capsys, ["segment", "--data", "builtin:field:abc", "--out", tmp_path / "out"],
               "builtin:field:abc", "builtin:field:3")
    assert not (tmp_path / "out").exists()


def test_deep_hits_on_non_square_stamps(tmp_path, capsys):
    """A rotation-invariant Deep-HiTS CNN whose stamps turn out non-square once loaded."""
    import yaml

    from astrovader.config import load_preset

    cfg = load_preset("deep-hits").to_dict()
    cfg["model"].update(input_shape=None, filters=[4, 4], dense_units=[4], rotation_invariant=True)
    cfg["train"]["batch_size"] = 8
    (tmp_path / "dh.yaml").write_text(yaml.safe_dump(cfg))
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "ns.npz", images=rng.normal(size=(16, 21, 15, 1)).astype("float32"),
             labels=np.arange(16) % 2)
    user_error(capsys, ["train", "--config", tmp_path / "dh.yaml", "--data", tmp_path / "ns.npz",
                        "--out", tmp_path / "run", "--epochs", "1", "--verbose", "0"],
               "21x15", "square", "data.crop", "rotation_invariant: false")
    assert not (tmp_path / "run" / "model.keras").exists()


def test_library_functions_raise_typed_errors():
    from astrovader import compare, plots, priors
    from astrovader.classifiers import build_deep_hits, build_ensemble, build_rcnn
    from astrovader.segmentation import segment_field

    with pytest.raises(DataError, match="21x15x1.*data.crop: \\[15, 15\\]"):
        build_deep_hits((21, 15, 1), filters=[4, 4])
    with pytest.raises(ConfigError, match="at least 2 conv layers"):
        build_deep_hits((21, 21, 1), filters=[4])
    with pytest.raises(ConfigError, match="model.input_shape"):
        build_rcnn((21, 21, 1))
    with pytest.raises(ConfigError, match="at least one member"):
        build_ensemble([])
    with pytest.raises(ConfigError, match="model.prior_loss='nope'"):
        priors.prior_loss("nope", np.zeros((2, 2), "float32"), np.zeros((2, 2), "float32"))
    with pytest.raises(ConfigError, match="p=2"):
        priors.pw_loss(np.zeros((2, 2), "float32"), np.zeros((2, 2), "float32"), p=1)
    with pytest.raises(ConfigError, match="--baselines"):
        compare.latent_baselines(np.zeros((8, 4, 4, 1), "float32"), 2, names=["nope"])
    with pytest.raises(ConfigError, match="isomap"):
        compare.manifold_scores(np.random.default_rng(0).normal(size=(8, 2)), method="nope")
    with pytest.raises(DataError, match="both classes"):
        compare.latent_roc(np.zeros((8, 2)), np.ones(8, int))
    with pytest.raises(ConfigError, match="'top' or 'random'"):
        plots.cluster_gallery(np.zeros((4, 4, 4, 1)), np.eye(2)[[0, 1, 0, 1]], "unused.png", mode="nope")
    with pytest.raises(DataError, match="16x16"):
        segment_field(np.zeros((8, 8), "float32"))
    for exc in (ConfigError, DataError):
        assert issubclass(exc, AstrovaderError) and issubclass(exc, ValueError)


def test_no_plain_value_error_left_in_user_facing_modules():
    """User mistakes in these modules are typed errors (a plain ValueError is a traceback in the CLI)."""
    import re
    from pathlib import Path

    import astrovader

    root = Path(astrovader.__file__).parent
    for name in ("autoencoders.py", "classifiers.py", "compare.py", "priors.py", "plots.py", "segmentation.py",
                 "data/stargal.py"):
        text = (root / name).read_text()
        assert not re.search(r"raise ValueError\(", text), name
