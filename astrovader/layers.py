"""Custom Keras layers of the VaDE model.

* :class:`Sampling` -- reparameterisation z = mu + eps * exp(log_var / 2).
* :class:`GaussianMixturePrior` -- the learnable mixture p(z) = sum_k pi_k N(z | mu_k, sigma_k^2).
* :class:`ClusterProbabilities` -- gamma = p(c | z) from the prior's log joint, in log space.
* :class:`DecoderVariance` -- the auto-regularisation head sigma^2(z) of seed 000 sec. V.
* :class:`RotationStack` / :class:`CyclicPooling` -- Deep-HiTS cyclic pooling (seed 003):
  the 4 rot90 copies of a stamp share the convolutions and their features are averaged.
* :class:`FusedBatchNormalization` -- Keras BatchNormalization, trained with TF's fused kernel.

Every layer is registered for serialisation and returns all constructor arguments from
``get_config`` so ``model.save("x.keras")`` / ``keras.models.load_model`` round-trip.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from astrovader.errors import DataError

__all__ = ["Sampling", "GaussianMixturePrior", "ClusterProbabilities", "DecoderVariance",
           "RotationStack", "CyclicPooling", "FusedBatchNormalization", "Resize", "CenterCrop", "rot90",
           "dihedral_copies"]

_LOG_2PI = float(np.log(2.0 * np.pi))


@keras.saving.register_keras_serializable(package="astrovader")
class Sampling(layers.Layer):
    """Reparameterised draw z = mu + eps * sigma, eps ~ N(0, I) (seed 000 sec. III-A).

    Args:
        seed: integer seed of the layer's ``keras.random.SeedGenerator``.

    Call args:
        inputs: ``[z_mean, z_log_var]``, each ``(batch, J)``.
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="astrovader")
class GaussianMixturePrior(layers.Layer):
    """Learnable diagonal Gaussian-mixture prior over the latent space.

    Owns unconstrained parameters: mixture logits (pi = softmax(logits), so pi is a
    proper distribution), component means mu_k and log-variances log sigma_k^2 (so the
    variances are positive by construction, the constraint seed 004 sec. 3.4 asks for).

    Mathematical details::

        log p(z | c=k) = -1/2 sum_j [ log 2 pi + log s2_kj + (z_j - mu_kj)^2 / s2_kj ]
        log p(z, c=k)  = log pi_k + log p(z | c=k)
        log p(z)       = logsumexp_k log p(z, c=k)

    Calling the layer on z of shape ``(batch, J)`` returns log p(z, c) of shape
    ``(batch, K)``.

    Args:
        n_clusters: K.
        latent_dim: J.
        init_scale: standard deviation of the random initial means.
        seed: seed of the initialisers.
    """

    def __init__(self, n_clusters: int, latent_dim: int, init_scale: float = 1.0,
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.n_clusters = int(n_clusters)
        self.latent_dim = int(latent_dim)
        self.init_scale = float(init_scale)
        self.seed = seed
        k, j = self.n_clusters, self.latent_dim
        self.logits = self.add_weight(shape=(k,), initializer="zeros", name="logits")
        self.means = self.add_weight(
            shape=(k, j),
            initializer=keras.initializers.RandomNormal(stddev=self.init_scale, seed=seed),
            name="means",
        )
        self.log_vars = self.add_weight(shape=(k, j), initializer="zeros", name="log_vars")
        # 1.0 once the mixture has been initialised from data (a GMM fit); saved with the
        # model, so a resumed run does not refit it.
        self.initialized = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="initialized"
        )

    def build(self, input_shape=None):
        self.built = True

    def log_pi(self):
        """log pi_k, shape ``(K,)``."""
        return ops.log_softmax(self.logits)

    def pi(self):
        """Mixture weights pi_k, shape ``(K,)``."""
        return ops.softmax(self.logits)

    def log_prob_components(self, z):
        """log p(z | c=k) for every component, shape ``(batch, K)``."""
        z = ops.expand_dims(z, 1)  # (B, 1, J)
        diff2 = ops.square(z - self.means[None])  # (B, K, J)
        inv_var = ops.exp(-self.log_vars)[None]
        return -0.5 * ops.sum(_LOG_2PI + self.log_vars[None] + diff2 * inv_var, axis=-1)

    def call(self, z):
        return self.log_pi()[None] + self.log_prob_components(z)

    def log_prob(self, z):
        """Marginal log p(z) by logsumexp over components, shape ``(batch,)``."""
        return ops.logsumexp(self(z), axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n_clusters)

    def set_parameters(self, weights, means, variances) -> None:
        """Set pi, mu_k and sigma_k^2 (given as variances) directly."""
        weights = np.asarray(weights, dtype="float64")
        variances = np.asarray(variances, dtype="float64")
        if weights.shape != (self.n_clusters,) or np.any(weights <= 0):
            raise ValueError(f"mixture weights must be {self.n_clusters} positive numbers")
        if np.shape(means) != (self.n_clusters, self.latent_dim) or variances.shape != (
            self.n_clusters, self.latent_dim
        ) or np.any(variances <= 0):
            raise ValueError(
                f"means and variances must have shape ({self.n_clusters}, {self.latent_dim})"
                " with positive variances"
            )
        logw = np.log(weights / weights.sum())
        self.logits.assign((logw - logw.mean()).astype("float32"))
        self.means.assign(np.asarray(means, dtype="float32"))
        self.log_vars.assign(np.log(variances).astype("float32"))
        self.initialized.assign(1.0)

    def set_from_sklearn(self, gmm, uniform_pi: bool = False) -> None:
        """Initialise from a fitted ``sklearn.mixture.GaussianMixture`` (diagonal).

        Args:
            gmm: fitted mixture with ``covariance_type="diag"`` and K components.
            uniform_pi: set pi = 1/K instead of the fitted weights (seed 000 sec. VI).
        """
        if getattr(gmm, "covariance_type", None) != "diag":
            raise ValueError("set_from_sklearn needs a GaussianMixture(covariance_type='diag')")
        weights = np.full(self.n_clusters, 1.0 / self.n_clusters) if uniform_pi else gmm.weights_
        self.set_parameters(weights, gmm.means_, gmm.covariances_)

    def get_config(self):
        return {
            **super().get_config(),
            "n_clusters": self.n_clusters,
            "latent_dim": self.latent_dim,
            "init_scale": self.init_scale,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="astrovader")
