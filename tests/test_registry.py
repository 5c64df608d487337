import pytest

from disentbench import datasets
from disentbench import methods
from disentbench import metrics
from disentbench.bench.errors import BenchError
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
