"""End to end through the command line, on a tiny profile (seconds, procedural dSprites)."""

import json
import subprocess
import sys

import pandas as pd
import pytest
import torch

from disentbench import methods
from disentbench.bench.cli import main
from disentbench.methods.vae import VAE
from tests.conftest import REPO


def _run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_two_methods_three_seeds_write_tidy_tables_and_rerun_skips(tmp_path, tiny_profile, capsys):
    run_dir = tmp_path / "run"
    args = [
        "--methods",
        "vae,betavae",
        "--datasets",
        "dsprites",
        "--seeds",
        "3",
        "--profile",
        str(tiny_profile),
        "--results",
        str(run_dir),
        "--device",
        "cpu",
        "--source",
        "procedural",
        "--no-report",
    ]
    code, out, err = _run(args, capsys)
    assert code == 0, err
    runs = pd.read_csv(run_dir / "runs.csv")
    assert runs["cell_id"].nunique() == 6
    assert set(runs["method"]) == {"vae", "betavae"} and sorted(set(runs["seed"])) == [0, 1, 2]
    assert set(runs["metric"]) == {"mig", "sap"}
    for col in (
        "dataset",
        "data_source",
        "hparams",
        "steps",
        "value",
        "train_seconds",
        "eval_seconds",
        "device",
        "git_commit",
        "torch_version",
        "numpy_version",
        "sklearn_version",
        "numba_version",
        "config",
    ):
        assert runs[col].notna().all(), col
    assert (runs["data_source"] == "procedural").all() and (runs["steps"] == 6).all()
    from disentbench.bench.perf.host import cpu_model

    assert runs["train_hosts"].str.startswith(cpu_model() + " [").all()  # one host, no resume
    assert json.loads(runs.loc[runs.method == "betavae", "hparams"].iloc[0])["beta"] == 4.0
    assert runs["value"].between(-1e-9, 1 + 1e-9).all()
    board = (run_dir / "leaderboard.md").read_text()
    assert "vae" in board and "betavae" in board and "(n=3)" in board
    for cell in runs["cell_id"].unique():
        d = run_dir / "cells" / cell
        assert {"config.json", "train_log.csv", "checkpoint.pt", "scores.json"} <= {p.name for p in d.iterdir()}
    before = (run_dir / "runs.csv").read_text()
    mtimes = {p: p.stat().st_mtime_ns for p in run_dir.glob("cells/*/scores.json")}
    code, out, err = _run(args, capsys)
    assert code == 0
    assert "skipping 6 cell(s) already complete" in out
    assert {p: p.stat().st_mtime_ns for p in run_dir.glob("cells/*/scores.json")} == mtimes
    after = pd.read_csv(run_dir / "runs.csv")
    assert after.equals(pd.read_csv(pd.io.common.StringIO(before)))


