"""Run configuration: dataclasses that round-trip through YAML.

A run is described by a :class:`RunConfig` with three parts:

* :class:`ModelConfig` -- architecture, latent size J, number of clusters K, likelihood.
* :class:`TrainConfig` -- optimiser, batch size and the training recipe (s3VDC, classic
  VaDE, KL annealing) with its schedule lengths.
* :class:`DataConfig` -- where the stamps come from and how they are preprocessed.

Presets live as YAML files in the repository's ``models/`` folder (also installed to
``<prefix>/share/astrovader/models``) and are loaded with :func:`load_preset`.
"""

from __future__ import annotations

import dataclasses
import numbers
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from astrovader.errors import ConfigError  # re-exported: `from astrovader.config import ConfigError` keeps working

#: default softening of the ``asinh_peak`` scaling, as a fraction of the stamp's peak
#: (``DataConfig.peak_softening``; :func:`astrovader.data.preprocessing.scale`)
PEAK_SOFTENING = 0.5

__all__ = [
    "ModelConfig",
    "TrainConfig",
    "DataConfig",
    "RunConfig",
    "load_config",
    "read_yaml",
    "save_config",
    "load_preset",
    "preset_names",
    "recipe_model_kind",
    "ConfigError",
]

ARCHITECTURES = ("astrovader", "hits", "mlp", "chase")
RECONSTRUCTIONS = ("mse", "bce", "gaussian")
RECIPES = ("s3vdc", "classic", "kl_annealing", "vade", "vae", "supervised")
INIT_METHODS = ("gmm", "umap")
CLASSIFIER_ARCHITECTURES = ("deep_hits", "rcnn")  # supervised classifiers of seed 003 (astrovader.classifiers)
MODEL_KINDS = ("auto", "ae", "vae", "vade")
PRIORS = ("normal", "double_peak")
PRIOR_LOSSES = ("bound", "approx", "aw", "pw")
OPTIMIZERS = ("adam", "nadam")
MIXED_PRECISION = ("none", "mixed_bfloat16", "mixed_float16")


def _coerce_fields(obj, section: str) -> None:
    """Check (and convert in place) the scalar fields of a config dataclass against their types.

    ``int``/``float``/``bool``/``str`` fields (optionally ``| None``) take values of their
    type; whole-number floats and numeric strings (YAML reads ``1e-3`` as a string) are
    converted. Anything else is a :class:`ConfigError` naming ``section.field``.
    """
    for f in dataclasses.fields(obj):
        kinds = [k.strip() for k in str(f.type).split("|")]
        optional = "None" in kinds
        kinds = [k for k in kinds if k != "None"]
        if len(kinds) != 1 or kinds[0] not in ("int", "float", "bool", "str"):
            continue  # lists and tuples are checked by the sections themselves
        kind, value = kinds[0], getattr(obj, f.name)
        if value is None:
            if optional:
                continue
            raise ConfigError(f"{section}.{f.name} is empty: give a {_KIND_WORDS[kind]}")
        setattr(obj, f.name, _convert(value, kind, f"{section}.{f.name}"))


_KIND_WORDS = {"int": "whole number", "float": "number", "bool": "true or false", "str": "string"}


def _convert(value, kind: str, name: str):
    bad = ConfigError(f"{name}={value!r}: give a {_KIND_WORDS[kind]}")
    if kind == "bool":
        if isinstance(value, numbers.Number) and value in (0, 1):  # also numpy bools and 0/1
            return bool(value)
        raise bad
    if kind == "str":
        if isinstance(value, (str, os.PathLike)):
            return os.fspath(value)  # paths (data.spec, data.cache_dir) are stored as strings
        raise bad
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
        raise bad
    try:
        number = float(value)
    except ValueError:
        raise bad from None
    if kind == "float":
        if number != number or number in (float("inf"), float("-inf")):
            raise ConfigError(f"{name}={value!r}: give a finite number")
        return number
    if not number.is_integer():
        raise bad
    return int(number)


def _check_seed(seed: int, name: str) -> None:
    if not 0 <= seed < 2**32:
        raise ConfigError(f"{name}={seed}: give a seed in 0..{2**32 - 1} (the seeds of NumPy and Keras)")


def _int_list(obj, section: str, name: str) -> None:
    """``section.name`` must be a list of positive whole numbers (stored as ints)."""
    value = getattr(obj, name)
    if value is None:
        return
    if isinstance(value, (numbers.Real, str)) and not isinstance(value, bool):
        value = [value]  # a single width
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{section}.{name}={value!r}: give a list of positive whole numbers, e.g. [32, 16]")
    items = [_convert(v, "int", f"{section}.{name}") for v in value]
    if any(v < 1 for v in items):
        raise ConfigError(f"{section}.{name}={value!r}: every entry must be a positive whole number")
    setattr(obj, name, items)


