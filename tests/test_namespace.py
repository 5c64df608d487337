"""One import namespace: the installed suite claims no generic top-level module name, so a package
called `datasets` (Hugging Face's, say) earlier on the path neither breaks it nor is shadowed by it."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

STAND_IN = "a stand-in for Hugging Face datasets"
PLUGIN = f'''
import datasets  # must be the user's package, not the suite's folder
assert datasets.MARKER == "{STAND_IN}", datasets.__file__

from disentbench import methods
from disentbench.methods.vae import VAE


@methods.register("markervae")
class MarkerVAE(VAE):
    """A plugin method, registered next to the user's own `datasets` import."""
'''


@pytest.fixture
def foreign_datasets(tmp_path: Path) -> dict:
    """A folder elsewhere, a package named `datasets` first on PYTHONPATH, and a plugin using it."""
    pkg = tmp_path / "site" / "datasets"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(f'MARKER = "{STAND_IN}"\n')
    (tmp_path / "plugin.py").write_text(PLUGIN)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    return {"env": env, "cwd": work, "plugin": tmp_path / "plugin.py"}


def _run(cmd: list[str], ctx: dict, tiny_profile: Path, results: Path) -> subprocess.CompletedProcess:
    args = [
        "--methods",
        "markervae,vae",
        "--seeds",
        "1",
        "--profile",
        str(tiny_profile),
        "--steps",
        "2",
        "--device",
        "cpu",
        "--source",
        "procedural",
        "--no-report",
        "--threads",
        "1",
        "--plugin",
        str(ctx["plugin"]),
        "--results",
        str(results),
    ]
    return subprocess.run(cmd + args, cwd=ctx["cwd"], env=ctx["env"], capture_output=True, text=True, timeout=300)


def _console_script() -> str:
    found = Path(sys.executable).parent / "disentbench"
    return str(found) if found.exists() else shutil.which("disentbench")


def test_console_script_works_from_any_folder_next_to_a_foreign_datasets(foreign_datasets, tiny_profile, tmp_path):
    script = _console_script()
    assert script, "the `disentbench` console script is not installed (pip install -e .)"
    proc = _run([script], foreign_datasets, tiny_profile, tmp_path / "r1")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "r1" / "runs.csv").is_file()


def test_run_benchmark_py_works_from_any_folder_next_to_a_foreign_datasets(foreign_datasets, tiny_profile, tmp_path):
    proc = _run([sys.executable, str(REPO / "run_benchmark.py")], foreign_datasets, tiny_profile, tmp_path / "r2")
    assert proc.returncode == 0, proc.stderr
    assert "markervae" in (tmp_path / "r2" / "runs.csv").read_text()


def test_parallel_workers_see_the_users_datasets_too(foreign_datasets, tiny_profile, tmp_path):
    proc = _run([sys.executable, "-m", "disentbench", "--jobs", "2"], foreign_datasets, tiny_profile, tmp_path / "r3")
    assert proc.returncode == 0, proc.stderr
    assert "markervae" in (tmp_path / "r3" / "runs.csv").read_text()


def test_the_distribution_installs_only_the_disentbench_package():
    text = (REPO / "pyproject.toml").read_text()
    packages = re.search(r"^packages = \[(.*?)\]", text, flags=re.S | re.M).group(1)
    names = re.findall(r'"([\w.]+)"', packages)
    assert names and all(n == "disentbench" or n.startswith("disentbench.") for n in names), names
    assert 'disentbench = "disentbench.bench.cli:main"' in text


def test_readme_add_a_method_example_runs_as_a_plugin(tmp_path, tiny_profile):
    readme = (REPO / "README.md").read_text()
    example = re.search(r"## Adding a method.*?```python\n(.*?)```", readme, flags=re.S).group(1)
    plugin = tmp_path / "my_methods.py"
    plugin.write_text(example)
    cmd = [
        sys.executable,
        "-m",
        "disentbench",
        "--plugin",
        str(plugin),
        "--methods",
        "scaledkl",
        "--set",
        "scaledkl.weight=4",
        "--seeds",
        "1",
        "--profile",
        str(tiny_profile),
        "--steps",
        "2",
        "--device",
        "cpu",
        "--source",
        "procedural",
        "--no-report",
        "--threads",
        "1",
        "--results",
        str(tmp_path / "r"),
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "scaledkl" in (tmp_path / "r" / "runs.csv").read_text()


def test_run_benchmark_py_runs_its_own_checkouts_code_when_another_is_installed(tmp_path):
    """A second checkout's run_benchmark.py must not silently run the installed checkout's code."""
    copy = tmp_path / "second-checkout"
    for name in ("bench", "methods", "metrics", "datasets", "disentbench"):
        shutil.copytree(REPO / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("run_benchmark.py", "pyproject.toml"):
        shutil.copy(REPO / name, copy / name)
    cli = copy / "bench" / "cli.py"
    cli.write_text(cli.read_text() + '\nprint("THIS IS THE SECOND CHECKOUT", flush=True)\n')
    proc = subprocess.run(
        [sys.executable, str(copy / "run_benchmark.py"), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "THIS IS THE SECOND CHECKOUT" in proc.stdout
