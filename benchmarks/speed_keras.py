"""Train and predict throughput of the shipped presets on any Keras backend: accelerator figures
where TensorFlow cannot run.

The GPU machine this project is sometimes lent (one NVIDIA H200) has JAX and PyTorch built for
CUDA 13 and no TensorFlow; TensorFlow 2.21 needs CUDA 12 libraries (over 1.5 GB) beside its
573 MB wheel, and a call to that machine carries 64 MiB. So this module times what a
``model.fit`` of astrovader computes per sample, on the backend that ``KERAS_BACKEND`` names:

* the preset's networks, built by :func:`astrovader.networks.build_networks` (the encoder,
  decoder and decoder-variance head of ``astrovader train``, rotation-invariant encoders
  included);
* the VaDE objective of :class:`astrovader.objective.VaDETerms` (the mixin
  :class:`astrovader.models.VaDE` trains with): reparameterised sampling, reconstruction
  (orientation-marginal for rotation-invariant presets), mixture prior and gamma in float32
  under mixed precision, with the mixture KL at full weight (the VaDE phase, seed 000 eq. 5);
* Adam, through ``keras.Model.fit`` (``jit_compile=True``: one XLA program per step on JAX);
* prediction of what ``astrovader predict`` writes per stamp: mu, the reconstruction, the
  decoder variance and gamma (averaged over the preset's L Monte-Carlo draws).

Left out of astrovader's own TensorFlow run: the schedule callbacks, the NaN guard and the
distribution plumbing of its ``train_step`` (per-epoch work, not per-sample work). Multi-GPU
data parallelism is ``keras.distribution.DataParallel`` here (``--data-parallel``), not
``tf.distribute.MirroredStrategy``.

Every figure comes with the FLOPs per sample counted from the layer shapes
(:func:`benchmarks.speed.layer_specs`; training = forward + both backward products) and the
achieved rate as a fraction of the device's dense-matmul roof measured in the same run, in the
same precision (an 8192^2 x 8192 product; 2048 on a CPU): on a GPU these networks are far too
small to fill it, and the fraction says by how much. Per-step overhead is the time of a step on
a batch of one, measured on each preset's first row only (another compiled step per row costs a
GPU lease more than it tells).
Rows are written to the JSON as they finish, so a run stopped early keeps what it measured.

``python -m benchmarks.speed_keras --quick`` is the smoke test (tiny counts, any backend).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _common as C  # noqa: E402
from benchmarks.speed import flops_per_sample, layer_specs  # noqa: E402

__all__ = ["main", "measure", "matmul_roof", "objective_model"]

#: input shapes where a preset's own stamps are larger than the survey case being projected
SHAPES = {"astrovader": (64, 64, 1)}
PRECISIONS = {"float32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
#: the catalogue the projection is for (seed 004: 100M galaxies; AstroVaDEr ~7 h on 3 V100s)
SURVEY_STAMPS = 100_000_000


def objective_model(model_cfg):
    """A Keras model whose training output is the per-stamp VaDE loss and whose inference output is
    what ``astrovader predict`` writes, on whichever backend Keras runs."""
    import keras
    from keras import ops

    from astrovader.layers import ClusterProbabilities, GaussianMixturePrior, Sampling
    from astrovader.networks import build_networks, build_variance_head
    from astrovader.objective import VaDETerms

    class Objective(VaDETerms, keras.Model):
        def __init__(self, cfg):
            super().__init__(name="vade_objective")
            self.encoder, self.decoder = build_networks(cfg)
            self.variance_head = build_variance_head(cfg)
            self.reconstruction = "gaussian" if cfg.decoder_variance else cfg.reconstruction
            self.rotation_invariant = bool(cfg.rotation_invariant)
            self.mirror_invariant = bool(cfg.mirror_invariant) and self.rotation_invariant
            self.sample_without_kl = False
            self.profile_weight = float(cfg.profile_weight)
            self.n_clusters, self.components_per_cluster = int(cfg.n_clusters), int(cfg.components_per_cluster)
            latent = int(cfg.latent_dim)
            self.sampling = Sampling(seed=0, dtype="float32")
            self.prior = GaussianMixturePrior(self.n_clusters * self.components_per_cluster, latent, seed=0,
                                              dtype="float32")
            self.gamma_layer = ClusterProbabilities(minmax_scaling=cfg.gamma_scaling, dtype="float32")
            weight = lambda v: self.add_weight(shape=(), initializer=keras.initializers.Constant(v),  # noqa: E731
                                               trainable=False)
            self.unit_kl_weight, self.gmm_kl_weight, self.anchor_weight = weight(0.0), weight(1.0), weight(0.0)
            # gamma's Monte-Carlo draws, fixed as in VaDE._mc_noise
            self.eps = np.random.default_rng(0).standard_normal((int(cfg.mc_samples), latent)).astype("float32")

        def build(self, input_shape=None):  # as VaDE.build: the sublayers that hold variables
            if self.variance_head is not None and not self.variance_head.built:
                self.variance_head.build((None, self.prior.latent_dim))
            self.prior.build((None, self.prior.latent_dim))
            self.built = True

        def call(self, x, training=False):
            if training:
                return self.compute_terms(x, training=True)["loss"]
            z_mean, z_log_var = (ops.cast(t, "float32") for t in self.encoder(x, training=False))
            x_hat = ops.cast(self.decoder(z_mean, training=False), "float32")
            x_hat = ops.sigmoid(x_hat) if self.reconstruction == "bce" else x_hat
            var = (ops.exp(ops.reshape(ops.cast(self.variance_head(z_mean), "float32"), (-1,)))
                   if self.variance_head is not None else ops.ones_like(z_mean[:, 0]))
            sigma = ops.exp(0.5 * z_log_var)

            def gamma_at(z):
                return ops.exp(self._cluster_log_gamma(ops.log_softmax(self.prior(z), axis=-1)))

            draws = [gamma_at(z_mean + sigma * ops.convert_to_tensor(e[None])) for e in self.eps] or [gamma_at(z_mean)]
            return {"mu": z_mean, "x_hat": x_hat, "decoder_variance": var, "gamma": sum(draws) / len(draws)}

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            return ops.mean(y_pred)

    return Objective(model_cfg)


def _wait(t) -> float:
    from keras import ops

    return float(ops.convert_to_numpy(ops.sum(ops.cast(t, "float32"))))


def matmul_roof(dtype: str, n: int | None = None, seconds: float = 1.0) -> float:
    """FLOP/s of the best of repeated ``n x n @ n x n`` products in ``dtype`` on the default device
    (n = 8192 on an accelerator, 2048 on a CPU, where one 8192 product takes seconds)."""
    from keras import ops

    n = int(n or (2048 if device_name().startswith("cpu") else 8192))

    rng = np.random.default_rng(0)
    a = ops.cast(ops.convert_to_tensor(rng.standard_normal((n, n)).astype("float32")), dtype)
    b = ops.cast(ops.convert_to_tensor(rng.standard_normal((n, n)).astype("float32")), dtype)
    _wait(ops.matmul(a, b))
    best, t_end = np.inf, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        _wait(ops.matmul(a, b))
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best


def _fit_rate(model, x, batch: int, epochs: int) -> float:
    """Samples/s of ``model.fit`` over ``epochs`` epochs of ``x`` (after one untimed epoch that compiles)."""
    x = x[: len(x) // batch * batch]  # whole batches only: a last, smaller one would compile another step
    model.fit(x, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    t0 = time.perf_counter()
    model.fit(x, batch_size=batch, epochs=epochs, verbose=0, shuffle=False)
    return epochs * (len(x) // batch) * batch / (time.perf_counter() - t0)


def _predict_rate(model, x, batch: int, repeats: int = 2) -> float:
    model.predict(x[:batch], batch_size=batch, verbose=0)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = model.predict(x, batch_size=batch, verbose=0)
        best = min(best, time.perf_counter() - t0)
    assert np.isfinite(out["gamma"]).all(), "non-finite gamma in prediction"
    return len(x) / best


def measure(preset: str, precision: str = "float32", batch_size: int | None = None, predict_batch: int = 4096,
            n_train: int = 8192, n_predict: int = 32768, epochs: int = 3, jit: bool = True,
            data_parallel: bool = False, roofs: dict | None = None, overhead: bool = True) -> dict[str, Any]:
    """One preset in one precision: train samples/s, predict stamps/s, step overhead, fractions of roof."""
    import keras

    from astrovader.config import load_preset

    cfg = load_preset(preset)
    cfg.model.input_shape = tuple(SHAPES.get(preset) or cfg.model.input_shape)
    cfg.model.validate()
    batch = int(batch_size or cfg.train.batch_size)
    policy = PRECISIONS[precision]
    keras.config.set_dtype_policy(policy)
    if data_parallel:
        keras.distribution.set_distribution(keras.distribution.DataParallel())
    try:
        keras.utils.set_random_seed(0)
        shape = tuple(cfg.model.input_shape)
        rng = np.random.default_rng(0)
        x = rng.random((max(n_train, batch), *shape), dtype=np.float32)
        xp = rng.random((max(n_predict, predict_batch), *shape), dtype=np.float32)
        model = objective_model(cfg.model)
        model(x[:2], training=True)  # create every variable before the compiled step
        model(x[:2])
        model.compile(optimizer=keras.optimizers.Adam(cfg.train.learning_rate), jit_compile=jit)
        specs = layer_specs(model)
        train_flops, fwd_flops = flops_per_sample(specs, train=True), flops_per_sample(specs, train=False)
        t0 = time.perf_counter()
        train_rate = _fit_rate(model, x, batch, epochs)
        overhead_ms = None
        if overhead:  # a step on one stamp (compiled for that shape first)
            one = x[:64]
            model.fit(one, batch_size=1, epochs=1, verbose=0, shuffle=False)
            t1 = time.perf_counter()
            model.fit(one, batch_size=1, epochs=1, verbose=0, shuffle=False)
            overhead_ms = (time.perf_counter() - t1) / len(one) * 1e3
        predict_rate = _predict_rate(model, xp, predict_batch)
        dtype = keras.DTypePolicy(policy).compute_dtype  # the precision the networks' products run in
        roofs = {} if roofs is None else roofs
        if dtype not in roofs:
            roofs[dtype] = matmul_roof(dtype)
        roof = roofs[dtype]
        row = {
            "preset": preset, "precision": precision, "policy": policy, "jit_compile": jit,
            "data_parallel": data_parallel, "input_shape": list(shape), "batch_size": batch,
            "predict_batch_size": predict_batch, "weights": int(sum(np.prod(v.shape) for v in model.trainable_variables)),
            "forward_mflops_per_sample": fwd_flops / 1e6, "train_mflops_per_sample": train_flops / 1e6,
            "train_samples_per_s": train_rate, "train_tflops": train_rate * train_flops / 1e12,
            "train_fraction_of_matmul_roof": train_rate * train_flops / roof,
            "predict_stamps_per_s": predict_rate, "predict_tflops": predict_rate * fwd_flops / 1e12,
            "predict_fraction_of_matmul_roof": predict_rate * fwd_flops / roof,
            "matmul_roof_tflops": roof / 1e12, "step_overhead_ms": overhead_ms,
            "survey_hours_predict": SURVEY_STAMPS / predict_rate / 3600.0,
            "survey_hours_one_epoch": SURVEY_STAMPS / train_rate / 3600.0,
            "seconds": time.perf_counter() - t0,
        }
        return row
    finally:
        keras.config.set_dtype_policy("float32")
        if data_parallel:
            keras.distribution.set_distribution(None)


def device_name() -> str:
    """The accelerator Keras computes on, in words ('cpu' when none)."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        d = jax.devices()[0]
        return f"{d.platform}: {getattr(d, 'device_kind', d)} x {len(jax.devices())}"
    if backend == "torch":
        import torch

        return (f"cuda: {torch.cuda.get_device_name(0)} x {torch.cuda.device_count()}"
                if torch.cuda.is_available() else "cpu")
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return f"gpu x {len(gpus)}" if gpus else "cpu"
    return backend


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.speed_keras",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", type=C.str_list, default="mnist-vade,demo,hits-vade-ar,astrovader")
    p.add_argument("--precisions", type=C.str_list, default="float32,bf16,fp16", help=f"among {', '.join(PRECISIONS)}")
    p.add_argument("--batch-sizes", type=C.int_list, default=None,
                   help="training batch sizes (default: each preset's own, then 1024)")
    p.add_argument("--predict-batch", type=int, default=4096)
    p.add_argument("--n-train", type=int, default=8192)
    p.add_argument("--n-predict", type=int, default=32768)
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per row (after one that compiles)")
    p.add_argument("--no-jit-presets", type=C.str_list, default="mnist-vade,demo",
                   help="presets also timed with jit_compile=False, float32, their own batch size")
    p.add_argument("--no-jit", action="store_true",
                   help="every row with jit_compile=False (PyTorch: no torch.compile)")
    p.add_argument("--data-parallel", action="store_true",
                   help="also time the first preset under keras.distribution.DataParallel over every local device")
    p.add_argument("--time-budget", type=float, default=None,
                   help="start no new row after this many seconds (a device lease ends the run otherwise)")
    p.add_argument("--results-dir", type=Path, default=C.RESULTS_DIR)
    p.add_argument("--name", default=None, help="result name (default gpu_speed_<device>)")
    p.add_argument("--note", default="")
    p.add_argument("--quick", action="store_true", help="smoke test: demo, float32, tiny counts")
    return p


