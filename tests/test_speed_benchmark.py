"""benchmarks.speed: FLOPs counted from layer shapes, the roof function, and its RESULTS.md rows."""

import json

import numpy as np
import pytest

from benchmarks import _common as C
from benchmarks import speed


def _model(preset, shape=None, **model_options):
    from astrovader.config import load_preset
    from astrovader.models import build_model

    cfg = load_preset(preset)
    if shape:
        cfg.model.input_shape = shape
    for key, value in model_options.items():
        setattr(cfg.model, key, value)
    return build_model(cfg.model)


def _conv(**model_options):
    """A small `hits` conv VaDE (8 maps, 12x12 stamps), rotation-invariant without mirror images unless asked."""
    return _model("hits-vade-ar", (12, 12, 1), **{"filters": [8, 8, 8, 8], "mirror_invariant": False, **model_options})


def test_mlp_flops_are_the_matmul_shapes():
    specs = speed.layer_specs(_model("mnist-vade"))
    enc = 784 * 500 + 500 * 500 + 500 * 2000 + 2 * 2000 * 10  # z_mean and z_log_var heads
    dec = 10 * 2000 + 2000 * 500 + 500 * 500 + 500 * 784
    assert speed.flops_per_sample(specs, train=False) == 2 * (enc + dec)
    # ~20 MFLOP, as issue 14 says; the stamps themselves need no gradient (dL/dw only in the first layer)
    assert speed.flops_per_sample(specs, train=True) == 6 * (enc + dec) - 2 * 784 * 500
    assert [s["input_grad"] for s in specs] == [False] + [True] * (len(specs) - 1)


def test_conv_roof_runs_every_layer():
    specs = speed.layer_specs(_conv())
    convs = [s for s in specs if s["kind"] == "conv"]
    assert convs and all(s["flops"] == 2 * s["out_shape"][0] * s["out_shape"][1] * 9 * s["in_shape"][2]
                         * s["out_shape"][2] * s["copies"] for s in convs)
    fn = speed._roof_fn(specs, 4, train=True)
    outs = fn()
    # forward, d/dx, d/dw per layer; no d/dx for the first (the stamps)
    assert len(outs) == 3 * len(specs) - 1 and all(o.shape == () for o in outs)
    assert [int(x.shape[0]) for _, x, _, _, _ in speed._roof_ops(specs, 4, train=False)] == [
        4 * s["copies"] for s in specs]
    assert speed.roof(specs, 4, train=False, seconds=0.05)() > 0


def test_rotation_invariant_encoder_counts_its_four_copies():
    """A cyclic-pooling conv encoder runs its convolutions on 4 rot90 copies, its heads and the decoder once."""
    from astrovader.config import load_preset

    assert load_preset("hits-vade-ar").model.rotation_invariant
    inv = speed.layer_specs(_conv(rotation_invariant=True))
    plain = speed.layer_specs(_conv(rotation_invariant=False))
    assert [s["name"] for s in inv] == [s["name"] for s in plain]
    for a, b in zip(inv, plain):
        four = a["name"].startswith("enc_conv")
        assert a["copies"] == (4 if four else 1) and b["copies"] == 1
        assert a["flops"] == (4 if four else 1) * b["flops"]
    mirror = speed.layer_specs(_conv(rotation_invariant=True, mirror_invariant=True))
    assert [a["copies"] for a in mirror] == [2 * a["copies"] if a["copies"] == 4 else 1 for a in inv]


