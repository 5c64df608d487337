import json
from dataclasses import asdict

import pytest

from disentbench import methods
from disentbench.bench.config import load_profile
from disentbench.bench.errors import BenchError
from disentbench.bench.grid import Cell, expand, hparam_settings, parse_sets


def test_set_sweeps_make_one_cell_per_value_and_seed():
    profile = load_profile("smoke")
    sets = parse_sets(["betavae.beta=1,4,16"], ["vae", "betavae"])
    cells = expand(profile, ["vae", "betavae"], {"dsprites": "procedural"}, 2, None, sets, "none")
    beta_cells = [c for c in cells if c.method == "betavae"]
    assert len(beta_cells) == 6 and len(cells) == 8
    assert sorted({c.hparams["beta"] for c in beta_cells}) == [1.0, 4.0, 16.0]
    assert len({c.cell_id for c in cells}) == len(cells)
    assert any("beta=16" in c.cell_id for c in beta_cells)


def test_reference_grid_expands_declared_values():
    settings = hparam_settings("betavae", None, "reference")
    assert [s["beta"] for s in settings] == [1.0, 2.0, 4.0, 6.0, 8.0, 16.0]
    assert hparam_settings("vae", None, "reference") == [hparam_settings("vae")[0]]


def test_cell_id_is_stable_and_tracks_training_config():
    profile = load_profile("smoke")
    a = expand(profile, ["betavae"], {"dsprites": "procedural"}, 1, None, {}, "none")[0]
    b = expand(profile, ["betavae"], {"dsprites": "procedural"}, 1, None, {}, "none")[0]
    c = expand(profile, ["betavae"], {"dsprites": "procedural"}, 1, 999, {}, "none")[0]
    d = expand(profile, ["betavae"], {"dsprites": "official"}, 1, None, {}, "none")[0]
    e = expand(profile, ["betavae"], {"dsprites": "procedural"}, 1, None, {}, "none", precision="bf16")[0]
    assert a.cell_id == b.cell_id
    assert len({a.cell_id, c.cell_id, d.cell_id, e.cell_id}) == 4


def test_method_steps_override_per_method():
    profile = dict(load_profile("smoke"), method_steps={"betavae": 3})
    cells = expand(profile, ["vae", "betavae"], {"dsprites": "procedural"}, 1, None, {}, "none")
    assert {c.method: c.steps for c in cells} == {"vae": profile["steps"], "betavae": 3}
    cells = expand(profile, ["vae", "betavae"], {"dsprites": "procedural"}, 1, 11, {}, "none")
    assert {c.steps for c in cells} == {11}


@pytest.mark.parametrize(
    "item, fragment",
    [
        ("betavae.gamma=1", "no hyperparameter 'gamma'"),
        ("betavae.beta=abc", "not a valid float"),
        ("betavae=1", "METHOD.PARAM=VALUE"),
        ("vae.beta=1", "no hyperparameter 'beta'"),
        ("nosuch.beta=1", "registered methods"),
        ("betavae.beta=", "no value"),
    ],
)
def test_bad_sets(item, fragment):
    with pytest.raises(BenchError) as info:
        sets = parse_sets([item], ["vae", "betavae"])
        for method, s in sets.items():
            hparam_settings(method, s)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_set_on_unselected_method():
    with pytest.raises(BenchError, match="not selected"):
        parse_sets(["betavae.beta=1"], ["vae"])


def test_dataset_size_hyperparameter_is_filled_from_the_dataset_unless_set():
    profile = load_profile("smoke")
    cells = expand(profile, ["betatcvae"], {"shapes3d": "procedural"}, 1, None, {}, "none", {"shapes3d": 480000})
    assert cells[0].hparams["dataset_size"] == 480000
    sets = parse_sets(["betatcvae.dataset_size=1000"], ["betatcvae"])
    cells = expand(profile, ["betatcvae"], {"shapes3d": "procedural"}, 1, None, sets, "none", {"shapes3d": 480000})
    assert cells[0].hparams["dataset_size"] == 1000


def test_cell_id_known_answer_includes_the_method_class():
    cell = Cell(
        "dsprites",
        "procedural",
        "betavae",
        json.dumps({"beta": 4.0, "latent_dim": 10, "lr": 1e-4}),
        0,
        10,
        64,
        "reference",
        "fp32",
        method_class="disentbench.methods.vae:BetaVAE",
        slug="beta=4",
    )
    assert cell.training_config()["method_class"] == "disentbench.methods.vae:BetaVAE"
    assert cell.cell_id == "dsprites-betavae-beta=4-s0-5e9a9123"
    assert Cell(**asdict(cell)).cell_id == cell.cell_id  # what a worker process rebuilds from the task file


def test_a_class_registered_over_a_builtin_name_gets_other_cells():
    profile = load_profile("smoke")
    builtin = expand(profile, ["betavae"], {"dsprites": "procedural"}, 1, None, {}, "none")[0]
    assert builtin.method_class == "disentbench.methods.vae:BetaVAE"
    original = methods.get("betavae")

    class PluginBetaVAE(original):
        """Same name, same hyperparameters, other code."""

    methods.register("betavae", override=True)(PluginBetaVAE)
    try:
        plugin = expand(profile, ["betavae"], {"dsprites": "procedural"}, 1, None, {}, "none")[0]
    finally:
        methods.register("betavae", override=True)(original)
    assert (
        plugin.method_class
        == f"{__name__}:test_a_class_registered_over_a_builtin_name_gets_other_cells.<locals>.PluginBetaVAE"
    )
    assert (plugin.method, plugin.hparams_json, plugin.slug) == (builtin.method, builtin.hparams_json, builtin.slug)
    assert plugin.cell_id != builtin.cell_id
    assert expand(profile, ["betavae"], {"dsprites": "procedural"}, 1, None, {}, "none")[0] == builtin


def test_a_cell_planned_with_another_class_fails_instead_of_training_the_wrong_code(tmp_path):
    """A worker without the plugin would otherwise train the built-in under the plugin's cell id."""
    from dataclasses import replace

    from disentbench.bench.config import load_profile
    from disentbench.bench.runner import RunSettings, run_cell

    profile = load_profile("smoke")
    cell = expand(profile, ["vae"], {"dsprites": "procedural"}, 1, 2, {}, "none")[0]
    foreign = replace(cell, method_class="someone.elses_plugin:VAE")
    outcome = run_cell(foreign, RunSettings(run_dir=tmp_path, profile=profile, device="cpu"))
    assert outcome.status == "failed" and "load the same --plugin in every process" in outcome.reason
    assert not (tmp_path / "cells" / foreign.cell_id / "checkpoint.pt").exists()
