"""mkdocs hook (mkdocs.yml `hooks:`): lays out the package for the API reference.

The repository keeps the subpackages at the top (bench/, methods/, metrics/, datasets/) and the build
maps them under `disentbench` (pyproject.toml's package-dir). mkdocstrings reads the source without
importing it, so it needs the installed layout on disk: this writes it as a tree of symbolic links,
build/api-src/disentbench/{every module of disentbench/ (__init__.py and the ground floor), bench,
methods, metrics, datasets}, which mkdocs.yml gives mkdocstrings as its search path. Nothing is
imported and nothing outside build/ is written.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent
API_SRC = ROOT / "build" / "api-src"
# the build's mapping (pyproject.toml [tool.setuptools.package-dir]): disentbench.<name> is <name>/
SUBPACKAGES = ("bench", "methods", "metrics", "datasets")


def on_startup(command: str, dirty: bool) -> None:
    package = API_SRC / "disentbench"
    if API_SRC.exists():
        shutil.rmtree(API_SRC)
    package.mkdir(parents=True)
    for module in sorted((ROOT / "disentbench").glob("*.py")):  # __init__ and the ground floor (errors, registry...)
        os.symlink(module, package / module.name)
    for name in SUBPACKAGES:
        os.symlink(ROOT / name, package / name, target_is_directory=True)