def _print(r: dict) -> None:
    if "error" in r:
        print(f"{r['preset']:12s} {r['precision']:7s} batch {r.get('batch_size')}: ERROR {r['error'][:300]}", flush=True)
        return
    print(f"{r['preset']:12s} {r['precision']:7s} jit={int(r['jit_compile'])} dp={int(r['data_parallel'])} "
          f"batch {r['batch_size']:5d}: train {r['train_samples_per_s']:10.0f}/s ({r['train_fraction_of_matmul_roof']:.2%} "
          f"of {r['matmul_roof_tflops']:.0f} TFLOP/s)  predict {r['predict_stamps_per_s']:10.0f}/s "
          f"({r['predict_fraction_of_matmul_roof']:.2%})  step {r['step_overhead_ms'] or float('nan'):.2f} ms  "
          f"100M predict {r['survey_hours_predict']:.2f} h", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    import keras

    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    presets, precisions = args.presets, args.precisions
    unknown = [s for s in precisions if s not in PRECISIONS]
    if unknown:
        raise SystemExit(f"--precisions: unknown {unknown}; choose among {', '.join(PRECISIONS)}")
    no_jit = [] if args.no_jit else args.no_jit_presets
    kw = dict(predict_batch=args.predict_batch, n_train=args.n_train, n_predict=args.n_predict, epochs=args.epochs)
    if args.quick:
        presets, precisions, no_jit = ["demo"], ["float32"], []
        kw = dict(predict_batch=64, n_train=128, n_predict=128, epochs=1)
    device = device_name()
    name = args.name or ("quick_gpu_speed" if args.quick else
                         "gpu_speed_" + "".join(c if c.isalnum() else "_" for c in device.split(": ")[-1].lower()))
    backend = keras.backend.backend()
    payload = {"experiment": "gpu_speed", "device": device, "keras_backend": backend,
               "backend_version": getattr(__import__(backend), "__version__", ""),
               "note": args.note, "rows": [], "environment": C.environment(), "survey_stamps": SURVEY_STAMPS}
    roofs: dict[str, float] = {}
    # breadth first: every preset's first setting before any preset's second, so a run cut short by
    # a device lease still covers every network
    jit = not args.no_jit
    settings = [dict(precision=p, batch_size=b, jit=jit) for b in (args.batch_sizes or [None, 1024]) for p in precisions]
    plan = [dict(preset=preset, **st) for st in settings for preset in presets]
    plan += [dict(preset=preset, precision="float32", jit=False) for preset in presets if preset in no_jit]
    if args.data_parallel and presets:
        plan.append(dict(preset=presets[0], precision="float32", data_parallel=True, jit=jit))
    if args.quick:
        plan = plan[:1]
    skipped, measured = [], set()
    for spec in plan:
        if args.time_budget and time.perf_counter() - t0 > args.time_budget:
            skipped.append(spec)
            continue
        try:
            row = measure(**spec, **kw, roofs=roofs, overhead=spec["preset"] not in measured)
            measured.add(spec["preset"])
        except Exception as e:  # a row that fails (memory, a kernel missing) is recorded, not fatal
            row = {**spec, "error": f"{type(e).__name__}: {e}"}
        _print(row)
        payload["rows"].append(row)
        payload["wall_seconds"] = time.perf_counter() - t0
        C.save_json(name, payload, args.results_dir)
    if skipped:
        payload["not_measured"] = "over --time-budget: " + "; ".join(
            " ".join(f"{k}={v}" for k, v in spec.items()) for spec in skipped)
        print(payload["not_measured"])
        C.save_json(name, payload, args.results_dir)
    if not args.quick and args.results_dir == C.RESULTS_DIR:
        C.write_results_md()
    print(f"done in {time.perf_counter() - t0:.0f}s: {args.results_dir / (name + '.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
