import importlib
import sys

import pytest

from disentbench import datasets, methods, metrics
from disentbench.bench.errors import BenchError
from disentbench.bench.plugins import load_plugin
from disentbench.bench.registry import Registry


def test_register_create_list():
    reg = Registry("widget")

    @reg.register("b")
    class B:
        def __init__(self, x=1):
            self.x = x

    @reg.register("a")
    class A:
        pass

    assert reg.names() == ["a", "b"]
    assert reg.create("b", x=5).x == 5
    assert B.registered_name == "b"
    assert "a" in reg and "c" not in reg


def test_unknown_name_lists_choices_in_one_line():
    reg = Registry("widget")
    reg.register("alpha")(type("Alpha", (), {}))
    reg.register("beta")(type("Beta", (), {}))
    with pytest.raises(BenchError) as info:
        reg.create("gamma")
    msg = str(info.value)
    assert "\n" not in msg and "gamma" in msg and "alpha, beta" in msg


def test_public_surfaces():
    assert {"vae", "betavae"} <= set(methods.list_methods())
    assert {"mig", "dci"} <= set(metrics.list_metrics())
    assert "dsprites" in datasets.list_datasets()
    for module in (methods, metrics, datasets):
        assert callable(module.register) and callable(module.create)
    with pytest.raises(BenchError, match="registered methods"):
        methods.create("nope")
    with pytest.raises(BenchError, match="registered metrics"):
        metrics.create("nope")
    with pytest.raises(BenchError, match="registered datasets"):
        datasets.create("nope")


def test_taking_a_registered_name_needs_override():
    reg = Registry("widget")

    @reg.register("a")
    class A:
        pass

    class B:
        pass

    with pytest.raises(BenchError) as info:
        reg.register("a")(B)
    assert str(info.value) == (
        f"widget 'a' is already registered by {A.__module__}.{A.__qualname__}; pass override=True to replace it"
    )
    assert reg.get("a") is A  # refused means untouched
    assert reg.register("a", override=True)(B) is B
    assert reg.get("a") is B and B.registered_name == "a"


def test_override_of_an_unregistered_name_is_refused():
    reg = Registry("widget")
    reg.register("alpha")(type("Alpha", (), {}))
    with pytest.raises(BenchError) as info:
        reg.register("aplha", override=True)(type("Typo", (), {}))
    assert str(info.value) == (
        "widget 'aplha' is not registered, so override=True replaces nothing; drop override=True or use one of: alpha"
    )
    assert reg.names() == ["alpha"]


def test_registering_the_same_definition_again_is_allowed():
    reg = Registry("widget")

    class A:
        pass

    reg.register("a")(A)
    assert reg.register("a")(A) is A and reg.get("a") is A  # the same object: a no-op
    reloaded = type("A", (), {"__module__": A.__module__, "__qualname__": A.__qualname__})
    reg.register("a")(reloaded)  # the same module.qualname, as after importlib.reload
    assert reg.get("a") is reloaded


def test_reloading_a_module_that_registers_a_method(tmp_path, monkeypatch):
    name = "disentbench_test_reloaded_methods"
    (tmp_path / f"{name}.py").write_text(
        "from disentbench import methods\nfrom disentbench.methods.vae import VAE\n\n\n"
        "@methods.register('reloadedvae')\nclass ReloadedVAE(VAE):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        module = importlib.import_module(name)
        first = methods.get("reloadedvae")
        importlib.reload(module)
        assert methods.get("reloadedvae") is module.ReloadedVAE is not first
    finally:
        sys.modules.pop(name, None)
        methods.REGISTRY._entries.pop("reloadedvae", None)


@pytest.mark.parametrize(
    "module, name, builtin",
    [
        (methods, "betavae", "disentbench.methods.vae.BetaVAE"),
        (metrics, "beta_vae", "disentbench.metrics.beta_vae.BetaVAEScore"),
        (metrics, "factor_vae", "disentbench.metrics.factor_vae.FactorVAEScore"),
        (datasets, "dsprites", "disentbench.datasets.dsprites.make_dsprites"),
    ],
)
def test_public_register_functions_take_override(module, name, builtin):
    registry = methods.REGISTRY if module is methods else metrics.REGISTRY if module is metrics else datasets._REGISTRY
    original = registry.get(name)

    def replacement(**kwargs):
        return None

    with pytest.raises(BenchError) as info:
        module.register(name)(replacement)
    assert str(info.value).endswith(f"{name!r} is already registered by {builtin}; pass override=True to replace it")
    try:
        module.register(name, override=True)(replacement)
        assert registry.get(name) is replacement
    finally:
        registry._entries[name] = original
        if hasattr(original, "registered_name"):
            original.registered_name = name
    module.register(name)(original)  # the built-in again, e.g. its module imported twice: a no-op
    assert registry.get(name) is original


def test_plugin_files_load_under_a_name_that_depends_on_the_file_name_only(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "same-stem.py").write_text(f"FOLDER = {folder!r}\n")
    name = "disentbench_plugin_same_stem"
    try:
        load_plugin(str(tmp_path / "a" / "same-stem.py"))
        load_plugin(str(tmp_path / "a" / "same-stem.py"))  # twice: imported once
        assert sys.modules[name].FOLDER == "a"
        with pytest.raises(BenchError) as info:
            load_plugin(str(tmp_path / "b" / "same-stem.py"))
        assert str(info.value) == (
            f"--plugin {tmp_path / 'b' / 'same-stem.py'}: another plugin file, "
            f"{tmp_path.resolve() / 'a' / 'same-stem.py'}, is already loaded as {name}; "
            f"rename one of them"
        )
    finally:
        sys.modules.pop(name, None)


def test_a_plugin_file_that_fails_to_import_is_not_left_half_loaded(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("raise RuntimeError('boom')\n")
    for _ in range(2):  # the second attempt fails the same way instead of passing silently
        with pytest.raises(BenchError, match=r"import failed \(RuntimeError: boom\)"):
            load_plugin(str(path))
    assert "disentbench_plugin_broken" not in sys.modules
