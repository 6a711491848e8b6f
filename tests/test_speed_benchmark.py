"""benchmarks.speed: FLOPs counted from layer shapes, the roof function, and its RESULTS.md rows."""

import json

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


def test_mlp_flops_are_the_matmul_shapes():
    specs = speed.layer_specs(_model("mnist-vade"))
    enc = 784 * 500 + 500 * 500 + 500 * 2000 + 2 * 2000 * 10  # z_mean and z_log_var heads
    dec = 10 * 2000 + 2000 * 500 + 500 * 500 + 500 * 784
    assert speed.flops_per_sample(specs, train=False) == 2 * (enc + dec)
    # ~20 MFLOP, as issue 14 says; the stamps themselves need no gradient (dL/dw only in the first layer)
    assert speed.flops_per_sample(specs, train=True) == 6 * (enc + dec) - 2 * 784 * 500
    assert [s["input_grad"] for s in specs] == [False] + [True] * (len(specs) - 1)


def test_conv_roof_runs_every_layer():
    specs = speed.layer_specs(_model("demo", (12, 12, 1)))
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
    """The demo's cyclic-pooling encoder runs its convolutions on 4 rot90 copies, its heads and the decoder once."""
    from astrovader.config import load_preset

    assert load_preset("demo").model.rotation_invariant
    inv = speed.layer_specs(_model("demo", (12, 12, 1), rotation_invariant=True))
    plain = speed.layer_specs(_model("demo", (12, 12, 1), rotation_invariant=False))
    assert [s["name"] for s in inv] == [s["name"] for s in plain]
    for a, b in zip(inv, plain):
        four = a["name"].startswith("enc_conv")
        assert a["copies"] == (4 if four else 1) and b["copies"] == 1
        assert a["flops"] == (4 if four else 1) * b["flops"]


def test_speed_tables(tmp_path):
    row = {"preset": "demo", "variant": "default", "batch_size": 100, "forward_mflops_per_sample": 1.5,
           "train_samples_per_s": 900.0, "train_fraction_of_roof": 0.5, "train_fraction_of_roof_plus_optimizer": 0.6,
           "optimizer_update_ms": 3.0, "predict_stamps_per_s": 9000.0, "predict_batch_size": 1024,
           "predict_fraction_of_roof": 0.7, "step_overhead_ms": 5.0, "pipeline_samples_per_s": 1e5,
           "peak_rss_mb": 900.0, "load_average": [3.0, 3.0, 3.0], "train_mflops_per_sample": 4.4,
           "train_roof_samples_per_s": 1e4}  # 10 ms of matmuls per step of 100, + 3 ms of update: cap 10/13
    (tmp_path / "speed_old.json").write_text(json.dumps({"experiment": "speed_old", "rows": [
        {**row, "train_mflops_per_sample": 4.5}]}))  # counted before the first layer's dL/dx was dropped
    (tmp_path / "speed.json").write_text(json.dumps({"experiment": "speed", "note": "demo rows rerun", "rows": [row, {
        "preset": "hits", "variant": "xla", "batch_size": 64, "error": "InvalidArgumentError: no XLA kernel"}]}))
    rss = [{"n": n, "stamp_shape": [12, 12, 1], "file_mb": n / 1e4, "peak_rss_mb": m, "stamps_per_s": 3000.0,
            "load_average": [1, 1, 1]} for n, m in [(10_000, 800.0), (100_000, 820.0), (1_000_000, 850.0)]]
    (tmp_path / "speed_rss.json").write_text(json.dumps({"experiment": "speed_rss", "rows": rss,
                                                         "rss_growth_last_vs_previous": 850 / 820 - 1}))
    md = C.write_results_md(tmp_path, tmp_path / "RESULTS.md").read_text()
    assert "| demo | default | 100 | 1.50 | 900 | 50% | 60% (3.0) | 9000 (1024) | 70% |" in md
    assert "not run: InvalidArgumentError" in md
    new, old = md.split("## speed:")[1], md.split("## speed_old:")[1].split("## ")[0]
    assert "Training FLOPs = 3 x forward (2 x for the encoder's first layer" in new
    assert "Training FLOPs = 3 x forward. " in old
    assert "(roof time + update time): demo 77% (default variant)" in new
    assert "load average at the end –. demo rows rerun." in md  # a merged file says where its rows come from
    assert "| 1,000,000 | (12, 12, 1) |" in md and "**yes**" in md
