"""A worker process imports other packages named like the checkout's folders (Hugging Face
`datasets`, a `metrics` module...) as the user installed them, and the driver's own disentbench."""

import os

import disentbench
from disentbench.bench.config import load_profile
from disentbench.bench.grid import expand
from disentbench.bench.runner import RunSettings
from disentbench.bench.worker import run_cell_isolated
from tests.conftest import REPO

PROBE = """\
import os
import datasets, metrics
import disentbench
with open(os.environ["PROBE_OUT"], "w") as f:
    f.write("\\n".join([datasets.__file__, metrics.__file__, disentbench.__file__]))
"""


def test_a_worker_sees_third_party_packages_named_like_our_folders(tmp_path, tiny_profile, monkeypatch):
    site = tmp_path / "site"
    for name in ("datasets", "metrics"):
        (site / name).mkdir(parents=True)
        (site / name / "__init__.py").write_text("THIRD_PARTY = True\n")
    probe = tmp_path / "probe_plugin.py"
    probe.write_text(PROBE)
    out = tmp_path / "probe.txt"
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("PROBE_OUT", str(out))
    monkeypatch.chdir(REPO)  # where most runs start: the working directory holds datasets/ and metrics/
    profile = load_profile(str(tiny_profile))
    cell = expand(profile, ["vae"], {"dsprites": "procedural"}, 1, 2, {}, "none")[0]
    settings = RunSettings(
        run_dir=tmp_path / "run", profile=profile, device="cpu", torch_threads=1, plugins=(str(probe),)
    )
    outcome = run_cell_isolated(cell, settings, retries=0)
    assert outcome.status == "done", outcome.reason
    seen_datasets, seen_metrics, seen_disentbench = out.read_text().splitlines()
    assert seen_datasets == str(site / "datasets" / "__init__.py")
    assert seen_metrics == str(site / "metrics" / "__init__.py")
    assert os.path.realpath(seen_disentbench) == os.path.realpath(disentbench.__file__)
