"""Dependencies: install_requires holds what the package imports at run time, extras mean something."""

import ast
import configparser
import os
import sys

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..")

#: import name -> distribution name, where they differ
_DIST = {"sklearn": "scikit-learn", "PIL": "pillow", "yaml": "pyyaml", "skimage": "scikit-image",
         "keras_tuner": "keras-tuner", "umap": "umap-learn"}
#: imported through another requirement (TensorFlow installs absl)
_VIA = {"absl": "tensorflow"}


def _requirements():
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))

    def names(text):
        out = []
        for line in text.strip().splitlines():
            name = line.strip().split(";")[0]
            for sep in ("[", "=", "<", ">", "!", "~"):
                name = name.split(sep)[0]
            out.append(name.strip().lower())
        return out

    install = names(cfg["options"]["install_requires"])
    extras = {k: names(v) for k, v in cfg["options.extras_require"].items()}
    return install, extras


def _imported_modules():
    mods = set()
    for dirpath, _, files in os.walk(os.path.join(ROOT, "astrovader")):
        for name in files:
            if name.endswith(".py"):
                tree = ast.parse(open(os.path.join(dirpath, name)).read())
                for node in ast.walk(tree):
                    if isinstance(node, ast.Import):
                        mods.update(a.name.split(".")[0] for a in node.names)
                    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                        mods.add(node.module.split(".")[0])
    return {m for m in mods if m != "astrovader" and m not in sys.stdlib_module_names and m != "__future__"}


def test_test_only_packages_are_not_runtime_requirements():
    install, extras = _requirements()
    for name in ("tensorflow-probability", "tf-keras", "pytest"):
        assert name not in install, name
    assert {"tensorflow-probability", "tf-keras"} <= set(extras["test"])
    everything = install + [n for v in extras.values() for n in v]
    assert everything.count("keras-tuner") == 1, "keras-tuner is listed once"
    assert all(len(set(v)) == len(v) and not set(v) & set(install) for v in extras.values()), \
        "an extra repeats a runtime requirement"


def test_every_imported_package_is_a_requirement():
    install, extras = _requirements()
    declared = set(install) | {n for v in extras.values() for n in v}
    missing = []
    for mod in sorted(_imported_modules()):
        dist = _VIA.get(mod) or _DIST.get(mod, mod).lower()
        if dist not in declared:
            missing.append(f"{mod} ({dist})")
    assert missing == [], f"imported by astrovader/ but not in setup.cfg: {missing}"


@pytest.mark.parametrize("extra", ["test", "sim"])
def test_environment_yml_names_existing_extras(extra):
    _, extras = _requirements()
    text = open(os.path.join(ROOT, "environment.yml")).read()
    line = next(ln for ln in text.splitlines() if "-e ." in ln)
    wanted = line.split("[", 1)[1].split("]")[0].split(",")
    assert set(wanted) <= set(extras)
    assert extra in wanted