@dataclass
class ModelConfig:
    """Network and mixture-prior settings.

    Args:
        architecture: ``"astrovader"`` (VGG-style conv, seed 004 sec. 3.4), ``"hits"``
            (seed 000 sec. IV) or ``"mlp"`` (original VaDE 784-500-500-2000-J).
        input_shape: stamp shape ``(H, W, C)``; ``None`` entries are filled from the data.
        latent_dim: J, the size of the latent space.
        n_clusters: K, the number of mixture components.
        filters: conv filters per encoder block (astrovader) or per conv (hits).
        kernel_sizes: kernel size per encoder block (astrovader).
        hidden_units: MLP encoder widths (mirrored in the decoder).
        l2: L2 factor on weights and biases (seed 004 uses L2 everywhere).
        leaky_slope: LeakyReLU slope (seed 004: 0.1).
        batch_norm: use BatchNormalization (seed 000 hits architecture).
        reconstruction: ``"mse"`` (MSE x D), ``"bce"`` (BCE x D) or ``"gaussian"``.
        decoder_variance: learn sigma^2(z) with the auto-regularisation head (seed 000
            sec. V); implies the Gaussian likelihood of seed 000 eq. 8.
        output_activation: activation of the decoder's last layer (``None`` = linear).
        gamma_scaling: s3VDC min-max scaling of gamma in the loss (seed 004 eq. 17).
        mc_samples: L Monte-Carlo samples of z averaged for gamma at inference (seed 000:
            10); 0 computes gamma at the posterior mean (the VaDE reference code). With
            wide posteriors the average blurs assignments near cluster boundaries.
        rotation_invariant: the encoder pools the features of the 4 rot90 copies of a
            stamp (Deep-HiTS cyclic pooling, seed 003), so latents and clusters ignore
            orientation; the reconstruction term marginalises the orientation. Square
            stamps only.
        mirror_invariant: with ``rotation_invariant``, the encoder also pools the 4
            rotations of the stamp's mirror image (8 copies, the symmetries of the square;
            twice the encoder's cost), so latents and clusters ignore handedness too.
        profile_weight: w >= 0 of the radial-profile term added to the reconstruction:
            the squared error of the stamp's azimuthal-mean profile in 1-pixel rings about
            the centre, so the codes keep the light profile (a galaxy's concentration) more
            exactly than the pixel error alone asks (:func:`~astrovader.losses.radial_profile_residual`);
            0 = off. Centred stamps.
        components_per_cluster: m diagonal Gaussians per cluster (over-clustering then
            merging): the prior has K x m components and gamma of a cluster is the sum over
            its components, so clusters that are not Gaussian in latent space keep their shape.
        n_classes, dense_units, lstm_units, dropout, ensemble: the supervised
            classifiers of seed 003 (``architecture: deep_hits`` or ``rcnn``, trained
            with labels by ``train.recipe: supervised``, see :mod:`astrovader.classifiers`):
            output classes, dense widths, LSTM width, dropout rate and the number of
            ensemble members averaged (CAPE). An ``rcnn`` input_shape is ``(T, H, W, C)``.
        sequence_statistics: ``rcnn`` only: the LSTM also sees each frame's features minus
            the sequence mean and the head their masked mean, scatter and extremes
            (:class:`~astrovader.classifiers.SequenceStatistics`); ``false`` = the talk's plain RCNN.
        seed: seed for the sampling layers' SeedGenerators.
        kind: ``"auto"`` (the recipe decides: VAE or VaDE), ``"ae"`` (plain
            deterministic autoencoder, seed 001 SCAE), ``"vae"`` or ``"vade"``.
        latent_l1: L1 factor on the latent Dense layer's *weights* (seed 001 SCAE:
            0.005); 0 = none.
        prior: latent prior of a VAE: ``"normal"`` N(0, I) or ``"double_peak"``
            1/2 N(-m, s^2) + 1/2 N(m, s^2) per dimension (seed 002 eq. 8).
        prior_loss: regulariser for the double-peak prior (:mod:`astrovader.priors`):
            ``"bound"`` (KL scaling bound, seed 002 A.1), ``"approx"`` (closed-form KL
            approximation, A.2), ``"aw"`` (B.2, tanh on mu) or ``"pw"`` (B.3).
        prior_m, prior_s: the double-peak centres +-m and width s.
        feature_dim: > 0 makes a VAE hierarchical (seed 002 sec. 3.1.3): an AE with this
            many batch-normalised codes extracts features and a small MLP VAE
            (``hidden_units``) reconstructs the codes; 0 = off.
        code_weight: weight of the code-reconstruction term of the hierarchical VAE.
    """

    architecture: str = "astrovader"
    input_shape: tuple | None = None
    latent_dim: int = 20
    n_clusters: int = 12
    filters: list = field(default_factory=lambda: [32, 32, 16])
    kernel_sizes: list = field(default_factory=lambda: [5, 3, 3])
    hidden_units: list = field(default_factory=lambda: [500, 500, 2000])
    l2: float = 1e-6
    leaky_slope: float = 0.1
    batch_norm: bool = False
    reconstruction: str = "mse"
    decoder_variance: bool = False
    output_activation: str | None = None
    gamma_scaling: bool = False
    mc_samples: int = 0
    rotation_invariant: bool = False
    mirror_invariant: bool = False
    components_per_cluster: int = 1
    profile_weight: float = 0.0
    n_classes: int = 2
    dense_units: list = field(default_factory=lambda: [64, 64])
    lstm_units: int = 64
    dropout: float = 0.5
    ensemble: int = 1
    sequence_statistics: bool = True
    seed: int = 0
    kind: str = "auto"
    latent_l1: float = 0.0
    prior: str = "normal"
    prior_loss: str = "approx"
    prior_m: float = 1.0
    prior_s: float = 0.5
    feature_dim: int = 0
    code_weight: float = 1.0

    def validate(self) -> "ModelConfig":
        """Check every field (converting numeric strings); raises :class:`ConfigError` naming it."""
        _coerce_fields(self, "model")
        for name in ("filters", "kernel_sizes", "hidden_units", "dense_units"):
            _int_list(self, "model", name)
        if self.architecture not in ARCHITECTURES + CLASSIFIER_ARCHITECTURES:
            raise ConfigError(
                f"model.architecture={self.architecture!r}: choose one of {', '.join(ARCHITECTURES + CLASSIFIER_ARCHITECTURES)}"
            )
        if self.reconstruction not in RECONSTRUCTIONS:
            raise ConfigError(
                f"model.reconstruction={self.reconstruction!r}: choose one of {', '.join(RECONSTRUCTIONS)}"
            )
        for name in ("latent_dim", "n_clusters"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"model.{name} must be a positive integer")
        if self.reconstruction == "gaussian" and not self.decoder_variance:
            raise ConfigError("model.reconstruction=gaussian learns the decoder variance (seed 000 eq. 8): "
                              "set model.decoder_variance: true, or choose mse or bce")
        if self.reconstruction == "bce" and self.output_activation:
            raise ConfigError("model.reconstruction=bce: the decoder returns logits, so leave "
                              "model.output_activation empty (decode() applies the sigmoid)")
        if int(self.components_per_cluster) < 1:
            raise ConfigError("model.components_per_cluster must be a positive integer")
        if float(self.profile_weight) < 0:  # inf / nan: _coerce_fields
            raise ConfigError(f"model.profile_weight={self.profile_weight!r} must be >= 0 (0 = off)")
        if int(self.mc_samples) < 0:
            raise ConfigError("model.mc_samples must be >= 0 (0 = gamma at the posterior mean)")
        for name, choices in (("kind", MODEL_KINDS), ("prior", PRIORS), ("prior_loss", PRIOR_LOSSES)):
            if getattr(self, name) not in choices:
                raise ConfigError(f"model.{name}={getattr(self, name)!r}: choose one of {', '.join(choices)}")
        if float(self.prior_s) <= 0 or float(self.prior_m) < 0 or float(self.latent_l1) < 0:
            raise ConfigError("model.prior_s must be > 0, model.prior_m and model.latent_l1 >= 0")
        if int(self.feature_dim) < 0:
            raise ConfigError("model.feature_dim must be >= 0 (0 = not hierarchical)")
        if self.architecture == "deep_hits" and len(self.filters) < 2:
            raise ConfigError(f"model.filters={self.filters}: deep_hits needs at least 2 conv layers, e.g. [32, 64]")
        _check_seed(self.seed, "model.seed")
        if not 0.0 <= float(self.dropout) < 1.0 or float(self.l2) < 0 or float(self.leaky_slope) < 0:
            raise ConfigError("model.dropout must be in [0, 1), model.l2 and model.leaky_slope >= 0")
        if self.mirror_invariant and not self.rotation_invariant:
            raise ConfigError("model.mirror_invariant pools the mirrored copies of a rotation-invariant encoder: "
                              "set model.rotation_invariant: true too, or mirror_invariant: false")
        if self.input_shape is not None:
            try:
                shape = tuple(int(s) for s in self.input_shape)
            except (TypeError, ValueError):
                shape = ()
            if len(shape) != (4 if self.architecture == "rcnn" else 3) or min(shape) < 1:
                raise ConfigError(
                    f"model.input_shape={self.input_shape!r}: give (height, width, channels)"
                )
            self.input_shape = shape
            if self.rotation_invariant and shape[0] != shape[1]:
                raise ConfigError(f"model.rotation_invariant needs square stamps, got {shape[0]}x{shape[1]}: "
                                  "crop them (data.crop) or set rotation_invariant: false"
                                  + (" and mirror_invariant: false" if self.mirror_invariant else ""))
        return self


