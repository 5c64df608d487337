"""The CLI's Plan and the choice lists: one definition, read by argparse, the library and the profile schema."""

import dataclasses

import pytest

from disentbench.bench import choices
from disentbench.bench.cli import Plan, build_parser, main, plan
from disentbench.bench.config import load_profile
from disentbench.bench.errors import BenchError
from disentbench.bench.training import SpeedOptions
from disentbench.datasets.files import RemoteFile, choose_source
from disentbench.methods.backbone import INIT_SCHEMES


def test_argparse_reads_the_one_definition_of_each_choice_list():
    by_flag = {a.option_strings[0]: a.choices for a in build_parser()._actions if a.option_strings}
    assert by_flag["--precision"] is choices.PRECISION_SETTINGS
    assert by_flag["--source"] is choices.SOURCES
    assert by_flag["--backend"] is choices.BACKENDS
    assert by_flag["--grid"] is choices.GRIDS
    assert by_flag["--compile"] is choices.COMPILE_MODES


def test_the_library_refuses_what_the_lists_leave_out():
    remote = RemoteFile("dsprites", "none.npz", "https://example.invalid/none.npz", "md5", "0")
    with pytest.raises(BenchError, match="choose auto, official or procedural"):
        choose_source(remote, "web", None, official=None, procedural=None)
    for precision in choices.PRECISIONS:
        SpeedOptions(precision=precision)
    with pytest.raises(BenchError, match="fp32, bf16"):
        SpeedOptions(precision="fp16")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--compile", "turbo"], "choose one of default, reduce-overhead"),
        (["--backend", "slurm"], "choose one of local, dask, dask-local"),
    ],
)
def test_a_value_outside_a_list_is_one_line_naming_the_list(tmp_path, capsys, args, fragment):
    assert main(args + ["--profile", "smoke", "--results", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and err.startswith("error: ") and fragment in err, err


def test_the_profile_schema_names_and_checks_the_init_schemes(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: smoke\ninit: glorot\n")
    with pytest.raises(BenchError, match="init must be reference, torch or dcgan, got 'glorot'"):
        load_profile(str(bad))
    good = tmp_path / "good.yaml"
    good.write_text(f"extends: smoke\ninit: {INIT_SCHEMES[-1]}\n")
    assert load_profile(str(good))["init"] == INIT_SCHEMES[-1]


def test_plan_is_a_frozen_record_read_by_attribute(tmp_path, tiny_profile):
    args = build_parser().parse_args(
        [
            "--methods",
            "vae,betavae",
            "--seeds",
            "2",
            "--profile",
            str(tiny_profile),
            "--results",
            str(tmp_path / "r"),
            "--device",
            "cpu",
            "--source",
            "procedural",
            "--jobs",
            "3",
            "--no-report",
            "--retry-failed",
        ]
    )
    p = plan(args)
    assert isinstance(p, Plan)
    assert len(p.cells) == 4 and {c.method for c in p.cells} == {"vae", "betavae"}
    assert p.profile["name"] == "tiny" and p.settings.run_dir == tmp_path / "r"
    assert set(p.datasets) == {"dsprites"} and p.datasets["dsprites"].source == "procedural"
    assert (p.n_parallel, p.devices, p.backend, p.scheduler) == (3, ("cpu",), "local", None)
    assert p.retry_failed and p.skip_figures
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.backend = "dask"
    assert not (tmp_path / "r" / "cells").exists()  # planning trains nothing


def test_a_metric_that_cannot_serve_a_dataset_stops_the_plan(tmp_path, capsys):
    import numpy as np

    from disentbench.bench.cli import main

    data = tmp_path / "one_factor.npz"
    rng = np.random.default_rng(0)
    np.savez(data, images=rng.integers(0, 256, (8, 64, 64), dtype=np.uint8), factors=np.arange(8)[:, None] % 4)
    profile = tmp_path / "fair.yaml"
    profile.write_text("extends: smoke\nmetrics:\n  fairness: {}\n")
    code = main(["--profile", str(profile), "--datasets", f"file:{data}", "--methods", "vae"]
                + ["--results", str(tmp_path / "r"), "--device", "cpu"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "fairness needs a dataset with at least two factors" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r" / "cells").exists()
