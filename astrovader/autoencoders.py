"""Autoencoder model kinds of the other seed systems: plain AE, double-peak VAE, AE + VAE.

* :class:`AE` -- a deterministic autoencoder (seed 001 SCAE: MSE, L1 on the latent
  weights via ``model.latent_l1``). Its encoder returns ``[z, zeros]`` so every consumer of
  the VAE interface (``encode`` -> ``(z_mean, z_log_var)``, export signatures, predict,
  explore) works unchanged: an AE is a VAE whose posterior is a point.
* :class:`DoublePeakVAE` -- a VAE whose prior is the double-peak Gaussian of seed 002
  (eq. 8), regularised with one of :mod:`astrovader.priors`' losses in place of the
  unit-Gaussian KL (the schedule's ``unit_kl_weight`` still weights it, so KL annealing
  works as for a plain VAE).
* :class:`HierarchicalVAE` -- seed 002 sec. 3.1.3 (Fig. 4b): an AE whose
  ``feature_dim`` batch-normalised codes are the low-level features, and a small MLP VAE
  with the double-peak prior whose reconstruction target is those codes. Both are
  trained together; the codes are a stop-gradient target for the VAE. ``encode`` returns
  the VAE's posterior of the codes, ``decode`` maps z -> codes -> image.

:func:`build_autoencoder` builds them from a :class:`~astrovader.config.ModelConfig`;
:func:`astrovader.models.build_model` calls it for ``kind="ae"`` and for VAEs with
``prior: double_peak`` or ``feature_dim > 0``.
"""

from __future__ import annotations

import dataclasses

import keras
from keras import layers, ops

from astrovader import priors
from astrovader.config import ModelConfig
from astrovader.errors import ConfigError
from astrovader.models import VAE, _config_dict
from astrovader.networks import build_networks

__all__ = ["AE", "DoublePeakVAE", "HierarchicalVAE", "ZeroLogVar", "build_autoencoder"]


@keras.saving.register_keras_serializable(package="astrovader")
class ZeroLogVar(layers.Layer):
    """Zeros shaped like its input: the log-variance of a point posterior (plain AE)."""

    def call(self, z):
        return ops.zeros_like(z)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="astrovader")
class AE(VAE):
    """Deterministic autoencoder with the :class:`~astrovader.models.VAE` interface.

    The loss is the reconstruction term alone (plus the layers' regularisers, e.g. the L1
    on the latent weights of seed 001's SCAE); the KL metrics stay at 0. ``sample``
    decodes N(0, I) draws -- an AE has no prior, so these are only a look at the decoder.
    """

    def compute_terms(self, x, training=False, anchor=None):  # anchor: VaDE only, unused
        z_mean, _ = self.encoder(x, training=training)
        x_hat = self.decoder(z_mean, training=training)
        recon = self.reconstruction_term(x, x_hat)
        zeros = ops.zeros_like(recon)
        return {"loss": recon + self.profile_term(x, x_hat), "reconstruction": recon, "kl_unit": zeros,
                "kl_gmm": zeros, "elbo": -recon, "decoder_variance": ops.ones_like(recon)}


@keras.saving.register_keras_serializable(package="astrovader")
class DoublePeakVAE(VAE):
    """VAE with the double-peak prior 1/2 N(-m, s^2) + 1/2 N(m, s^2) per dimension (seed 002).

    Args:
        prior_loss: ``"bound"``, ``"approx"``, ``"aw"`` or ``"pw"`` (:mod:`astrovader.priors`).
        prior_m, prior_s: the peaks' centre and width.
        **kwargs: as for :class:`~astrovader.models.VAE`.
    """

    def __init__(self, encoder, decoder, prior_loss: str = "approx", prior_m: float = 1.0,
                 prior_s: float = 0.5, **kwargs):
        super().__init__(encoder, decoder, **kwargs)
        if prior_loss not in priors.PRIOR_LOSSES:
            raise ConfigError(f"model.prior_loss={prior_loss!r}: choose one of {', '.join(priors.PRIOR_LOSSES)}")
        self.prior_loss = prior_loss
        self.prior_m = float(prior_m)
        self.prior_s = float(prior_s)

    def _kl_terms(self, z, z_mean, z_log_var, anchor=None):
        kl = priors.prior_loss(self.prior_loss, z_mean, z_log_var, self.prior_m, self.prior_s)
        return kl, ops.zeros_like(kl)

    def sample(self, n: int, cluster: int | None = None, temperature: float = 1.0, seed: int | None = None):
        """Decode ``n`` draws of the double-peak prior (``cluster`` is not defined here)."""
        if cluster is not None:
            raise ConfigError("a double-peak VAE has no clusters: drop cluster (--cluster)")
        return self.decode(priors.sample_double_peak(n, self.latent_dim, self.prior_m, self.prior_s,
                                                     temperature, seed))

    def get_config(self):
        return {**super().get_config(), "prior_loss": self.prior_loss, "prior_m": self.prior_m,
                "prior_s": self.prior_s}


