"""Encoder/decoder builders, one per seed architecture.

* ``astrovader`` -- VGG-style conv net of seed 004 sec. 3.4: blocks of two same-padded
  convolutions + 2x2 max-pooling, LeakyReLU(0.1), L2 on weights and biases; the decoder
  mirrors it with bilinear up-sampling.
* ``hits`` -- seed 000 sec. IV: four 3x3 convolutions with strides 1, 2, 1, 2 (64 filters,
  BatchNorm + ReLU) -> Dense; decoder Dense -> 6x6x64, six 3x3 convolutions with
  nearest-neighbour resizes to 11x11 and 21x21 (for 21x21 inputs; other sizes follow the
  encoder's feature-map sizes).
* ``mlp`` -- the original VaDE network D-500-500-2000-J for MNIST.
* ``chase`` -- seed 001 sec. 3 (CHASE SCAE/CVAE): 3x3 convolutions with stride 2 (32
  filters each, ReLU) -> linear latent Dense; the decoder mirrors it with
  nearest-neighbour up-sampling and a linear output.

``model.latent_l1`` puts an L1 penalty on the latent Dense layer's weights (seed 001 SCAE).

Each builder returns ``(encoder, decoder)`` functional ``keras.Model``s: the encoder maps
x -> ``[z_mean, z_log_var]``, the decoder z -> x_hat (linear output unless
``output_activation`` is set; for the BCE likelihood it returns logits).

With ``model.rotation_invariant`` every encoder runs the 4 rot90 copies of a stamp through
its shared layers and averages their features before the latent heads (Deep-HiTS cyclic
pooling, seed 003), so the latent code -- and the clusters -- do not depend on the
stamp's orientation (seed 004 sec. 5.2 found its clusters split by orientation); with
``model.mirror_invariant`` also the 4 rotations of its mirror image (8 copies).
"""

from __future__ import annotations

import math

import numpy as np

import keras
from keras import layers

from astrovader.config import ModelConfig
from astrovader.errors import ConfigError
from astrovader.layers import CenterCrop, CyclicPooling, FusedBatchNormalization, Resize, RotationStack

__all__ = ["build_networks", "build_variance_head", "fold_batch_norm"]

# BatchNorm moving statistics must follow the weights closely: the mixture is fitted on
# (and clusters are predicted from) inference-mode latents, so with Keras' default 0.99 a
# short run embeds inference data far from where the prior was trained and every stamp
# falls into one component.
_BN_MOMENTUM = 0.9


def build_networks(cfg: ModelConfig) -> tuple[keras.Model, keras.Model]:
    """Build the encoder and decoder described by ``cfg`` (``input_shape`` must be set)."""
    cfg.validate()
    if cfg.input_shape is None:
        raise ConfigError("model.input_shape is not set: give (height, width, channels) or build the "
                          "model from data (astrovader.training.train fills it in)")
    if cfg.output_activation:
        try:
            keras.activations.get(cfg.output_activation)
        except ValueError:
            raise ConfigError(f"model.output_activation={cfg.output_activation!r} is not a Keras activation: "
                              "use e.g. sigmoid, tanh, relu, or leave it empty (linear)") from None
    builder = {"astrovader": _vgg, "hits": _hits, "mlp": _mlp, "chase": _chase}[cfg.architecture]
    return builder(cfg)


def build_variance_head(cfg: ModelConfig):
    """The :class:`~astrovader.layers.DecoderVariance` head, or ``None`` if disabled."""
    from astrovader.layers import DecoderVariance

    return DecoderVariance(seed=cfg.seed, name="decoder_variance") if cfg.decoder_variance else None


def _reg(cfg):
    return keras.regularizers.L2(cfg.l2) if cfg.l2 else None