class ClusterProbabilities(layers.Layer):
    """gamma = p(c | z) from log p(z, c), computed in log space (seed 000 eq. 6).

    Mathematical details::

        log gamma_k = log p(z, c=k) - logsumexp_k' log p(z, c=k')

    which never divides by an underflowed sum, so gamma is finite and rows sum to one
    even for |z| = 1e3 or component variances of 1e-8.

    With ``minmax_scaling=True`` gamma is additionally min-max scaled per row into
    ``[floor, 1]`` and renormalised (the s3VDC NaN mitigation, seed 004 eq. 17), which
    keeps every component's responsibility above ``floor / K``-ish.

    Call args:
        log_joint: ``(batch, K)`` log p(z, c) from :class:`GaussianMixturePrior`.

    Returns:
        ``(batch, K)`` gamma, or log gamma with ``return_log=True``.
    """

    def __init__(self, minmax_scaling: bool = False, floor: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        self.minmax_scaling = bool(minmax_scaling)
        self.floor = float(floor)

    def call(self, log_joint, return_log: bool = False):
        log_gamma = log_joint - ops.logsumexp(log_joint, axis=-1, keepdims=True)
        if self.minmax_scaling:
            gamma = ops.exp(log_gamma)
            lo = ops.min(gamma, axis=-1, keepdims=True)
            hi = ops.max(gamma, axis=-1, keepdims=True)
            scaled = self.floor + (1.0 - self.floor) * (gamma - lo) / ops.maximum(hi - lo, 1e-12)
            log_gamma = ops.log(scaled) - ops.log(ops.sum(scaled, axis=-1, keepdims=True))
        return log_gamma if return_log else ops.exp(log_gamma)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "minmax_scaling": self.minmax_scaling, "floor": self.floor}