@keras.saving.register_keras_serializable(package="astrovader")
class HierarchicalVAE(DoublePeakVAE):
    """AE feature extractor + double-peak VAE on its codes (seed 002 sec. 3.1.3, Fig. 4b).

    ``encoder`` and ``decoder`` are composites holding the nested models ``ae_encoder``
    (x -> codes), ``code_encoder`` (codes -> [mu, log_var]), ``code_decoder`` (z -> codes)
    and ``ae_decoder`` (codes -> x). The loss is
    ``rec(x, ae_decoder(codes)) + code_weight * MSE(codes, code_decoder(z)) + w * prior``
    with the codes held fixed (stop-gradient) as the VAE's target; ``rec`` is the model's
    reconstruction term (seed 002: MSE; ``bce`` on logits, as :meth:`decode`'s sigmoid
    expects), marginalising the orientation when ``rotation_invariant`` (the AE's encoder
    pools the rotated copies, so its codes cannot say which way the stamp was turned).
    """

    def __init__(self, encoder, decoder, code_weight: float = 1.0, **kwargs):
        super().__init__(encoder, decoder, **kwargs)
        self.code_weight = float(code_weight)
        self.ae_encoder = encoder.get_layer("ae_encoder")
        self.code_encoder = encoder.get_layer("code_encoder")
        self.code_decoder = decoder.get_layer("code_decoder")
        self.ae_decoder = decoder.get_layer("ae_decoder")

    def compute_terms(self, x, training=False, anchor=None):  # anchor: VaDE only, unused
        codes = self.ae_encoder(x, training=training)
        x_ae = self.ae_decoder(codes, training=training)
        recon_x = self.reconstruction_term(x, x_ae)
        target = ops.stop_gradient(codes)
        z_mean, z_log_var = self.code_encoder(target, training=training)
        z = self.sampling([z_mean, z_log_var])
        code_hat = self.code_decoder(z, training=training)
        recon_c = ops.sum(ops.square(target - code_hat), axis=-1)
        recon = recon_x + self.code_weight * recon_c
        kl, zeros = self._kl_terms(z, z_mean, z_log_var)
        return {"loss": recon + self.profile_term(x, x_ae) + self.unit_kl_weight * kl, "reconstruction": recon,
                "kl_unit": kl, "kl_gmm": zeros, "elbo": -(recon + kl), "decoder_variance": ops.ones_like(recon)}

    def get_config(self):
        return {**super().get_config(), "code_weight": self.code_weight}


def _point_encoder(encoder: keras.Model, name: str = "encoder") -> keras.Model:
    """x -> [z, zeros] from an encoder x -> [z_mean, z_log_var] (drops the variance head)."""
    z = encoder.outputs[0]
    return keras.Model(encoder.inputs, [z, ZeroLogVar(name="zero_log_var")(z)], name=name)


def _tanh_mean(encoder: keras.Model, m: float) -> keras.Model:
    """Bound the posterior mean to (-m, m) with m * tanh(mu / m) (seed 002 B.2 for AW)."""
    mu, log_var = encoder.outputs
    scale = max(float(m), 1e-3)
    mu = layers.Rescaling(scale, name="mu_scale")(layers.Activation("tanh", name="mu_tanh")(
        layers.Rescaling(1.0 / scale, name="mu_unscale")(mu)))
    return keras.Model(encoder.inputs, [mu, log_var], name="encoder")


