"""The documentation keeps every promise: each command-line flag is documented, every relative link
resolves, the README stays short, CI runs the README's commands, and the docs site builds strictly."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

# Each help screen the runner has: the main command and its subcommands (zoo's own included).
HELP_ARGVS = [[], ["rescore"], ["report"], ["zoo"], ["zoo", "list"], ["zoo", "add"], ["zoo", "unpack"], ["score"]]
SEPARATOR = "=====8<===== help screen ====="

# Print every help screen of `python run_benchmark.py ...` in one interpreter (one torch import).
_HELP_SCRIPT = f"""
import contextlib, io, runpy, sys
for argv in {HELP_ARGVS!r}:
    sys.argv = ["run_benchmark.py", *argv, "--help"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            runpy.run_path({str(REPO / "run_benchmark.py")!r}, run_name="__main__")
        except SystemExit:
            pass
    print({SEPARATOR!r})
    print(out.getvalue())
"""


@pytest.fixture(scope="module")
def help_screens() -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", _HELP_SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=600, check=True
    )
    screens = proc.stdout.split(SEPARATOR)[1:]
    assert len(screens) == len(HELP_ARGVS), proc.stdout + proc.stderr
    for argv, screen in zip(HELP_ARGVS, screens):
        assert "usage: run_benchmark.py" in screen, (argv, screen)
    return screens


def _docs_text() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in DOC_FILES)


def _flags(screen: str) -> set[str]:
    """The long options a help screen lists (its usage lines and option rows)."""
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", screen)) - {"--help"}


def _mentions(text: str, word: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


def test_the_help_screens_are_parsed(help_screens):
    main_flags = _flags(help_screens[0])
    # a sanity check of the parsing itself: flags every version of the runner has
    assert {"--methods", "--profile", "--jobs", "--jobs-per-device", "--dry-run"} <= main_flags
    assert {"--metrics", "--jobs", "--no-report"} <= _flags(help_screens[1])
    assert {"--out", "--all-models"} <= _flags(help_screens[2])
    assert "--zoo" in _flags(help_screens[3])


def test_every_flag_of_the_runner_and_its_subcommands_is_documented(help_screens):
    text = _docs_text()
    missing = {
        " ".join(["run_benchmark.py", *argv]): sorted(flag for flag in _flags(screen) if not _mentions(text, flag))
        for argv, screen in zip(HELP_ARGVS, help_screens)
    }
    missing = {command: flags for command, flags in missing.items() if flags}
    assert not missing, f"flags documented in neither README.md nor docs/*.md: {missing}"


def test_every_subcommand_is_documented(help_screens):
    text = _docs_text()
    for sub in ("rescore", "report", "zoo", "score"):
        assert f"run_benchmark.py {sub}" in text, sub
    for action in re.search(r"\{([a-z,]+)\}", help_screens[3]).group(1).split(","):
        assert re.search(rf"zoo[^\n]*\b{action}\b", text), f"zoo {action} is not documented"


def _slug(heading: str) -> str:
    """The anchor GitHub and mkdocs give a heading (the common case: words joined by '-')."""
    heading = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return heading.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", text, flags=re.M)}


def _links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)  # code is not a link
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_points_to_an_existing_file(doc):
    broken = []
    for link in _links(doc):
        if re.match(r"^[a-z][a-z0-9+.-]*:", link):  # http:, https:, mailto:
            continue
        target, _, anchor = link.partition("#")
        path = (doc.parent / target).resolve() if target else doc
        if not path.exists():
            broken.append(f"{link} (no such file)")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(f"{link} (no heading '{anchor}' in {path.name})")
    assert not broken, f"{doc.relative_to(REPO)}: {broken}"


def test_the_docs_site_stays_inside_docs():
    """mkdocs builds docs/ alone: a link out of it (../README.md) would fail the strict build."""
    for doc in DOC_FILES[1:]:
        for link in _links(doc):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", link) and link.split("#")[0]:
                target = (doc.parent / link.split("#")[0]).resolve()
                assert (REPO / "docs") in target.parents, f"{doc.name} links outside docs/: {link}"


def test_every_docs_page_is_in_the_site_navigation():
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())

    def pages(nav):
        for entry in nav:
            value = next(iter(entry.values())) if isinstance(entry, dict) else entry
            yield from pages(value) if isinstance(value, list) else [value]

    in_nav = list(pages(config["nav"]))
    on_disk = sorted(p.name for p in (REPO / "docs").glob("*.md"))
    assert sorted(in_nav) == on_disk


def test_the_readme_is_read_in_ten_minutes():
    assert len((REPO / "README.md").read_text().splitlines()) <= 250


def test_ci_runs_the_readmes_commands():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    test_command = 'pip install -e ".[test]" && ruff check . && ruff format --check . && python -m pytest'
    docs_command = 'pip install -e ".[docs]" && mkdocs build --strict'
    assert test_command in readme and docs_command in readme and "mkdocs serve" in readme
    steps = [line for line in ci.splitlines() if line and not line.startswith("#")]
    expected = ['pip install -e ".[test]"', "ruff check .", "ruff format --check .", "python -m pytest"]
    expected += ['pip install -e ".[docs]"', "mkdocs build --strict"]
    ci_steps = [step.removeprefix("python -m ") if "pip install -e" in step else step for step in steps]
    positions = [ci_steps.index(step) for step in expected]
    assert positions == sorted(positions), ci_steps


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
    reason='the docs extra is not installed (pip install -e ".[docs]")',
)
def test_the_docs_site_builds_strictly(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    for name in ("list_methods", "evaluate_many", "GroundTruthDataset", "run_cell", "train_step"):
        assert name in api, name
    assert "a99f88eb" in (tmp_path / "site" / "reference-frames" / "index.html").read_text()  # the included file
