"""Seed 003 classifiers: Deep-HiTS rotation invariance, RCNN masking, CAPE, save/load/export,
MirroredStrategy training, scores against scikit-learn, baselines and the sequence data."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from astrovader.classifier_baselines import FEATURE_NAMES, light_curve_features, pixel_boosting
from astrovader.classifiers import (build_classifier, build_deep_hits, build_ensemble, build_rcnn,
                                    compile_classifier, is_classifier, predict_proba, sequence_inputs)
from astrovader.config import ConfigError, RunConfig, load_preset
from astrovader.data.sequences import (SEQUENCE_CLASSES, SequenceSet, load_sequences, read_sequences,
                                       render_sequences, time_differences, write_sequences)
from astrovader.export import export_saved_model
from astrovader.supervised import (augmented_batches, classification_scores, fit_classifier, group_accuracy,
                                   held_out_split, take)

RNG = np.random.default_rng(0)


def _deep_hits(**kw):
    return compile_classifier(build_deep_hits((21, 21, 1), filters=(4, 4, 4), dense_units=(8,), **kw))


def _rcnn(t=6, **kw):
    return compile_classifier(build_rcnn((t, 9, 9, 1), n_classes=3, filters=(4,), dense_units=(8,), lstm_units=6, **kw))


def _seq_inputs(n=8, t=6, side=9):
    mask = (np.arange(t)[None] < RNG.integers(2, t + 1, (n, 1))).astype("float32")
    images = RNG.normal(size=(n, t, side, side, 1)).astype("float32") * mask[..., None, None, None]
    dt = RNG.uniform(0, 3, (n, t)).astype("float32") * mask
    return {"images": images, "dt": dt, "mask": mask}


def test_deep_hits_probabilities_are_invariant_to_90_degree_rotations():
    model = _deep_hits()
    x = RNG.normal(size=(16, 21, 21, 1)).astype("float32") * 3
    model.fit(x, RNG.integers(0, 2, 16), epochs=1, batch_size=8, verbose=0)  # trained weights, not the initial ones
    p0 = predict_proba(model, x)
    for k in (1, 2, 3):
        np.testing.assert_allclose(predict_proba(model, np.rot90(x, k, axes=(1, 2)).copy()), p0, atol=1e-5)
    np.testing.assert_allclose(p0.sum(1), 1, atol=1e-5)
    plain = _deep_hits(rotation_invariant=False)  # the control: a plain CNN is not invariant
    assert np.abs(predict_proba(plain, np.rot90(x, 1, axes=(1, 2)).copy()) - predict_proba(plain, x)).max() > 1e-4


def test_sequence_statistics_match_numpy_over_valid_frames():
    from astrovader.classifiers import SequenceStatistics

    inp = _seq_inputs(n=6, t=7)
    h = RNG.normal(size=(6, 7, 3)).astype("float32") * 4
    mask = inp["mask"]
    mask[0] = 0  # a sequence without frames gets zeros
    stats, dev = (np.asarray(a) for a in SequenceStatistics()([h, mask]))
    assert stats.shape == (6, 12) and dev.shape == h.shape
    np.testing.assert_allclose(stats[0], 0, atol=1e-6)
    for i in range(1, 6):
        v = h[i][mask[i] > 0]
        d = v - v.mean(0)
        want = np.concatenate([v.mean(0), np.sqrt((d ** 2).mean(0) + 1e-6), d.max(0), d.min(0)])
        np.testing.assert_allclose(stats[i], want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(dev[i][mask[i] > 0], d, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(dev[i][mask[i] == 0], 0)


@pytest.mark.parametrize("statistics", [True, False])
def test_rcnn_ignores_masked_frames(statistics):
    model = _rcnn(t=6, sequence_statistics=statistics)
    inp = _seq_inputs()
    model.fit(inp, RNG.integers(0, 3, 8), epochs=1, batch_size=4, verbose=0)
    p0 = predict_proba(model, inp)
    junk = {k: v.copy() for k, v in inp.items()}
    pad = junk["mask"] == 0
    junk["images"][pad] = 50.0
    junk["dt"][pad] = 7.0
    np.testing.assert_allclose(predict_proba(model, junk), p0, atol=1e-5)
    short = {k: v.copy() for k, v in inp.items()}  # a sequence cut to 2 frames == its first 2 frames + padding
    short["mask"][:, 2:] = 0
    cut = {k: v.copy() for k, v in short.items()}
    cut["images"][:, 2:], cut["dt"][:, 2:] = 0.0, 0.0
    np.testing.assert_allclose(predict_proba(model, short), predict_proba(model, cut), atol=1e-5)
    changed = {k: v.copy() for k, v in inp.items()}
    changed["images"][:, 0] += 5.0  # a real frame does matter
    assert np.abs(predict_proba(model, changed) - p0).max() > 1e-5


def test_save_load_and_classify_signature(tmp_path):
    for model, inp in ((_deep_hits(), RNG.normal(size=(5, 21, 21, 1)).astype("float32")), (_rcnn(), _seq_inputs(5))):
        p = predict_proba(model, inp)
        model.save(tmp_path / "m.keras")
        again = keras.models.load_model(tmp_path / "m.keras")
        np.testing.assert_allclose(predict_proba(again, inp), p, atol=1e-6)
        assert is_classifier(again)
        out = tmp_path / f"sm_{model.name}"
        assert export_saved_model(model, out) == ["classify"]
        loaded = tf.saved_model.load(str(out))  # keep a reference: the signature uses its variables
        sig = loaded.classify
        res = sig(**inp) if isinstance(inp, dict) else sig(tf.constant(inp))
        np.testing.assert_allclose(res["probabilities"].numpy(), p, atol=1e-5)
        np.testing.assert_array_equal(res["label"].numpy(), p.argmax(1))


def test_cape_ensemble_averages_member_probabilities(tmp_path):
    a, b = _deep_hits(), _deep_hits()
    x = RNG.normal(size=(4, 21, 21, 1)).astype("float32")
    pa, pb = predict_proba(a, x), predict_proba(b, x)
    cape = build_ensemble([a, b])
    np.testing.assert_allclose(predict_proba(cape, x), (pa + pb) / 2, atol=1e-6)
    cape.save(tmp_path / "cape.keras")
    np.testing.assert_allclose(predict_proba(keras.models.load_model(tmp_path / "cape.keras"), x), (pa + pb) / 2,
                               atol=1e-6)


@pytest.mark.multi_device
def test_both_classifiers_train_under_mirrored_strategy():
    from astrovader.training import get_strategy

    strategy = get_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2
    cfg = load_preset("deep-hits")
    cfg.model.filters, cfg.model.dense_units, cfg.train.batch_size, cfg.model.ensemble = [4, 4], [8], 8, 2
    x, y = RNG.normal(size=(16, 21, 21, 1)).astype("float32"), np.arange(16) % 2
    model, hist = fit_classifier(cfg, x, y, strategy=strategy, epochs=1)
    assert len(hist) == 2 and np.isfinite(hist[0].history["loss"]).all()
    np.testing.assert_allclose(predict_proba(model, x).sum(1), 1, atol=1e-5)
    rc = load_preset("rcnn")
    rc.model.input_shape, rc.model.n_classes = (6, 9, 9, 1), 3
    rc.model.filters, rc.model.dense_units, rc.model.lstm_units, rc.train.batch_size = [4], [8], 6, 4
    model, hist = fit_classifier(rc, _seq_inputs(8), np.arange(8) % 3, strategy=strategy, epochs=1)
    assert np.isfinite(hist[0].history["loss"]).all()


def test_classifier_learning_rate_decays_to_final_learning_rate():
    cfg = load_preset("deep-hits")
    cfg.model.filters, cfg.model.dense_units, cfg.train.batch_size = [4, 4], [8], 8
    cfg.train.supervised_epochs, cfg.train.learning_rate, cfg.train.final_learning_rate = 10, 1e-3, 1e-4
    x, y = RNG.normal(size=(16, 21, 21, 1)).astype("float32"), np.arange(16) % 2
    model, _ = fit_classifier(cfg, x, y)
    # 2 steps per epoch, 10 epochs: two staircase drops of sqrt(0.1) each -> exactly the final rate
    assert int(model.optimizer.iterations) == 20
    np.testing.assert_allclose(float(model.optimizer.learning_rate), 1e-4, rtol=1e-5)


def test_augmented_batches_flip_stamps_and_keep_their_labels():
    from astrovader.config import DataConfig

    n = 40  # stamp i: constant i with a marker in its top-left corner; label i % 3
    x = np.repeat(np.arange(n, dtype="float32"), 25).reshape(n, 5, 5, 1)
    x[:, 0, 0, 0] += 1000.0
    y = np.arange(n) % 3
    seen, corners = [], set()
    for xb, yb in augmented_batches(x, y, DataConfig(flips=True, rot90=True), batch_size=8, seed=1):
        xb, yb = xb.numpy(), yb.numpy()
        base = xb.reshape(len(xb), -1).min(1)
        np.testing.assert_array_equal(yb, base.astype(int) % 3)  # each label stays with its stamp
        seen += base.astype(int).tolist()
        corners |= {tuple(np.argwhere(s[..., 0] > 500)[0]) for s in xb}
    assert sorted(seen) == list(range(n))  # one epoch = every stamp once
    assert corners == {(0, 0), (0, 4), (4, 0), (4, 4)}  # the marker moved: stamps were flipped/rotated


def test_augmented_batches_shift_by_a_fraction_of_the_stamp_side():
    from astrovader.config import DataConfig

    yy, xx = np.mgrid[:10, :10]
    x = np.repeat(np.exp(-((xx - 4.5) ** 2 + (yy - 4.5) ** 2) / 2.0)[None, :, :, None], 16, 0).astype("float32")
    y = np.arange(16) % 2

    def centroids(cfg):
        xb = np.concatenate([b.numpy() for b, _ in augmented_batches(x, y, cfg, batch_size=8, seed=1)])[..., 0]
        return np.stack([(xb * xx).sum((1, 2)), (xb * yy).sum((1, 2))], 1) / xb.sum((1, 2))[:, None]

    np.testing.assert_allclose(centroids(DataConfig()), 4.5, atol=1e-4)
    moved = np.abs(centroids(DataConfig(shift_fraction=0.2)) - 4.5)
    assert moved.max() > 0.3 and moved.max() <= 2.0 + 0.05  # up to a fifth of the 10-px side


def test_deep_hits_trains_with_augmentation(monkeypatch):
    import astrovader.supervised as sup

    calls = []
    monkeypatch.setattr(sup, "augmented_batches", lambda *a, **k: calls.append(a[2]) or augmented_batches(*a, **k))
    cfg = load_preset("deep-hits")
    cfg.model.filters, cfg.model.dense_units, cfg.train.batch_size = [4, 4], [8], 8
    x, y = RNG.normal(size=(16, 21, 21, 1)).astype("float32"), np.arange(16) % 2
    cfg.data.flips = False
    fit_classifier(cfg, x, y, epochs=1)
    assert calls == []  # no augmentation asked for: plain arrays
    cfg.data.flips = True
    model, hist = fit_classifier(cfg, x, y, epochs=2)
    assert len(calls) == 1 and calls[0].flips  # trained through the augmented batches
    assert int(model.optimizer.iterations) == 4 and np.isfinite(hist[0].history["loss"]).all()
    cfg.data.flips, cfg.data.shift_fraction = False, 0.1  # a shift given as a fraction of the side alone
    fit_classifier(cfg, x, y, epochs=1)
    assert len(calls) == 2 and calls[1].shift_fraction == 0.1


def test_scores_match_sklearn_and_det_curve():
    from sklearn.metrics import f1_score, precision_score, recall_score

    y = RNG.integers(0, 2, 200)
    p1 = np.clip(y * 0.6 + RNG.uniform(0, 0.5, 200), 0, 1)
    s = classification_scores(y, np.stack([1 - p1, p1], 1), ["bogus", "real"])
    pred = (p1 > 0.5).astype(int)
    assert s["accuracy"] == pytest.approx((pred == y).mean())
    assert s["precision"] == pytest.approx(precision_score(y, pred))
    assert s["recall"] == pytest.approx(recall_score(y, pred))
    assert s["f1"] == pytest.approx(f1_score(y, pred))
    assert np.array(s["confusion"]).sum() == 200
    fpr, fnr = np.array(s["det"]["fpr"]), np.array(s["det"]["fnr"])
    assert fpr.shape == fnr.shape and ((0 <= fpr) & (fpr <= 1)).all()
    g = group_accuracy(y, pred, np.where(y == 1, "real", "bogus"))
    assert g["real"]["n"] == int(y.sum()) and 0 <= g["bogus"]["accuracy"] <= 1
    y3 = RNG.integers(0, 3, 60)
    s3 = classification_scores(y3, np.eye(3)[y3])
    assert s3["macro_f1"] == 1.0 and "det" not in s3


def test_held_out_split_is_stratified_disjoint_and_deterministic():
    y = np.repeat([0, 1, 2], [50, 30, 20])
    tr, te = held_out_split(y, 0.2, 3)
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == 100
    assert np.bincount(y[te]).tolist() == [10, 6, 4]
    np.testing.assert_array_equal(held_out_split(y, 0.2, 3)[1], te)


def test_config_requires_the_supervised_recipe_for_classifiers():
    d = load_preset("deep-hits").to_dict()
    d["train"]["recipe"] = "s3vdc"
    with pytest.raises(ConfigError, match="supervised"):
        RunConfig.from_dict(d)
    rc = load_preset("rcnn")
    assert rc.model.input_shape == (25, 21, 21, 1) and rc.train.total_epochs() == rc.train.supervised_epochs
    assert build_classifier(rc.model).output_shape == (None, 7)


def test_sequences_are_deterministic_and_round_trip(tmp_path):
    a = render_sequences(14, seed=3, size=11, min_epochs=3, max_epochs=6, workers=1)
    b = render_sequences(14, seed=3, size=11, min_epochs=3, max_epochs=6, workers=1)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.images.shape == (14, 6, 11, 11, 1) and sorted(set(a.labels)) == list(range(len(SEQUENCE_CLASSES)))
    assert (a.images[~a.mask] == 0).all() and a.mask[:, :3].all()
    dt = time_differences(a.times, a.mask)
    assert (dt >= 0).all() and (dt[:, 0] == 0).all() and (dt[~a.mask] == 0).all()
    for suffix in (".npz", ".h5"):
        back = read_sequences(write_sequences(a, tmp_path / f"s{suffix}"))
        np.testing.assert_array_equal(back.images, a.images)
        np.testing.assert_array_equal(back.mask, a.mask)
        np.testing.assert_array_equal(back.labels, a.labels)
        assert list(back.ids) == list(a.ids) and back.label_names == SEQUENCE_CLASSES
    shifted = render_sequences(7, seed=3, size=11, min_epochs=3, max_epochs=6, shifted=True, workers=1)
    assert shifted.columns["mean_fwhm"].min() >= 3.0 and a.columns["mean_fwhm"].max() <= 3.5
    assert not np.array_equal(shifted.images[:7], a.images[:7])
    inp = sequence_inputs(a)
    assert set(inp) == {"images", "dt", "mask"} and np.isfinite(inp["images"]).all()
    f = light_curve_features(a.images, a.times, a.mask)
    assert f.shape == (14, len(FEATURE_NAMES)) and np.isfinite(f).all()


def test_builtin_sequences_are_cached(tmp_path):
    s = load_sequences("builtin:sequences", n=7, seed=0, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("sequences-n7-seed0-v*.npz"))) == 1
    np.testing.assert_array_equal(load_sequences("builtin:sequences", n=7, seed=0, cache_dir=tmp_path).images,
                                  s.images)
    sub = take(sequence_inputs(s), [0, 2])
    assert sub["images"].shape[0] == 2


def test_pixel_boosting_separates_blobs_from_noise():
    y = np.arange(80) % 2
    x = RNG.normal(size=(80, 7, 7, 1)).astype("float32")
    x[y == 1, 3, 3] += 6
    p = pixel_boosting(x[:60], y[:60], x[60:], max_iter=20)
    assert (p.argmax(1) == y[60:]).mean() > 0.9


def test_sequence_set_validates_shapes():
    from astrovader.errors import DataError

    with pytest.raises(DataError, match="times"):
        SequenceSet(np.zeros((2, 3, 4, 4)), np.zeros((2, 4)))