def _latent_heads(h, cfg, init):
    kw = dict(kernel_initializer=init, kernel_regularizer=_reg(cfg), bias_regularizer=_reg(cfg))
    if getattr(cfg, "latent_l1", 0.0):  # seed 001 SCAE: L1 on the latent layer's weights
        kw["kernel_regularizer"] = keras.regularizers.L1L2(l1=float(cfg.latent_l1), l2=float(cfg.l2 or 0.0))
    z_mean = layers.Dense(cfg.latent_dim, name="z_mean", **kw)(h)
    z_log_var = layers.Dense(cfg.latent_dim, name="z_log_var", kernel_initializer="zeros",
                             bias_regularizer=_reg(cfg))(h)
    return [z_mean, z_log_var]


def _stack(x_in, cfg):
    """The encoder's input, stacked with its rotated copies when rotation invariant."""
    return RotationStack(mirror=cfg.mirror_invariant, name="rotation_stack")(x_in) if cfg.rotation_invariant else x_in


def _pool(h, cfg):
    """Average the features of the rotated copies (identity unless rotation invariant)."""
    return CyclicPooling(mirror=cfg.mirror_invariant, name="cyclic_pooling")(h) if cfg.rotation_invariant else h


def _final(x, shape, cfg, init, name="x_hat"):
    """Crop/resize feature maps to the stamp size and project to C channels."""
    h, w, c = shape
    if tuple(x.shape[1:3]) != (h, w):
        if x.shape[1] >= h and x.shape[2] >= w:
            x = CenterCrop(h, w, name="crop")(x)
        else:
            x = Resize(h, w, interpolation="bilinear", name="resize_out")(x)
    return layers.Conv2D(c, 3, padding="same", activation=cfg.output_activation,
                         kernel_initializer=init, name=name)(x)


def _vgg(cfg: ModelConfig):
    shape = tuple(cfg.input_shape)
    filters = list(cfg.filters)
    kernels = list(cfg.kernel_sizes) or [3]
    kernels = (kernels + [kernels[-1]] * len(filters))[: len(filters)]
    init = keras.initializers.GlorotUniform(seed=cfg.seed)
    kw = dict(padding="same", kernel_initializer=init, kernel_regularizer=_reg(cfg),
              bias_regularizer=_reg(cfg))

    x_in = keras.Input(shape, name="x")
    h = _stack(x_in, cfg)
    for b, (f, k) in enumerate(zip(filters, kernels)):
        for i in range(2):
            h = layers.Conv2D(f, k, name=f"enc{b}_conv{i}", **kw)(h)
            h = layers.LeakyReLU(cfg.leaky_slope, name=f"enc{b}_act{i}")(h)
        h = layers.MaxPooling2D(2, padding="same", name=f"enc{b}_pool")(h)
    fh, fw, fc = h.shape[1:]
    h = _pool(layers.Flatten(name="flatten")(h), cfg)
    encoder = keras.Model(x_in, _latent_heads(h, cfg, init), name="encoder")

    z_in = keras.Input((cfg.latent_dim,), name="z")
    g = layers.Dense(fh * fw * fc, name="dec_dense", **{k: v for k, v in kw.items() if k != "padding"})(z_in)
    g = layers.LeakyReLU(cfg.leaky_slope, name="dec_dense_act")(g)
    g = layers.Reshape((fh, fw, fc), name="dec_reshape")(g)
    for b, (f, k) in enumerate(zip(reversed(filters), reversed(kernels))):
        for i in range(2):
            g = layers.Conv2D(f, k, name=f"dec{b}_conv{i}", **kw)(g)
            g = layers.LeakyReLU(cfg.leaky_slope, name=f"dec{b}_act{i}")(g)
        g = layers.UpSampling2D(2, interpolation="bilinear", name=f"dec{b}_up")(g)
    decoder = keras.Model(z_in, _final(g, shape, cfg, init), name="decoder")
    return encoder, decoder


