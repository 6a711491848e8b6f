"""`pip install -e .` without extras is enough to train (issue 10, must show 4).

The test extras (TensorFlow Probability, tf-keras, pytest) and the ``sim`` extra (sep,
scikit-image) are blocked in a fresh interpreter, which then trains the ``demo`` preset as
``astrovader train --preset demo --out r --epochs 2`` does (on fewer stamps).
"""

import ast
import configparser
import os
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..")

#: import names of the packages that only the extras install
EXTRAS_ONLY = ("tensorflow_probability", "tf_keras", "sep", "skimage", "pytest")
#: import name -> distribution name where they differ
_DIST = {"sklearn": "scikit-learn", "PIL": "pillow", "yaml": "pyyaml", "keras_tuner": "keras-tuner",
         "umap": "umap-learn", "absl": "tensorflow"}

_BLOCKED_RUN = f"""
import sys
for name in {EXTRAS_ONLY!r}:
    sys.modules[name] = None  # `import name` now raises ImportError, as when it is not installed
from astrovader.cli import main
code = main(["train", "--preset", "demo", "--out", sys.argv[1], "--epochs", "2", "--n", "120", "--verbose", "0"])
loaded = sorted(n for n in {EXTRAS_ONLY!r} if sys.modules.get(n) is not None)
print("loaded extras:", loaded)
sys.exit(code)
"""


@pytest.mark.slow
def test_train_the_demo_preset_without_the_extras(tmp_path):
    res = subprocess.run([sys.executable, "-c", _BLOCKED_RUN, str(tmp_path / "r")], capture_output=True,
                         text=True, timeout=900, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "loaded extras: []" in res.stdout
    assert (tmp_path / "r" / "model.keras").is_file()


def _install_requires():
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    names = set()
    for line in cfg["options"]["install_requires"].strip().splitlines():
        name = line.strip().split(";")[0]
        for sep in ("[", "=", "<", ">", "!", "~"):
            name = name.split(sep)[0]
        names.add(name.strip().lower())
    return names


def _module_level_imports(tree):
    """Top-level names imported when the module is imported (not inside functions or classes)."""
    stack, found = list(tree.body), []
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import):
            found += [(a.name.split(".")[0], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module.split(".")[0], node.lineno))
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                stack += getattr(node, field, [])
        elif isinstance(node, ast.ExceptHandler):
            stack += node.body
    return found


def test_modules_import_only_runtime_requirements_at_import_time():
    """Packages outside ``install_requires`` are imported lazily, inside the functions that need them."""
    required = _install_requires()
    offenders = []
    for dirpath, _, files in os.walk(os.path.join(ROOT, "astrovader")):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            for mod, line in _module_level_imports(ast.parse(open(path).read())):
                if mod in ("astrovader", "__future__") or mod in sys.stdlib_module_names:
                    continue
                if _DIST.get(mod, mod).lower() not in required:
                    offenders.append(f"{os.path.relpath(path, ROOT)}:{line} imports {mod}")
    assert offenders == []