def test_same_command_gives_identical_scores_with_dci(tmp_path, tiny_profile, capsys):
    profile = tmp_path / "with_dci.yaml"
    profile.write_text(
        f"extends: {tiny_profile}\nprimary_metric: dci\n"
        "metrics:\n  mig: {num_train: 200}\n  dci: {num_train: 120, num_test: 60}\n"
    )
    base = [
        "--methods",
        "betavae",
        "--seeds",
        "1",
        "--profile",
        str(profile),
        "--device",
        "cpu",
        "--source",
        "procedural",
        "--no-report",
    ]
    assert _run(base + ["--results", str(tmp_path / "a")], capsys)[0] == 0
    assert _run(base + ["--results", str(tmp_path / "b")], capsys)[0] == 0
    a = pd.read_csv(tmp_path / "a" / "runs.csv").set_index("metric")["value"]
    b = pd.read_csv(tmp_path / "b" / "runs.csv").set_index("metric")["value"]
    assert {"dci", "dci_completeness", "dci_informativeness_test", "mig"} <= set(a.index)
    pd.testing.assert_series_equal(a, b)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--methods", "nosuch"], "registered methods: "),
        (["--datasets", "mnist"], "registered datasets: "),
        (["--profile", "huge"], "choose one of correlated, locatello2019, paper, quick, smoke"),
        (["--device", "tpu"], "auto, cpu, cuda, cuda:N, mps"),
        (["--seeds", "-1"], "--seeds must be a positive integer"),
        (["--seeds", "two"], "--seeds must be a positive integer"),
        (["--steps", "0"], "--steps must be a positive integer"),
        (["--jobs", "0"], "--jobs must be a positive integer"),
        (["--source", "web"], "auto, official or procedural"),
        (["--grid", "huge"], "reference or none"),
        (["--methods", "betavae", "--set", "betavae.gamma=1"], "its parameters: latent_dim"),
        (["--methods", "betavae", "--set", "betavae.beta=abc"], "not a valid float"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--precision", "fp16"], "choose fp32, bf16 or auto"),
    ],
)
def test_bad_input_is_one_line_before_any_training(tmp_path, args, fragment, capsys):
    run_dir = tmp_path / "run"
    extra = [] if "--profile" in args else ["--profile", "smoke"]
    code, out, err = _run(args + extra + ["--results", str(run_dir)], capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err
    assert not (run_dir / "cells").exists()


def test_cuda_request_without_cuda_is_a_clear_error(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, out, err = _run(["--device", "cuda:0", "--results", str(tmp_path)], capsys)
    assert code == 2 and "CUDA is not available" in err


def test_run_benchmark_script_prints_one_line_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "run_benchmark.py", "--methods", "nosuch", "--results", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0
    assert "unknown method 'nosuch'" in proc.stderr


class ScaledKLVAE(VAE):
    """A user's own method, defined outside methods/: only the regulariser differs."""

    hparams = {"weight": 2.0}
    reference_grid = {"weight": [1, 2]}

    def regulariser(self, mu, logvar, z, kl, step):
        return self.hp["weight"] * kl, {}


def test_a_method_registered_outside_the_package_runs_through_the_runner(tmp_path, tiny_profile, capsys):
    methods.register("scaledkl")(ScaledKLVAE)
    try:
        run_dir = tmp_path / "run"
        code, out, err = _run(
            [
                "--methods",
                "scaledkl",
                "--set",
                "scaledkl.weight=3",
                "--profile",
                str(tiny_profile),
                "--results",
                str(run_dir),
                "--device",
                "cpu",
                "--source",
                "procedural",
                "--no-report",
            ],
            capsys,
        )
        assert code == 0, err
        runs = pd.read_csv(run_dir / "runs.csv")
        assert set(runs["method"]) == {"scaledkl"}
        assert json.loads(runs["hparams"].iloc[0])["weight"] == 3.0
        assert "scaledkl" in (run_dir / "leaderboard.md").read_text()
        assert "scaledkl" in (run_dir / "leaderboard.csv").read_text()
    finally:
        methods.REGISTRY._entries.pop("scaledkl", None)


def test_shapes3d_runs_next_to_dsprites(tmp_path, tiny_profile, capsys):
    run_dir = tmp_path / "run"
    code, out, err = _run(
        [
            "--methods",
            "vae",
            "--datasets",
            "dsprites,shapes3d",
            "--profile",
            str(tiny_profile),
            "--results",
            str(run_dir),
            "--device",
            "cpu",
            "--source",
            "procedural",
            "--steps",
            "2",
            "--no-report",
        ],
        capsys,
    )
    assert code == 0, err
    runs = pd.read_csv(run_dir / "runs.csv")
    assert set(runs["dataset"]) == {"dsprites", "shapes3d"}
    shapes = runs[runs.dataset == "shapes3d"]
    assert json.loads(shapes["config"].iloc[0])["observation_shape"] == [3, 64, 64]
    board = (run_dir / "leaderboard.md").read_text()
    assert "## dsprites" in board and "## shapes3d" in board


def test_speed_options_reach_the_trainer_and_the_cell_config(tmp_path, tiny_profile, capsys):
    run_dir = tmp_path / "run"
    code, out, err = _run(
        [
            "--methods",
            "vae",
            "--profile",
            str(tiny_profile),
            "--results",
            str(run_dir),
            "--device",
            "cpu",
            "--source",
            "procedural",
            "--steps",
            "2",
            "--precision",
            "bf16",
            "--channels-last",
            "--no-report",
        ],
        capsys,
    )
    assert code == 0, err
    config = json.loads(next(run_dir.glob("cells/*/config.json")).read_text())
    assert config["precision"] == "bf16" and config["channels_last"] is True and config["compile"] is False


OVERRIDING_PLUGIN = '''\
from disentbench import methods
from disentbench.methods.vae import BetaVAE


@methods.register("betavae", override=True)
class DoubledBetaVAE(BetaVAE):
    """beta-VAE with twice the KL weight: same name and hyperparameters, other numbers."""

    def regulariser(self, mu, logvar, z, kl, step):
        return 2 * self.hp["beta"] * kl, {}
'''


def test_a_plugin_overriding_a_builtin_trains_its_own_cells_in_the_same_results(tmp_path, tiny_profile, capsys):
    plugin = tmp_path / "doubled_beta.py"
    plugin.write_text(OVERRIDING_PLUGIN)
    module_name, plugin_class = "disentbench_plugin_doubled_beta", "disentbench_plugin_doubled_beta:DoubledBetaVAE"
    run_dir = tmp_path / "run"
    args = [
        "--methods",
        "betavae",
        "--seeds",
        "1",
        "--steps",
        "2",
        "--profile",
        str(tiny_profile),
        "--results",
        str(run_dir),
        "--device",
        "cpu",
        "--source",
        "procedural",
        "--no-report",
    ]
    original = methods.get("betavae")
    code, out, err = _run(args, capsys)
    assert code == 0, err
    try:
        code, out, err = _run(["--plugin", str(plugin)] + args, capsys)
        assert code == 0, err
        assert "skipping" not in out  # the built-in's finished cell is not the plugin's
        plugin_cells = set(pd.read_csv(run_dir / "runs.csv")["cell_id"])
        # another run (the plugin imported afresh) finds the plugin's cell complete
        methods.register("betavae", override=True)(original)
        sys.modules.pop(module_name, None)
        code, out, err = _run(["--plugin", str(plugin)] + args, capsys)
        assert code == 0, err
        assert "skipping 1 cell(s) already complete" in out
    finally:
        methods.register("betavae", override=True)(original)
        sys.modules.pop(module_name, None)
    configs = {p.name: json.loads((p / "config.json").read_text()) for p in (run_dir / "cells").iterdir()}
    assert len(configs) == 2 and len(plugin_cells) == 1
    assert {c["method_class"] for c in configs.values()} == {"disentbench.methods.vae:BetaVAE", plugin_class}
    assert configs[plugin_cells.pop()]["method_class"] == plugin_class
    # a fresh process (as a worker) names the plugin's class the same way
    probe = (
        "import sys; from disentbench.bench.plugins import load_plugin; load_plugin(sys.argv[1]); "
        "from disentbench.bench.grid import method_class_path; print(method_class_path('betavae'))"
    )
    child = subprocess.run([sys.executable, "-c", probe, str(plugin)], capture_output=True, text=True, cwd=tmp_path)
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == plugin_class
