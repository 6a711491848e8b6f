"""CLI smoke tests of the seed 003 classifiers (train/evaluate/export/predict, 1 epoch on tiny data)
and of the classifiers benchmark (--help, --quick, its RESULTS.md renderer)."""

import csv
import json

import numpy as np
import pytest
import tensorflow as tf
import yaml

from astrovader.cli import main
from astrovader.config import load_preset
from astrovader.data.sequences import render_sequences, write_sequences


def _config(path, preset, **model):
    cfg = load_preset(preset).to_dict()
    cfg["model"].update(model)
    cfg["train"]["batch_size"] = 8
    path.write_text(yaml.safe_dump(cfg))
    return path


def _run_all(tmp_path, cfg, data, n_classes):
    run = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--data", str(data), "--out", str(run), "--epochs", "1",
                 "--verbose", "0"]) == 0
    assert main(["evaluate", "--run", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["split"] == "held-out" and 0 <= metrics["scores"]["accuracy"] <= 1
    assert np.asarray(metrics["confusion"]).shape == (n_classes, n_classes)
    assert (run / "report.html").is_file() and (run / "figures" / "confusion_matrix.png").is_file()
    assert main(["export", "--run", str(run), "--out", str(run / "sm")]) == 0
    assert hasattr(tf.saved_model.load(str(run / "sm")), "classify")
    assert main(["predict", "--run", str(run), "--data", str(data), "--out", str(tmp_path / "p.csv")]) == 0
    with (tmp_path / "p.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["id", "label"] + [f"p_{i}" for i in range(n_classes)]
    return run, metrics


def test_deep_hits_cli_on_simulated_transients(tmp_path):
    from astrovader.data import load

    s = load("builtin:transients", n=50, seed=0)
    data = tmp_path / "transients.npz"
    np.savez(data, images=s.images, labels=s.labels, ids=s.ids, subtype=s.columns["subtype"])
    cfg = _config(tmp_path / "dh.yaml", "deep-hits", filters=[4, 4], dense_units=[8])
    run, metrics = _run_all(tmp_path, cfg, data, 2)
    assert {"precision", "recall", "f1"} <= set(metrics["scores"]) and metrics["det"]["fpr"]
    assert "point_source" in metrics["subtype_accuracy"]
    assert (run / "figures" / "det_curve.png").is_file()


def test_rcnn_cli_on_an_hdf5_sequence_file(tmp_path):
    data = write_sequences(render_sequences(21, seed=1, size=9, min_epochs=3, max_epochs=5, workers=1),
                           tmp_path / "seqs.h5")
    cfg = _config(tmp_path / "rcnn.yaml", "rcnn", input_shape=None, filters=[4], dense_units=[8], lstm_units=6)
    run, metrics = _run_all(tmp_path, cfg, data, 7)
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["input_shape"] == [5, 9, 9, 1]
    assert "macro_f1" in metrics["scores"]


def test_classifier_needs_labels(tmp_path, capsys):
    np.savez(tmp_path / "x.npz", images=np.zeros((20, 21, 21, 1), "float32"))
    cfg = _config(tmp_path / "dh.yaml", "deep-hits", filters=[4, 4], dense_units=[8])
    assert main(["train", "--config", str(cfg), "--data", str(tmp_path / "x.npz"), "--out",
                 str(tmp_path / "r"), "--epochs", "1"]) == 2
    assert "labels" in capsys.readouterr().err


def test_benchmark_help_quick_and_render(tmp_path, capsys):
    from benchmarks import classifiers

    with pytest.raises(SystemExit) as exc:
        classifiers.main(["--help"])
    assert exc.value.code == 0 and "--quick" in capsys.readouterr().out
    assert classifiers.main(["--quick", "--results-dir", str(tmp_path)]) == 0
    for name in ("classifiers_deep_hits", "classifiers_rcnn"):
        data = json.loads((tmp_path / f"{name}.json").read_text())
        text = "\n".join(classifiers.render(name, data))
        assert "Target" in text and "nan" not in text.split("Target")[0].split("|---|")[0]
    hgb = lambda: [r for r in json.loads((tmp_path / "classifiers_deep_hits.json").read_text())["runs"]  # noqa: E731
                   if r["method"] == "hgb-pixels"]
    before = hgb()
    assert classifiers.main(["--quick", "--experiments", "deep_hits", "--no-hgb", "--results-dir", str(tmp_path)]) == 0
    assert before and hgb() == before  # kept, not retrained
