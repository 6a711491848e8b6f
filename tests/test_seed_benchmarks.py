"""benchmarks/seed_systems.py: --help, argument errors, a --quick smoke run and the renderers."""

import json

import pytest

from benchmarks import seed_systems, tables


def test_help(capsys):
    with pytest.raises(SystemExit) as exc:
        seed_systems.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--quick" in out and "seed001" in out


def test_unknown_experiment_exits_2(capsys):
    assert seed_systems.main(["--experiments", "seed999"]) == 2
    assert "unknown experiment" in capsys.readouterr().err


def test_quick_seed001_writes_json_and_table(tmp_path):
    results = tmp_path / "results"
    assert seed_systems.main(["--quick", "--experiments", "seed001", "--n", "90", "--results-dir", str(results)]) == 0
    data = json.loads((results / "seed001_transients.json").read_text())
    assert {r["method"] for r in data["runs"]} == {"scae", "cvae", "ipca", "sdl"}
    md = (tmp_path / "RESULTS.md").read_text()
    assert "SCAE vs CVAE vs IPCA vs SDL" in md and "Seed 001's ordering" in md


def test_seed002_renderers():
    run = {"seed": 0, "method": "V+M", "auc": 0.8, "auc_tsne": 0.7, "accuracy": 0.75, "auc_mlp": 0.9}
    data = {"data": {"spec": "builtin:stargal5", "n": 10, "shape": [32, 32, 5], "galaxy_fraction": 0.5},
            "runs": [run, {**run, "seed": 1, "auc": 0.9}], "seeds": [0, 1], "epochs": 2, "wall_seconds": 60}
    assert "| V+M | 0.850 ± 0.071 |" in "\n".join(tables.render_seed002("seed002_stargal", data))
    seg = {"data": {"fields": 2, "size": 64, "truth": "t"}, "seeds": [0], "epochs": 1, "wall_seconds": 6,
           "runs": [{"skip_ae_hypercolumns": 0.5, "ae_hypercolumns": 0.4, "threshold_2sigma": 0.3}]}
    assert "| skip_ae_hypercolumns | 0.500 |" in "\n".join(tables.render_seed002("seed002_segmentation", seg))
