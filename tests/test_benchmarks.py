"""Benchmark entry points: --help, argument errors, RESULTS.md rendering and --quick smoke runs."""

import json
import re
from pathlib import Path

import numpy as np

import pytest

from benchmarks import _common as C
from benchmarks import quality, speed, tables


def test_comma_separated_name_lists_parse_to_lists_defaults_included():
    assert C.str_list(" demo, ,mnist-vade,") == ["demo", "mnist-vade"]
    args = quality.build_parser().parse_args(["--experiments", "clustering_demo, clustering_galaxies"])
    assert args.experiments == ["clustering_demo", "clustering_galaxies"]
    assert args.parts == list(quality.TRANSIENT_PARTS) and args.methods is None  # a string default is parsed too
    assert speed.build_parser().parse_args([]).presets == ["mnist-vade", "demo", "hits-vade-ar"]


@pytest.mark.parametrize("mod", [quality, speed])
def test_help(mod, capsys):
    with pytest.raises(SystemExit) as exc:
        mod.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage:" in out and "--quick" in out


def test_unknown_experiment_exits_2(capsys):
    assert quality.main(["--experiments", "cifar"]) == 2
    assert "error: unknown experiment" in capsys.readouterr().err


def test_results_md_from_json(tmp_path):
    run = {"seed": 0, "nan": False, "acc_hungarian": 0.9, "acc_majority": 0.92, "nmi": 0.8,
           "ari": 0.7, "silhouette": 0.1, "train_seconds": 10.0, "mse": 0.01}
    trans = {"experiment": "transients_k", "part": "k", "seeds": [0],
             "data": {"spec": "builtin:transients", "n": 10, "shape": [21, 21, 1], "class_counts": [5, 5]},
             "config": {}, "runs": [{"K": 10, "J": 21, **run}, {"K": 2, "J": 21, **run}], "wall_seconds": 5}
    base = {**trans, "experiment": "transients_baselines", "part": "baselines",
            "runs": [{"method": "vade", **run}, {"method": "pca+gmm", **run, "acc_majority": 0.85}]}
    for name, d in [("transients_k", trans), ("transients_baselines", base)]:
        (tmp_path / f"{name}.json").write_text(json.dumps(d))
    md = C.write_results_md(tmp_path, tmp_path / "RESULTS.md").read_text()
    assert "| 10 | 0.920 | 0.953 |" in md  # ours beside seed 000 Table Ia
    assert "| pca+gmm | 0.850 | 0.934 ± 0.013 |" in md
    assert "≥ 3 points above the best baseline (0.850) → **yes**" in md