@keras.saving.register_keras_serializable(package="astrovader")
class DecoderVariance(layers.Layer):
    """Auto-regularisation head: the decoder variance sigma^2(z) (seed 000 sec. V).

    Dense(36, relu) -> Dense(1, sigmoid) = s, and ``log sigma^2 = -max_log_scale * s``,
    so sigma^2 lies in ``[exp(-max_log_scale), 1]`` (seed 000: ``[e^-5, 1]``).

    Call args:
        z: ``(batch, J)`` latent sample.

    Returns:
        ``(batch, 1)`` log sigma^2(z).
    """

    def __init__(self, units: int = 36, max_log_scale: float = 5.0, seed: int | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.max_log_scale = float(max_log_scale)
        self.seed = seed
        init = keras.initializers.GlorotUniform(seed=seed)
        self.hidden = layers.Dense(self.units, activation="relu", kernel_initializer=init,
                                   name="hidden")
        self.out = layers.Dense(1, activation="sigmoid", kernel_initializer=init, name="s")

    def build(self, input_shape):
        self.hidden.build(input_shape)
        self.out.build((input_shape[0], self.units))
        self.built = True

    def call(self, z):
        return -self.max_log_scale * self.out(self.hidden(z))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "max_log_scale": self.max_log_scale,
            "seed": self.seed,
        }


def rot90(x, k: int):
    """Rotate ``(batch, H, W, C)`` images by ``k`` x 90 degrees (counter-clockwise, like np.rot90)."""
    k = int(k) % 4
    if k == 0:
        return x
    if k == 2:
        return ops.flip(ops.flip(x, axis=1), axis=2)
    x = ops.transpose(x, (0, 2, 1, 3))
    return ops.flip(x, axis=1) if k == 1 else ops.flip(x, axis=2)


def dihedral_copies(x, mirror: bool = False) -> list:
    """The 4 rot90 copies of a batch of stamps (Deep-HiTS, seed 003); with ``mirror`` also the 4
    of its left-right mirror image: the 8 symmetries of the square (the dihedral group D4)."""
    copies = [rot90(x, k) for k in range(4)]
    if mirror:
        mirrored = ops.flip(x, axis=2)
        copies += [rot90(mirrored, k) for k in range(4)]
    return copies


