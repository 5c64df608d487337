"""mkdocs hook (mkdocs.yml `hooks:`): lays out the package for the API reference.

The repository keeps the subpackages at the top (bench/, methods/, metrics/, datasets/) and the build
maps them under `disentbench` (pyproject.toml's package-dir). mkdocstrings reads the source without
importing it, so it needs the installed layout on disk: this writes it as a tree of symbolic links,
build/api-src/disentbench/{__init__.py, bench, methods, metrics, datasets}, which mkdocs.yml gives
mkdocstrings as its search path. Nothing is imported and nothing outside build/ is written.
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
    os.symlink(ROOT / "disentbench" / "__init__.py", package / "__init__.py")
    for name in SUBPACKAGES:
        os.symlink(ROOT / name, package / name, target_is_directory=True)