#: ``train.pretrain`` of the classic recipe: ``vae`` (KL to N(0, I), seed 000), ``ae`` (a plain
#: autoencoder, z = mu) or ``noisy_ae`` (no KL, but z sampled with the encoder's own variance).
PRETRAININGS = ("vae", "ae", "noisy_ae")


@dataclass
class TrainConfig:
    """Optimiser and training-recipe settings.

    Recipes (see :mod:`astrovader.schedules`):

    * ``s3vdc`` (seed 004 sec. 3.3, Table 1): ``gamma_epochs`` of gamma-training with
      ``beta`` x KL(q || N(0, I)), mini-batch GMM initialisation from ``gmm_batches``
      batches, then ``periods`` x (``anneal_epochs`` annealing + ``static_epochs`` static).
      ``schedule_updates`` > 0 makes the whole schedule at least that many optimizer updates
      on the stamps it gets, every phase's epochs raised by the same factor
      (:meth:`resolve_updates`; 0 = the epochs as given).
    * ``classic`` (seed 000 sec. VI): ``pretrain_epochs`` of VAE (or AE) pretraining, a
      diagonal GMM on all latents (pi = 1/K if ``uniform_pi``), then ``vade_epochs``.
      ``pretrain_updates`` > 0 makes the pretraining at least that many optimizer updates
      on the stamps it gets (:meth:`resolve_updates`): the published runs count it in
      updates (VaDE ~350k, N2D 1,000 epochs), so a preset made for 5,000 stamps does not
      pretrain a 1,800-stamp set for a third as long (0 = ``pretrain_epochs`` as given).
    * ``kl_annealing`` / ``vae``: a plain VAE with beta rising 0 -> 1 over
      ``anneal_epochs`` (seed 001) or held at ``beta``.
    * ``vade``: VaDE from a random prior, no pretraining (for ablations).

    ``optimizer`` is ``adam`` or ``nadam`` (Adam with Nesterov momentum, seed 001);
    ``ema`` > 0 keeps an exponential moving average of the weights with that momentum
    (Polyak averaging) and ends training on the averaged weights, so the result does not
    hang on where the last few steps landed (0 = off);
    ``early_stopping`` > 0 stops when the validation loss has not improved for that
    many epochs and keeps the best weights (needs ``validation_fraction`` > 0).
    ``restarts`` > 1 trains that many whole runs (seeds ``seed``, ``seed`` + 1000, ...) and
    keeps the most stable one: the run whose clusters agree best with the others' (mean
    ARI; ties to the highest ELBO), on the held-out stamps or, when none are held out, the
    training stamps (:func:`astrovader.runs.fit_run`; no labels).

    The mixture initialisation of ``s3vdc``/``classic`` (see
    :mod:`astrovader.mixture_init`): ``init: gmm`` fits a diagonal GMM on the latent
    means; ``init: umap`` clusters a UMAP embedding of them (N2D) and copies each
    cluster's latent moments into the prior. ``init_restarts`` > 1 repeats the
    clustering and keeps the most stable one (mean ARI with the others; no labels).
    ``init_refine_steps`` > 0 then refines the copied moments so the prior assigns the
    latents to those clusters (a discriminative fit to the found clusters, not to labels).
    ``anchor_epochs`` > 0 anchors gamma to that initial clustering for the first VaDE
    epochs, so the latent clusters take its shape before gamma is set free.
    ``recluster: true`` clusters the *final* codes again after the last epoch, the same way
    (``init``, ``init_restarts``, ``components_per_cluster``, ``init_refine_steps``; no
    labels), and copies those clusters into the prior: an anchored VaDE phase improves the
    codes but keeps the partition it started from (a run stopped early keeps its prior).

    Throughput: ``steps_per_execution`` training steps run per call into the traced
    graph (fewer Python round trips and callback syncs); ``jit_compile`` compiles the
    train step with XLA (``None``: Keras's choice, XLA on GPUs only); ``mixed_precision``
    (``none``, ``mixed_bfloat16`` for CPUs with AVX512-BF16/AMX and GPUs, ``mixed_float16``
    for GPUs) runs the networks in 16-bit with float32 weights, while the mixture prior,
    the sampling and the losses stay float32; ``nan_check_every`` is how many steps the
    NaN guard lets pass between looks at the loss (it always checks at the epoch end).
    """

    recipe: str = "s3vdc"
    batch_size: int = 100
    learning_rate: float = 1e-3
    final_learning_rate: float | None = None
    optimizer: str = "adam"
    clipnorm: float | None = 10.0
    ema: float = 0.0
    # s3VDC
    gamma_epochs: int = 10
    gmm_batches: int = 20
    anneal_epochs: int = 5
    static_epochs: int = 5
    periods: int = 2
    beta: float = 0.01
    anneal_power: float = 3.0
    gmm_weight: float = 1.0
    schedule_updates: int = 0
    # classic VaDE
    pretrain: str = "vae"
    pretrain_epochs: int = 10
    pretrain_updates: int = 0
    vade_epochs: int = 10
    uniform_pi: bool = True
    # mixture initialisation (s3vdc and classic)
    init: str = "gmm"
    init_restarts: int = 1
    umap_neighbors: int = 20
    umap_components: int = 10
    init_refine_steps: int = 0
    anchor_epochs: int = 0
    recluster: bool = False
    # KL annealing / plain VAE
    vae_epochs: int = 20
    # supervised classifiers (seed 003; labels are used)
    supervised_epochs: int = 20
    validation_fraction: float = 0.0
    seed: int = 0
    early_stopping: int = 0
    restarts: int = 1
    # throughput (benchmarks/speed.py measures each choice per network)
    steps_per_execution: int = 10  # 2x the samples/s of 1 for mnist-vade on 2 CPU cores (issue 14)
    jit_compile: bool | None = None
    mixed_precision: str = "none"
    nan_check_every: int = 50

    def total_epochs(self) -> int:
        """Number of epochs the recipe runs in total."""
        if self.recipe == "s3vdc":
            return self.gamma_epochs + self.periods * (self.anneal_epochs + self.static_epochs)
        if self.recipe == "classic":
            return self.pretrain_epochs + self.vade_epochs
        if self.recipe == "vade":
            return self.vade_epochs
        if self.recipe == "supervised":
            return self.supervised_epochs
        return self.vae_epochs

    def steps_per_epoch(self, n_stamps: int) -> int:
        """Optimizer updates per epoch on ``n_stamps`` training stamps (the batch never larger than
        the set, as ``astrovader train`` lowers it)."""
        n = int(n_stamps)
        return -(-n // max(1, min(int(self.batch_size), n))) if n > 0 else 0

    def resolve_updates(self, steps_per_epoch: int) -> "TrainConfig":
        """Raise epochs (in place) so that the recipe makes its minimum number of optimizer
        updates at ``steps_per_epoch`` batches per epoch: the classic recipe's pretraining at
        least ``pretrain_updates``; the s3VDC schedule at least ``schedule_updates`` in all, each
        phase's epochs multiplied by the same factor (rounded up), so its proportions hold.

        Idempotent for the same stamps; a no-op for other recipes or when the minimum is 0.
        Returns ``self``.
        """
        steps = int(steps_per_epoch)
        if steps <= 0:
            return self
        if self.recipe == "classic" and int(self.pretrain_updates) > 0:
            needed = -(-int(self.pretrain_updates) // steps)
            self.pretrain_epochs = max(int(self.pretrain_epochs), needed)
        elif self.recipe == "s3vdc" and int(self.schedule_updates) > steps * self.total_epochs():
            done = steps * self.total_epochs()  # updates as given; each phase x schedule_updates / done
            for name in ("gamma_epochs", "anneal_epochs", "static_epochs"):
                setattr(self, name, -(-int(getattr(self, name)) * int(self.schedule_updates) // done))
        return self

    def validate(self) -> "TrainConfig":
        """Check every field (converting numeric strings); raises :class:`ConfigError` naming it."""
        _coerce_fields(self, "train")
        if self.recipe not in RECIPES:
            raise ConfigError(f"train.recipe={self.recipe!r}: choose one of {', '.join(RECIPES)}")
        if self.pretrain not in PRETRAININGS:
            raise ConfigError(f"train.pretrain={self.pretrain!r}: choose one of {', '.join(PRETRAININGS)}")
        if self.init not in INIT_METHODS:
            raise ConfigError(f"train.init={self.init!r}: choose one of {', '.join(INIT_METHODS)}")
        if int(self.anchor_epochs) < 0 or int(self.init_refine_steps) < 0:
            raise ConfigError("train.anchor_epochs and train.init_refine_steps must be >= 0")
        if self.recluster and self.recipe not in ("s3vdc", "classic"):
            raise ConfigError(f"train.recluster re-clusters the codes of a recipe that initialises a mixture "
                              f"(s3vdc, classic), not train.recipe={self.recipe!r}: set it to false")
        if int(self.init_restarts) < 1 or int(self.umap_neighbors) < 2 or int(self.umap_components) < 1:
            raise ConfigError("train.init_restarts, train.umap_components must be >= 1 and "
                              "train.umap_neighbors >= 2")
        if int(self.batch_size) < 1:
            raise ConfigError("train.batch_size must be a positive integer")
        if int(self.restarts) < 1:
            raise ConfigError(f"train.restarts={self.restarts!r}: give the number of whole runs to train (1 = one)")
        if int(self.restarts) > 1 and self.recipe == "supervised":
            raise ConfigError("train.restarts applies to the clustering recipes; a supervised classifier "
                              "ensembles with model.ensemble instead")
        if float(self.learning_rate) <= 0:
            raise ConfigError("train.learning_rate must be > 0")
        if not 0.0 <= float(self.ema) < 1.0:
            raise ConfigError(f"train.ema={self.ema!r}: give a momentum in [0, 1) (e.g. 0.99; 0 = off)")
        if not 0.0 <= float(self.validation_fraction) < 1.0:
            raise ConfigError("train.validation_fraction must be in [0, 1)")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"train.optimizer={self.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
        if int(self.early_stopping) < 0:
            raise ConfigError("train.early_stopping must be >= 0 (0 = off)")
        if int(self.steps_per_execution) < 1 or int(self.nan_check_every) < 1:
            raise ConfigError("train.steps_per_execution and train.nan_check_every must be >= 1")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ConfigError(f"train.mixed_precision={self.mixed_precision!r}: choose one of "
                              f"{', '.join(MIXED_PRECISION)} (mixed_float16 needs a GPU)")
        epochs = ("gamma_epochs", "anneal_epochs", "static_epochs", "periods", "pretrain_epochs", "vade_epochs",
                  "vae_epochs", "supervised_epochs", "gmm_batches", "pretrain_updates", "schedule_updates")
        negative = [name for name in epochs if int(getattr(self, name)) < 0]
        if negative:
            raise ConfigError(f"train.{negative[0]}={getattr(self, negative[0])!r} must be >= 0")
        if self.total_epochs() < 1:
            raise ConfigError("the recipe's epoch counts add up to 0: give at least one epoch")
        _check_seed(self.seed, "train.seed")
        return self


@dataclass
class DataConfig:
    """Where the stamps come from and how they are preprocessed.

    Args:
        spec: a path (directory, CSV catalog, FITS, npy/npz, HDF5, TFRecord shards) or
            ``builtin:NAME`` (mnist5k, digits, hdf, galaxies, transients).
        n: number of stamps to use (``None`` = all; built-in sets are generated with this).
        grayscale: average the bands into one channel (seed 004).
        crop: centre-crop size ``[h, w]`` before resizing.
        resize: output size ``[h, w]`` (bilinear).
        scaling: ``none``, ``minmax``, ``chase`` (median / abs-max to [-1, 1], seed 001),
            ``asinh`` (in units of each stamp's robust noise), ``asinh_snr`` (stamps already
            in noise units), ``zscore`` or ``asinh_peak`` (see
            :mod:`astrovader.data.preprocessing`).
        peak_softening: ``asinh_peak``'s softening as a fraction of the peak: 0.5 compresses
            the core above half the peak; 5 or more leaves the stamp nearly linear up to it.
        clip: optional ``[lo, hi]`` applied after scaling.
        nan_policy: ``error``, ``fill`` (with ``fill_value``) or ``drop``.
        flips: random horizontal/vertical flips during training (seed 004).
        rot90: random 90-degree rotations during training.
        shift: random shifts of up to this many pixels during training (0 = none).
        shift_fraction: random shifts of up to this fraction of the stamp's shorter side
            instead (DEC-DA's 0.1, Guo et al. 2018), so the jitter scales with the stamps a
            preset meets; give ``shift`` or ``shift_fraction``, not both.
        rotate: random rotations of up to this many degrees during training (0 = none);
            with ``shift`` the affine jitter of DEC-DA (Guo et al. 2018).
        label_column: catalog column holding labels (evaluation only, never training).
        cache_dir: where built-in datasets are generated once (default
            ``$ASTROVADER_CACHE`` or ``~/.cache/astrovader``).
        seed: seed for built-in dataset generation and shuffling.
    """

    spec: str = "builtin:transients"
    n: int | None = None
    grayscale: bool = False
    crop: list | None = None
    resize: list | None = None
    scaling: str = "none"
    peak_softening: float = PEAK_SOFTENING
    clip: list | None = None
    nan_policy: str = "error"
    fill_value: float = 0.0
    flips: bool = False
    rot90: bool = False
    shift: float = 0.0
    shift_fraction: float = 0.0
    rotate: float = 0.0
    label_column: str | None = None
    cache_dir: str | None = None
    seed: int = 0

    def validate(self) -> "DataConfig":
        """Check every field (converting numeric strings); raises :class:`ConfigError` naming it.

        Whether ``spec`` can be read is checked when the stamps are loaded
        (:func:`astrovader.data.load`), not here.
        """
        from astrovader.data.preprocessing import NAN_POLICIES, SCALINGS, _pair, _pair_float
        from astrovader.errors import DataError

        _coerce_fields(self, "data")
        if not self.spec.strip():
            raise ConfigError("data.spec is empty: give a path to stamps or builtin:NAME")
        if self.n is not None and self.n < 1:
            raise ConfigError(f"data.n={self.n}: give a positive number of stamps, or leave it empty for all")
        if self.scaling not in SCALINGS:
            raise ConfigError(f"data.scaling={self.scaling!r}: choose one of {', '.join(SCALINGS)}")
        if not self.peak_softening > 0:
            raise ConfigError(f"data.peak_softening={self.peak_softening!r} must be > 0 (a fraction of the peak)")
        if self.nan_policy not in NAN_POLICIES:
            raise ConfigError(f"data.nan_policy={self.nan_policy!r}: choose one of {', '.join(NAN_POLICIES)}")
        try:  # the preprocessing's own parsers, so the config accepts exactly what it applies
            for name in ("crop", "resize"):
                if getattr(self, name) is not None:
                    setattr(self, name, list(_pair(getattr(self, name), f"data.{name}")))
            if self.clip is not None:
                self.clip = list(_pair_float(self.clip))
        except DataError as exc:
            raise ConfigError(str(exc)) from None
        if self.shift < 0 or self.rotate < 0:
            raise ConfigError("data.shift and data.rotate must be >= 0 (0 = no jitter)")
        if not 0 <= self.shift_fraction < 0.5:
            raise ConfigError(f"data.shift_fraction={self.shift_fraction}: give a fraction of the stamp side "
                              "in [0, 0.5), e.g. 0.1")
        if self.shift > 0 and self.shift_fraction > 0:
            raise ConfigError(f"data.shift={self.shift} and data.shift_fraction={self.shift_fraction}: give one "
                              "(pixels or a fraction of the stamp side) and set the other to 0")
        _check_seed(self.seed, "data.seed")
        return self

    def shift_pixels(self, shape) -> float:
        """The largest training shift in pixels for stamps of ``shape`` ``(H, W, ...)``:
        ``shift``, or ``shift_fraction`` of the shorter side."""
        if self.shift > 0:
            return float(self.shift)
        return float(self.shift_fraction) * min(int(shape[0]), int(shape[1]))


def recipe_model_kind(recipe: str) -> str:
    """``"vae"`` for the recipes that train a plain VAE (``vae``, ``kl_annealing``), else ``"vade"``."""
    return "vae" if recipe in ("vae", "kl_annealing") else "vade"


@dataclass
class RunConfig:
    """A full run: model, training and data settings plus a free-text description."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    name: str = "run"
    description: str = ""

    def model_kind(self) -> str:
        """The model that trains: ``model.kind`` or, for ``auto``, the recipe's (``vae`` or ``vade``)."""
        if self.model.kind != "auto":
            return self.model.kind
        return recipe_model_kind(self.train.recipe)

    def validate(self) -> "RunConfig":
        """Validate every section and how they fit together; raises :class:`ConfigError`."""
        self.model.validate()
        self.train.validate()
        self.data.validate()
        m = self.model
        kind = self.model_kind()
        if (kind == "ae" or (kind == "vae" and (m.prior != "normal" or m.feature_dim > 0))) and (
                m.decoder_variance or m.reconstruction == "gaussian"):
            raise ConfigError(f"model.reconstruction={m.reconstruction!r}, decoder_variance={m.decoder_variance}: "
                              "the AE, double-peak and hierarchical models use mse or bce; set "
                              "model.decoder_variance: false and model.reconstruction: mse")
        if (self.model.architecture in CLASSIFIER_ARCHITECTURES) != (self.train.recipe == "supervised"):
            raise ConfigError(f"model.architecture={self.model.architecture!r} with train.recipe="
                              f"{self.train.recipe!r}: the classifiers ({', '.join(CLASSIFIER_ARCHITECTURES)}) "
                              "train with recipe 'supervised', and only they do")
        if int(self.model.n_classes) < 2 or int(self.model.ensemble) < 1:
            raise ConfigError("model.n_classes must be >= 2 and model.ensemble >= 1")
        return self

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        if out["model"]["input_shape"] is not None:
            out["model"]["input_shape"] = list(out["model"]["input_shape"])
        return out

    @classmethod
    def from_dict(cls, d: dict | None, source: str = "config") -> "RunConfig":
        d = dict(d or {})
        unknown = set(d) - {"model", "train", "data", "name", "description"}
        if unknown:
            raise ConfigError(
                f"{source}: unknown top-level key(s) {sorted(unknown)}; allowed: model, train, data, name, description"
            )
        return cls(
            model=_build(ModelConfig, d.get("model"), f"{source}: model"),
            train=_build(TrainConfig, d.get("train"), f"{source}: train"),
            data=_build(DataConfig, d.get("data"), f"{source}: data"),
            name=str(d.get("name", "run")),
            description=str(d.get("description", "")),
        ).validate()

    def override(self, section: str, **values: Any) -> "RunConfig":
        """Return a copy with ``section`` fields replaced (``None`` values are ignored)."""
        d = self.to_dict()
        d[section].update({k: v for k, v in values.items() if v is not None})
        return RunConfig.from_dict(d)


def _build(cls, values: dict | None, where: str):
    values = dict(values or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(names)}")
    obj = cls(**values)
    if cls is ModelConfig and obj.input_shape is not None:
        obj.input_shape = tuple(obj.input_shape)
    return obj


def read_yaml(path: str | os.PathLike, missing: str = "file not found"):
    """Parse a YAML file; a missing file or a syntax error is a one-line :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {missing}")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None


def load_config(path: str | os.PathLike) -> RunConfig:
    """Read a YAML run configuration; errors name the file and the bad field."""
    d = read_yaml(path, "config file not found; give a YAML file or use --preset")
    if d is not None and not isinstance(d, dict):
        raise ConfigError(f"{path}: expected a mapping with model/train/data sections")
    try:
        return RunConfig.from_dict(d, source=str(path))
    except ConfigError as exc:  # name the file the bad field is in
        if str(exc).startswith(str(path)):
            raise
        raise ConfigError(f"{path}: {exc}") from None


def save_config(cfg: RunConfig, path: str | os.PathLike) -> None:
    """Write ``cfg`` as YAML (atomically) so :func:`load_config` reads it back."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    os.replace(tmp, path)


def _preset_dirs() -> list[Path]:
    dirs = []
    env = os.environ.get("ASTROVADER_PRESETS")
    if env:
        dirs.append(Path(env))
    dirs.append(Path(__file__).resolve().parent.parent / "models")
    dirs.append(Path(sys.prefix) / "share" / "astrovader" / "models")
    return [d for d in dirs if d.is_dir()]


def preset_names() -> list[str]:
    """Names of the available presets (YAML files in ``models/``)."""
    names = set()
    for d in _preset_dirs():
        names.update(p.stem for p in d.glob("*.yaml"))
    return sorted(names)


def load_preset(name: str) -> RunConfig:
    """Load the preset ``name`` (e.g. ``"demo"``, ``"hits-vade-ar"``)."""
    for d in _preset_dirs():
        p = d / f"{name}.yaml"
        if p.is_file():
            return load_config(p)
    raise ConfigError(f"unknown preset {name!r}; available: {', '.join(preset_names()) or 'none found'}")