def test_clustering_results_render_with_verdicts(tmp_path):
    def row(method, seed, acc, nmi=0.5):
        return {"method": method, "seed": seed, "nan": False, "acc_hungarian": acc, "acc_majority": acc,
                "nmi": nmi, "ari": 0.4, "seconds": 1.0, "train_seconds": 600.0}

    runs = [row("vade", 0, 0.92), row("vade", 1, 0.90), row("pca+gmm", 0, 0.60), row("pca+gmm", 1, 0.58),
            row("n2d [same AE]", 0, 0.99), row("vade, γ at mean [same run]", 0, 0.98),
            row("labelled probe [same run]", 0, 0.95), row("labelled probe [same run]", 1, 0.97),
            row("vade, restart 1 [same seed]", 0, 0.97), row("vade, restart 1 [same seed]", 1, 0.99)]
    data = {"experiment": "clustering_mnist5k", "score": "acc_hungarian", "seeds": [0, 1],
            "targets": {"acc_mean": 0.90, "acc_sd": 0.02, "margin": 0.35, "train_minutes": 20},
            "data": {"spec": "builtin:mnist5k", "n": 10, "shape": [28, 28, 1], "class_counts": [5, 5]},
            "config": {"name": "mnist-vade", "model": {}, "train": {}}, "runs": runs, "wall_seconds": 60}
    (tmp_path / "clustering_mnist5k.json").write_text(json.dumps(data))
    md = C.write_results_md(tmp_path, tmp_path / "RESULTS.md").read_text()
    assert "| **vade** | 0.910 ± 0.014 |" in md
    assert "- mean ≥ 0.9: **yes**" in md and "- sd ≤ 0.02: **yes**" in md
    # the [same AE], [same run] and [same seed] rows are shown but are not competing baselines; 0.91 < 0.59 + 0.35
    assert "| vade, γ at mean [same run] | 0.980 |" in md and "Rows marked [same run]" in md
    assert "| vade, restart 1 [same seed] | 0.980 ± 0.014 |" in md and "Rows marked [same seed]" in md
    assert "best baseline (pca+gmm 0.590) + 0.35: **no**" in md
    # the labelled probe is a reference read beside VaDE, never a baseline: 0.91 of 0.96
    assert "rows are no clustering" in md and "(labelled probe [same run], 5-fold): 0.960; VaDE reaches 94.8% of it; the target (0.940) is below it" in md
    assert "seeds at or below the best baseline: 0 of 2" in md
    assert "supervised ceiling" not in md  # no ceiling_mnist5k.json: no ceiling line
    data["note"] = "VaDE rows rerun on another machine."  # a merged file says where its rows come from
    (tmp_path / "clustering_mnist5k.json").write_text(json.dumps(data))
    md = C.write_results_md(tmp_path, tmp_path / "RESULTS.md").read_text()
    assert "the codes hold. VaDE rows rerun on another machine.\n" in md
    del data["note"]
    assert "invariant encoder" not in md
    for model, words in [({"rotation_invariant": True}, "; mlp VaDE (J = 10, AR off, rotation-invariant encoder, "),
                         ({"rotation_invariant": True, "mirror_invariant": True},
                          "; mlp VaDE (J = 10, AR off, rotation- and mirror-invariant encoder, ")]:
        data["config"]["model"] = {"architecture": "mlp", "latent_dim": 10, **model}
        (tmp_path / "clustering_mnist5k.json").write_text(json.dumps(data))
        assert words in C.write_results_md(tmp_path, tmp_path / "RESULTS.md").read_text()
    data["config"]["model"] = {}

    ceiling = {"experiment": "ceiling_mnist5k", "set": "mnist5k", "preset": "mnist-vade",
               "data": {"spec": "builtin:mnist5k", "n": 10, "n_fresh": 100, "fresh_seed": 101, "scaling": "none",
                        "class_counts": [5, 5]},
               "runs": [{"features": "pixels", "scaling": "none", "n_features": 784, "acc_cv5_benchmark_set": 0.93,
                         "acc_trained_on_fresh": 0.95, "seconds": 3.0}]}
    (tmp_path / "ceiling_mnist5k.json").write_text(json.dumps({**ceiling}))
    data["set"] = "mnist5k"
    (tmp_path / "clustering_mnist5k.json").write_text(json.dumps(data))
    md = C.write_results_md(tmp_path, tmp_path / "RESULTS.md").read_text()
    assert "| pixels (784) | none | 0.930 | 0.950 | 3 |" in md
    # the target is max(0.90, 0.59 + 0.35 = 0.94): below the 0.95 ceiling; VaDE 0.91 / 0.95
    assert "supervised ceiling" in md and ": 0.950; VaDE reaches 95.8% of it; the target (0.940) is below it" in md
    # and the same classifier with only the benchmark stamps' own labels (5-fold CV): 0.93, below the target
    assert ("supervised with the benchmark stamps' own labels (`ceiling_mnist5k`: HGB on pixels, none, 5-fold CV on "
            "the 10 stamps): 0.930; VaDE, without a label, reaches 97.8% of it; the target (0.940) is above it") in md
    assert "data seed" not in md
    # fresh stamps (another data seed): named in the caption, and the ceiling of other stamps is not quoted
    data["config"]["data"] = {"seed": 1}
    (tmp_path / "clustering_mnist5k.json").write_text(json.dumps(data))
    md = C.write_results_md(tmp_path, tmp_path / "RESULTS.md").read_text()
    assert "(28, 28, 1), generated with data seed 1 (fresh stamps the preset was not tuned on); " in md
    assert "supervised ceiling" not in md
    # other stamps of the same set name (another built-in set, or a subset) are not compared with it either
    data["config"]["data"] = {"seed": 0}
    for other in ({"spec": "builtin:digits"}, {"class_counts": [5, 2]}):
        (tmp_path / "clustering_mnist5k.json").write_text(json.dumps({**data, "data": {**data["data"], **other}}))
        assert "supervised ceiling" not in C.write_results_md(tmp_path, tmp_path / "RESULTS.md").read_text()
    # a ceiling of the same stamps under another file name is found and named
    (tmp_path / "ceiling_mnist5k.json").unlink()
    (tmp_path / "ceiling_mnist5k_other.json").write_text(json.dumps(ceiling))
    (tmp_path / "clustering_mnist5k.json").write_text(json.dumps(data))
    assert "supervised ceiling (`ceiling_mnist5k_other`: HGB on pixels" in C.write_results_md(
        tmp_path, tmp_path / "RESULTS.md").read_text()
    # a VaDE-only variant file (no baselines, no targets): the probe and ceiling lines name no target
    bare = {**data, "targets": {}, "runs": [r for r in runs if r["method"] != "pca+gmm"]}
    (tmp_path / "clustering_mnist5k.json").write_text(json.dumps(bare))
    md = C.write_results_md(tmp_path, tmp_path / "RESULTS.md").read_text()
    assert "5-fold): 0.960; VaDE reaches 94.8% of it\n" in md and "0.950; VaDE reaches 95.8% of it\n" in md
    assert "the target" not in md