def test_speed_tables(tmp_path):
    row = {"preset": "demo", "variant": "default", "batch_size": 100, "forward_mflops_per_sample": 1.5,
           "train_samples_per_s": 900.0, "train_fraction_of_roof": 0.5, "train_fraction_of_roof_plus_optimizer": 0.6,
           "optimizer_update_ms": 3.0, "predict_stamps_per_s": 9000.0, "predict_batch_size": 1024,
           "predict_fraction_of_roof": 0.7, "step_overhead_ms": 5.0, "pipeline_samples_per_s": 1e5,
           "peak_rss_mb": 900.0, "load_average": [3.0, 3.0, 3.0], "train_mflops_per_sample": 4.4,
           "train_roof_samples_per_s": 1e4}  # 10 ms of matmuls per step of 100, + 3 ms of update: cap 10/13
    (tmp_path / "speed_old.json").write_text(json.dumps({"experiment": "speed_old", "rows": [
        {**row, "train_mflops_per_sample": 4.5}]}))  # counted before the first layer's dL/dx was dropped
    ceiling = {"gradient_fraction_of_roof": 0.8, "train_fraction_ceiling": 0.9, "optimizer_floor_ms": 1.1,
               "stream_gb_per_s": 30.4, "trainable_weights": 1_200_000}
    (tmp_path / "speed.json").write_text(json.dumps({"experiment": "speed", "note": "demo rows rerun", "environment": {
        "cpu_count": 2, "cpu": "Example CPU (avx2, amx_bf16)"}, "rows": [
        {**row, **ceiling}, {
        "preset": "hits", "variant": "xla", "batch_size": 64, "error": "InvalidArgumentError: no XLA kernel"}]}))
    rss = [{"n": n, "stamp_shape": [12, 12, 1], "file_mb": n / 1e4, "peak_rss_mb": m, "stamps_per_s": 3000.0,
            "load_average": [1, 1, 1]} for n, m in [(10_000, 800.0), (100_000, 820.0), (1_000_000, 850.0)]]
    (tmp_path / "speed_rss.json").write_text(json.dumps({"experiment": "speed_rss", "rows": rss,
                                                         "rss_growth_last_vs_previous": 850 / 820 - 1}))
    md = C.write_results_md(tmp_path, tmp_path / "RESULTS.md").read_text()
    assert "not run: InvalidArgumentError" in md
    new, old = md.split("## speed:")[1], md.split("## speed_old:")[1].split("## ")[0]
    assert "| demo | default | 100 | 1.50 | 900 | 50% | 60% (3.0) | 80% | 90% (1.1) | 9000 (1024) | 70% |" in new
    assert "| demo | default | 100 | 1.50 | 900 | 50% | 60% (3.0) | – | – (–) | 9000 (1024) | 70% |" in old
    assert "(demo 30 GB/s, 1.20M weights: 90%; default variant)" in new and "28 bytes" not in old
    assert "Training FLOPs = 3 x forward (2 x for the encoder's first layer" in new
    assert "Training FLOPs = 3 x forward. " in old
    assert "(roof time + update time): demo 77% (default variant)" in new
    assert "load average at the end –. demo rows rerun." in md  # a merged file says where its rows come from
    assert "2 CPU cores of Example CPU (avx2, amx_bf16)," in new and "CPU cores of" not in old
    assert "| 1,000,000 | (12, 12, 1) |" in md and "**yes**" in md


def test_measure_reports_the_step_without_update_and_the_ceiling():
    """One tiny measurement: the forward + gradients timing and the ceiling from the update's floor."""
    r = speed.measure("demo", 8, n_train=16, n_predict=16, shape=(12, 12, 1), repeats=1, predict_batches=(8,))
    assert r["trainable_weights"] == sum(int(np.prod(w.shape)) for w in _model("demo", (12, 12, 1)).trainable_weights)
    roof_ms = 1e3 * 8 / r["train_roof_samples_per_s"]
    assert r["gradient_ms"] > 0 and abs(r["gradient_fraction_of_roof"] - roof_ms / r["gradient_ms"]) < 1e-9
    assert abs(r["optimizer_floor_ms"] - 28 * r["trainable_weights"] / (r["stream_gb_per_s"] * 1e6)) < 1e-9
    assert 0 < r["train_fraction_ceiling"] <= 1
    assert abs(r["train_fraction_ceiling"] - roof_ms / (roof_ms + r["optimizer_floor_ms"])) < 1e-9


def test_cpu_model_names_the_roof_units(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Example Xeon\nflags\t\t: fpu avx2 avx512f amx_bf16 sse\n")
    monkeypatch.setattr(C, "CPUINFO", cpuinfo)
    assert C.cpu_model() == "Example Xeon (avx2, avx512f, amx_bf16)"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Old CPU\nflags\t\t: fpu sse2\n")
    assert C.cpu_model() == "Old CPU"
    monkeypatch.setattr(C, "CPUINFO", tmp_path / "absent")
    assert C.cpu_model() == ""


def test_stream_rate_is_bytes_per_second():
    assert 1e8 < speed.stream_rate(100_000, repeats=3) < 1e13


def test_each_row_is_saved_before_the_next_variant_runs(tmp_path, monkeypatch):
    """A later variant killed (out of memory: the mirror-pooled hits-vade-ar at predict batch 4096
    needs ~20 GB) keeps the rows measured before it; --predict-batches reaches measure()."""
    seen = []

    def fake_measure(preset, bs, n, n_p, variant, repeats, predict_batches):
        seen.append(predict_batches)
        if variant == "bf16":
            raise MemoryError("killed")
        return {"preset": preset, "variant": variant}

    monkeypatch.setattr(speed, "measure", fake_measure)
    monkeypatch.setattr(speed, "_print_row", lambda r: None)
    with pytest.raises(MemoryError):
        speed.main(["--presets", "demo", "--variants", "default,bf16", "--predict-batches", "256,1024",
                    "--results-dir", str(tmp_path), "--name", "s"])
    rows = json.loads((tmp_path / "s.json").read_text())["rows"]
    assert rows == [{"preset": "demo", "variant": "default"}] and seen == [(256, 1024)] * 2
