"""The layers' rules (docs/architecture.md), checked on the source with `ast` (nothing is imported):
the plugin layers (methods, metrics, datasets) import nothing from `bench`, which orchestrates them,
and no function grows past MAX_FUNCTION_LINES."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from disentbench.errors import BenchError, TrainingDiverged
from tests.conftest import REPO

PLUGIN_LAYERS = ("methods", "metrics", "datasets")
MAX_FUNCTION_LINES = 90
#: folders that hold no source of ours: build outputs, the docs site, run folders, tool caches
NOT_SOURCE = {"build", "dist", "site", "results", "__pycache__"}


def python_files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(REPO).parts[:-1]
        if not any(p in NOT_SOURCE or p.startswith(".") or p.endswith(".egg-info") for p in parts):
            yield path


def bench_imports(path: Path) -> list[str]:
    """Every import of the `bench` layer in one module: absolute (`disentbench.bench...`, `from
    disentbench import bench`) or relative (`from ..bench import x`, `from .. import bench`)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
            found += [f"import {n}" for n in names if n == "disentbench.bench" or n.startswith("disentbench.bench.")]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            absolute = node.level == 0 and (module == "disentbench.bench" or module.startswith("disentbench.bench."))
            relative = node.level > 0 and (module == "bench" or module.startswith("bench."))
            parent = module == "disentbench" if node.level == 0 else node.level > 1 and not module
            whole = parent and any(a.name == "bench" for a in node.names)
            if absolute or relative or whole:
                found.append(f"from {'.' * node.level}{module} import {', '.join(a.name for a in node.names)}")
    return found


@pytest.mark.parametrize("layer", PLUGIN_LAYERS)
def test_the_plugin_layers_import_nothing_from_bench(layer):
    modules = list(python_files(REPO / layer))
    assert modules, f"no modules under {layer}/"
    offenders = [f"{path.relative_to(REPO)}: {hit}" for path in modules for hit in bench_imports(path)]
    assert not offenders, "the plugin layers must not import bench (use the ground floor, disentbench/): " + "; ".join(
        offenders
    )


def test_the_bench_import_check_sees_every_spelling(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "import disentbench.bench.errors\nfrom disentbench.bench.atomic import write_json\n"
        "from disentbench import bench\nfrom ..bench import training\nfrom .. import bench as b\n"
        "from disentbench.errors import BenchError\nfrom ..methods import base\n"
    )
    assert len(bench_imports(module)) == 5


def test_function_lengths():
    offenders = []
    for path in python_files(REPO):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines} lines)")
    assert not offenders, f"functions longer than {MAX_FUNCTION_LINES} lines (split them): " + "; ".join(offenders)


def test_the_old_import_paths_give_the_same_objects():
    import disentbench.atomic
    import disentbench.choices
    import disentbench.registry
    from disentbench.bench import atomic, choices, errors, registry, training
    from disentbench.bench.report import claims, headline

    assert errors.BenchError is BenchError and training.TrainingDiverged is TrainingDiverged
    assert errors.TrainingDiverged is TrainingDiverged
    assert atomic.write_json is disentbench.atomic.write_json and atomic.atomic_path is disentbench.atomic.atomic_path
    assert choices.COMPILE_MODES is disentbench.choices.COMPILE_MODES and choices.or_list is disentbench.choices.or_list
    assert registry.Registry is disentbench.registry.Registry
    assert claims.CLAIM_METRICS is headline.CLAIM_METRICS and claims.METRIC_LABELS is headline.METRIC_LABELS
    with pytest.raises(BenchError):  # a plugin layer's error is caught by the old spelling
        from disentbench import methods

        methods.get("no-such-method")