def test_labelled_probe_is_out_of_fold():
    """The probe's predictions are cross-validated: perfect on separable codes, chance on codes
    that carry nothing (an in-sample fit of 20 features to these 120 random labels scores 0.52)."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 40)
    z = rng.normal(size=(120, 20))
    assert (quality._probe_labels(z + 10.0 * y[:, None], y, seed=0) == y).all()
    assert np.mean(quality._probe_labels(z, y, seed=0) == y) < 0.5
    assert (quality._probe_labels(z[:5], np.zeros(5, int), seed=0) == 0).all()  # one class: nothing to learn


def test_config_line_names_invariance_augmentation_and_anchoring():
    from benchmarks.tables import _cfg_line

    cfg = {"model": {"architecture": "hits", "rotation_invariant": True, "components_per_cluster": 3},
           "train": {"recipe": "classic", "anchor_epochs": 80},
           "data": {"flips": True, "rot90": False, "shift": 0.0, "rotate": 15.0}}
    line = _cfg_line({"config": cfg, "data": {}})
    assert "rotation-invariant encoder, 3 Gaussians per cluster, augmentation flips + rotate, " in line
    assert "γ anchored to it for 80 epochs" in line
    plain = _cfg_line({"config": {"model": {}, "train": {"recipe": "classic", "anchor_epochs": 0},
                                  "data": {"flips": False}}, "data": {}})
    assert not any(w in plain for w in ("rotation-invariant", "Gaussians per cluster", "augmentation", "anchored"))


def test_class_fractions_make_a_fixed_imbalanced_subset_and_are_named_in_the_table():
    from astrovader.data.stampset import StampSet
    from benchmarks.tables import _cfg_line

    st = StampSet(images=np.zeros((20, 4, 4, 1), "float32"), labels=np.arange(20) % 2,
                  ids=[f"s{i:02d}" for i in range(20)])
    a = quality._keep_class_fractions(st, [1.0, 0.2])
    assert np.bincount(a.labels).tolist() == [10, 2]
    assert list(a.ids) == sorted(a.ids)  # the stamps keep their order
    assert list(a.ids) == list(quality._keep_class_fractions(st, [1.0, 0.2]).ids)  # and the same ones every time
    assert set(a.ids) > {f"s{i:02d}" for i in range(0, 20, 2)}
    for bad in ([1.0], [1.0, 0.0], [1.0, 1.5]):
        with pytest.raises(SystemExit, match="one fraction in"):
            quality._keep_class_fractions(st, bad)
    line = _cfg_line({"config": {"model": {}, "train": {}, "data": {}},
                      "data": {"n": 12, "class_fractions": [1.0, 0.2]}})
    assert "N = 12 (), imbalanced: 1, 0.2 of each class kept; " in line


def test_shape_features_are_rotation_invariant_and_match_numpy():
    from benchmarks.quality import _shape_features

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 16, 16, 1)).astype(np.float32)
    x[0, 6:10, 4:12, 0] += 5.0  # an elongated blob
    f = _shape_features(x)
    assert f.shape == (3, 8 + 3)
    assert np.allclose(f, _shape_features(np.rot90(x, 1, axes=(1, 2))), atol=1e-5)
    assert np.allclose(f, _shape_features(x[:, ::-1]), atol=1e-5)
    # ring 0 = the 4 central pixels of an even stamp (radius sqrt(0.5)); the blob is elongated: e > 0.5
    assert np.isclose(f[0, 0], x[0, 7:9, 7:9, 0].mean())
    assert f[0, 8] > 0.5 > f[1, 8]


def test_ceiling_quick_run_writes_both_scalings_and_feature_sets(tmp_path):
    assert quality.main(["--experiments", "ceiling_demo", "--quick", "--results-dir", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "quick_ceiling_demo.json").read_text())
    from astrovader.config import load_preset

    assert {(r["scaling"], r["features"]) for r in data["runs"]} == {  # the preset's scaling and the raw pixels
        (s, f) for s in (load_preset("demo").data.scaling, "none") for f in ("pixels", "shape features")}
    for r in data["runs"]:  # two balanced classes: a working classifier is far above chance
        assert 0.7 < r["acc_cv5_benchmark_set"] <= 1 and 0.7 < r["acc_trained_on_fresh"] <= 1
        assert sum(map(sum, r["confusion_fresh"])) == data["data"]["n"] == 300


def _tiny_mnist_preset(tmp_path, monkeypatch, name: str, **train) -> None:
    """``mnist-vade`` shrunk to a 12x12 MLP on built-in digits, saved as preset ``name``."""
    import yaml

    cfg = yaml.safe_load((Path(quality.__file__).parents[1] / "models" / "mnist-vade.yaml").read_text())
    cfg["name"] = name
    cfg["model"].update(input_shape=[12, 12, 1], hidden_units=[16], latent_dim=2, components_per_cluster=1)
    cfg["train"].update(init_restarts=1, **train)
    cfg["data"].update(spec="builtin:digits", shift=0.0, rotate=0.0)
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("ASTROVADER_PRESETS", str(presets))


def test_clustering_run_resizes_stamps_to_a_presets_fixed_input_shape(tmp_path, monkeypatch):
    """A preset built for 12x12 stamps, benchmarked on 8x8 digits: every row is scored (the snapshot
    of the pretrained codes sees the stamps as the network does, not the raw 8x8 arrays)."""
    _tiny_mnist_preset(tmp_path, monkeypatch, "tiny-digits")
    assert quality.main(["--experiments", "clustering_mnist5k", "--preset", "tiny-digits", "--methods", "vade",
                         "--quick", "--n", "200", "--class-fractions", "1,1,1,1,1,1,1,1,1,0.5",
                         "--results-dir", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "quick_clustering_mnist5k.json").read_text())
    assert data["data"]["class_fractions"][-1] == 0.5 and data["data"]["n"] < 200
    runs = data["runs"]
    assert {r["method"] for r in runs} >= {"vade", "n2d [same AE]", "vade at init [same AE]",
                                           "labelled probe [same AE]", "labelled probe [same run]"}
    for r in runs:
        assert not r["nan"] and 0.0 < r["acc_hungarian"] <= 1.0


def test_clustering_benchmark_pretrains_for_the_presets_updates_like_fit_run(tmp_path, monkeypatch):
    """train.pretrain_updates is resolved on the benchmark's stamps before anything trains, so the
    snapshot of the pretrained codes and the autoencoder baselines use VaDE's pretraining length."""
    _tiny_mnist_preset(tmp_path, monkeypatch, "tiny-updates", pretrain_epochs=1, pretrain_updates=2, vade_epochs=1,
                       batch_size=200)
    assert quality.main(["--experiments", "clustering_mnist5k", "--preset", "tiny-updates", "--methods", "vade",
                         "--seeds", "0", "--n", "200", "--results-dir", str(tmp_path), "--no-markdown"]) == 0
    data = json.loads((tmp_path / "clustering_mnist5k.json").read_text())
    assert data["config"]["train"]["pretrain_epochs"] == 2  # 200 stamps in one batch: 2 updates = 2 epochs
    assert {r["method"] for r in data["runs"]} >= {"vade", "n2d [same AE]", "vade at init [same AE]"}


