"""Training-time affine jitter (DEC-DA shifts and small rotations) in the tf.data pipeline."""

import numpy as np
import pytest
import tensorflow as tf

from astrovader.data import make_dataset
from astrovader.data.pipeline import _affine
from astrovader.errors import DataError


def _blob(n=4, size=21):
    yy, xx = np.mgrid[:size, :size]
    c = (size - 1) / 2
    img = np.exp(-((xx - c) ** 2 + (yy - c + 3) ** 2) / 4.0)  # off-centre along y
    return np.repeat(img[None, :, :, None], n, axis=0).astype("float32")


def test_zero_jitter_is_the_identity():
    x = _blob()
    out = _affine(tf.constant(x), tf.constant(3, tf.int64), 0.0, 0.0).numpy()
    np.testing.assert_allclose(out, x, atol=1e-6)


def test_shift_moves_the_centroid_by_at_most_the_maximum():
    x = _blob(64)
    out = _affine(tf.constant(x), tf.constant(1, tf.int64), 2.0, 0.0).numpy()
    yy, xx = np.mgrid[:21, :21]

    def centroid(a):
        w = a[..., 0]
        return np.stack([(w * yy).sum((1, 2)) / w.sum((1, 2)), (w * xx).sum((1, 2)) / w.sum((1, 2))], -1)

    d = centroid(out) - centroid(x)
    assert np.all(np.abs(d) <= 2.0 + 1e-3) and d.std(0).min() > 0.3  # random, within the bound
    np.testing.assert_allclose(out.sum((1, 2, 3)), x.sum((1, 2, 3)), rtol=1e-3)  # flux kept


def test_rotation_keeps_the_distance_from_the_centre():
    x = _blob(32)
    out = _affine(tf.constant(x), tf.constant(2, tf.int64), 0.0, 30.0).numpy()
    yy, xx = np.mgrid[:21, :21]
    r = np.hypot(yy - 10, xx - 10)
    radius = (out[..., 0] * r).sum((1, 2)) / out[..., 0].sum((1, 2))
    np.testing.assert_allclose(radius, (x[0, ..., 0] * r).sum() / x[0, ..., 0].sum(), rtol=0.05)
    assert np.abs(out - x).max() > 0.1  # it did rotate


def test_make_dataset_applies_the_jitter_and_rejects_negative_maxima():
    x = _blob(8)
    batch = next(iter(make_dataset(x, 8, shuffle=False, augment_shift=2.0, augment_rotate=10.0)))
    assert batch.shape == x.shape and not np.allclose(batch.numpy(), x, atol=1e-3)
    plain = next(iter(make_dataset(x, 8, shuffle=False)))
    np.testing.assert_array_equal(plain.numpy(), x)
    with pytest.raises(DataError, match="non-negative"):
        make_dataset(x, 8, augment_shift=-1.0)


def test_shift_fraction_scales_with_the_stamp_side_and_excludes_pixels():
    from astrovader.config import DataConfig
    from astrovader.errors import ConfigError

    cfg = DataConfig(shift_fraction=0.1).validate()
    assert cfg.shift_pixels((8, 8, 1)) == pytest.approx(0.8)
    assert cfg.shift_pixels((28, 40, 3)) == pytest.approx(2.8)  # the shorter side
    assert DataConfig(shift=3.0).validate().shift_pixels((8, 8, 1)) == 3.0
    assert DataConfig().validate().shift_pixels((8, 8, 1)) == 0.0
    with pytest.raises(ConfigError, match="give one"):
        DataConfig(shift=3.0, shift_fraction=0.1).validate()
    with pytest.raises(ConfigError, match="shift_fraction"):
        DataConfig(shift_fraction=0.6).validate()


@pytest.mark.parametrize("side, expected", [(8, 0.8), (28, 2.8)])
def test_training_jitters_by_the_fraction_of_its_own_stamps(monkeypatch, side, expected):
    from types import SimpleNamespace

    import astrovader.training as training
    from astrovader.config import RunConfig

    seen = {}

    def capture(images, batch_size, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("captured")

    monkeypatch.setattr(training, "make_dataset", capture)
    cfg = RunConfig()
    cfg.data.shift_fraction = 0.1
    model = SimpleNamespace(distribute_strategy=SimpleNamespace(num_replicas_in_sync=1))
    with pytest.raises(RuntimeError, match="captured"):
        training.fit_recipe(model, cfg, np.zeros((4, side, side, 1), np.float32))
    assert seen["augment_shift"] == pytest.approx(expected)


def test_streamed_stamps_shift_by_the_fraction_of_their_side(tmp_path):
    from astrovader.config import DataConfig

    np.savez(tmp_path / "stamps.npz", images=_blob(16, 10))
    batch = next(iter(make_dataset(DataConfig(spec=str(tmp_path / "stamps.npz"), shift_fraction=0.2), 16,
                                   shuffle=False))).numpy()[..., 0]
    xx = np.arange(10)[None, None, :]
    moved = np.abs((batch * xx).sum((1, 2)) / batch.sum((1, 2)) - 4.5)  # along x, where the blob is centred
    assert moved.max() > 0.3 and moved.max() <= 2.0 + 0.05  # up to a fifth of the 10-px side
