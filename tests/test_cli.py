"""Smoke tests: every subcommand on tiny data (1 epoch, tiny networks), errors without tracebacks."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from astrovader.cli import SUBCOMMANDS, main
from astrovader.report import missing_images
from cli_helpers import N, SIDE, tiny_config, tiny_npz


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One trained tiny run shared by the tests of the other subcommands."""
    root = tmp_path_factory.mktemp("cli")
    data = tiny_npz(root / "tiny.npz")
    cfgp = tiny_config(root / "tiny.yaml")
    out = root / "run"
    assert main(["train", "--config", str(cfgp), "--data", str(data), "--out", str(out), "--epochs", "1",
                 "--verbose", "0"]) == 0
    return out, data


def test_help_for_every_subcommand(capsys):
    for name in [s.replace("_", "-") for s in SUBCOMMANDS] + ["data info", "data render"]:
        with pytest.raises(SystemExit) as exc:
            main(name.split() + ["--help"])
        assert exc.value.code == 0
        text = capsys.readouterr().out
        assert "usage: astrovader" in text
        # every flag has help text (argparse prints it after the flag)
        for line in text.splitlines():
            if line.strip().startswith("--") and "  " not in line.strip():
                nxt = text.splitlines()[text.splitlines().index(line) + 1]
                assert nxt.startswith(" " * 10), f"{name}: {line!r} has no help"


def test_train_writes_a_complete_run_dir(run_dir):
    out, _ = run_dir
    for name in ("config.yaml", "model.keras", "history.csv"):
        assert (out / name).is_file(), name
    assert any((out / "logs").rglob("*tfevents*"))
    assert not (out / "backup").exists(), "BackupAndRestore state is removed after a finished run"
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0]
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["model"]["input_shape"] == [SIDE, SIDE, 1]
    assert cfg["train"]["gamma_epochs"] + cfg["train"]["periods"] * 2 >= 1