def test_clustering_benchmark_scores_every_restart_and_the_vade_row_is_the_kept_one(tmp_path, monkeypatch):
    _tiny_mnist_preset(tmp_path, monkeypatch, "tiny-restarts", pretrain_epochs=1, pretrain_updates=2, vade_epochs=1,
                      restarts=2)
    assert quality.main(["--experiments", "clustering_mnist5k", "--preset", "tiny-restarts", "--methods", "vade",
                         "--seeds", "0", "--n", "200", "--results-dir", str(tmp_path), "--no-markdown"]) == 0
    rows = {r["method"]: r for r in json.loads((tmp_path / "clustering_mnist5k.json").read_text())["runs"]}
    vade = rows["vade"]
    assert len(vade["restart_negative_elbo"]) == 2 and {"vade, restart 0 [same seed]", "vade, restart 1 [same seed]"} <= set(rows)
    assert vade["restart_agreement"][0] == vade["restart_agreement"][1]  # two restarts: a tie, so the ELBO decides
    assert vade["restart_chosen"] == int(np.argmin(vade["restart_negative_elbo"]))
    kept = rows[f"vade, restart {vade['restart_chosen']} [same seed]"]
    assert (kept["acc_hungarian"], kept["nmi"]) == (vade["acc_hungarian"], vade["nmi"])


