import pytest

from disentbench.bench.config import list_profiles, load_profile
from disentbench.bench.errors import BenchError


def test_bundled_profiles_load():
    assert {"smoke", "quick", "paper"} <= set(list_profiles())
    for name in ("smoke", "quick", "paper"):
        p = load_profile(name)
        assert p["name"] == name and p["steps"] >= 1 and p["metrics"]
    paper = load_profile("paper")
    assert paper["steps"] == 300_000 and paper["batch_size"] == 64 and paper["init"] == "reference"
    assert paper["metrics"]["dci"] == {"num_train": 10_000, "num_test": 5_000}


def test_user_profile_extends_and_merges(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("extends: quick\nsteps: 7\nmetrics:\n  mig: {num_train: 50}\n")
    p = load_profile(str(path))
    quick = load_profile("quick")
    assert p["steps"] == 7 and p["batch_size"] == quick["batch_size"]
    assert p["metrics"] == {"mig": {"num_train": 50}}  # a given key replaces the parent's value whole
    assert p["method_steps"] == quick["method_steps"]
    assert p["name"] == "mine"


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("extends: quick\nstep: 5\n", "unknown key 'step'"),
        ("extends: quick\nsteps: -5\n", "steps must be a positive integer"),
        ("extends: quick\nsteps: 0\n", "steps must be a positive integer"),
        ("extends: quick\nsteps: ten\n", "steps must be"),
        ("extends: quick\nmethods: some\n", "methods must be"),
        ("extends: quick\nmethod_steps: {vae: 0}\n", "method_steps.vae"),
        ("extends: nope\n", "unknown profile"),
        ("steps: [1\n", "not valid YAML"),
        ("- a\n- b\n", "mapping"),
    ],
)
def test_bad_profiles_give_one_line_errors(tmp_path, body, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(BenchError) as info:
        load_profile(str(path))
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_unknown_profile_name():
    with pytest.raises(BenchError, match="choose one of .*quick"):
        load_profile("huge")
