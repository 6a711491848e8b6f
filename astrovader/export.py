"""Export a trained model as a TF SavedModel with named signatures for survey pipelines.

The SavedModel is loadable with ``tf.saved_model.load(path)`` (or
``keras.layers.TFSMLayer``) without importing astrovader. Signatures:

* ``encode(x)`` -> ``{"z_mean", "z_log_var"}``
* ``cluster_probabilities(x)`` -> ``{"gamma"}`` (VaDE; averaged over the model's L
  Monte-Carlo draws with fixed noise, identical to ``model.cluster_probabilities``)
* ``decode(z)`` -> ``{"x_hat"}``
* ``generate(cluster, eps)`` -> ``{"x_hat"}``: decodes ``mu_c + sigma_c * eps`` for
  component ids ``cluster`` (int32, ``(n,)``) and noise ``eps`` (``(n, J)``); pass
  ``cluster = -1`` to use the unit-Gaussian prior of a VAE.
* ``decoder_variance(x)`` -> ``{"variance"}``

A Deep-HiTS / RCNN classifier (seed 003) gets one signature, ``classify`` -> ``{"probabilities",
"label"}`` (:func:`astrovader.supervised.export_classifier`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from astrovader.errors import AstrovaderError

__all__ = ["export_saved_model", "SIGNATURES"]

SIGNATURES = ("encode", "cluster_probabilities", "decode", "generate", "decoder_variance")


def export_saved_model(model, out_dir: str | os.PathLike, overwrite: bool = False) -> list[str]:
    """Write ``model`` as a SavedModel in ``out_dir`` and return the signature names.

    Args:
        model: a built :class:`~astrovader.models.VAE` or :class:`~astrovader.models.VaDE`.
        out_dir: destination folder; it must not exist unless ``overwrite``.
        overwrite: replace an existing export.
    """
    from astrovader.classifiers import is_classifier

    if is_classifier(model):
        from astrovader.supervised import export_classifier

        return export_classifier(model, out_dir, overwrite=overwrite)
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise AstrovaderError(f"{out_dir}: already exists and is not empty; choose another "
                              "--out or pass --overwrite")
    h, w, c = model.input_shape_
    j = model.latent_dim
    x_spec = tf.TensorSpec((None, h, w, c), tf.float32, name="x")
    z_spec = tf.TensorSpec((None, j), tf.float32, name="z")

    archive = keras.export.ExportArchive()
    archive.track(model)

    def encode(x):
        z_mean, z_log_var = model.encoder(x, training=False)
        return {"z_mean": z_mean, "z_log_var": z_log_var}

    def decode(z):
        return {"x_hat": model._output(model.decoder(z, training=False))}

    def variance(x):
        return {"variance": model._variance_fn(x)}

    archive.add_endpoint("encode", encode, input_signature=[x_spec])
    archive.add_endpoint("decode", decode, input_signature=[z_spec])
    archive.add_endpoint("decoder_variance", variance, input_signature=[x_spec])
    names = ["encode", "decode", "decoder_variance"]

    if hasattr(model, "prior"):
        rng = np.random.default_rng(model.seed)
        eps = tf.constant(rng.standard_normal((model.mc_samples, j)).astype("float32"))

        def cluster_probabilities(x):
            return {"gamma": model._gamma_fn(x, eps)}

        main = tf.constant(model.main_components(), tf.int32)  # a cluster's heaviest component

        def generate(cluster, noise):
            comp = tf.gather(main, cluster)
            means = tf.gather(model.prior.means, comp)
            sigmas = tf.exp(0.5 * tf.gather(model.prior.log_vars, comp))
            return decode(means + sigmas * noise)

        archive.add_endpoint("cluster_probabilities", cluster_probabilities,
                             input_signature=[x_spec])
        names.append("cluster_probabilities")
    else:
        def generate(cluster, noise):
            return decode(noise)

    archive.add_endpoint(
        "generate", generate,
        input_signature=[tf.TensorSpec((None,), tf.int32, name="cluster"),
                         tf.TensorSpec((None, j), tf.float32, name="eps")])
    names.append("generate")

    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    archive.write_out(str(tmp), verbose=False)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return names