def _hierarchical(cfg: ModelConfig, common: dict) -> HierarchicalVAE:
    """AE with ``feature_dim`` BN codes + an MLP VAE (``hidden_units``) on the codes."""
    f = int(cfg.feature_dim)
    ae_cfg = dataclasses.replace(cfg, latent_dim=f, feature_dim=0, prior="normal")
    enc, ae_dec = build_networks(ae_cfg)
    x_in = enc.inputs[0]
    codes = layers.BatchNormalization(momentum=0.9, name="codes_bn")(enc.outputs[0])
    ae_enc = keras.Model(x_in, codes, name="ae_encoder")
    ae_dec = keras.Model(ae_dec.inputs, ae_dec.outputs, name="ae_decoder")
    init = keras.initializers.GlorotUniform(seed=cfg.seed)
    c_in = keras.Input((f,), name="codes")
    h = c_in
    for i, units in enumerate(cfg.hidden_units):
        h = layers.Dense(int(units), activation="relu", kernel_initializer=init, name=f"cenc_dense{i}")(h)
    mu = layers.Dense(cfg.latent_dim, kernel_initializer=init, name="z_mean")(h)
    lv = layers.Dense(cfg.latent_dim, kernel_initializer="zeros", name="z_log_var")(h)
    code_enc = keras.Model(c_in, [mu, lv], name="code_encoder")
    if cfg.prior_loss == "aw":
        code_enc = _tanh_mean(code_enc, cfg.prior_m)
        code_enc = keras.Model(code_enc.inputs, code_enc.outputs, name="code_encoder")
    z_in = keras.Input((cfg.latent_dim,), name="z")
    g = z_in
    for i, units in enumerate(reversed(cfg.hidden_units)):
        g = layers.Dense(int(units), activation="relu", kernel_initializer=init, name=f"cdec_dense{i}")(g)
    code_dec = keras.Model(z_in, layers.Dense(f, kernel_initializer=init, name="code_hat")(g), name="code_decoder")

    xe = keras.Input(tuple(cfg.input_shape), name="x")
    encoder = keras.Model(xe, code_enc(ae_enc(xe)), name="encoder")
    ze = keras.Input((cfg.latent_dim,), name="z")
    decoder = keras.Model(ze, ae_dec(code_dec(ze)), name="decoder")
    return HierarchicalVAE(encoder, decoder, code_weight=cfg.code_weight, prior_loss=cfg.prior_loss,
                           prior_m=cfg.prior_m, prior_s=cfg.prior_s, rotation_invariant=cfg.rotation_invariant,
                           mirror_invariant=cfg.mirror_invariant, name="hierarchical_vae", **common)


def build_autoencoder(cfg: ModelConfig, kind: str) -> VAE:
    """An :class:`AE` (``kind="ae"``), :class:`DoublePeakVAE` or :class:`HierarchicalVAE`.

    Args:
        cfg: the model config (``input_shape`` set).
        kind: ``"ae"`` or ``"vae"`` (a VAE with ``prior: double_peak`` or ``feature_dim > 0``).
    """
    cfg.validate()
    common = dict(reconstruction=cfg.reconstruction, seed=cfg.seed, model_config=_config_dict(cfg),
                  profile_weight=cfg.profile_weight)
    if cfg.decoder_variance or cfg.reconstruction == "gaussian":
        raise ConfigError("the AE / double-peak / hierarchical models use model.reconstruction mse or bce: set "
                          "model.decoder_variance: false and reconstruction: mse")
    if kind == "ae":
        encoder, decoder = build_networks(cfg)
        model = AE(_point_encoder(encoder), decoder, name="ae",
                   rotation_invariant=cfg.rotation_invariant, mirror_invariant=cfg.mirror_invariant, **common)
    elif int(cfg.feature_dim) > 0:
        model = _hierarchical(cfg, common)
    else:
        encoder, decoder = build_networks(cfg)
        if cfg.prior_loss == "aw":
            encoder = _tanh_mean(encoder, cfg.prior_m)
        model = DoublePeakVAE(encoder, decoder, prior_loss=cfg.prior_loss, prior_m=cfg.prior_m,
                              prior_s=cfg.prior_s, rotation_invariant=cfg.rotation_invariant,
                              mirror_invariant=cfg.mirror_invariant,
                              name="double_peak_vae", **common)
    model.build((None, *cfg.input_shape))
    return model
