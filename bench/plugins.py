"""User plugins: a module (dotted name or .py file) that registers its own methods, metrics or
datasets when imported. `--plugin` imports it in the driver and in every worker process.

A file is imported as module `disentbench_plugin_<file stem>`: the same name in every run and
process whatever the folder, because a method class's "module:qualname" is part of its cells'
identity (bench/grid.py).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path

from disentbench.errors import BenchError


def plugin_module_name(path: Path) -> str:
    """The module name a plugin file is imported under (depends on the file name only)."""
    return "disentbench_plugin_" + re.sub(r"\W", "_", path.stem)


def load_plugin(spec: str) -> None:
    try:
        if spec.endswith(".py"):
            path = Path(spec).resolve()
            if not path.is_file():
                raise BenchError(f"--plugin {spec}: no such file")
            name = plugin_module_name(path)
            loaded = sys.modules.get(name)
            if loaded is not None:
                other = Path(getattr(loaded, "__file__", "") or "").resolve()
                if other != path:
                    raise BenchError(
                        f"--plugin {spec}: another plugin file, {other}, is already loaded as {name}; "
                        f"rename one of them"
                    )
                return
            module_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            try:
                module_spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(name, None)  # a failed import must not look loaded to the next attempt
                raise
        else:
            importlib.import_module(spec)
    except BenchError:
        raise
    except Exception as exc:
        raise BenchError(f"--plugin {spec}: import failed ({type(exc).__name__}: {exc})") from None


def load_plugins(specs: list[str] | tuple[str, ...]) -> None:
    for spec in specs:
        load_plugin(spec)