def test_explicit_phase_lengths_switch_off_the_presets_minimum_updates():
    """``--gamma-epochs`` etc. (and ``--quick``) are the schedule asked for, not raised to ``schedule_updates``."""
    from argparse import Namespace

    from astrovader.config import load_preset

    flags = dict.fromkeys(["pretrain_epochs", "vade_epochs", "vae_epochs", "learning_rate", "gamma_epochs",
                           "periods", "anneal_epochs", "static_epochs", "batch_size"])
    demo = load_preset("demo").override("train", recipe="s3vdc", gamma_epochs=6, anneal_epochs=3, static_epochs=4,
                                        periods=2, schedule_updates=500)  # the s3VDC demo of sessions 27-33
    assert quality._shorten(demo, Namespace(**flags)).train.schedule_updates == 500  # no flag: the preset's
    t = quality._shorten(demo, Namespace(**{**flags, "gamma_epochs": 1})).train
    assert t.schedule_updates == 0 and t.resolve_updates(1).total_epochs() == 1 + 2 * (3 + 4)


def test_plain_baseline_network_drops_every_invariance():
    from astrovader.config import load_preset

    cfg = load_preset("galaxies")
    assert cfg.model.rotation_invariant and cfg.model.mirror_invariant
    plain = quality._plain(cfg)
    plain.model.input_shape = (32, 32, 1)
    plain.validate()  # a mirror-invariant encoder without rotations would be refused
    assert not plain.model.rotation_invariant and not plain.model.mirror_invariant
    assert not (plain.data.flips or plain.data.rotate or plain.data.shift)
    jittered = quality._plain(load_preset("mnist-vade")).data  # its shift is a fraction of the stamp side
    assert not (jittered.shift or jittered.shift_fraction or jittered.rotate)


def test_clustering_jobs_of_other_seeds_or_methods_keep_each_others_rows(tmp_path):
    """A job replaces only the (method, seed) rows it runs: seeds run as separate jobs add up."""
    def run(methods, seeds):
        assert quality.main(["--experiments", "clustering_mnist5k", "--methods", methods, "--seeds", seeds,
                             "--n", "200", "--results-dir", str(tmp_path), "--no-markdown"]) == 0
        data = json.loads((tmp_path / "clustering_mnist5k.json").read_text())
        return sorted((r["method"], r["seed"]) for r in data["runs"]), data["seeds"]

    run("kmeans,pca+gmm", "0")
    assert run("kmeans", "1") == ([("kmeans", 0), ("kmeans", 1), ("pca+gmm", 0)], [0, 1])
    assert run("kmeans", "0")[0] == [("kmeans", 0), ("kmeans", 1), ("pca+gmm", 0)]  # replaced, not doubled
    # the file now holds seed 1's row before seed 0's; the per-seed line of the table lists them in seed order
    data = json.loads((tmp_path / "clustering_mnist5k.json").read_text())
    assert [r["seed"] for r in data["runs"] if r["method"] == "kmeans"] == [1, 0]
    for r in data["runs"]:
        r["method"] = "vade" if r["method"] == "kmeans" else r["method"]
    md = "\n".join(tables.render_clustering("clustering_mnist5k", data))
    assert re.search(r"^VaDE per seed: 0: [0-9.]+, 1: [0-9.]+$", md, re.M), md


