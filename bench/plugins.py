"""User plugins: a module (dotted name or .py file) that registers its own methods, metrics or
datasets when imported. `--plugin` imports it in the driver and in every worker process."""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from disentbench.bench.errors import BenchError


def load_plugin(spec: str) -> None:
    try:
        if spec.endswith(".py"):
            path = Path(spec).resolve()
            if not path.is_file():
                raise BenchError(f"--plugin {spec}: no such file")
            name = f"disentbench_plugin_{path.stem}"
            if name in sys.modules:
                return
            module_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
        else:
            importlib.import_module(spec)
    except BenchError:
        raise
    except Exception as exc:
        raise BenchError(f"--plugin {spec}: import failed ({type(exc).__name__}: {exc})") from None


def load_plugins(specs: list[str] | tuple[str, ...]) -> None:
    for spec in specs:
        load_plugin(spec)
