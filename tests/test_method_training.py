"""Every method: a short run on procedural dSprites stays finite, lowers its loss, encodes to
(n, latent_dim); hyperparameter validation rejects bad names and values."""
import numpy as np
import pytest
import torch

from disentbench import datasets
from disentbench import methods
from disentbench.bench.errors import BenchError

VAES = ["vae", "betavae", "factorvae", "betatcvae", "annealedvae", "dipvae1", "dipvae2"]


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
    "name, overrides",
    [
        ("betavae", {"gamma": 1}),
        ("betavae", {"beta": "abc"}),
        ("betatcvae", {"estimator": "kde"}),
        ("betatcvae", {"dataset_size": 0}),
        ("factorvae", {"gamma": "nan"}),
        ("annealedvae", {"iteration_threshold": 0}),
        ("dipvae1", {"lambda_od": -1}),
        ("did", {"loss": "triplet"}),
        ("did", {"perturb": "jitter"}),
        ("did", {"n_critic": 0}),
        ("did", {"n_critic": 2.5}),
        ("did", {"latent_dim": 1}),
        ("did", {"lambda_h": -1}),
    ],
)
def test_bad_hyperparameters_are_rejected(name, overrides):
    with pytest.raises(BenchError) as err:
        methods.get(name).validate_hparams(overrides)
    assert "\n" not in str(err.value)


def test_reference_grids_validate_and_cli_strings_are_typed():
    for name in methods.list_methods():
        cls = methods.get(name)
        for param, values in cls.reference_grid.items():
            assert len(values) == 6, name
            for v in values:
                assert cls.validate_hparams({param: str(v)})[param] == v
    hp = methods.get("did").validate_hparams({"lambda_h": "0", "loss": "supcon", "n_critic": "2"})
    assert hp["lambda_h"] == 0.0 and hp["loss"] == "supcon" and hp["n_critic"] == 2
    assert methods.get("did").reference_grid == {"lambda_h": [0.1, 0.3, 1, 3, 10, 30]}


@pytest.mark.parametrize("name, keys", [("factorvae", {"vae", "discriminator"}),
                                        ("did", {"generator", "critic", "encoder", "difference"})])
def test_checkpoint_carries_every_network_and_optimiser(name, keys):
    m, _, x = _run(name, steps=2, batch=4, **({"n_critic": 1} if name == "did" else {}))
    state = m.checkpoint_state()
    assert set(state["optimizers"]) == keys and all(s["state"] for s in state["optimizers"].values())
    fresh = methods.create(name, seed=1, **({"n_critic": 1} if name == "did" else {}))
    fresh.load_checkpoint_state(state)
    assert torch.equal(fresh.encode(x), m.encode(x))
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), m.state_dict().values()))
