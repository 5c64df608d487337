"""The surface every method has: hyperparameters, networks + optimisers, a training step, `encode`.

A method declares its own hyperparameters in `hparams` and the rules on their values in
`constraints` (`Interval`, `Options`; both merged along the class hierarchy, so a subclass lists
only what it adds or tightens), and its reference grid in `reference_grid`. `validate_hparams`
turns user input (possibly strings from the CLI) into typed values or raises a one-line error:
`<method>.<param>=<value> <problem>`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from disentbench.errors import BenchError
from disentbench.methods.backbone import INIT_SCHEMES, initialise
from disentbench.methods.constraints import Constraint, Interval, check, check_declaration, show


def _coerce(value: Any, default: Any, name: str, method: str) -> Any:
    """Convert value to the type of the default (CLI strings included)."""
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if isinstance(default, int):
            f = float(value)
            if f != int(f):
                raise ValueError
            return int(f)
        if isinstance(default, float):
            out = float(value)
            if out != out or out in (float("inf"), float("-inf")):
                raise ValueError
            return out
    except (TypeError, ValueError):
        raise BenchError(f"{method}.{name}={show(value)} is not a valid {type(default).__name__}") from None
    return str(value)


class Method(nn.Module):
    """Base class of every method. Subclasses build networks in `build()` and optimisers in
    `configure_optimizers()`, and implement `train_step`, `encode` and `decode`."""

    registered_name: ClassVar[str] = "method"
    hparams: ClassVar[dict[str, Any]] = {"latent_dim": 10, "lr": 1e-4}
    constraints: ClassVar[dict[str, Constraint]] = {
        "latent_dim": Interval(1, None, integer=True),
        "lr": Interval(0, None, closed="neither"),
    }
    reference_grid: ClassVar[dict[str, list]] = {}
    #: training steps of the reference protocol (Locatello et al. 2019); shorter cells are flagged in
    #: the reports as not comparable with published numbers
    reference_steps: ClassVar[int] = 300_000
    #: hyperparameters added after checkpoints were written, each with the value that rebuilds such an
    #: older checkpoint's networks (its stored hparams lack the key): see `stored_hparams`
    checkpoint_defaults: ClassVar[dict[str, Any]] = {}
    #: networks needed only to train (FactorVAE's discriminator): the model zoo keeps the others
    training_only_modules: ClassVar[tuple[str, ...]] = ()
    #: merged over the class hierarchy by __init_subclass__ (a subclass's entry replaces its parent's)
    defaults: ClassVar[dict[str, Any]] = dict(hparams)
    all_constraints: ClassVar[dict[str, Constraint]] = dict(constraints)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "choices" in cls.__dict__:  # the former API: refuse it rather than skip its checks silently
            wanted = ", ".join(f"{k!r}: Options{tuple(v)!r}" for k, v in cls.__dict__["choices"].items())
            raise BenchError(f"{cls.__qualname__} declares `choices`; declare constraints = {{{wanted}}} instead")
        defaults: dict[str, Any] = {}
        constraints: dict[str, Constraint] = {}
        for klass in reversed(cls.__mro__):
            defaults.update(klass.__dict__.get("hparams", {}))
            constraints.update(klass.__dict__.get("constraints", {}))
        check_declaration(cls.__qualname__, defaults, constraints)
        cls.defaults = defaults
        cls.all_constraints = constraints

    @classmethod
    def stored_hparams(cls, hparams: dict[str, Any]) -> dict[str, Any]:
        """The hyperparameters a checkpoint was written with: its stored ones, and for a key added
        since, the value of `checkpoint_defaults` (not today's default, which may build other networks)."""
        return {**cls.checkpoint_defaults, **hparams}

    @classmethod
    def validate_hparams(cls, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """All hyperparameters with overrides applied, typed and checked against `all_constraints`;
        one-line error on a bad name or value."""
        name = getattr(cls, "registered_name", cls.__name__)
        out = dict(cls.defaults)
        for key, value in (overrides or {}).items():
            if key not in cls.defaults:
                params = ", ".join(f"{k} (default {v})" for k, v in cls.defaults.items())
                raise BenchError(f"{name} has no hyperparameter {key!r}; its parameters: {params}")
            out[key] = _coerce(value, cls.defaults[key], key, name)
        for key, constraint in cls.all_constraints.items():
            check(name, key, out[key], constraint)
        return out

    def __init__(
        self,
        observation_shape: tuple[int, int, int] = (1, 64, 64),
        seed: int = 0,
        init: str = "reference",
        **hparams: Any,
    ):
        super().__init__()
        if init not in INIT_SCHEMES:
            raise BenchError(f"unknown init {init!r}; choose one of {', '.join(INIT_SCHEMES)}")
        self.hp = self.validate_hparams(hparams)
        self.init_scheme = init
        self.observation_shape = tuple(observation_shape)
        self.latent_dim = int(self.hp["latent_dim"])
        self.build()
        initialise(self, init, torch.Generator().manual_seed(int(seed)))
        self.optimizers: dict[str, torch.optim.Optimizer] = self.configure_optimizers()

    # --- to implement --------------------------------------------------------------------
    def build(self) -> None:
        raise NotImplementedError

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def train_step(self, x: torch.Tensor, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """One optimisation step on a batch; returns named scalar losses as (detached) device tensors.

        Return tensors, not floats: reading them forces a host synchronisation, which the trainer
        does only at logging steps. The main objective is under "loss".
        """
        raise NotImplementedError

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The representation the metrics score: (n, latent_dim)."""
        raise NotImplementedError

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] for codes z (used by traversals)."""
        raise NotImplementedError

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    @property
    def batches_per_step(self) -> int:
        """Real batches one `train_step` consumes (a WGAN critic takes n_critic); the trainer hands
        `train_step` this many batches concatenated along dim 0."""
        return 1

    #: where latent traversals sweep: ("sigma", 2.0) for +-2 std of the codes, ("prior", (lo, hi)) otherwise
    traversal = ("sigma", 2.0)

    # --- checkpoints ---------------------------------------------------------------------
    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "model": self.state_dict(),
            "optimizers": {k: opt.state_dict() for k, opt in self.optimizers.items()},
        }

    def load_checkpoint_state(self, state: dict[str, Any]) -> None:
        self.load_state_dict(state["model"])
        for k, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][k])
