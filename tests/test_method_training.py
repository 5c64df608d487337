"""Every method: a short run on procedural dSprites stays finite, lowers its loss, encodes to
(n, latent_dim); hyperparameter validation rejects bad names and values."""

import numpy as np
import pytest
import torch

from disentbench import datasets, methods
from disentbench.bench.errors import BenchError
from disentbench.methods import Interval, Options

VAES = [
    "vae",
    "betavae",
    "factorvae",
    "betatcvae",
    "annealedvae",
    "dipvae1",
    "dipvae2",
    "hfs",
    "betahfs",
    "factorvae_infogancr",
]
GANS = ["did", "infogan", "infogancr"]
WEAK = ["gvae", "mlvae", "adagvae", "adamlvae"]  # trained on pairs (tests/test_method_weak.py)
#: trained with a few labelled images (tests/test_method_semisupervised.py)
SEMI = ["s2betavae", "s2factorvae", "s2betatcvae", "s2dipvae1", "s2dipvae2"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _run(name: str, steps: int, batch: int, **hp) -> tuple[methods.Method, list[dict[str, float]], torch.Tensor]:
    ds = datasets.create("dsprites", source="procedural")
    rng = np.random.default_rng(0)
    m = methods.create(name, observation_shape=ds.observation_shape, seed=0, **hp)
    g = torch.Generator().manual_seed(0)
    history = []
    for step in range(steps):
        x = ds.observations(ds.sample_factors(batch * m.batches_per_step, rng))
        history.append({k: float(v) for k, v in m.train_step(x, step, g).items()})
    return m, history, x


def _mean(history, key, part):
    return float(np.mean([h[key] for h in part(history)]))


@pytest.mark.parametrize("name", VAES)
def test_short_training_run(name):
    m, history, x = _run(name, steps=40, batch=32)
    assert all(np.isfinite(v) for h in history for v in h.values())
    first, last = _mean(history, "loss", lambda h: h[:5]), _mean(history, "loss", lambda h: h[-5:])
    assert last < first - 30, (first, last)  # ~85 nats lower after 40 steps; batch noise is a few
    assert m.encode(x[:7]).shape == (7, m.latent_dim)


@pytest.mark.parametrize("lambda_h", [1.0, 0.0])
def test_short_did_run(lambda_h):
    """A GAN's generator loss rises while its critic learns: the critic's loss is the one that falls."""
    m, history, x = _run("did", steps=15, batch=8, lambda_h=lambda_h, n_critic=3)
    assert all(np.isfinite(v) for h in history for v in h.values())
    first, last = _mean(history, "critic_loss", lambda h: h[:4]), _mean(history, "critic_loss", lambda h: h[-4:])
    assert last < first - 1.0, (first, last)
    assert all(-4.0 <= h["l_h"] <= 0.0 for h in history)
    assert m.encode(x[:7]).shape == (7, m.latent_dim)


@pytest.mark.parametrize(
    "name, overrides, message",
    [
        (
            "betavae",
            {"gamma": 1},
            "betavae has no hyperparameter 'gamma'; its parameters: latent_dim (default 10), "
            "lr (default 0.0001), beta (default 4.0)",
        ),
        ("betavae", {"beta": "abc"}, "betavae.beta='abc' is not a valid float"),
        ("betatcvae", {"estimator": "kde"}, "betatcvae.estimator='kde' is not valid; choose one of mws, mss"),
        ("betatcvae", {"dataset_size": 0}, "betatcvae.dataset_size=0 is out of range; it must be an integer >= 1"),
        ("factorvae", {"gamma": "nan"}, "factorvae.gamma='nan' is not a valid float"),
        ("factorvae", {"disc_lr": -1e-4}, "factorvae.disc_lr=-0.0001 is out of range; it must be > 0"),
        (
            "annealedvae",
            {"iteration_threshold": 0},
            "annealedvae.iteration_threshold=0 is out of range; it must be an integer >= 1",
        ),
        ("annealedvae", {"gamma": -1}, "annealedvae.gamma=-1 is out of range; it must be >= 0"),
        ("dipvae1", {"lambda_od": -1}, "dipvae1.lambda_od=-1 is out of range; it must be >= 0"),
        ("dipvae2", {"lambda_d_factor": "-0.5"}, "dipvae2.lambda_d_factor=-0.5 is out of range; it must be >= 0"),
        ("vae", {"lr": 0}, "vae.lr=0 is out of range; it must be > 0"),
        ("vae", {"latent_dim": 0}, "vae.latent_dim=0 is out of range; it must be an integer >= 1"),
        ("did", {"loss": "triplet"}, "did.loss='triplet' is not valid; choose one of pairwise, supcon"),
        ("did", {"perturb": "jitter"}, "did.perturb='jitter' is not valid; choose one of resample, shift"),
        ("did", {"n_critic": 0}, "did.n_critic=0 is out of range; it must be an integer >= 1"),
        ("did", {"n_critic": 2.5}, "did.n_critic=2.5 is not a valid int"),
        ("did", {"latent_dim": 1}, "did.latent_dim=1 is out of range; it must be an integer >= 2"),
        ("did", {"lambda_h": -1}, "did.lambda_h=-1 is out of range; it must be >= 0"),
        ("did", {"temperature": 0}, "did.temperature=0 is out of range; it must be > 0"),
        ("did", {"delta_min": 0}, "did.delta_min=0 is out of range; it must be in (0, 1]"),
        ("did", {"delta_min": "1.5"}, "did.delta_min=1.5 is out of range; it must be in (0, 1]"),
    ],
)
def test_bad_hyperparameters_are_rejected(name, overrides, message):
    with pytest.raises(BenchError) as err:
        methods.get(name).validate_hparams(overrides)
    assert str(err.value) == message


def _outside(constraint):
    """A value the constraint must reject, just past one of its ends (or not among the options)."""
    if isinstance(constraint, Options):
        return "not-an-option"
    step = 1 if constraint.integer else 0.5
    if constraint.low is not None:
        return constraint.low - step if constraint.closed in ("left", "both") else constraint.low
    return constraint.high + step if constraint.closed in ("right", "both") else constraint.high


@pytest.mark.parametrize("name", VAES + GANS + WEAK + SEMI)
def test_every_constraint_rejects_a_bad_value_and_accepts_the_default(name):
    builtin = {n for n in methods.list_methods() if methods.get(n).__module__.startswith("disentbench.methods.")}
    assert builtin == set(VAES + GANS + WEAK + SEMI)  # a new built-in method joins this test
    cls = methods.get(name)
    assert {"latent_dim", "lr"} <= set(cls.all_constraints)
    for param, constraint in cls.all_constraints.items():
        assert cls.validate_hparams({param: cls.defaults[param]}) == cls.defaults
        bad = _outside(constraint)
        with pytest.raises(BenchError) as err:
            cls.validate_hparams({param: bad})
        msg = str(err.value)
        assert msg.startswith(f"{name}.{param}=") and "\n" not in msg, msg
        assert ("is out of range; it must be" in msg) != isinstance(constraint, Options), msg


def test_every_rule_of_the_former_overrides_is_declared():
    """The rules the per-method validate_hparams overrides enforced, now as data."""
    expected = {
        "vae": {"latent_dim": Interval(1, None, integer=True), "lr": Interval(0, None, closed="neither")},
        "betatcvae": {"estimator": Options("mws", "mss"), "dataset_size": Interval(1, None, integer=True)},
        "factorvae": {"disc_lr": Interval(0, None, closed="neither")},
        "annealedvae": {
            "c_max": Interval(0, None),
            "gamma": Interval(0, None),
            "iteration_threshold": Interval(1, None, integer=True),
        },
        "dipvae1": {"lambda_od": Interval(0, None), "lambda_d_factor": Interval(0, None)},
        "dipvae2": {"lambda_od": Interval(0, None), "lambda_d_factor": Interval(0, None)},
        "did": {
            "latent_dim": Interval(2, None, integer=True),
            "loss": Options("pairwise", "supcon"),
            "perturb": Options("resample", "shift"),
            "n_critic": Interval(1, None, integer=True),
            "diff_dim": Interval(1, None, integer=True),
            "temperature": Interval(0, None, closed="neither"),
            "delta_min": Interval(0, 1, closed="right"),
            "lambda_h": Interval(0, None),
            "lambda_enc": Interval(0, None),
            "gp_weight": Interval(0, None),
        },
    }
    for name, rules in expected.items():
        declared = methods.get(name).all_constraints
        assert {k: declared.get(k) for k in rules} == rules, name


def test_interval_ends_and_words():
    assert Interval(0, 1, closed="right").requirement() == "in (0, 1]"
    assert Interval(0, 1, closed="left").requirement() == "in [0, 1)"
    assert Interval(None, 2.5, closed="neither").requirement() == "< 2.5"
    assert Interval(1, None, integer=True).requirement() == "an integer >= 1"
    ends = Interval(0, 1, closed="right")
    assert [ends.accepts(v) for v in (-0.1, 0, 1e-9, 1, 1.1)] == [False, False, True, True, False]
    assert Interval(0, None).accepts(0) and not Interval(0, None, closed="neither").accepts(0)
    hp = methods.get("did").validate_hparams({"delta_min": 1, "temperature": 1e-9, "latent_dim": 2})
    assert (hp["delta_min"], hp["temperature"], hp["latent_dim"]) == (1.0, 1e-9, 2)
    with pytest.raises(BenchError, match="closed='open'; choose one of left, right, both, neither"):
        Interval(0, 1, closed="open")


def test_bad_constraint_declarations_fail_when_the_class_is_defined():
    with pytest.raises(BenchError, match=r"constraints names 'alpha', which is not a hyperparameter"):
        type("A", (methods.Method,), {"constraints": {"alpha": Interval(0, None)}})
    with pytest.raises(BenchError, match=r"the default w=-1 is out of range; it must be >= 0"):
        type("B", (methods.Method,), {"hparams": {"w": -1.0}, "constraints": {"w": Interval(0, None)}})
    with pytest.raises(BenchError, match=r"is Options but the default 1 is not a string"):
        type("C", (methods.Method,), {"hparams": {"w": 1.0}, "constraints": {"w": Options("a")}})
    with pytest.raises(BenchError, match=r"declares `choices`; declare constraints = \{'mode': Options\('a', 'b'\)\}"):
        type("D", (methods.Method,), {"hparams": {"mode": "a"}, "choices": {"mode": ("a", "b")}})
    tightened = type("E", (methods.Method,), {"constraints": {"latent_dim": Interval(3, None, integer=True)}})
    assert tightened.all_constraints["latent_dim"] == Interval(3, None, integer=True)
    assert methods.Method.all_constraints["latent_dim"] == Interval(1, None, integer=True)


def test_reference_grids_validate_and_cli_strings_are_typed():
    for name in methods.list_methods():
        cls = methods.get(name)
        for param, values in cls.reference_grid.items():
            # six values, as Locatello et al.'s grids; hfs sweeps the nine gammas of the HFS study's own grid,
            # factorvae_infogancr the four gammas of InfoGAN-CR's FactorVAE runs
            assert len(values) == {"hfs": 9, "factorvae_infogancr": 4}.get(name, 6), name
            for v in values:
                assert cls.validate_hparams({param: str(v)})[param] == v
    hp = methods.get("did").validate_hparams({"lambda_h": "0", "loss": "supcon", "n_critic": "2"})
    assert hp["lambda_h"] == 0.0 and hp["loss"] == "supcon" and hp["n_critic"] == 2
    assert methods.get("did").reference_grid == {"lambda_h": [0.1, 0.3, 1, 3, 10, 30]}


@pytest.mark.parametrize(
    "name, keys", [("factorvae", {"vae", "discriminator"}), ("did", {"generator", "critic", "encoder", "difference"})]
)
def test_checkpoint_carries_every_network_and_optimiser(name, keys):
    m, _, x = _run(name, steps=2, batch=4, **({"n_critic": 1} if name == "did" else {}))
    state = m.checkpoint_state()
    assert set(state["optimizers"]) == keys and all(s["state"] for s in state["optimizers"].values())
    fresh = methods.create(name, seed=1, **({"n_critic": 1} if name == "did" else {}))
    fresh.load_checkpoint_state(state)
    assert torch.equal(fresh.encode(x), m.encode(x))
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), m.state_dict().values()))
