"""FusedAdam: the same updates as keras.optimizers.Adam, under MirroredStrategy too, and serialisable."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from astrovader.optimizers import FusedAdam
from astrovader.training import get_strategy, make_optimizer


def _fit(opt, strategy=None):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 5)).astype("float32"), rng.normal(size=(64, 1)).astype("float32")
    with (strategy or tf.distribute.get_strategy()).scope():
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((5,)), keras.layers.Dense(7, activation="relu"), keras.layers.Dense(1)])
        m.compile(opt() if callable(opt) else opt, "mse")
    m.fit(x, y, batch_size=16, epochs=3, verbose=0, shuffle=False)
    return m.get_weights()


def _numpy_adam(w, grads, lr=1e-2, b1=0.9, b2=0.999, eps=1e-7):
    """Reference update rule (Kingma & Ba as Keras writes it) for a sequence of gradients."""
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, 1):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        w = w - lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (np.sqrt(v) + eps)
    return w


def test_fused_adam_matches_numpy_reference():
    rng = np.random.default_rng(1)
    w0, grads = rng.normal(size=(4, 3)), rng.normal(size=(5, 4, 3))
    var = keras.Variable(w0.astype("float32"))
    opt = FusedAdam(1e-2)
    for g in grads:
        opt.apply_gradients([(tf.constant(g, "float32"), var)])
    np.testing.assert_allclose(var.numpy(), _numpy_adam(w0, grads), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs", [{}, {"clipnorm": 0.5}, {"amsgrad": True}])
def test_fused_adam_equals_keras_adam_in_fit(kwargs):
    ref = _fit(keras.optimizers.Adam(1e-2, **kwargs))
    got = _fit(FusedAdam(1e-2, **kwargs))
    for a, b in zip(ref, got):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.multi_device
def test_fused_adam_under_mirrored_strategy_equals_single_device():
    strategy = get_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2
    ref = _fit(lambda: keras.optimizers.Adam(1e-2), strategy)
    got = _fit(lambda: FusedAdam(1e-2), strategy)
    single = _fit(lambda: FusedAdam(1e-2))
    for a, b, c in zip(ref, got, single):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(b, c, rtol=1e-4, atol=1e-4)


def test_fused_adam_serialises_and_is_what_adam_configs_get():
    from astrovader.config import TrainConfig

    opt = FusedAdam(3e-4, clipnorm=2.0)
    back = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert type(back) is FusedAdam and back.get_config() == opt.get_config()
    assert type(make_optimizer(TrainConfig(optimizer="adam"), 10)) is FusedAdam
    assert type(make_optimizer(TrainConfig(optimizer="nadam"), 10)) is keras.optimizers.Nadam
