"""``VAE`` and ``VaDE`` Keras models with custom ``train_step``/``test_step``.

The loss is assembled from :mod:`astrovader.losses` by the backend-agnostic mixins of
:mod:`astrovader.objective`::

    loss = reconstruction + w_unit * KL(q(z|x) || N(0, I)) + w_gmm * KL_VaDE

where ``w_unit`` (``unit_kl_weight``) and ``w_gmm`` (``gmm_kl_weight``) are
non-trainable variables that the schedule callbacks (:mod:`astrovader.schedules`) assign
per epoch, so the traced train step never has to be rebuilt. A plain VAE uses only
``w_unit`` (beta); VaDE's recipes switch between the two (s3VDC gamma-training uses a
small ``w_unit``, the annealing/static periods use ``w_gmm``).

Per-example losses are averaged over the *global* batch with
``tf.nn.compute_average_loss``, so training under ``tf.distribute`` strategies gives the
same updates as on one device.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from astrovader.config import ModelConfig
from astrovader.errors import ConfigError, DataError
from astrovader.layers import ClusterProbabilities, GaussianMixturePrior, Sampling
from astrovader.networks import build_networks, build_variance_head
from astrovader.objective import VAETerms, VaDETerms

__all__ = ["VAE", "VaDE", "build_model"]

_METRICS = ("loss", "reconstruction", "kl_unit", "kl_gmm", "elbo", "decoder_variance")


def _images(data):
    """Keep only the images of a batch; labels, if a dataset carries them, are ignored."""
    if isinstance(data, (tuple, list)):
        return data[0]
    if isinstance(data, dict):
        return data["x"]
    return data


@keras.saving.register_keras_serializable(package="astrovader")
class VAE(VAETerms, keras.Model):
    """Variational autoencoder with a unit-Gaussian prior (seed 000 eq. 3, seed 001).

    Args:
        encoder: model x -> ``[z_mean, z_log_var]``.
        decoder: model z -> x_hat (logits for ``reconstruction="bce"``).
        variance_head: optional :class:`~astrovader.layers.DecoderVariance`; with it the
            reconstruction term is the Gaussian NLL of seed 000 eq. 8.
        reconstruction: ``"mse"``, ``"bce"`` or ``"gaussian"``.
        beta: initial value of ``unit_kl_weight``.
        seed: seed of the sampling layer.
        model_config: the :class:`~astrovader.config.ModelConfig` as a dict (kept for
            provenance and for the CLI).
        rotation_invariant: the encoder is rot90-invariant (cyclic pooling), so the
            reconstruction term marginalises the orientation
            (:func:`~astrovader.losses.orientation_marginal_reconstruction`).
        mirror_invariant: the encoder also pools the mirrored copies, so the
            reconstruction term marginalises the 8 rotations and reflections.
        profile_weight: weight of the radial-profile term added to the loss
            (:func:`~astrovader.losses.radial_profile_residual`); 0 = off.
    """

    def __init__(self, encoder, decoder, variance_head=None, reconstruction: str = "mse",
                 beta: float = 1.0, seed: int | None = None, model_config: dict | None = None,
                 rotation_invariant: bool = False, mirror_invariant: bool = False,
                 profile_weight: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if variance_head is not None and reconstruction != "gaussian":
            reconstruction = "gaussian"
        if reconstruction == "gaussian" and variance_head is None:
            raise ConfigError("model.reconstruction=gaussian needs the learned decoder variance: "
                              "set model.decoder_variance: true, or choose mse or bce")
        self.encoder = encoder
        self.decoder = decoder
        self.variance_head = variance_head
        self.reconstruction = reconstruction
        self.beta = float(beta)
        self.seed = seed
        self.model_config = dict(model_config or {})
        self.rotation_invariant = bool(rotation_invariant)
        self.mirror_invariant = bool(mirror_invariant) and self.rotation_invariant
        self.profile_weight = float(profile_weight)
        self.sample_without_kl = False  # set by the classic recipe for `train.pretrain: noisy_ae`
        self.sampling = Sampling(seed=seed, name="sampling", dtype="float32")  # float32 under mixed precision
        self.unit_kl_weight = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.beta), trainable=False,
            name="unit_kl_weight")
        self.gmm_kl_weight = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="gmm_kl_weight")
        self._trackers = {name: keras.metrics.Mean(name=name) for name in _METRICS}

    # ------------------------------------------------------------------ keras plumbing
    @property
    def input_shape_(self) -> tuple:
        return tuple(self.encoder.input_shape[1:])

    @property
    def latent_dim(self) -> int:
        return int(self.encoder.output[0].shape[-1])

    def build(self, input_shape=None):
        if self.variance_head is not None and not self.variance_head.built:
            self.variance_head.build((None, self.latent_dim))
        self._build_extra()
        self.built = True

    def _build_extra(self):
        pass

    def call(self, inputs, training=False):
        z_mean, z_log_var = self.encoder(inputs, training=training)
        z = self.sampling([z_mean, z_log_var]) if training else z_mean
        return self._output(self.decoder(z, training=training))

    def _output(self, x_hat):
        return ops.sigmoid(x_hat) if self.reconstruction == "bce" else x_hat

    @property
    def metrics(self):
        return list(self._trackers.values())

    def _logs(self):
        logs = {m.name: m.result() for m in self.metrics}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras 3 + MWMS fails to reduce scalar logs (tensorflow/tensorflow#72388).
            logs = {k: tf.reshape(v, [1]) for k, v in logs.items()}
        return logs

    def _update_trackers(self, terms):
        for name, tracker in self._trackers.items():
            tracker.update_state(terms[name])

    def train_step(self, data):
        x = _images(data)
        # per-stamp anchor responsibilities, only from a dict batch built for it (never labels)
        anchor = data.get("anchor") if isinstance(data, dict) else None
        with tf.GradientTape() as tape:
            terms = self.compute_terms(x, training=True, anchor=anchor)
            loss = tf.nn.compute_average_loss(terms["loss"])
            if self.losses:
                loss = loss + tf.nn.scale_regularization_loss(tf.add_n(self.losses))
            scaled = self.optimizer.scale_loss(loss)  # loss scaling under mixed_float16, else unchanged
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        self._update_trackers(terms)
        return self._logs()

    def test_step(self, data):
        terms = self.compute_terms(_images(data), training=False)
        self._update_trackers(terms)
        return self._logs()

    # ------------------------------------------------------------------ public API
    def _batched(self, fn, arrays, batch_size):
        arrays = [np.asarray(a, dtype="float32") for a in arrays]
        n = len(arrays[0])
        outs = []
        for i in range(0, n, batch_size):
            out = fn(*[tf.convert_to_tensor(a[i:i + batch_size]) for a in arrays])
            outs.append(tf.nest.map_structure(lambda t: np.asarray(t), out))
        if not outs:
            raise DataError("no input stamps were given: pass at least one stamp")
        return tf.nest.map_structure(lambda *parts: np.concatenate(parts), *outs)

    @tf.function(reduce_retracing=True)
    def _encode_fn(self, x):
        return self._moments(x)

    def _moments(self, x):
        """``(z_mean, z_log_var)`` of q(z | x) at inference, float32 whatever the networks' precision."""
        return tuple(ops.cast(t, "float32") for t in self.encoder(x, training=False))

    @tf.function(reduce_retracing=True)
    def _decode_fn(self, z):
        return self._output(ops.cast(self.decoder(z, training=False), "float32"))

    def encode(self, x, batch_size: int = 256):
        """Moments of q(z | x): ``(z_mean, z_log_var)``, numpy ``(N, J)`` each."""
        mean, log_var = self._batched(self._encode_fn, [x], batch_size)
        return mean, log_var

    def decode(self, z, batch_size: int = 256):
        """Decoder means x_hat for latent vectors ``z`` ``(N, J)`` -> ``(N, H, W, C)``."""
        return self._batched(self._decode_fn, [z], batch_size)

    def reconstruct(self, x, batch_size: int = 256):
        """Reconstructions decoded from the posterior means."""
        return self.decode(self.encode(x, batch_size)[0], batch_size)

    @tf.function(reduce_retracing=True)
    def _variance_fn(self, x):
        z_mean, _ = self._moments(x)
        if self.variance_head is None:
            return tf.ones(tf.shape(z_mean)[:1])
        return tf.exp(tf.reshape(ops.cast(self.variance_head(z_mean), "float32"), [-1]))

    def decoder_variance(self, x, batch_size: int = 256):
        """sigma^2(z) at the posterior mean, ``(N,)`` (ones without the AR head)."""
        return self._batched(self._variance_fn, [x], batch_size)

    def _mc_noise(self, mc_samples: int | None = None, seed: int | None = None):
        """The ``(L, J)`` noise draws gamma is averaged over (none for a VAE)."""
        return tf.zeros((0, self.latent_dim))

    def _objects(self, z_mean, z_log_var, eps):
        x_hat = self._output(ops.cast(self.decoder(z_mean, training=False), "float32"))
        if self.variance_head is None:
            var = tf.ones(tf.shape(z_mean)[:1])
        else:
            var = tf.exp(tf.reshape(ops.cast(self.variance_head(z_mean), "float32"), [-1]))
        return {"mu": z_mean, "x_hat": x_hat, "decoder_variance": var}

    @tf.function(reduce_retracing=True)
    def _objects_fn(self, x, eps):
        z_mean, z_log_var = self._moments(x)
        return self._objects(z_mean, z_log_var, eps)

    def predict_objects(self, x, mc_samples: int | None = None, batch_size: int = 256,
                        seed: int | None = None) -> dict:
        """Everything ``astrovader predict`` writes per object, from one encoder pass per batch.

        Returns:
            numpy ``{"mu": (N, J), "x_hat": (N, H, W, C), "decoder_variance": (N,)}`` plus,
            for a VaDE, ``"gamma": (N, K)`` (as :meth:`VaDE.cluster_probabilities`).
        """
        eps = self._mc_noise(mc_samples, seed)
        return self._batched(lambda xb: self._objects_fn(xb, eps), [x], batch_size)

    def inference_copy(self):
        """A copy for prediction with every BatchNorm folded into the layer before it
        (:func:`astrovader.networks.fold_batch_norm`): the same outputs in inference mode,
        fewer passes over the activations. ``self`` when there is nothing to fold. The copy
        shares no variables with ``self``; never train it.
        """
        from astrovader.networks import fold_batch_norm

        nets = {k: getattr(self, k) for k in ("encoder", "decoder", "variance_head")}
        folded = {k: fold_batch_norm(v) if v is not None else None for k, v in nets.items()}
        if all(folded[k] is nets[k] for k in nets):
            return self
        copy = type(self)(**{**self.get_config(), **folded})
        copy.build()

        def state(model, networks):  # the prior, loss weights and RNG state, in creation order
            skip = {id(v) for net in networks if net is not None for v in net.variables}
            return [v for v in model.variables if id(v) not in skip]

        for src, dst in zip(state(self, nets.values()), state(copy, folded.values()), strict=True):
            dst.assign(src)
        return copy

    def sample(self, n: int, cluster: int | None = None, temperature: float = 1.0,
               seed: int | None = None):
        """Generate ``n`` images by decoding prior samples (N(0, I) for a VAE)."""
        if cluster is not None:
            raise ConfigError("a VAE has no clusters: drop cluster= (or train a VaDE for per-cluster samples)")
        rng = np.random.default_rng(seed)
        z = temperature * rng.standard_normal((int(n), self.latent_dim)).astype("float32")
        return self.decode(z)

    def get_config(self):
        ser = keras.saving.serialize_keras_object
        return {
            **super().get_config(),
            "encoder": ser(self.encoder),
            "decoder": ser(self.decoder),
            "variance_head": ser(self.variance_head) if self.variance_head is not None else None,
            "reconstruction": self.reconstruction,
            "beta": self.beta,
            "seed": self.seed,
            "model_config": self.model_config,
            "rotation_invariant": self.rotation_invariant,
            "mirror_invariant": self.mirror_invariant,
            "profile_weight": self.profile_weight,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        de = keras.saving.deserialize_keras_object
        for key in ("encoder", "decoder", "variance_head"):
            if config.get(key) is not None:
                config[key] = de(config[key])
        return cls(**config)


@keras.saving.register_keras_serializable(package="astrovader")
class VaDE(VaDETerms, VAE):
    """Variational Deep Embedding: a VAE with a learnable Gaussian-mixture prior.

    Adds a :class:`~astrovader.layers.GaussianMixturePrior` (``self.prior``) and computes
    gamma = p(c | z) in log space (seed 000 eq. 6); the mixture term of the loss is the
    VaDE KL of seed 000 eq. 5 / seed 004 eq. 11.

    Args:
        n_clusters: K.
        gamma_scaling: use the s3VDC min-max scaled gamma in the loss (seed 004 eq. 17).
        mc_samples: L, Monte-Carlo samples averaged by :meth:`cluster_probabilities`
            (seed 000 uses L = 10); 0 means gamma at the posterior mean.
        **kwargs: as for :class:`VAE`.
    """

    def __init__(self, encoder, decoder, n_clusters: int = 10, gamma_scaling: bool = False,
                 mc_samples: int = 0, components_per_cluster: int = 1, **kwargs):
        super().__init__(encoder, decoder, **kwargs)
        self.n_clusters = int(n_clusters)
        self.components_per_cluster = int(components_per_cluster)
        self.gamma_scaling = bool(gamma_scaling)
        self.mc_samples = int(mc_samples)
        # the mixture maths stays float32 under mixed precision (log-densities, logsumexp)
        self.prior = GaussianMixturePrior(self.n_components, self.latent_dim, seed=self.seed,
                                          name="prior", dtype="float32")
        self.gamma_layer = ClusterProbabilities(minmax_scaling=gamma_scaling, name="gamma", dtype="float32")
        self.anchor_weight = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                             name="anchor_weight")

    def _build_extra(self):
        self.prior.build((None, self.latent_dim))

    # ------------------------------------------------ clusters made of several components
    @property
    def n_components(self) -> int:
        """Mixture components: K clusters x ``components_per_cluster`` (over-clustering)."""
        return self.n_clusters * self.components_per_cluster

    def cluster_weights(self) -> np.ndarray:
        """Cluster weights: pi summed over each cluster's components, ``(K,)``."""
        pi = np.asarray(self.prior.pi(), dtype="float64")
        return pi.reshape(self.n_clusters, self.components_per_cluster).sum(1)

    def main_components(self) -> np.ndarray:
        """Index of each cluster's heaviest component, ``(K,)`` (the component itself when m = 1)."""
        pi = np.asarray(self.prior.pi(), dtype="float64").reshape(self.n_clusters, self.components_per_cluster)
        return np.arange(self.n_clusters) * self.components_per_cluster + pi.argmax(1)

    def cluster_means(self) -> np.ndarray:
        """Mean of each cluster's heaviest component, ``(K, J)``."""
        return np.asarray(self.prior.means)[self.main_components()]

    def cluster_log_vars(self) -> np.ndarray:
        """log sigma^2 of each cluster's heaviest component, ``(K, J)``."""
        return np.asarray(self.prior.log_vars)[self.main_components()]

    @tf.function(reduce_retracing=True)
    def _gamma_fn(self, x, eps):
        """gamma averaged over the noise draws ``eps`` of shape (L, J) (L = 0: at the mean)."""
        return self._gamma_of(*self._moments(x), eps)

    def _objects(self, z_mean, z_log_var, eps):
        return {**super()._objects(z_mean, z_log_var, eps), "gamma": self._gamma_of(z_mean, z_log_var, eps)}

    def _mc_noise(self, mc_samples: int | None = None, seed: int | None = None):
        L = self.mc_samples if mc_samples is None else int(mc_samples)
        rng = np.random.default_rng(self.seed if seed is None else seed)
        return tf.constant(rng.standard_normal((L, self.latent_dim)).astype("float32"))

    def _gamma_of(self, z_mean, z_log_var, eps):
        sigma = tf.exp(0.5 * z_log_var)

        def gamma_at(e):
            return ops.exp(self._cluster_log_gamma(ops.log_softmax(self.prior(z_mean + sigma * e[None]), axis=-1)))

        def at_mean():
            return gamma_at(ops.zeros((self.latent_dim,)))

        def averaged():
            return tf.reduce_mean(tf.map_fn(gamma_at, eps), axis=0)

        if eps.shape[0] is not None:
            return at_mean() if eps.shape[0] == 0 else averaged()
        # a trace relaxed to any L (reduce_retracing, after calls with several L) decides at run time
        return tf.cond(tf.shape(eps)[0] > 0, averaged, at_mean)

    def cluster_probabilities(self, x, mc_samples: int | None = None, batch_size: int = 256,
                              seed: int | None = None):
        """gamma = p(c | x) ``(N, K)``, averaged over L Monte-Carlo z samples.

        The same noise draws (from ``seed``, default the model's) are used for every
        object, so results are reproducible call to call.
        """
        eps = self._mc_noise(mc_samples, seed)
        return self._batched(lambda xb: self._gamma_fn(xb, eps), [x], batch_size)

    def predict_clusters(self, x, mc_samples: int | None = None, batch_size: int = 256):
        """Most probable component per object, ``(N,)`` int."""
        return np.argmax(self.cluster_probabilities(x, mc_samples, batch_size), axis=-1)

    def sample(self, n: int, cluster: int | None = None, temperature: float = 1.0,
               seed: int | None = None):
        """Generate ``n`` images from the mixture, or from cluster ``cluster``.

        z = mu_c + temperature * sigma_c * eps, with the component c ~ Cat(pi) (restricted to
        the cluster's components, by their weights, when ``cluster`` is given).
        """
        rng = np.random.default_rng(seed)
        pi = np.asarray(self.prior.pi(), dtype="float64")
        if cluster is not None and not 0 <= int(cluster) < self.n_clusters:
            raise ConfigError(f"cluster={cluster} is out of range: the model has "
                              f"{self.n_clusters} clusters (0..{self.n_clusters - 1})")
        if cluster is not None:
            m = self.components_per_cluster
            pi = np.where(np.arange(self.n_components) // m == int(cluster), pi, 0.0)
        comps = rng.choice(self.n_components, size=int(n), p=pi / pi.sum())
        means = np.asarray(self.prior.means)[comps]
        sigmas = np.exp(0.5 * np.asarray(self.prior.log_vars))[comps]
        z = means + temperature * sigmas * rng.standard_normal(means.shape)
        return self.decode(z.astype("float32"))

    def prototypes(self):
        """Decoded cluster means mu_k (each cluster's heaviest component), ``(K, H, W, C)`` (seed 000 Fig. 6)."""
        return self.decode(self.cluster_means())

    def get_config(self):
        return {**super().get_config(), "n_clusters": self.n_clusters,
                "gamma_scaling": self.gamma_scaling, "mc_samples": self.mc_samples,
                "components_per_cluster": self.components_per_cluster}


def build_model(cfg: ModelConfig, kind: str = "vade") -> VAE:
    """Build a :class:`VaDE` (``kind="vade"``), :class:`VAE` or, for ``kind="ae"`` and for VAEs
    with a double-peak prior or ``feature_dim``, a model of :mod:`astrovader.autoencoders`."""
    cfg.validate()
    if kind == "ae" or (kind == "vae" and (getattr(cfg, "prior", "normal") != "normal"
                                          or int(getattr(cfg, "feature_dim", 0)) > 0)):
        from astrovader.autoencoders import build_autoencoder  # AE, double-peak and hierarchical VAEs

        return build_autoencoder(cfg, kind)
    encoder, decoder = build_networks(cfg)
    common = dict(
        variance_head=build_variance_head(cfg),
        reconstruction="gaussian" if cfg.decoder_variance else cfg.reconstruction,
        seed=cfg.seed,
        model_config=_config_dict(cfg),
        rotation_invariant=cfg.rotation_invariant,
        mirror_invariant=cfg.mirror_invariant,
        profile_weight=cfg.profile_weight,
    )
    if kind == "vae":
        model = VAE(encoder, decoder, name="vae", **common)
    elif kind == "vade":
        model = VaDE(encoder, decoder, n_clusters=cfg.n_clusters, gamma_scaling=cfg.gamma_scaling,
                     mc_samples=cfg.mc_samples, components_per_cluster=cfg.components_per_cluster,
                     name="vade", **common)
    else:
        raise ConfigError(f"model.kind={kind!r}: choose 'vade', 'vae' or 'ae'")
    model.build((None, *cfg.input_shape))
    return model


def _config_dict(cfg: ModelConfig) -> dict:
    d = dataclasses.asdict(cfg)
    d["input_shape"] = list(cfg.input_shape)
    return d



# The other model kinds (AE, double-peak and hierarchical VAEs) register their classes on
# import; importing them here lets ``keras.models.load_model`` find them wherever models are.
from astrovader import autoencoders as _autoencoders  # noqa: E402,F401
from astrovader import optimizers as _optimizers  # noqa: E402,F401  (FusedAdam in compiled saves)