def test_clustering_job_with_other_settings_stops_before_touching_the_rows(tmp_path):
    """Rows of one result file share one preset and one set of stamps: a job with other
    settings is refused with the field named, and the file is left as it was."""
    def run(*extra):
        return quality.main(["--experiments", "clustering_mnist5k", "--methods", "kmeans", "--seeds", "0",
                             "--results-dir", str(tmp_path), "--no-markdown", *extra])

    assert run("--n", "200") == 0
    path = tmp_path / "clustering_mnist5k.json"
    before = path.read_text()
    with pytest.raises(SystemExit, match=r"clustering_mnist5k.json holds rows run with other settings "
                                         r"\(data.n: 200 -> 150\); give this job another --results-dir"):
        run("--n", "150")
    with pytest.raises(SystemExit, match=r"\(stamps n: 200 -> 190\)"):
        run("--n", "200", "--class-fractions", "1,1,1,1,1,1,1,1,1,0.5")
    assert path.read_text() == before
    assert run("--n", "200", "--seeds", "1") == 0  # the same settings add up


def test_settings_clash_compares_only_fields_both_sides_have():
    result = {"config": {"model": {"n_clusters": 10}, "train": {"pretrain": "ae"}, "data": {}},
              "data": {"spec": "builtin:x", "n": 5}}
    data = {"spec": "builtin:x", "n": 5}
    newer = {"model": {"n_clusters": 10, "new_field": 1}, "train": {"pretrain": "ae"}, "data": {}}
    assert quality.settings_clash(result, newer, data) is None
    assert quality.settings_clash(result, {**newer, "train": {"pretrain": "noisy_ae"}}, data) == \
        "train.pretrain: 'ae' -> 'noisy_ae'"
    assert quality.settings_clash(result, newer, {**data, "n": 6}) == "stamps n: 5 -> 6"


@pytest.mark.parametrize("n, clash", [(5000, None), (1797, "train.pretrain_epochs: 267 -> 534")])
def test_settings_clash_compares_the_epochs_a_minimum_of_updates_resolves_to(n, clash):
    """A preset whose minimum number of pretraining updates changed ran the same where the stamps'
    epochs did not change (5,000 stamps: 200 epochs of 40 batches either way) and not elsewhere."""
    from astrovader.config import load_preset

    def resolved(updates):
        cfg = load_preset("mnist-vade").override("train", batch_size=128, pretrain_epochs=200, pretrain_updates=updates)
        return quality.resolve_for_stamps(cfg, np.zeros((n, 28, 28, 1), np.float32)).to_dict()

    data = {"spec": "builtin:x", "n": n}
    assert quality.settings_clash({"config": resolved(4000), "data": data}, resolved(8000), data) == clash


@pytest.mark.parametrize("shape, fraction, clash", [
    ([8, 8, 1], 0.1, None), ([28, 28, 1], 0.1, "data.shift: 0.8 px -> 2.8 px"), ([8, 8, 1], 0.2, "data.shift: 0.8 px -> 1.6 px")])
def test_settings_clash_compares_the_shift_in_pixels_on_the_stamps(shape, fraction, clash):
    """0.8 px on 8x8 stamps ran as a tenth of their side did; the same fraction of 28 px did not."""
    recorded = {"config": {"data": {"shift": 0.8, "rotate": 10.0}}, "data": {"spec": "builtin:x", "shape": [8, 8, 1]}}
    job, stamps = {"data": {"shift": 0.0, "shift_fraction": fraction, "rotate": 10.0}}, {"spec": "builtin:x", "shape": shape}
    if shape != [8, 8, 1]:  # rows of 0.8 px on 28x28 stamps: a tenth of those is 2.8 px
        recorded["data"]["shape"] = shape
    assert quality.settings_clash(recorded, job, stamps) == clash


@pytest.mark.parametrize("set_name", sorted(quality.CLUSTERING_SETS))
def test_committed_clustering_rows_record_the_shipped_presets_settings(set_name):
    """Each shipped preset's committed benchmark (RESULTS.md's headline rows) was run with the
    preset as it ships: a changed preset needs its rows rerun (or the old rows renamed)."""
    from astrovader.config import load_preset

    result = json.loads((Path(C.RESULTS_DIR) / f"clustering_{set_name}.json").read_text())
    cfg = load_preset(quality.CLUSTERING_SETS[set_name]["preset"])
    quality.resolve_for_stamps(cfg, np.zeros((result["data"]["n"], *result["data"]["shape"]), np.float32))
    assert quality.settings_clash(result, cfg.to_dict(), result["data"]) is None
