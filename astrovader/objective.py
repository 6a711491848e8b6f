"""The VAE and VaDE objectives, backend-agnostic (``keras.ops`` only).

:class:`VAETerms` and :class:`VaDETerms` assemble the per-example loss terms of seed 000
eq. 5 / seed 004 eq. 11 from :mod:`astrovader.losses`::

    loss = reconstruction + w_unit * KL(q(z|x) || N(0, I)) + w_gmm * KL_VaDE

They are mixins of :class:`astrovader.models.VAE` and :class:`~astrovader.models.VaDE`,
which add TensorFlow's training step, distribution and prediction; kept apart so the same
objective runs on any Keras backend (``benchmarks/speed_keras.py`` times it on JAX and
PyTorch accelerators that TensorFlow cannot reach). A host class provides ``encoder``,
``decoder``, ``variance_head``, ``sampling``, ``reconstruction``, ``rotation_invariant``,
``mirror_invariant``, ``sample_without_kl``, ``profile_weight`` and the weights
``unit_kl_weight`` and ``gmm_kl_weight``; a VaDE host also ``prior``, ``gamma_layer``, ``anchor_weight``,
``n_clusters`` and ``components_per_cluster``.
"""

from __future__ import annotations

from keras import ops

from astrovader import losses

__all__ = ["VAETerms", "VaDETerms"]


class VAETerms:
    """The VAE objective: reconstruction and the unit-Gaussian KL (seed 000 eq. 3)."""

    def compute_terms(self, x, training=False, anchor=None):
        """All per-example loss terms for a batch ``x`` (dict of ``(batch,)`` tensors).

        ``anchor`` (VaDE only): ``(batch, K)`` target responsibilities mixed into gamma
        with the weight ``anchor_weight`` (see :meth:`VaDETerms._kl_terms`).
        """
        # under train.mixed_precision the networks compute in 16 bits; the sampling, the
        # prior and every loss term stay float32
        z_mean, z_log_var = (ops.cast(t, "float32") for t in self.encoder(x, training=training))
        # with every KL weight at 0 (AE pretraining, beta = 0) the model is a plain autoencoder:
        # z = mu. Sampling there lets Adam random-walk the unpenalised log-variance head to
        # exp(36) within an epoch (a stamp scaling with small pixel values diverged to NaN).
        # (`train.pretrain: noisy_ae` keeps sampling: sample_without_kl, set by the recipe)
        stochastic = (self.unit_kl_weight + self.gmm_kl_weight) > 0.0
        sampled = self.sampling([z_mean, z_log_var])
        z = sampled if self.sample_without_kl else ops.where(stochastic, sampled, z_mean)
        x_hat = ops.cast(self.decoder(z, training=training), "float32")
        log_var = ops.cast(self.variance_head(z), "float32") if self.variance_head is not None else None
        recon = self.reconstruction_term(x, x_hat, log_var)
        kl_unit, kl_gmm = self._kl_terms(z, z_mean, z_log_var, anchor)
        total = recon + self.profile_term(x, x_hat) + self.unit_kl_weight * kl_unit + self.gmm_kl_weight * kl_gmm
        elbo = -(recon + self._elbo_kl(kl_unit, kl_gmm))
        dec_var = ops.exp(ops.reshape(log_var, (-1,))) if log_var is not None else ops.ones_like(recon)
        return {"loss": total, "reconstruction": recon, "kl_unit": kl_unit, "kl_gmm": kl_gmm,
                "elbo": elbo, "decoder_variance": dec_var}

    def _elbo_kl(self, kl_unit, kl_gmm):
        return kl_unit

    def reconstruction_term(self, x, x_hat, log_var=None):
        """-log p(x | z) per example; with a rotation-invariant encoder the orientation is
        marginalised (:func:`~astrovader.losses.orientation_marginal_reconstruction`)."""
        if self.rotation_invariant:
            return losses.orientation_marginal_reconstruction(self.reconstruction, x, x_hat, log_var,
                                                              mirror=self.mirror_invariant)
        return losses.reconstruction_loss(self.reconstruction, x, x_hat, log_var)

    def profile_term(self, x, x_hat):
        """``profile_weight`` x the radial-profile residual of the decoder mean
        (:func:`~astrovader.losses.radial_profile_residual`); 0 when the weight is 0. A
        training penalty, not part of the likelihood: the ELBO leaves it out."""
        if not self.profile_weight:
            return 0.0
        mean = ops.sigmoid(x_hat) if self.reconstruction == "bce" else x_hat  # bce decoders return logits
        return self.profile_weight * losses.radial_profile_residual(x, mean)

    def _kl_terms(self, z, z_mean, z_log_var, anchor=None):
        """Return (kl_unit, kl_gmm) per example; the VAE has no mixture term."""
        kl_unit = losses.unit_gaussian_kl(z_mean, z_log_var)
        return kl_unit, ops.zeros_like(kl_unit)


class VaDETerms(VAETerms):
    """The VaDE objective: the mixture KL of seed 000 eq. 5 with gamma in log space (eq. 6)."""

    def _cluster_log_gamma(self, log_gamma):
        """log p(cluster | z) ``(B, K)`` from log p(component | z) ``(B, K m)`` (logsumexp per cluster)."""
        if self.components_per_cluster == 1:
            return log_gamma
        grouped = ops.reshape(log_gamma, (-1, self.n_clusters, self.components_per_cluster))
        return ops.logsumexp(grouped, axis=-1)

    def _kl_terms(self, z, z_mean, z_log_var, anchor=None):
        """Unit and mixture KL; gamma is pulled towards ``anchor`` when one is given.

        Mathematical details::

            g = (1 - w) gamma(z) + w r,   w = anchor_weight, r = anchor responsibilities

        so with w = 1 the mixture KL pulls each latent towards the components its
        (unsupervised) initial cluster assigned it, making the latent clusters as
        compact and separated as that clustering before gamma is set free (w = 0).
        """
        kl_unit = losses.unit_gaussian_kl(z_mean, z_log_var)
        log_gamma = self.gamma_layer(self.prior(z), return_log=True)
        if anchor is not None:
            w = ops.clip(self.anchor_weight, 1e-12, 1.0 - 1e-7)
            log_r = ops.log(ops.maximum(ops.cast(anchor, log_gamma.dtype), 1e-12))
            if self.components_per_cluster > 1:  # a cluster's target shared as gamma within it
                m = self.components_per_cluster
                grouped = ops.reshape(log_gamma, (-1, self.n_clusters, m))
                within = grouped - ops.logsumexp(grouped, axis=-1, keepdims=True)
                log_r = ops.reshape(log_r[:, :, None] + within, (-1, self.n_clusters * m))
            log_gamma = ops.logaddexp(ops.log(1.0 - w) + log_gamma, ops.log(w) + log_r)
            log_gamma = log_gamma - ops.logsumexp(log_gamma, axis=-1, keepdims=True)
        kl_gmm = losses.gmm_kl(z_mean, z_log_var, log_gamma, self.prior.means,
                               self.prior.log_vars, self.prior.log_pi())
        return kl_unit, kl_gmm

    def _elbo_kl(self, kl_unit, kl_gmm):
        return kl_gmm
