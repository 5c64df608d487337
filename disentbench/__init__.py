"""disentbench: a benchmark suite for disentangled representation learning.

The repository keeps its folders at the top (bench/, methods/, metrics/, datasets/); the build maps
them under this one package name, so an installed disentbench claims no generic top-level module
(`datasets` stays Hugging Face's). Import them as `disentbench.methods`, `disentbench.metrics`,
`disentbench.datasets` and `disentbench.bench`.
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"

# A source checkout used without installing (or a second checkout next to an installed one): the
# subpackages live beside this folder, so look for them there first.
_checkout = Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "bench" / "__init__.py").is_file():
    __path__.insert(0, str(_checkout))  # noqa: F821 (the package's own search path)
