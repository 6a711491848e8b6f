"""Throughput benchmarks, each figure a ratio to a roof measured in the same run.

For every preset (and training variant: steps per execution, XLA, mixed precision):

* **FLOPs per sample** are counted from the layer shapes of the built network (Dense:
  2 x in x out; Conv2D: 2 x H_out x W_out x k x k x C_in x C_out; Conv2DTranspose:
  2 x H_in x W_in x k x k x C_in x C_out); training costs 3 x the forward pass (forward,
  gradient with respect to the inputs, gradient with respect to the weights).
* **The roof** is the FLOP rate this machine achieves, right now, on exactly those
  matmuls/convolutions: one tight ``tf.function`` runs every layer's forward product (and,
  for training, its two backward products) at the training (or predict) batch size, with
  no activations, losses, optimiser, input pipeline or Python in between.
* **Fraction of roof** = achieved FLOP/s / roof FLOP/s, where the achieved rate is the
  samples/s of ``model.fit`` (training, with the NaN guard attached) or of
  :func:`astrovader.runs.predict_arrays` (prediction: latents, reconstruction, decoder
  variance, gamma) times the FLOPs per sample. Roof and model timings are interleaved and
  the best of several repeats of each is kept, so the ratio holds on a loaded machine.
* **Optimiser update**: one Adam update of copies of the model's weights, timed alone; the
  matmul roof leaves it out, so a second ratio divides by "roof + one update per step".
* **Forward + gradients** of the model's own loss on one batch, without the update: the
  step the matmul roof compares with directly. **Streaming rate**: the best bytes/s of an
  element-wise pass (NumPy's or TensorFlow's ``a + b -> c``, the faster) over arrays the size
  of the weights; Adam moves 28 bytes per weight (reads the weight, its gradient and both
  moments, writes three), so at that rate its update takes at least ``28 x weights / rate``,
  and a step that computes its gradients and then applies Adam cannot pass roof time / (roof
  time + that floor) -- the "ceiling" reported per preset.
* **Per-step overhead**: seconds per training step on a batch of 1 (Keras loop, callbacks,
  optimiser dispatch). **Input pipeline**: stamps/s of :func:`astrovader.data.make_dataset`
  iterated without a model. **Peak RSS** of the process so far.

``--rss`` measures instead the peak resident memory of ``predict_run`` (each in a fresh
process) over ``.npy`` catalogues of 10k, 100k and 1M tiny stamps (memory-mapped uint8 on
disk), to show that memory does not grow with the catalogue.

Writes ``benchmarks/results/speed.json`` (``speed_rss.json`` with ``--rss``) and
regenerates ``benchmarks/RESULTS.md`` next to the results folder. The JSON records the load
average before and after each measurement.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _common as C  # noqa: E402

__all__ = ["main", "measure", "layer_specs", "flops_per_sample", "roof", "optimizer_timer", "gradient_timer",
           "stream_rate", "measure_rss"]

# Input shapes used when a preset's stamps are larger than is practical here.
DEFAULT_SHAPES = {"astrovader": (64, 64, 1)}
#: share of --n-train (and of --n-predict) used for presets whose steps cost far more
SCALE = {"hits-vade-ar": 0.2, "astrovader": 0.05}
#: training variants: name -> TrainConfig overrides
VARIANTS = {
    "spe1": {"steps_per_execution": 1},
    "default": {},
    "xla": {"jit_compile": True},
    "bf16": {"mixed_precision": "mixed_bfloat16"},
}


# ----------------------------------------------------------------------------- FLOPs
def layer_specs(model) -> list[dict[str, Any]]:
    """The matmul/convolution layers of a model's networks with their shapes and forward FLOPs per sample.

    A rotation-invariant encoder (seed 003 cyclic pooling) runs the layers between its
    ``RotationStack`` and ``CyclicPooling`` on the 4 rotated copies of every stamp (8 when
    mirror invariant): those layers carry ``copies: 4`` (8) and as many times the FLOPs, and
    the roof times them at that multiple of the batch.
    The encoder's first layer reads the stamps, whose gradient training never computes:
    it carries ``input_grad: False`` (its backward pass is dL/dw only).
    """
    import keras

    from astrovader.layers import CyclicPooling, RotationStack

    specs = []
    for net in (model.encoder, model.decoder, getattr(model, "variance_head", None)):
        first = len(specs)
        if net is None:
            continue
        copies = 1
        for layer in net._flatten_layers(include_self=False, recursive=True):  # in graph order
            if isinstance(layer, RotationStack):
                copies = layer.copies
            elif isinstance(layer, CyclicPooling):
                copies = 1
            elif isinstance(layer, keras.layers.Dense):
                n_in, n_out = (int(d) for d in layer.kernel.shape)
                specs.append({"name": layer.name, "kind": "dense", "n_in": n_in, "n_out": n_out,
                              "copies": copies, "flops": 2 * n_in * n_out * copies})
            elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
                kh, kw = layer.kernel_size
                transposed = isinstance(layer, keras.layers.Conv2DTranspose)
                c_in = int(layer.kernel.shape[3 if transposed else 2])
                c_out = int(layer.kernel.shape[2 if transposed else 3])
                h_in, w_in = (int(d) for d in layer.input.shape[1:3])
                h_out, w_out = (int(d) for d in layer.output.shape[1:3])
                h, w = (h_in, w_in) if transposed else (h_out, w_out)
                specs.append({"name": layer.name, "kind": "conv_transpose" if transposed else "conv",
                              "in_shape": [h_in, w_in, c_in], "out_shape": [h_out, w_out, c_out],
                              "kernel": [kh, kw], "strides": list(layer.strides), "padding": layer.padding.upper(),
                              "copies": copies, "flops": 2 * h * w * kh * kw * c_in * c_out * copies})
        for i, spec in enumerate(specs[first:]):
            spec["input_grad"] = not (net is model.encoder and i == 0)
    return specs


def flops_per_sample(specs: list[dict], train: bool) -> float:
    """Forward FLOPs per sample; for a training step also dL/dw (x 2) and, where needed, dL/dx (x 3)."""
    return float(sum(s["flops"] * ((3 if s["input_grad"] else 2) if train else 1) for s in specs))


def _roof_ops(specs: list[dict], batch: int, train: bool, dtype: str = "float32") -> list[tuple]:
    """Constant operands ``(kind, x, w, dy, spec)`` of every product of ``specs`` at ``batch``
    (x ``copies`` for the layers of a rotation-invariant encoder; ``dy`` only for training)."""
    import tensorflow as tf

    rng = np.random.default_rng(0)

    def const(shape):
        return tf.constant(rng.standard_normal(shape).astype("float32") * 0.1, dtype=dtype)

    ops = []
    for s in specs:
        b = batch * s["copies"]
        if s["kind"] == "dense":
            x, w, y_shape = const((b, s["n_in"])), const((s["n_in"], s["n_out"])), (b, s["n_out"])
        else:
            kh, kw = s["kernel"]
            ci, co = s["in_shape"][2], s["out_shape"][2]
            x = const((b, *s["in_shape"]))
            w = const((kh, kw, co, ci) if s["kind"] == "conv_transpose" else (kh, kw, ci, co))
            y_shape = (b, *s["out_shape"])
        ops.append((s["kind"], x, w, const(y_shape) if train else None, s))
    return ops


def _roof_fn(specs: list[dict], batch: int, train: bool, dtype: str = "float32"):
    """A ``tf.function`` running only the products of ``specs`` at ``batch``.

    It returns one scalar (the sum) per product -- forward, and for training dL/dx and
    dL/dw -- so each product's result is freed as soon as it is summed: at the batches
    of ``predict`` (4,096 stamps, x 4 rotated copies) keeping them all would need tens of GB.
    """
    import tensorflow as tf

    ops = _roof_ops(specs, batch, train, dtype)

    def forward(kind, x, w, s):
        if kind == "dense":
            return tf.matmul(x, w)
        if kind == "conv":
            return tf.nn.conv2d(x, w, strides=s["strides"], padding=s["padding"])
        return tf.nn.conv2d_transpose(x, w, [x.shape[0], *s["out_shape"]], strides=s["strides"],
                                      padding=s["padding"])

    @tf.function
    def run():
        outs = []
        for kind, x, w, dy, s in ops:
            if not train:
                outs.append(tf.reduce_sum(forward(kind, x, w, s)))
                continue
            wrt = [x, w] if s["input_grad"] else [w]
            with tf.GradientTape() as tape:
                tape.watch(wrt)
                y = forward(kind, x, w, s)
            outs.append(tf.reduce_sum(y))
            outs.extend(tf.reduce_sum(g) for g in tape.gradient(y, wrt, output_gradients=dy))  # (dL/dx,) dL/dw
        return outs

    return run


def _seconds_per_call(step, seconds: float) -> float:
    """Calls ``step`` (which must wait for its result) for about ``seconds``; mean seconds per call."""
    n, t0 = 0, time.perf_counter()
    while True:
        step()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return dt / n


def roof(specs: list[dict], batch: int, train: bool, dtype: str = "float32", seconds: float = 1.0):
    """A callable that times the roof function for about ``seconds``; returns FLOP/s."""
    fn = _roof_fn(specs, batch, train, dtype)
    fn()  # trace
    flops = flops_per_sample(specs, train) * batch

    return lambda: flops / _seconds_per_call(lambda: fn()[-1].numpy(), seconds)  # .numpy(): wait for the result


def optimizer_timer(model, train_cfg, seconds: float = 0.5):
    """A callable timing one optimiser update of copies of the model's trainable variables (seconds).

    Adam reads and writes every weight and both moment slots each step whatever the batch
    size: on a CPU this memory-bound pass is the per-step cost the matmul roof leaves out.
    """
    import keras
    import tensorflow as tf

    from astrovader.training import make_optimizer

    vs = [keras.Variable(np.asarray(v), dtype="float32") for v in model.trainable_variables]
    gs = [tf.constant(np.full(tuple(v.shape), 1e-4, np.float32)) for v in vs]
    opt = make_optimizer(train_cfg, 100)
    opt.build(vs)

    @tf.function(jit_compile=bool(train_cfg.jit_compile))
    def update():
        opt.apply_gradients(zip(gs, vs))

    update()

    return lambda: _seconds_per_call(lambda: (update(), vs[0].numpy()), seconds)


def gradient_timer(model, x_batch, seconds: float = 0.5):
    """A callable timing the model's forward pass and gradients on one batch, no update (seconds).

    The training step without its optimiser: what the matmul roof compares with directly.
    """
    import tensorflow as tf

    xb = tf.constant(x_batch)

    @tf.function
    def grads():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model.compute_terms(xb, training=True)["loss"])
        return [tf.reduce_sum(g) for g in tape.gradient(loss, model.trainable_variables) if g is not None]

    grads()

    return lambda: _seconds_per_call(lambda: grads()[-1].numpy(), seconds)


def stream_rate(n_floats: int, repeats: int = 20) -> float:
    """Best bytes/s of this machine streaming ``n_floats``-element float32 arrays (a + b -> c: 12 bytes
    each), by NumPy (one thread) and by TensorFlow (its intra-op threads), whichever is faster.

    The rate an element-wise pass over the optimiser state cannot beat: Adam reads the
    weights, their gradients and both moments and writes the weights and the moments
    (:data:`ADAM_BYTES_PER_WEIGHT`), so ``bytes / rate`` is the least time its update can take.
    """
    import tensorflow as tf

    a, b = np.ones(n_floats, np.float32), np.ones(n_floats, np.float32)
    c = np.empty_like(a)
    ta, tb = tf.constant(a), tf.constant(b)
    add = tf.function(lambda: tf.add(ta, tb)[-1])
    add()
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.add(a, b, out=c)
        t1 = time.perf_counter()
        _ = add().numpy()
        t2 = time.perf_counter()
        best = min(best, t1 - t0, t2 - t1)
    return 12.0 * n_floats / best


#: bytes an fp32 Adam step moves per weight: reads w, g, m, v and writes w, m, v
ADAM_BYTES_PER_WEIGHT = 7 * 4


# ----------------------------------------------------------------------------- measurements
def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _config(preset: str, shape, batch_size: int, variant: dict):
    from astrovader.config import load_preset

    cfg = load_preset(preset)
    cfg.model.input_shape = tuple(shape or DEFAULT_SHAPES.get(preset) or cfg.model.input_shape or (21, 21, 1))
    cfg.train.batch_size = batch_size
    cfg.train.final_learning_rate = None
    for k, v in variant.items():
        setattr(cfg.train, k, v)
    return cfg.validate()


def measure(preset: str, batch_size: int | None = None, n_train: int = 4000, n_predict: int = 8192,
            shape: tuple[int, ...] | None = None, seed: int = 0, variant: str = "default",
            repeats: int = 4, predict_batches: Sequence[int] = (256, 1024, 4096)) -> dict[str, Any]:
    """Train/predict throughput of one preset and variant, as fractions of roofs measured alongside."""
    import keras
    import tensorflow as tf

    from astrovader.data import make_dataset
    from astrovader.runs import predict_arrays
    from astrovader.schedules import NaNGuard
    from astrovader.training import compile_model

    from astrovader.config import load_preset

    batch_size = int(batch_size or load_preset(preset).train.batch_size)
    opts = VARIANTS[variant]
    cfg = _config(preset, shape, batch_size, opts)
    shape = tuple(cfg.model.input_shape)
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.random((n_train, *shape), dtype=np.float32)
    steps = int(np.ceil(n_train / batch_size))
    load_before = _load()
    model = compile_model(cfg, steps)
    specs = layer_specs(model)
    dtype = "bfloat16" if cfg.train.mixed_precision == "mixed_bfloat16" else (
        "float16" if cfg.train.mixed_precision == "mixed_float16" else "float32")
    f_train, f_fwd = flops_per_sample(specs, True), flops_per_sample(specs, False)
    ds = make_dataset(x, batch_size, shuffle=True, seed=seed, cache=True)
    guard = NaNGuard(cfg.train.nan_check_every)
    t0 = time.perf_counter()
    try:
        model.fit(ds, epochs=1, verbose=0, callbacks=[guard])  # trace (+ XLA compile) + cache fill
    except Exception as exc:  # noqa: BLE001 -- e.g. an op XLA cannot compile on this device
        first = str(exc).strip().splitlines()
        return {"preset": preset, "variant": variant, "options": opts, "batch_size": batch_size,
                "error": f"{type(exc).__name__}: {next((ln for ln in first if 'unsupported' in ln.lower()), first[0] if first else '')[:300]}",
                "load_average": load_before}
    warm = time.perf_counter() - t0
    train_roof = roof(specs, batch_size, True, dtype)
    opt_timer = optimizer_timer(model, cfg.train)
    grad_timer = gradient_timer(model, x[:batch_size])
    n_weights = int(sum(np.prod(v.shape) for v in model.trainable_variables))
    epochs, roofs, opt_times, grad_times, streams = [], [], [], [], []
    for _ in range(repeats):  # interleaved, best of each: all see the same machine
        roofs.append(train_roof())
        opt_times.append(opt_timer())
        grad_times.append(grad_timer())
        streams.append(stream_rate(n_weights))
        t0 = time.perf_counter()
        model.fit(ds, epochs=1, verbose=0, callbacks=[guard])
        epochs.append(time.perf_counter() - t0)
    train_rate = n_train / min(epochs)
    train_roof_flops = max(roofs)
    t_opt = min(opt_times)
    # the best a step can do: its matmuls at the roof plus one optimiser update
    bound_rate = batch_size / (batch_size * f_train / train_roof_flops + t_opt)
    roof_step = batch_size * f_train / train_roof_flops
    # the least any Adam update can take here: its bytes at the machine's streaming rate
    t_floor = n_weights * ADAM_BYTES_PER_WEIGHT / max(streams)

    # per-step overhead: steps on a batch of one stamp
    one = tf.data.Dataset.from_tensor_slices(x[:64]).batch(1)
    model.fit(one, epochs=1, verbose=0, callbacks=[guard])
    t0 = time.perf_counter()
    model.fit(one, epochs=1, verbose=0, callbacks=[guard])
    step_overhead = (time.perf_counter() - t0) / 64

    n_seen, t0 = 0, time.perf_counter()
    for batch in ds:
        n_seen += int(batch.shape[0])
    pipe_rate = n_seen / (time.perf_counter() - t0)

    xp = rng.random((n_predict, *shape), dtype=np.float32)
    model = model.inference_copy()  # what `astrovader predict` runs: BatchNorm folded into the layers
    predict = {}
    for pb in predict_batches:
        predict_arrays(model, xp[:pb], batch_size=pb)  # trace
        fwd_roof = roof(specs, pb, False, dtype)
        times, proofs = [], []
        for _ in range(max(2, repeats)):
            proofs.append(fwd_roof())
            t0 = time.perf_counter()
            predict_arrays(model, xp, batch_size=pb)
            times.append(time.perf_counter() - t0)
        rate = n_predict / min(times)
        predict[pb] = {"stamps_per_s": rate, "roof_flops_per_s": max(proofs),
                       "fraction_of_roof": rate * f_fwd / max(proofs)}
    best_pb = max(predict, key=lambda b: predict[b]["stamps_per_s"])
    return {
        "preset": preset,
        "variant": variant,
        "options": opts,
        "architecture": cfg.model.architecture,
        "input_shape": list(shape),
        "latent_dim": cfg.model.latent_dim,
        "n_components": getattr(model, "n_components", None),
        "predict_batchnorm_folded": True,
        "mc_samples": cfg.model.mc_samples,
        "batch_size": batch_size,
        "forward_mflops_per_sample": f_fwd / 1e6,
        "train_mflops_per_sample": f_train / 1e6,
        "n_train": n_train,
        "warmup_seconds": warm,
        "train_samples_per_s": train_rate,
        "train_gflops_per_s": train_rate * f_train / 1e9,
        "train_roof_gflops_per_s": train_roof_flops / 1e9,
        "train_roof_samples_per_s": train_roof_flops / f_train,
        "train_fraction_of_roof": train_rate * f_train / train_roof_flops,
        "train_epoch_seconds": epochs,
        "optimizer_update_ms": t_opt * 1e3,
        "train_bound_samples_per_s": bound_rate,
        "train_fraction_of_roof_plus_optimizer": train_rate / bound_rate,
        "trainable_weights": n_weights,
        "gradient_ms": min(grad_times) * 1e3,
        "gradient_fraction_of_roof": roof_step / min(grad_times),
        "stream_gb_per_s": max(streams) / 1e9,
        "optimizer_floor_ms": t_floor * 1e3,
        "train_fraction_ceiling": roof_step / (roof_step + t_floor),
        "step_overhead_ms": step_overhead * 1e3,
        "pipeline_samples_per_s": pipe_rate,
        "n_predict": n_predict,
        "predict": predict,
        "predict_batch_size": best_pb,
        "predict_stamps_per_s": predict[best_pb]["stamps_per_s"],
        "predict_fraction_of_roof": predict[best_pb]["fraction_of_roof"],
        "peak_rss_mb": C.peak_rss_mb(),
        "load_average": load_before,
        "load_average_after": _load(),
    }


# ----------------------------------------------------------------------------- predict memory
_RSS_CHILD = """
import json, resource, sys, time
from astrovader.runs import predict_run
t0 = time.perf_counter()
n = predict_run(sys.argv[1], sys.argv[2], sys.argv[3], batch_size=int(sys.argv[4]), part_size=int(sys.argv[5]))
print(json.dumps({"rows": n, "seconds": time.perf_counter() - t0,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))
"""


def measure_rss(sizes: Sequence[int], side: int = 12, batch_size: int = 1024, part_size: int = 20000,
                workdir: Path | None = None, preset: str = "demo") -> list[dict[str, Any]]:
    """Peak RSS of ``predict_run`` (a fresh process each) over ``.npy`` catalogues of ``sizes`` stamps."""
    from astrovader.config import load_preset, save_config
    from astrovader.models import build_model

    work = Path(workdir or tempfile.mkdtemp(prefix="astrovader-rss-"))
    cfg = load_preset(preset)
    cfg.model.input_shape = (side, side, 1)
    run = work / "run"
    run.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run / "config.yaml")
    build_model(cfg.model).save(run / "model.keras")
    rows = []
    rng = np.random.default_rng(0)
    for n in sizes:
        path = work / f"stamps_{n}.npy"
        arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, side, side, 1))
        for lo in range(0, n, 100_000):  # written in blocks: the catalogue never sits in this process
            arr[lo:lo + 100_000] = rng.integers(0, 255, size=(min(100_000, n - lo), side, side, 1), dtype=np.uint8)
        arr.flush()
        del arr
        out = work / f"pred_{n}.csv"
        load = _load()
        proc = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(run), str(path), str(out), str(batch_size),
                               str(part_size)], capture_output=True, text=True, env={**os.environ})
        if proc.returncode != 0:
            raise RuntimeError(f"predict of {n} stamps failed: {proc.stderr[-2000:]}")
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        res.update(n=n, stamp_shape=[side, side, 1], file_mb=path.stat().st_size / 2**20,
                   stamps_per_s=n / res["seconds"], load_average=load)
        rows.append(res)
        print(f"predict {n:>9,} stamps: peak RSS {res['peak_rss_mb']:.0f} MiB, {res['stamps_per_s']:.0f} stamps/s",
              flush=True)
        path.unlink()
        out.unlink(missing_ok=True)
    return rows


# ----------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.speed",
        description="Training/prediction throughput per preset as fractions of a roof measured in the same "
        "run, per-step overhead, input pipeline, peak RSS; writes benchmarks/results/speed.json and "
        "regenerates benchmarks/RESULTS.md. With --rss: predict's peak memory at 10k/100k/1M stamps.",
    )
    p.add_argument("--presets", type=C.str_list, default="mnist-vade,demo,hits-vade-ar",
                   help="comma-separated presets (default mnist-vade,demo,hits-vade-ar)")
    p.add_argument("--variants", type=C.str_list, default=",".join(VARIANTS),
                   help=f"comma-separated training variants among {', '.join(VARIANTS)} (default: all)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="training batch size (default: 100 for mnist-vade as in VaDE, else the preset's)")
    p.add_argument("--n-train", type=int, default=4000, help="synthetic stamps per timed epoch (default 4000)")
    p.add_argument("--n-predict", type=int, default=8192, help="stamps per prediction timing (default 8192)")
    p.add_argument("--repeats", type=int, default=4, help="timed epochs (each beside a roof timing; default 4)")
    p.add_argument("--predict-batches", type=C.int_list, default=[256, 1024, 4096],
                   help="prediction batch sizes to time, the fastest reported (default 256,1024,4096; the "
                        "mirror-pooled hits-vade-ar encoder holds 8 copies of each stamp: ~20 GB at 4096)")
    p.add_argument("--rss", action="store_true", help="measure predict's peak RSS at --rss-sizes stamps instead")
    p.add_argument("--rss-sizes", type=C.int_list, default=[10_000, 100_000, 1_000_000],
                   help="catalogue sizes for --rss (default 10000,100000,1000000)")
    p.add_argument("--results-dir", type=Path, default=C.RESULTS_DIR,
                   help="where the JSON goes; RESULTS.md is regenerated beside it (default benchmarks/results)")
    p.add_argument("--name", default=None, help="result name (default speed, or speed_rss with --rss)")
    p.add_argument("--quick", action="store_true", help="smoke test: demo preset, default variant, tiny counts")
    return p


def _print_row(r: dict) -> None:
    if "error" in r:
        print(f"{r['preset']} [{r['variant']}]: not run: {r['error']}", flush=True)
        return
    print(f"{r['preset']} [{r['variant']}] batch {r['batch_size']}: train {r['train_samples_per_s']:.0f} samples/s "
          f"= {r['train_fraction_of_roof']:.0%} of roof ({r['train_gflops_per_s']:.1f} of "
          f"{r['train_roof_gflops_per_s']:.1f} GFLOP/s; {r['train_fraction_of_roof_plus_optimizer']:.0%} of "
          f"roof + one {r['optimizer_update_ms']:.1f} ms optimiser update per step; forward + gradients alone "
          f"{r['gradient_fraction_of_roof']:.0%} of roof; ceiling with the update at {r['stream_gb_per_s']:.0f} GB/s "
          f"{r['train_fraction_ceiling']:.0%}); predict {r['predict_stamps_per_s']:.0f} stamps/s "
          f"(batch {r['predict_batch_size']}) = {r['predict_fraction_of_roof']:.0%} of forward roof; "
          f"step overhead {r['step_overhead_ms']:.1f} ms; pipeline {r['pipeline_samples_per_s']:.0f}/s; "
          f"peak RSS {r['peak_rss_mb']:.0f} MiB; load {r['load_average'][0]}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    if args.rss:
        sizes = [1000, 5000] if args.quick else args.rss_sizes
        rows = measure_rss(sizes)
        base = {r["n"]: r["peak_rss_mb"] for r in rows}
        payload = {"experiment": "speed_rss", "rows": rows, "wall_seconds": time.perf_counter() - t0,
                   "environment": C.environment()}
        if len(rows) >= 2:
            payload["rss_growth_last_vs_previous"] = base[sizes[-1]] / base[sizes[-2]] - 1.0
        name = args.name or ("quick_speed_rss" if args.quick else "speed_rss")
    else:
        presets, variants = args.presets, args.variants
        unknown = [v for v in variants if v not in VARIANTS]
        if unknown:
            raise SystemExit(f"--variants: unknown {unknown}; choose among {', '.join(VARIANTS)}")
        n_train, n_predict, repeats, pbs = args.n_train, args.n_predict, args.repeats, tuple(args.predict_batches)
        if args.quick:
            presets, variants, n_train, n_predict, repeats, pbs = ["demo"], ["default"], 128, 256, 1, (64,)
        rows = []
        name = args.name or ("quick_speed" if args.quick else "speed")
        payload = {"experiment": "speed", "rows": rows, "environment": C.environment()}
        for preset in presets:
            bs = args.batch_size or (100 if preset == "mnist-vade" else None)
            n = max(64, int(n_train * SCALE.get(preset, 1.0)))
            for variant in variants:
                n_p = max(2048, int(n_predict * SCALE.get(preset, 1.0))) if not args.quick else n_predict
                r = measure(preset, bs, n, n_p, variant=variant, repeats=repeats, predict_batches=pbs)
                rows.append(r)
                _print_row(r)
                # saved after every row, so a later variant killed (out of memory) keeps the earlier ones
                payload.update(wall_seconds=time.perf_counter() - t0, load_average_end=_load())
                C.save_json(name, payload, args.results_dir)
    payload["load_average_end"] = _load()
    path = C.save_json(name, payload, args.results_dir)
    if not args.quick:
        C.write_results_md(args.results_dir, args.results_dir.parent / "RESULTS.md")
    print(f"done in {time.perf_counter() - t0:.0f}s: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
