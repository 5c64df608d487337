"""The model zoo: a finished cell's final weights go in (safetensors, no optimiser state), come out
verified (an altered or missing file is a one-line error), unpack into a run folder that `rescore`
and the report's traversals work on, and show in the leaderboard beside the published numbers."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from disentbench.bench import zoo
from disentbench.bench.checkpoint import load_method
from disentbench.bench.cli import main
from disentbench.bench.errors import BenchError
from tests.helpers import tiny_cpu_args

SIZES = {"mig": {"num_train": 200}, "sap": {"num_train": 120, "num_test": 60}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One finished betavae cell (6 steps, a learning-curve point at step 3)."""
    root = tmp_path_factory.mktemp("zoo_run")
    profile = root / "p.yaml"
    body = {"extends": "smoke", "steps": 6, "batch_size": 16, "checkpoint_every": 0, "score_steps": [3]}
    profile.write_text(
        yaml.safe_dump({**body, "metrics": SIZES, "claim": {"metrics": ["mig"]}, "primary_metric": "mig"})
    )
    assert main(tiny_cpu_args(profile, root / "run", "--methods", "betavae", "--datasets", "dsprites")) == 0
    return next((root / "run" / "cells").glob("*-betavae-*"))


def test_add_list_load_gives_the_trained_model(trained, tmp_path, capsys):
    where = zoo.add(trained, "betavae-tiny", tmp_path)
    entry = json.loads((where / zoo.ENTRY).read_text())
    assert entry["bytes"] == (where / zoo.WEIGHTS).stat().st_size <= zoo.MAX_BYTES
    assert (where / zoo.CURVE).is_file()
    # Readable like every other file the suite writes (safetensors' own save_file leaves 0o600).
    assert (where / zoo.WEIGHTS).stat().st_mode & 0o044 == (where / zoo.ENTRY).stat().st_mode & 0o044
    model = zoo.load("betavae-tiny", tmp_path)
    reference, _ = load_method(trained / "checkpoint.pt")
    x = torch.rand(8, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.encode(x), reference.encode(x))
    assert main(["zoo", "--zoo", str(tmp_path), "list"]) == 0
    out = capsys.readouterr().out
    assert "betavae-tiny" in out and " ok" in out


@pytest.mark.parametrize("damage", ["alter", "delete"])
def test_an_altered_or_missing_weights_file_is_a_one_line_error(trained, tmp_path, capsys, damage):
    where = zoo.add(trained, "m", tmp_path)
    weights = where / zoo.WEIGHTS
    if damage == "alter":
        data = bytearray(weights.read_bytes())
        data[-1] ^= 0xFF
        weights.write_bytes(bytes(data))
    else:
        weights.unlink()
    with pytest.raises(BenchError) as err:
        zoo.load("m", tmp_path)
    message = str(err.value)
    assert ("checksum mismatch" if damage == "alter" else "is missing") in message
    assert "git checkout" in message and "\n" not in message
    assert main(["zoo", "--zoo", str(tmp_path), "list"]) == 1


def test_unknown_entry_and_unfinished_cell_are_refused(trained, tmp_path):
    with pytest.raises(BenchError, match="no zoo entry 'nope'"):
        zoo.load("nope", tmp_path)
    (tmp_path / "unfinished").mkdir()
    with pytest.raises(BenchError, match="only a finished cell"):
        zoo.add(tmp_path / "unfinished", "x", tmp_path / "zoo")


def test_unpacked_entry_rescores_to_its_own_scores_and_draws_traversals(trained, tmp_path, monkeypatch):
    from disentbench.bench import rescore
    from disentbench.bench.report import build_report

    zoo.add(trained, "b", tmp_path / "zoo")
    run = zoo.unpack("b", tmp_path / "run", tmp_path / "zoo")
    before = json.loads(next((run / "cells").glob("*/scores.json")).read_text())["scores"]
    (run / "run.json").write_text(json.dumps({"config": {"name": "p", "metrics": SIZES}, "primary_metric": "mig"}))
    done, skipped = rescore.rescore(run, ["mig", "sap"], report=False)
    assert skipped == {} and len(done) == 1
    after = json.loads(next((run / "cells").glob("*/scores.json")).read_text())["scores"]
    assert {m: after[m] for m in ("mig", "sap")} == {m: before[m] for m in ("mig", "sap")}
    html = build_report([run], run / "report", "mig")
    assert any(p.name.startswith("traversal") for p in (run / "report").rglob("*.png")), html


def test_the_leaderboard_lists_zoo_models_beside_the_published_rows(trained, tmp_path, monkeypatch):
    from disentbench.bench.report import load_runs, write_leaderboard

    zoo.add(trained, "b", tmp_path / "zoo")
    monkeypatch.setenv("DISENTBENCH_ZOO", str(tmp_path / "zoo"))
    board = write_leaderboard(load_runs([trained.parent.parent]), tmp_path / "out", "mig")
    assert "disentbench zoo: b" in board


