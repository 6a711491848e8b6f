"""``train.restarts``: R whole runs, the most stable one kept (ties: the highest ELBO), no labels read."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from astrovader import runs
from astrovader.cli import main
from astrovader.config import load_config
from astrovader.data import load
from astrovader.errors import AstrovaderError, ConfigError
from cli_helpers import tiny_config, tiny_npz


def _cfg(tmp_path, restarts=2, **train):
    data = tiny_npz(tmp_path / "tiny.npz", n=80)
    cfg = runs.configure(load_config(tiny_config(tmp_path / "tiny.yaml")), data=str(data), seed=3)
    return cfg.override("train", restarts=restarts, **train)


class _Unreadable:
    """Stands in for the labels: any use of it fails the test."""

    def __getattr__(self, name):
        raise AssertionError("train.restarts read the labels")

    def _fail(self, *args, **kwargs):
        raise AssertionError("train.restarts read the labels")

    __len__ = __iter__ = __getitem__ = __array__ = __bool__ = __eq__ = _fail


def test_two_restarts_tie_on_agreement_keep_the_highest_elbo_read_no_label_and_restart_0_is_the_single_run(tmp_path):
    """Under MirroredStrategy (2 replicas), on stamps whose labels cannot be read."""
    import tensorflow as tf

    assert len(tf.config.list_logical_devices("CPU")) >= 2
    cfg = _cfg(tmp_path)
    stamps = load(cfg.data)
    blind = load(cfg.data)
    object.__setattr__(blind, "labels", _Unreadable())
    model, _, run = runs.fit_run(cfg, tmp_path / "r2", verbose=0, stamps=blind, strategy="mirrored")
    rec = json.loads((run.restarts / "chosen.json").read_text())
    losses = [r["negative_elbo"] for r in rec["restarts"]]
    assert [r["seed"] for r in rec["restarts"]] == [3, 3 + runs.RESTART_SEED_STRIDE]
    assert rec["restarts"][0]["agreement"] == rec["restarts"][1]["agreement"]  # the ARI of the pair, both ways
    assert rec["chosen"] == int(np.argmin(losses)) and np.all(np.isfinite(losses))
    chosen = runs.Run.open(run.restarts / str(rec["chosen"]))
    # the run's model and history are the kept restart's, and each restart a run of its own
    assert (run.path / "model.keras").read_bytes() == chosen.model_path.read_bytes()
    assert run.history.read_text() == chosen.history.read_text()
    for a, b in zip(model.get_weights(), chosen.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert runs.Run.open(run.restarts / "1").cfg.train.seed == 3 + runs.RESTART_SEED_STRIDE
    assert runs.Run.open(run.path).cfg.train.restarts == 2
    assert runs.evaluate_run(run, stamps=stamps, n_samples=0)["restarts"] == rec  # metrics.json says which run
    # the criterion is the negative ELBO on the stamps, the same number outside the strategy from the saved model
    again = runs.negative_elbo(runs.Run.open(run.restarts / "1").model, stamps.images)
    assert again == pytest.approx(losses[1], rel=1e-5)

    # restart 0 is the run train.restarts: 1 trains: same seed, same weights
    single, _, _ = runs.fit_run(cfg.override("train", restarts=1), tmp_path / "r1", verbose=0, stamps=stamps,
                                strategy="mirrored")
    for a, b in zip(single.get_weights(), runs.Run.open(run.restarts / "0").model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_the_restarts_flag_is_train_restarts(tmp_path):
    from astrovader.cli import build_parser
    from astrovader.cli._common import resolve_config

    cfg = _cfg(tmp_path, restarts=1)
    train = ["train", "--config", str(tmp_path / "tiny.yaml"), "--out", str(tmp_path / "x")]
    for argv, restarts in ((train, 1), (train + ["--restarts", "3"], 3), (["demo"], 1), (["demo", "--restarts", "3"], 3)):
        assert resolve_config(build_parser().parse_args(argv)).train.restarts == restarts
    assert runs.configure(cfg, restarts=3).train.restarts == 3 and runs.configure(cfg).train.restarts == 1


def test_restarts_resume_after_sigkill_continues_the_unfinished_restart_and_keeps_the_finished_one(tmp_path,
                                                                                                    monkeypatch):
    """`astrovader train --restarts 3` killed (SIGKILL) while restart 1 trains, then `--resume`."""
    data = tiny_npz(tmp_path / "tiny.npz", n=160)
    out = tmp_path / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "astrovader", "train", "--config", str(tiny_config(tmp_path / "tiny.yaml")),
           "--data", str(data), "--out", str(out), "--epochs", "8", "--restarts", "3", "--seed", "3",
           "--verbose", "0"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    meta = out / "restarts" / "1" / "backup" / "training_metadata.json"
    deadline, killed = time.time() + 300, False
    while time.time() < deadline and proc.poll() is None:
        try:
            if json.loads(meta.read_text())["epoch"] >= 3:
                proc.send_signal(signal.SIGKILL)
                killed = True
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert killed, f"training ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    assert not (out / "model.keras").exists() and not (out / "restarts" / "2").exists()
    first = (out / "restarts" / "0" / "model.keras").read_bytes()
    with pytest.raises(AstrovaderError, match="unfinished run"):
        runs.fit_run(load_config(out / "config.yaml"), out, verbose=0)  # neither --resume nor --overwrite
    assert main(["train", "--out", str(out), "--resume", "--verbose", "0"]) == 0
    assert (out / "restarts" / "0" / "model.keras").read_bytes() == first  # not retrained
    epochs = [int(r.split(",")[0]) for r in (out / "restarts" / "1" / "history.csv").read_text().splitlines()[1:]]
    assert epochs == list(range(8))  # the killed restart went on from its last finished epoch
    run = runs.Run.open(out)
    rec = json.loads((run.restarts / "chosen.json").read_text())
    assert len(rec["restarts"]) == 3 and run.finished
    # three restarts: the one whose clusters agree best with the other two (mean ARI) is kept
    stamps = load(run.cfg.data)
    labels = [runs.Run.open(run.restarts / str(i)).model.cluster_probabilities(stamps.images).argmax(1)
              for i in range(3)]
    agreement = [np.mean([adjusted_rand_score(labels[i], labels[j]) for j in range(3) if j != i]) for i in range(3)]
    np.testing.assert_allclose([r["agreement"] for r in rec["restarts"]], agreement, atol=1e-9)
    best = max(agreement)
    assert agreement[rec["chosen"]] == pytest.approx(best)
    assert rec["chosen"] == min((i for i in range(3) if agreement[i] == pytest.approx(best)),
                                key=lambda i: rec["restarts"][i]["negative_elbo"])
    # chosen.json is written whole or not at all: a write that fails half-way leaves none
    run.model_path.unlink()
    (run.restarts / "chosen.json").unlink()
    write_text = Path.write_text

    def fail_half_way(self, text, *args, **kwargs):
        if not self.name.startswith("chosen.json"):
            return write_text(self, text, *args, **kwargs)
        write_text(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError("No space left on device")

    with monkeypatch.context() as m:
        m.setattr(Path, "write_text", fail_half_way)
        with pytest.raises(OSError, match="No space"):
            runs.fit_run(None, out, resume=True, verbose=0)  # every restart finished: only the choice is redone
    assert not (run.restarts / "chosen.json").exists() and not run.finished
    runs.fit_run(None, out, resume=True, verbose=0)
    assert json.loads((run.restarts / "chosen.json").read_text()) == rec and run.finished
    # --overwrite starts every restart again
    with runs.Run.create(out, overwrite=True):
        assert not run.restarts.exists() and not run.model_path.exists()


def test_restarts_config_is_checked():
    from astrovader.config import TrainConfig

    with pytest.raises(ConfigError, match="train.restarts"):
        TrainConfig(restarts=0).validate()
    with pytest.raises(ConfigError, match="train.restarts"):
        TrainConfig(restarts=2, recipe="supervised").validate()


def test_models_without_clusters_tie_on_agreement_so_the_elbo_decides(tmp_path):
    """A plain VAE (recipe ``vae``) has no clusters to compare: every restart agrees 1.0 and the
    lowest negative ELBO is kept."""
    cfg = _cfg(tmp_path, restarts=2, recipe="vae", vae_epochs=1)
    model, stamps, run = runs.fit_run(cfg, tmp_path / "vae", verbose=0)
    assert not hasattr(model, "cluster_probabilities")
    rec = json.loads((run.restarts / "chosen.json").read_text())
    assert [r["agreement"] for r in rec["restarts"]] == [1.0, 1.0]
    assert rec["chosen"] == int(np.argmin([r["negative_elbo"] for r in rec["restarts"]]))


def test_negative_elbo_uses_its_seeds_draws_and_leaves_the_models_sampling_state_as_it_was():
    from astrovader.config import load_preset
    from astrovader.models import build_model

    mcfg = load_preset("demo").model
    mcfg.input_shape, mcfg.filters, mcfg.latent_dim = (12, 12, 1), [4, 4, 4, 4], 2
    model = build_model(mcfg, "vade")
    x = np.random.default_rng(0).normal(size=(300, 12, 12, 1)).astype("float32")  # two batches of 256
    state = np.asarray(model.sampling.seed_generator.state).copy()
    a, b, other = runs.negative_elbo(model, x), runs.negative_elbo(model, x), runs.negative_elbo(model, x, seed=1)
    assert a == b != other and np.isfinite(a)
    np.testing.assert_array_equal(np.asarray(model.sampling.seed_generator.state), state)