def test_train_refuses_to_overwrite(run_dir, capsys):
    out, data = run_dir
    code = main(["train", "--preset", "demo", "--data", str(data), "--out", str(out), "--epochs", "1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "astrovader: error:" in err and "--overwrite" in err and "Traceback" not in err


def test_errors_exit_2_without_traceback(tmp_path, capsys):
    assert main(["train", "--preset", "no-such-preset", "--out", str(tmp_path / "r")]) == 2
    assert "unknown preset" in capsys.readouterr().err
    assert main(["evaluate", "--run", str(tmp_path / "missing")]) == 2
    assert "run directory not found" in capsys.readouterr().err
    assert main(["data", "info", "--data", str(tmp_path / "nope.npz")]) == 2
    assert capsys.readouterr().err.startswith("astrovader: error:")


def test_evaluate_writes_metrics_and_report(run_dir, capsys):
    out, data = run_dir
    assert main(["evaluate", "--run", str(out), "--data", str(data), "--samples", "3"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_objects"] == N
    assert 0.0 <= metrics["scores"]["acc_hungarian"] <= 1.0
    assert "acc_hungarian" in metrics["baseline_pca_gmm"]
    assert len(metrics["occupancy"]["argmax"]) == 2
    assert missing_images(out / "report.html") == []
    html = (out / "report.html").read_text()
    for fig in ("loss_curves", "reconstructions", "best_worst", "gallery_top", "gallery_random", "samples",
                "prototypes", "mean_gamma", "mean_gamma_classes", "occupancy"):
        assert f"figures/{fig}.png" in html
    assert "acc_hungarian" in capsys.readouterr().out


@pytest.mark.parametrize("fmt,expect", [("png", "sample_00004.png"), ("npy", "samples.npy"), ("fits", "samples.fits")])
def test_generate_formats(run_dir, tmp_path, fmt, expect):
    out, _ = run_dir
    dest = tmp_path / fmt
    assert main(["generate", "--run", str(out), "--n", "5", "--cluster", "1", "--temperature", "0.5",
                 "--out", str(dest), "--format", fmt]) == 0
    assert (dest / expect).is_file()
    if fmt == "npy":
        assert np.load(dest / expect).shape == (5, SIDE, SIDE, 1)
    if fmt == "fits":
        from astropy.io import fits

        assert fits.getdata(dest / expect).shape == (5, SIDE, SIDE)


def test_generate_rejects_bad_cluster(run_dir, tmp_path, capsys):
    out, _ = run_dir
    assert main(["generate", "--run", str(out), "--n", "2", "--cluster", "7", "--out", str(tmp_path)]) == 2
    assert "has 2 clusters" in capsys.readouterr().err


def test_predict_csv_has_one_row_per_object(run_dir, tmp_path):
    out, data = run_dir
    dest = tmp_path / "pred.csv"
    assert main(["predict", "--run", str(out), "--data", str(data), "--out", str(dest), "--batch-size", "32",
                 "--no-progress"]) == 0
    rows = list(csv.DictReader(dest.open()))
    assert [r["id"] for r in rows] == [f"obj{i:04d}" for i in range(N)]
    assert set(rows[0]) == {"id", "cluster", "gamma_0", "gamma_1", "mu_0", "mu_1", "decoder_variance", "mse"}
    g = np.array([[float(r["gamma_0"]), float(r["gamma_1"])] for r in rows])
    np.testing.assert_allclose(g.sum(1), 1.0, atol=1e-4)
    assert not dest.with_name("pred.csv.parts").exists()


def test_predict_adapts_other_stamp_shapes(run_dir, tmp_path, capsys):
    """Stamps of another size and band count are resized/averaged with a notice, no traceback."""
    out, _ = run_dir
    other = tiny_npz(tmp_path / "rgb.npz", n=10, side=16, bands=3)
    dest = tmp_path / "pred.npz"
    assert main(["predict", "--run", str(out), "--data", str(other), "--out", str(dest), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "3 to 1 band" in err and "16x16 to 12x12" in err
    z = np.load(dest)
    assert z["gamma"].shape == (10, 2) and z["mu"].shape == (10, 2)


def test_export_savedmodel_signatures(run_dir, tmp_path):
    import tensorflow as tf

    out, _ = run_dir
    dest = tmp_path / "sm"
    assert main(["export", "--run", str(out), "--out", str(dest)]) == 0
    loaded = tf.saved_model.load(str(dest))
    assert {"encode", "cluster_probabilities", "decode"} <= set(loaded.signatures)
    assert main(["export", "--run", str(out), "--out", str(dest)]) == 2  # refuses to overwrite


def test_choose_k(run_dir, capsys):
    out, data = run_dir
    assert main(["choose-k", "--run", str(out), "--data", str(data), "--max-components", "4", "--batches", "2",
                 "--batch-size", "60"]) == 0
    assert "K = " in capsys.readouterr().out
    assert json.loads((out / "choose_k.json").read_text())["max_components"] == 4


def test_data_info_and_render(tmp_path, capsys):
    data = tiny_npz(tmp_path / "t.npz", n=20)
    assert main(["data", "info", "--data", str(data)]) == 0
    text = capsys.readouterr().out
    assert "count: 20" in text and "[12, 12, 1]" in text and "nonfinite_pixels: 0" in text
    assert main(["data", "render", "digits", "--n", "30", "--seed", "1", "--out", str(tmp_path / "d.npz")]) == 0
    z = np.load(tmp_path / "d.npz")
    assert z["images"].shape == (30, 8, 8, 1) and len(z["labels"]) == 30
    assert main(["data", "render", "digits", "--n", "30", "--out", str(tmp_path / "d.png")]) == 0
    assert (tmp_path / "d.png").stat().st_size > 1000
    assert main(["data", "render", "nonsense", "--n", "3", "--out", str(tmp_path / "x.npz")]) == 2


@pytest.mark.parametrize("clusters, score", [(2, "Hungarian"), (4, "majority, seed 000 eq. 9")])
def test_demo_smoke(tmp_path, capsys, clusters, score):
    """More clusters than classes: VaDE and PCA+GMM are compared by majority accuracy (seed 000 eq. 9)."""
    data = tiny_npz(tmp_path / "t.npz")
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--data", str(data), "--epochs", "1", "--batch-size", "40",
                 "--latent-dim", "2", "--clusters", str(clusters), "--verbose", "0"]) == 0
    text = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    key = "acc_majority" if clusters > 2 else "acc_hungarian"
    assert metrics["headline"] == key
    assert f"clustering accuracy ({score}): VaDE {metrics['scores'][key]:.3f}" in text
    assert f"vs PCA+GMM {metrics['baseline_pca_gmm'][key]:.3f}" in text
    for name in ("report.html", "metrics.json", "model.keras", "savedmodel/saved_model.pb"):
        assert (out / name).exists(), name
    assert any((out / "samples").glob("cluster01_*.png"))
    assert missing_images(out / "report.html") == []


def test_python_m_entry_point():
    res = subprocess.run([sys.executable, "-m", "astrovader", "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.startswith("astrovader ")
