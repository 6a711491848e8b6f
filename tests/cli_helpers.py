"""Tiny data and configs shared by the CLI tests (imported by test_cli*.py)."""

from pathlib import Path

import numpy as np
import yaml

from astrovader.config import load_preset

N, SIDE = 120, 12


def tiny_npz(path: Path, n: int = N, side: int = SIDE, bands: int = 1, seed: int = 0) -> Path:
    """Two classes: a centred blob on noise (label 1) or noise only (label 0)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side]
    blob = np.exp(-((yy - side / 2) ** 2 + (xx - side / 2) ** 2) / 4.0)
    labels = np.arange(n) % 2
    x = 0.2 * rng.normal(size=(n, side, side, bands)).astype("float32")
    x[labels == 1] += blob[None, ..., None].astype("float32")
    np.savez(path, images=x, labels=labels, ids=np.array([f"obj{i:04d}" for i in range(n)]))
    return path


def tiny_config(path: Path, recipe: str = "s3vdc") -> Path:
    """A tiny conv VaDE (the `hits` layout with 4 maps) from the `demo` preset's remaining settings."""
    cfg = load_preset("demo").to_dict()
    cfg["name"] = "tiny"
    cfg["model"].update(architecture="hits", input_shape=None, filters=[4, 4, 4, 4], kernel_sizes=[3, 3, 3, 3],
                        latent_dim=2, n_clusters=2, mc_samples=1, mirror_invariant=False, reconstruction="mse",
                        decoder_variance=False)
    cfg["train"].update(recipe=recipe, batch_size=40, gmm_batches=2, gamma_epochs=1, periods=1, restarts=1,
                        anneal_epochs=1, static_epochs=1, pretrain_epochs=1, vade_epochs=1, final_learning_rate=None,
                        schedule_updates=0, learning_rate=1e-3, clipnorm=10.0, init="gmm", init_restarts=1,
                        init_refine_steps=0, anchor_epochs=0, recluster=False, validation_fraction=0.0)
    cfg["data"].update(n=None, spec="unused", scaling="zscore")
    path.write_text(yaml.safe_dump(cfg))
    return path


def user_error(capsys, argv, *needles) -> str:
    """Run the CLI with ``argv``: exit 2, one ``astrovader: error:`` line naming every needle, no traceback.

    Returns the error line.
    """
    from astrovader.cli import main

    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("astrovader: error:")]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert str(needle) in lines[0], (needle, lines[0])
    return lines[0]
