"""Unsupervised pixel-wise segmentation of fields and star/galaxy labelling (seed 002 sec. 4).

Pipeline (:func:`segment_field`):

1. A convolutional autoencoder with skip ("residual") connections from each
   down-sampling block to the matching up-sampling block (seed 002 sec. 4.1.3, Fig. 5c) is
   trained on random patches of the field itself (no labels): :func:`build_skip_ae`,
   :func:`train_skip_ae`.
2. Hypercolumns (Hariharan et al. 2015): the activations of chosen layers, up-sampled to
   the field's resolution and stacked, one feature vector per pixel
   (:func:`hypercolumns`).
3. The pixels are clustered (a Gaussian mixture on the standardised, PCA-reduced
   hypercolumns); the most populous cluster is *background*, the clusters clearly brighter
   than it are *object* (:func:`cluster_pixels`).
4. Each connected object is cut out as a stamp and embedded with a trained run's encoder
   (the classification net); its latents are split in two groups, and the group of the
   more compact objects is called *star* -- stars are point sources -- the other *galaxy*
   (:func:`classify_objects`). No label is used anywhere.

Outputs of :func:`write_segmentation`: a FITS label map (0 background, 1 star, 2 galaxy;
1 = object when no run is given) and a PNG overlay (grey background, red stars, orange
galaxies, as seed 002 Fig. 8). :func:`simulate_field` renders GalSim fields with known
masks for :func:`pixel_iou` scores; :func:`threshold_mask` is the classical
background + k sigma baseline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
from keras import layers

from astrovader.errors import DataError

__all__ = [
    "build_skip_ae",
    "train_skip_ae",
    "hypercolumns",
    "cluster_pixels",
    "threshold_mask",
    "classify_objects",
    "segment_field",
    "write_segmentation",
    "simulate_field",
    "load_field",
    "pixel_iou",
    "benchmark_fields",
    "Segmentation",
]


def _robust_scale(image: np.ndarray) -> np.ndarray:
    """arcsinh((x - median) / (1.4826 MAD)) per band: noise ~ 1, bright cores compressed."""
    x = np.asarray(image, np.float32)
    if x.ndim == 2:
        x = x[..., None]
    med = np.median(x, axis=(0, 1), keepdims=True)
    mad = 1.4826 * np.median(np.abs(x - med), axis=(0, 1), keepdims=True)
    return np.arcsinh((x - med) / np.maximum(mad, 1e-6)).astype(np.float32)


def build_skip_ae(channels: int, filters=(16, 32, 64), seed: int = 0, skips: bool = True) -> keras.Model:
    """Fully convolutional AE; ``skips`` adds each encoder block's output to the matching decoder block.

    Each encoder block is a 3x3 conv + a stride-2 3x3 conv (ReLU); each decoder block
    up-samples by 2 (nearest), adds the skip and convolves. The layers named
    ``enc{i}`` / ``dec{i}`` are the hypercolumn sources. Inputs need sides divisible by
    2^len(filters).
    """
    init = keras.initializers.GlorotUniform(seed=seed)
    kw = dict(padding="same", kernel_initializer=init, activation="relu")
    x_in = keras.Input((None, None, channels), name="x")
    h, feats = x_in, []
    for i, f in enumerate(filters):
        h = layers.Conv2D(f, 3, name=f"enc{i}", **kw)(h)
        feats.append(h)
        h = layers.Conv2D(f, 3, strides=2, name=f"down{i}", **kw)(h)
    for j, f in enumerate(reversed(filters)):
        i = len(filters) - 1 - j
        h = layers.UpSampling2D(2, name=f"up{i}")(h)
        h = layers.Conv2D(f, 3, name=f"upconv{i}", **kw)(h)
        if skips:
            h = layers.Add(name=f"skip{i}")([h, feats[i]])
        h = layers.Conv2D(f, 3, name=f"dec{i}", **kw)(h)
    out = layers.Conv2D(channels, 3, padding="same", kernel_initializer=init, name="x_hat")(h)
    return keras.Model(x_in, out, name="skip_ae" if skips else "plain_ae")


def _patches(image: np.ndarray, size: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = image.shape[:2]
    ys = rng.integers(0, h - size + 1, n)
    xs = rng.integers(0, w - size + 1, n)
    return np.stack([image[y:y + size, x:x + size] for y, x in zip(ys, xs)])


def train_skip_ae(image: np.ndarray, epochs: int = 10, patch: int = 32, n_patches: int = 512,
                  filters=(16, 32, 64), seed: int = 0, skips: bool = True, verbose: int = 0) -> keras.Model:
    """Train :func:`build_skip_ae` on random patches of a (scaled) field ``(H, W, C)`` with MSE."""
    keras.utils.set_random_seed(seed)
    m = 2 ** len(filters)  # patch sides must survive the down-samplings exactly
    size = max(m, (min(patch, *image.shape[:2]) // m) * m)
    x = _patches(image, size, n_patches, seed)
    model = build_skip_ae(image.shape[-1], filters, seed, skips)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    model.fit(x, x, batch_size=32, epochs=int(epochs), shuffle=True, verbose=verbose)
    return model


def _pad(image: np.ndarray, multiple: int) -> np.ndarray:
    h, w = image.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="reflect") if ph or pw else image


def hypercolumns(model: keras.Model, image: np.ndarray, layer_names=None) -> np.ndarray:
    """Per-pixel hypercolumn features ``(H, W, F)`` of a scaled field ``(H, W, C)``.

    Args:
        model: a trained :func:`build_skip_ae` model.
        layer_names: layers whose activations are stacked (default: every ``enc*`` and
            ``dec*`` layer plus the input), bilinearly resized to the field's size.
    """
    import tensorflow as tf

    names = layer_names or [l.name for l in model.layers if l.name.startswith(("enc", "dec"))]
    n_down = sum(1 for l in model.layers if l.name.startswith("down"))
    h, w = image.shape[:2]
    x = _pad(image, 2 ** n_down)[None]
    feat_model = keras.Model(model.input, [model.get_layer(n).output for n in names])
    outs = feat_model(x, training=False)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    ph, pw = x.shape[1:3]
    cols = [tf.image.resize(o, (ph, pw), method="bilinear")[0, :h, :w].numpy() for o in outs]
    return np.concatenate([image] + cols, axis=-1).astype(np.float32)


def cluster_pixels(features: np.ndarray, brightness: np.ndarray, n_clusters: int = 4, min_contrast: float = 1.0,
                   n_sample: int = 20000, n_pca: int = 8, seed: int = 0) -> np.ndarray:
    """Per-pixel clustering into background / object: boolean object mask ``(H, W)``.

    A Gaussian mixture (``n_clusters`` components, full covariance) is fitted on the
    standardised, PCA-reduced features of ``n_sample`` random pixels. The most populous
    component is the background; every component whose mean ``brightness`` (e.g. the
    scaled field summed over bands) exceeds the background's mean by ``min_contrast``
    background standard deviations is *object* (faint wings and bright cores often land
    in different components, so two clusters are too few).
    """
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture
    from sklearn.preprocessing import StandardScaler

    h, w, f = features.shape
    flat = features.reshape(-1, f)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(flat), size=min(n_sample, len(flat)), replace=False)
    scaler = StandardScaler().fit(flat[idx])
    pca = PCA(n_components=min(n_pca, f), random_state=seed).fit(scaler.transform(flat[idx]))
    gm = GaussianMixture(int(n_clusters), covariance_type="full", random_state=seed, n_init=2).fit(
        pca.transform(scaler.transform(flat[idx])))
    lab = gm.predict(pca.transform(scaler.transform(flat))).reshape(h, w)
    b = np.asarray(brightness).reshape(h, w)
    counts = np.bincount(lab.ravel(), minlength=int(n_clusters))
    bg = int(np.argmax(counts))
    mu_bg, sd_bg = float(b[lab == bg].mean()), float(b[lab == bg].std()) + 1e-6
    objects = [k for k in range(int(n_clusters)) if counts[k] and b[lab == k].mean() > mu_bg + min_contrast * sd_bg]
    if not objects:  # fall back to the brightest component
        objects = [int(np.argmax([b[lab == k].mean() if counts[k] else -np.inf for k in range(int(n_clusters))]))]
    return np.isin(lab, objects)


def threshold_mask(image: np.ndarray, nsigma: float = 2.0) -> np.ndarray:
    """Classical baseline: pixels ``nsigma`` robust sigmas above the median in the band sum."""
    x = np.asarray(image, np.float64)
    x = x.sum(-1) if x.ndim == 3 else x
    med = np.median(x)
    sig = 1.4826 * np.median(np.abs(x - med))
    return x > med + nsigma * max(sig, 1e-12)


def _clean(mask: np.ndarray, min_area: int) -> tuple[np.ndarray, int]:
    from scipy import ndimage

    mask = ndimage.binary_opening(mask, iterations=1)
    lab, n = ndimage.label(mask)
    if n:
        areas = ndimage.sum(np.ones_like(lab), lab, index=np.arange(1, n + 1))
        keep = np.r_[0, areas >= min_area].astype(bool)
        lab = np.where(keep[lab], lab, 0)
        lab, n = ndimage.label(lab > 0)
    return lab, n


def classify_objects(run, field_image: np.ndarray, segments: np.ndarray, n_objects: int, seed: int = 0) -> np.ndarray:
    """Star (1) / galaxy (2) per segment 1..n from a trained run's latents, label-free.

    Each object is cut out around its flux-weighted centre at the run's stamp size,
    preprocessed with the run's data scaling and embedded; the latents are split in two
    by k-means, and the group whose objects cover fewer pixels (point sources) is *star*.
    """
    from scipy import ndimage
    from sklearn.cluster import KMeans

    from astrovader.data.preprocessing import scale as _scale
    from astrovader.runs import conform

    if n_objects == 0:
        return np.zeros(0, int)
    h, w = run.cfg.model.input_shape[:2]
    img = field_image if field_image.ndim == 3 else field_image[..., None]
    padded = np.pad(img, ((h, h), (w, w), (0, 0)), mode="constant")
    flux = np.clip(img.sum(-1), 0, None)
    centres = ndimage.center_of_mass(flux + 1e-9, segments, index=np.arange(1, n_objects + 1))
    stamps = []
    for cy, cx in centres:
        y0, x0 = int(round(cy)) + h - h // 2, int(round(cx)) + w - w // 2
        stamps.append(padded[y0:y0 + h, x0:x0 + w])
    stamps = np.stack(stamps).astype(np.float32)
    stamps = _scale(stamps, run.cfg.data.scaling)
    x = conform(stamps, run.cfg.model.input_shape, quiet=True)
    mu = np.asarray(run.model.encode(x)[0])
    areas = ndimage.sum(np.ones_like(segments), segments, index=np.arange(1, n_objects + 1))
    if n_objects < 2:
        return np.array([1 if areas[0] < 30 else 2])
    groups = KMeans(2, n_init=5, random_state=seed).fit_predict(mu)
    star_group = int(np.argmin([np.median(areas[groups == g]) if np.any(groups == g) else np.inf for g in range(2)]))
    return np.where(groups == star_group, 1, 2)


@dataclass
class Segmentation:
    """Result of :func:`segment_field`.

    Attributes:
        labels: ``(H, W)`` int map, 0 background, 1 star, 2 galaxy (1 object without a run).
        objects: ``(H, W)`` connected-object ids (0 background).
        classes: class (1 star / 2 galaxy) per object id 1..n.
        image: the field as read.
    """

    labels: np.ndarray
    objects: np.ndarray
    classes: np.ndarray
    image: np.ndarray
    info: dict = field(default_factory=dict)


def segment_field(image: np.ndarray, run=None, epochs: int = 10, skips: bool = True, min_area: int = 5,
                  seed: int = 0, layer_names=None, n_patches: int = 512) -> Segmentation:
    """Segment a field ``(H, W[, C])`` and, with a ``run``, label each object star or galaxy.

    Args:
        image: the field.
        run: a :class:`~astrovader.runs.Run` whose encoder labels the objects (optional).
        epochs, n_patches: training of the segmentation AE on random 32x32 patches.
        skips: skip connections (seed 002 Fig. 5c) or a plain AE (Fig. 5b).
        min_area: objects smaller than this many pixels are dropped.
        seed: seed of the patches, the AE and the clustering.
        layer_names: hypercolumn layers (default: all ``enc*``/``dec*`` layers).

    Returns:
        A :class:`Segmentation`.
    """
    img = np.asarray(image, np.float32)
    img = img[..., None] if img.ndim == 2 else img
    if img.ndim != 3 or min(img.shape[:2]) < 16:
        raise DataError(f"field of shape {np.shape(image)}: give an image (H, W) or (H, W, C) of at least 16x16 pixels")
    scaled = _robust_scale(img)
    ae = train_skip_ae(scaled, epochs=epochs, seed=seed, skips=skips, n_patches=n_patches)
    feats = hypercolumns(ae, scaled, layer_names)
    mask = cluster_pixels(feats, scaled.sum(-1), seed=seed)
    objects, n = _clean(mask, min_area)
    classes = classify_objects(run, img, objects, n, seed) if run is not None else np.ones(n, int)
    labels = np.r_[0, classes][objects] if n else np.zeros(objects.shape, int)
    return Segmentation(labels=labels.astype(np.int16), objects=objects.astype(np.int32), classes=classes,
                        image=img, info={"n_objects": int(n), "object_fraction": float((objects > 0).mean()),
                                         "n_stars": int(np.sum(classes == 1)) if run is not None else None,
                                         "n_galaxies": int(np.sum(classes == 2)) if run is not None else None})


def write_segmentation(seg: Segmentation, out: str | os.PathLike) -> list[Path]:
    """Write ``labels.fits`` (label map + object ids) and ``overlay.png`` into the folder ``out``."""
    from astropy.io import fits
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    hdr = fits.Header()
    hdr["CONTENT"] = "0 background, 1 star, 2 galaxy (1 = object without a classifier run)"
    hdr["CREATOR"] = "astrovader segment"
    fits.HDUList([fits.PrimaryHDU(seg.labels, header=hdr), fits.ImageHDU(seg.objects, name="OBJECTS")]).writeto(
        out / "labels.fits", overwrite=True)
    grey = _robust_scale(seg.image).sum(-1)
    lo, hi = np.percentile(grey, [1, 99.5])
    grey = np.clip((grey - lo) / max(hi - lo, 1e-6), 0, 1)
    rgb = np.repeat(grey[..., None], 3, axis=-1) * 0.6
    colours = {1: (1.0, 0.15, 0.1), 2: (1.0, 0.6, 0.0)}
    for k, c in colours.items():
        m = seg.labels == k
        rgb[m] = 0.45 * rgb[m] + 0.55 * np.array(c)
    h, w = grey.shape
    fig, ax = plt.subplots(figsize=(min(12, 4 + w / 100), min(12, 4 + h / 100)))
    ax.imshow(rgb, origin="lower", interpolation="nearest")
    ax.set_title(f"{seg.info.get('n_objects', 0)} objects; red = star, orange = galaxy")
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(out / "overlay.png", dpi=100)
    plt.close(fig)
    return [out / "labels.fits", out / "overlay.png"]


def simulate_field(size: int = 128, n_objects: int = 12, seed: int = 0, bands: int = 1,
                   mask_nsigma: float = 1.0) -> dict:
    """A GalSim field of stars and galaxies with its true masks.

    Objects of :func:`astrovader.data.stargal.render_stargal`'s population are drawn
    noise-free in 32x32 cut-outs and added at random positions; unit noise (r band) is
    added afterwards. The true object mask is where the noise-free flux (band sum) exceeds
    ``mask_nsigma`` times the noise of the band sum.

    Returns:
        ``{"image": (size, size, bands), "mask": bool (size, size), "classes": int map
        (0 background, 1 star, 2 galaxy; the brighter object wins overlaps)}``.
    """
    from astrovader.data.simulate import require
    from astrovader.data.stargal import _NOISE, _stamp

    require("galsim", what="simulated fields")
    rng = np.random.default_rng([seed, 41])
    band_idx = [2] if bands == 1 else list(range(5))
    clean = np.zeros((size + 32, size + 32, len(band_idx)), np.float32)
    classes = np.zeros((size + 32, size + 32), np.int16)
    best = np.zeros_like(classes, dtype=np.float32)
    for _ in range(int(n_objects)):
        lab = int(rng.integers(0, 2))
        hlr = float(np.exp(rng.uniform(np.log(0.8), np.log(4.0))))
        row = dict(size=32, bands=band_idx, label=lab, sed=[1.0] * len(band_idx),
                   flux=float(np.exp(rng.uniform(np.log(300), np.log(5000)))), hlr=hlr,
                   bulge_hlr=hlr * 0.5, bulge_frac=float(rng.uniform(0, 1)), bulge_q=0.8,
                   q=float(rng.uniform(0.2, 1.0)), beta=float(rng.uniform(0, 180)),
                   psf_fwhm=float(rng.uniform(1.8, 3.0)), dx=0.0, dy=0.0)
        stamp = _stamp(row)
        y, x = int(rng.integers(0, size)), int(rng.integers(0, size))
        clean[y:y + 32, x:x + 32] += stamp
        s = stamp.sum(-1)
        win = s > best[y:y + 32, x:x + 32]
        best[y:y + 32, x:x + 32] = np.where(win, s, best[y:y + 32, x:x + 32])
        classes[y:y + 32, x:x + 32] = np.where(win & (s > 0), lab + 1, classes[y:y + 32, x:x + 32])
    clean, classes = clean[16:16 + size, 16:16 + size], classes[16:16 + size, 16:16 + size]
    sig = _NOISE[band_idx].astype(np.float32)
    noise = np.random.default_rng([seed, 42]).standard_normal(clean.shape).astype(np.float32) * sig
    mask = clean.sum(-1) > mask_nsigma * float(np.sqrt(np.sum(sig ** 2)))
    return {"image": clean + noise, "mask": mask, "classes": np.where(mask, classes, 0)}


def load_field(spec: str) -> np.ndarray:
    """A field image ``(H, W, C)`` from a FITS/.npy/PNG file, ``builtin:hdf`` or ``builtin:field[:SEED]``.

    Raises:
        DataError: a missing or unreadable file, or an image that is not 2-D/3-D.
    """
    from astrovader.errors import DataError

    if spec == "builtin:hdf":
        from astrovader.data.simulate import require

        require("skimage", what="builtin:hdf")
        from skimage.data import hubble_deep_field

        return hubble_deep_field().astype(np.float32) / 255.0
    if spec.startswith("builtin:field"):
        seed = int(spec.split(":")[2]) if spec.count(":") == 2 else 0
        return simulate_field(seed=seed)["image"]
    path = Path(spec)
    if not path.is_file():
        raise DataError(f"{spec}: file not found; give a FITS, .npy or image file, builtin:hdf or builtin:field")
    try:
        if path.suffix.lower() in (".fits", ".fit", ".fz"):
            from astropy.io import fits

            with fits.open(path) as hdul:
                data = next((h.data for h in hdul if getattr(h, "data", None) is not None and h.data.ndim >= 2), None)
            if data is None:
                raise DataError(f"{spec}: no image HDU in this FITS file")
            data = np.asarray(data, np.float32)
            if data.ndim == 3 and data.shape[0] < min(data.shape[1:]):  # (C, H, W) -> (H, W, C)
                data = np.moveaxis(data, 0, -1)
        elif path.suffix.lower() == ".npy":
            data = np.load(path).astype(np.float32)
        else:
            from PIL import Image

            data = np.asarray(Image.open(path), np.float32)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 -- unreadable file: one line naming it
        raise DataError(f"{spec}: cannot read the field ({type(exc).__name__}: {exc})") from None
    if data.ndim not in (2, 3):
        raise DataError(f"{spec}: expected a 2-D image or an (H, W, C) cube, got shape {data.shape}")
    return np.nan_to_num(data)


def pixel_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    union = np.logical_or(p, t).sum()
    return float(np.logical_and(p, t).sum() / union) if union else 1.0


def benchmark_fields(n_fields: int = 8, size: int = 128, epochs: int = 10, seeds=(0,), quick: bool = False) -> dict:
    """Pixel IoU of the skip AE, the plain AE (no skips) and the k-sigma threshold on simulated fields."""
    rows = []
    for seed in seeds:
        for f in range(int(n_fields)):
            fld = simulate_field(size=size, n_objects=max(4, size * size // 1400), seed=1000 * seed + f)
            row = {"seed": int(seed), "field": f, "true_object_fraction": float(fld["mask"].mean())}
            for name, skips in (("skip_ae_hypercolumns", True), ("ae_hypercolumns", False)):
                seg = segment_field(fld["image"], epochs=epochs, skips=skips, seed=seed)
                row[name] = pixel_iou(seg.objects > 0, fld["mask"])
            row["threshold_2sigma"] = pixel_iou(threshold_mask(fld["image"], 2.0), fld["mask"])
            rows.append(row)
            print(f"segmentation seed={seed} field={f}: " + ", ".join(
                f"{k} {row[k]:.3f}" for k in ("skip_ae_hypercolumns", "ae_hypercolumns", "threshold_2sigma")),
                flush=True)
    return {"data": {"fields": int(n_fields), "size": int(size), "truth": "noise-free flux > 1 sigma"},
            "runs": rows}
