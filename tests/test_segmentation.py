"""Skip-connection AE + hypercolumn segmentation (seed 002 sec. 4) and `astrovader segment`."""

import json

import numpy as np
import pytest

from astrovader import segmentation as S


def test_skip_ae_shapes_and_skips():
    skip, plain = S.build_skip_ae(2, (4, 8)), S.build_skip_ae(2, (4, 8), skips=False)
    assert skip.predict(np.zeros((1, 16, 24, 2), "float32"), verbose=0).shape == (1, 16, 24, 2)
    assert {"skip0", "skip1"} <= {l.name for l in skip.layers}
    assert not any(l.name.startswith("skip") for l in plain.layers)


def test_hypercolumns_full_resolution_any_size():
    ae = S.build_skip_ae(1, (4, 8))
    img = np.random.default_rng(0).normal(size=(21, 30, 1)).astype("float32")
    f = S.hypercolumns(ae, img)
    assert f.shape[:2] == (21, 30) and f.shape[2] == 1 + 4 + 8 + 8 + 4


def test_iou_and_threshold_baseline():
    a = np.zeros((10, 10), bool)
    a[2:6, 2:6] = True
    b = np.zeros_like(a)
    b[4:8, 2:6] = True
    assert S.pixel_iou(a, b) == pytest.approx(8 / 24)
    assert S.pixel_iou(a, a) == 1.0 and S.pixel_iou(~a & a, ~a & a) == 1.0
    img = np.random.default_rng(0).normal(size=(40, 40))
    img[10:20, 10:20] += 20
    truth = np.zeros((40, 40), bool)
    truth[10:20, 10:20] = True
    assert S.pixel_iou(S.threshold_mask(img, 3.0), truth) > 0.9


def test_segments_a_simulated_field():
    fld = S.simulate_field(size=48, n_objects=4, seed=1)
    assert fld["image"].shape == (48, 48, 1) and 0 < fld["mask"].mean() < 0.6
    assert set(np.unique(fld["classes"])) <= {0, 1, 2}
    seg = S.segment_field(fld["image"], epochs=2, seed=0, n_patches=64)
    assert seg.labels.shape == (48, 48) and seg.info["n_objects"] >= 1
    assert S.pixel_iou(seg.objects > 0, fld["mask"]) > 0.2
    five = S.simulate_field(size=32, n_objects=2, seed=2, bands=5)
    assert five["image"].shape == (32, 32, 5)


def test_segment_cli_with_classifier_run(tmp_path, capsys):
    from astropy.io import fits

    from astrovader.cli import main
    from astrovader.config import load_preset
    from astrovader.runs import configure, fit_run

    cfg = load_preset("sun-ae-vae")
    cfg.model.input_shape = (16, 16, 1)
    cfg.model.filters, cfg.model.feature_dim, cfg.model.hidden_units = [4, 4], 4, [4]
    cfg.data.spec, cfg.data.n = "builtin:stargal", 24
    fit_run(configure(cfg, epochs=1), tmp_path / "clf", verbose=0)
    fld = S.simulate_field(size=48, n_objects=5, seed=3)
    fits.writeto(tmp_path / "field.fits", fld["image"][..., 0])
    assert main(["segment", "--run", str(tmp_path / "clf"), "--data", str(tmp_path / "field.fits"),
                 "--out", str(tmp_path / "seg"), "--epochs", "1"]) == 0
    labels = fits.getdata(tmp_path / "seg" / "labels.fits")
    assert labels.shape == (48, 48) and set(np.unique(labels)) <= {0, 1, 2}
    assert (tmp_path / "seg" / "overlay.png").stat().st_size > 1000
    info = json.loads((tmp_path / "seg" / "segment.json").read_text())
    assert info["n_stars"] + info["n_galaxies"] == info["n_objects"]
    assert main(["segment", "--data", str(tmp_path / "nope.fits"), "--out", str(tmp_path / "x")]) == 2
    assert "nope.fits" in capsys.readouterr().err