def test_a_factorvae_entry_keeps_the_vae_and_drops_the_discriminator(tmp_path):
    from safetensors.torch import load_file

    profile = tmp_path / "p.yaml"
    body = {"extends": "smoke", "steps": 2, "batch_size": 8, "checkpoint_every": 0, "metrics": {"mig": SIZES["mig"]}}
    profile.write_text(yaml.safe_dump({**body, "claim": {"metrics": ["mig"]}, "primary_metric": "mig"}))
    assert main(tiny_cpu_args(profile, tmp_path / "run", "--methods", "factorvae", "--datasets", "dsprites")) == 0
    cell = next((tmp_path / "run" / "cells").glob("*-factorvae-*"))
    where = zoo.add(cell, "fvae", tmp_path / "zoo")
    keys = set(load_file(str(where / zoo.WEIGHTS)))
    assert keys and not any(k.startswith("discriminator.") for k in keys)
    assert any(k.startswith("encoder.") for k in keys) and any(k.startswith("decoder.") for k in keys)
    model = zoo.load("fvae", tmp_path / "zoo")
    reference, _ = load_method(cell / "checkpoint.pt")
    x = torch.rand(4, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    assert torch.equal(model.encode(x), reference.encode(x))


def _variant_csv(path, rows):
    import pandas as pd

    columns = ["step", "metric", "codes", "value", "published", "spread", "source", "table", "eval_seconds"]
    pd.DataFrame([{**dict.fromkeys(columns, ""), **r} for r in rows], columns=columns).to_csv(path, index=False)


def test_published_variant_scores_of_the_final_step_go_in_and_stand_under_their_variant(trained, tmp_path, capsys):
    import shutil

    from disentbench.bench.report.published import codes_wanted, load_published, with_variant_columns

    cell = tmp_path / "cell"
    shutil.copytree(trained, cell)
    _variant_csv(
        cell / "published_variant.csv",
        [
            {"step": 3, "metric": "mig_infogancr", "codes": "sampled", "value": 0.11},
            {"step": 6, "metric": "mig_infogancr", "codes": "sampled", "value": 0.25},
            {"step": 6, "metric": "sap_infogancr", "codes": "sampled", "value": 0.5},
        ],
    )
    where = zoo.add(cell, "v", tmp_path / "zoo")
    kept = json.loads((where / zoo.ENTRY).read_text())["variant_scores"]
    assert {(v["metric"], v["value"], v["step"]) for v in kept} == {
        ("mig_infogancr", 0.25, 6),
        ("sap_infogancr", 0.5, 6),
    }
    rows = with_variant_columns(zoo.published_rows(tmp_path / "zoo"))
    variant = rows[rows["our_metric"] == "mig_infogancr"]
    assert len(variant) == 1 and variant["metric"].item() == "mig" and variant["value"].item() == 0.25
    assert codes_wanted(variant["codes"].item()) == "sampled"
    # the registered metrics' rows keep their own key and any codes
    plain = rows[(rows["metric"] == "mig") & (rows["our_metric"] == "mig")]
    assert len(plain) == 1 and codes_wanted(plain["codes"].item()) is None
    # the bundled table and the zoo's rows concatenate with the same columns
    assert set(rows.columns) <= set(load_published().columns)
    assert main(["zoo", "--zoo", str(tmp_path / "zoo"), "list"]) == 0
    assert "mig_infogancr 0.250 (sampled)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "rows, message",
    [
        ([{"step": 3, "metric": "mig_infogancr", "codes": "sampled", "value": 0.1}], "no row at the final step 6"),
        (None, "not a published_variant CSV"),
    ],
)
def test_a_variants_file_without_the_final_step_is_a_one_line_error(trained, tmp_path, rows, message):
    path = tmp_path / "variants.csv"
    if rows is None:
        path.write_text("a,b\n1,2\n")
    else:
        _variant_csv(path, rows)
    with pytest.raises(BenchError) as err:
        zoo.add(trained, "x", tmp_path / "zoo", variants=path)
    assert message in str(err.value) and "published_variant" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "zoo" / "x").exists()


def test_the_repository_zoo_verifies_and_loads():
    """Every committed entry: its weights match their sha256, fit the size limit, load into the
    method its config names and encode; its learning curve ends by its final step."""
    import pandas as pd

    entries = zoo.names(zoo.ZOO_DIR)
    if not entries:
        pytest.skip("the repository's zoo/ has no entry yet")
    for name in entries:
        entry = zoo.read_entry(name, zoo.ZOO_DIR)
        assert entry["bytes"] == (zoo.ZOO_DIR / name / zoo.WEIGHTS).stat().st_size <= zoo.MAX_BYTES
        model = zoo.load(name, zoo.ZOO_DIR)
        assert type(model).registered_name == entry["config"]["method"]
        codes = model.encode(torch.zeros(2, *entry["config"]["observation_shape"]))
        assert codes.shape == (2, entry["config"]["hparams"]["latent_dim"]) and torch.isfinite(codes).all()
        curve_path = zoo.ZOO_DIR / name / zoo.CURVE
        if curve_path.is_file():  # a curve of the same training: its points lie before the final step
            steps = pd.read_csv(curve_path)["step"]
            assert len(steps) and steps.max() <= int(entry["config"]["steps"])