class _Symmetries(layers.Layer):
    """Base of the two halves of cyclic pooling: how many copies of each stamp there are."""

    def __init__(self, mirror: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.mirror = bool(mirror)

    @property
    def copies(self) -> int:
        return 8 if self.mirror else 4

    def get_config(self):
        return {**super().get_config(), "mirror": self.mirror}


@keras.saving.register_keras_serializable(package="astrovader")
class RotationStack(_Symmetries):
    """Stack the 4 rot90 copies of a batch along the batch axis: (B, H, W, C) -> (4B, H, W, C).

    The first half of Deep-HiTS' cyclic pooling (seed 003, Cabrera-Vives et al. 2017):
    every copy goes through the same convolutions; :class:`CyclicPooling` then averages
    the 4 feature vectors of each stamp, so the result is exactly invariant to rotating
    the input by multiples of 90 degrees. Stamps must be square.

    Args:
        mirror: also stack the 4 rotations of the mirrored stamp (8 copies, (8B, H, W, C)):
            pooled by ``CyclicPooling(mirror=True)`` the result is invariant to every
            rotation and reflection of the square (handedness is not morphology either).
    """

    def call(self, x):
        if x.shape[1] is not None and x.shape[1] != x.shape[2]:
            raise DataError(f"rotation invariance needs square stamps, got {x.shape[1]}x{x.shape[2]}: "
                            "crop them (data.crop) or set model.rotation_invariant: false")
        return ops.concatenate(dihedral_copies(x, self.mirror), axis=0)

    def compute_output_shape(self, input_shape):
        b = input_shape[0]
        return (None if b is None else self.copies * b, *input_shape[1:])


@keras.saving.register_keras_serializable(package="astrovader")
class CyclicPooling(_Symmetries):
    """Average the features of the 4 (``mirror``: 8) copies stacked by :class:`RotationStack`:
    (4B, F...) -> (B, F...) (seed 003, cyclic average pooling)."""

    def call(self, h):
        parts = ops.split(h, self.copies, axis=0)  # works with unknown (retraced) feature shapes
        return sum(parts[1:], parts[0]) / float(self.copies)

    def compute_output_shape(self, input_shape):
        b = input_shape[0]
        return (None if b is None else b // self.copies, *input_shape[1:])


@keras.saving.register_keras_serializable(package="astrovader")
class FusedBatchNormalization(layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` whose training pass over float32 NHWC feature maps
    is TensorFlow's fused kernel (``FusedBatchNormV3``: statistics, normalisation and the
    backward pass each in one sweep instead of a chain of element-wise ops).

    Same outputs, gradients and moving-statistics update as the Keras layer (whose biased
    batch variance it keeps: the kernel returns the unbiased one, rescaled here by
    ``(n - 1) / n``). Inference, other ranks or dtypes, masks and renorm use the Keras code.
    Batch normalisation was half the training time of the ``demo`` network (issue 14).
    """

    def call(self, inputs, training=None, mask=None):
        axis = self.axis if isinstance(self.axis, int) else (self.axis[0] if len(self.axis) == 1 else None)
        fusable = (training and self.trainable and mask is None and not self.renorm and self.scale and self.center
                   and len(inputs.shape) == 4 and axis in (-1, 3) and inputs.dtype == "float32"
                   and keras.backend.backend() == "tensorflow")
        if not fusable:
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf  # only on the TensorFlow backend: the layer runs on any

        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, self.gamma, self.beta, epsilon=self.epsilon, data_format="NHWC", is_training=True)
        shape = tf.shape(inputs)
        n = tf.cast(shape[0] * shape[1] * shape[2], variance.dtype)
        variance = variance * tf.maximum(n - 1.0, 0.0) / tf.maximum(n, 1.0)
        self.moving_mean.assign(self.moving_mean * self.momentum + tf.stop_gradient(mean) * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum
                                    + tf.stop_gradient(variance) * (1.0 - self.momentum))
        return y


@keras.saving.register_keras_serializable(package="astrovader")
class Resize(layers.Layer):
    """Resize ``(batch, H, W, C)`` feature maps to ``(height, width)`` with ``keras.ops.image.resize``.

    What ``keras.layers.Resizing`` computes, on every Keras backend: Keras' preprocessing
    layers need TensorFlow installed, and the networks also run on JAX and PyTorch
    (``benchmarks/speed_keras.py`` on GPUs TensorFlow cannot reach).
    """

    def __init__(self, height: int, width: int, interpolation: str = "bilinear", **kwargs):
        super().__init__(**kwargs)
        self.height, self.width, self.interpolation = int(height), int(width), str(interpolation)

    def call(self, inputs):
        return ops.cast(ops.image.resize(inputs, (self.height, self.width), interpolation=self.interpolation),
                        inputs.dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                "interpolation": self.interpolation}


@keras.saving.register_keras_serializable(package="astrovader")
class CenterCrop(layers.Layer):
    """The central ``(height, width)`` window of ``(batch, H, W, C)`` feature maps at least that large
    (``keras.layers.CenterCrop`` on every backend; see :class:`Resize`)."""

    def __init__(self, height: int, width: int, **kwargs):
        super().__init__(**kwargs)
        self.height, self.width = int(height), int(width)

    def call(self, inputs):
        top, left = (int(inputs.shape[1]) - self.height) // 2, (int(inputs.shape[2]) - self.width) // 2
        return inputs[:, top:top + self.height, left:left + self.width, :]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}