def _conv_bn(x, filters, stride, cfg, init, name):
    x = layers.Conv2D(filters, 3, strides=stride, padding="same", kernel_initializer=init,
                      kernel_regularizer=_reg(cfg), use_bias=not cfg.batch_norm, name=name)(x)
    if cfg.batch_norm:
        x = FusedBatchNormalization(momentum=_BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _hits(cfg: ModelConfig):
    shape = tuple(cfg.input_shape)
    width = int(cfg.filters[0]) if cfg.filters else 64
    init = keras.initializers.GlorotUniform(seed=cfg.seed)

    x_in = keras.Input(shape, name="x")
    h = _stack(x_in, cfg)
    sizes = []
    for i, stride in enumerate((1, 2, 1, 2)):
        if stride == 2:
            sizes.append(tuple(h.shape[1:3]))
        h = _conv_bn(h, width, stride, cfg, init, f"enc_conv{i}")
    fh, fw = h.shape[1:3]
    h = _pool(layers.Flatten(name="flatten")(h), cfg)
    encoder = keras.Model(x_in, _latent_heads(h, cfg, init), name="encoder")

    z_in = keras.Input((cfg.latent_dim,), name="z")
    g = layers.Dense(fh * fw * width, kernel_initializer=init, kernel_regularizer=_reg(cfg),
                     use_bias=not cfg.batch_norm, name="dec_dense")(z_in)
    if cfg.batch_norm:
        g = layers.BatchNormalization(momentum=_BN_MOMENTUM, name="dec_dense_bn")(g)
    g = layers.ReLU(name="dec_dense_relu")(g)
    g = layers.Reshape((fh, fw, width), name="dec_reshape")(g)
    # six 3x3 convs; nearest-neighbour resizes after the 2nd (-> 11x11) and 4th (-> 21x21)
    targets = list(reversed(sizes))
    for i in range(5):
        g = _conv_bn(g, width, 1, cfg, init, f"dec_conv{i}")
        if i in (1, 3):
            th, tw = targets[(i - 1) // 2]
            g = Resize(th, tw, interpolation="nearest", name=f"dec_resize{i}")(g)
    decoder = keras.Model(z_in, _final(g, shape, cfg, init), name="decoder")
    return encoder, decoder


def _mlp(cfg: ModelConfig):
    shape = tuple(cfg.input_shape)
    dim = int(math.prod(shape))
    init = keras.initializers.GlorotUniform(seed=cfg.seed)
    kw = dict(kernel_initializer=init, kernel_regularizer=_reg(cfg))

    x_in = keras.Input(shape, name="x")
    h = layers.Flatten(name="flatten")(_stack(x_in, cfg))
    for i, units in enumerate(cfg.hidden_units):
        h = layers.Dense(units, activation="relu", name=f"enc_dense{i}", **kw)(h)
    h = _pool(h, cfg)
    encoder = keras.Model(x_in, _latent_heads(h, cfg, init), name="encoder")

    z_in = keras.Input((cfg.latent_dim,), name="z")
    g = z_in
    for i, units in enumerate(reversed(cfg.hidden_units)):
        g = layers.Dense(units, activation="relu", name=f"dec_dense{i}", **kw)(g)
    g = layers.Dense(dim, activation=cfg.output_activation, name="dec_out", **kw)(g)
    decoder = keras.Model(z_in, layers.Reshape(shape, name="x_hat")(g), name="decoder")
    return encoder, decoder


def _chase(cfg: ModelConfig):
    """Seed 001 sec. 3: strided 3x3 convs (ReLU) -> linear latent; mirrored NN-upsampling decoder."""
    shape = tuple(cfg.input_shape)
    filters = [int(f) for f in cfg.filters] or [32, 32, 32]
    init = keras.initializers.GlorotUniform(seed=cfg.seed)
    kw = dict(padding="same", kernel_initializer=init, kernel_regularizer=_reg(cfg))

    x_in = keras.Input(shape, name="x")
    h = _stack(x_in, cfg)
    for i, f in enumerate(filters):
        h = layers.Conv2D(f, 3, strides=2, activation="relu", name=f"enc_conv{i}", **kw)(h)
    fh, fw, fc = h.shape[1:]
    h = _pool(layers.Flatten(name="flatten")(h), cfg)
    encoder = keras.Model(x_in, _latent_heads(h, cfg, init), name="encoder")

    z_in = keras.Input((cfg.latent_dim,), name="z")
    g = layers.Dense(fh * fw * fc, activation="relu", kernel_initializer=init, kernel_regularizer=_reg(cfg),
                     name="dec_dense")(z_in)
    g = layers.Reshape((fh, fw, fc), name="dec_reshape")(g)
    for i, f in enumerate(reversed(filters)):
        g = layers.UpSampling2D(2, interpolation="nearest", name=f"dec_up{i}")(g)
        g = layers.Conv2D(f, 3, activation="relu", name=f"dec_conv{i}", **kw)(g)
    decoder = keras.Model(z_in, _final(g, shape, cfg, init), name="decoder")
    return encoder, decoder


# ----------------------------------------------------------------------------- inference
def _foldable(bn, producer) -> bool:
    """``bn`` normalises the channels of a linear Conv2D/Dense output that feeds only ``bn``."""
    if not isinstance(producer, (layers.Conv2D, layers.Dense)) or producer.activation is not keras.activations.linear:
        return False
    if bn.axis not in (-1, [-1]) and list(np.atleast_1d(bn.axis)) != [len(producer.output.shape) - 1]:
        return False
    floats = {bn.dtype_policy.compute_dtype, producer.dtype_policy.compute_dtype}
    users = {id(n.operation) for n in producer._outbound_nodes}
    return floats == {"float32"} and users == {id(bn)} and len(bn._inbound_nodes) == len(producer._outbound_nodes)


def _pairs(net: keras.Model) -> dict[str, str]:
    """BatchNormalization layer name -> the Conv2D/Dense it can be folded into."""
    out = {}
    for layer in net.layers:
        if isinstance(layer, layers.BatchNormalization) and layer._inbound_nodes:
            producer = layer._inbound_nodes[0].input_tensors[0]._keras_history.operation
            if _foldable(layer, producer):
                out[layer.name] = producer.name
    return out


def fold_batch_norm(net: keras.Model) -> keras.Model:
    """An inference copy of a functional network with each BatchNorm folded into the
    Conv2D/Dense before it: ``W' = W s``, ``b' = (b - mean) s + beta`` with
    ``s = gamma / sqrt(var + eps)`` per output channel.

    The copy computes the network in inference mode with one kernel fewer per layer (no
    separate normalisation pass over every activation; 1.44x faster prediction for the
    ``demo`` network on a CPU, issue 14). The original is untouched; a network without a
    foldable pair (or not functional) is returned as it is. Never train the copy.
    """
    if not isinstance(net, keras.Model):
        return net
    try:
        pairs = _pairs(net)
    except (AttributeError, IndexError):  # not a functional graph
        return net
    if not pairs:
        return net
    bn_of = {producer: bn for bn, producer in pairs.items()}

    def clone(layer):
        if layer.name in pairs:
            return layers.Lambda(lambda t: t, name=layer.name)  # takes the BN call's training/mask
        cfg = layer.get_config()
        if layer.name in bn_of:
            cfg["use_bias"] = True
        return layer.__class__.from_config(cfg)

    copy = keras.models.clone_model(net, clone_function=clone)
    by_name = {layer.name: layer for layer in net.layers}
    for layer in copy.layers:
        src = by_name.get(layer.name)  # an unnamed Input is renamed by the clone; it holds no weights
        if src is None or layer.name in pairs:
            continue
        if layer.name in bn_of:
            bn = by_name[bn_of[layer.name]]
            mean, var = np.asarray(bn.moving_mean, np.float64), np.asarray(bn.moving_variance, np.float64)
            gamma = np.asarray(bn.gamma, np.float64) if bn.scale else np.ones_like(mean)
            beta = np.asarray(bn.beta, np.float64) if bn.center else np.zeros_like(mean)
            scale = gamma / np.sqrt(var + bn.epsilon)
            kernel = np.asarray(src.kernel, np.float64) * scale
            bias = np.asarray(src.bias, np.float64) if src.use_bias else np.zeros_like(mean)
            layer.set_weights([kernel.astype(np.float32), ((bias - mean) * scale + beta).astype(np.float32)])
        elif src.weights:
            layer.set_weights(src.get_weights())
    return copy
