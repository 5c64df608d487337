"""Declarative hyperparameter constraints, in the spirit of scikit-learn's parameter validation.

A method lists them next to its `hparams`, e.g.
`constraints = {"n_critic": Interval(1, None, integer=True), "loss": Options("pairwise", "supcon")}`,
and `Method.validate_hparams` checks every one. Declaring rules as data (not as code in an
override) gives every violation the same one-line message,
`<method>.<param>=<value> <problem>; <what it must be>`, and lets tests enumerate the rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from disentbench.errors import BenchError

Closed = Literal["left", "right", "both", "neither"]


def show(value: Any) -> str:
    """A value as messages print it: strings quoted, integral floats without ".0" (-1, not -1.0)."""
    if isinstance(value, float) and not isinstance(value, bool):
        return repr(value).removesuffix(".0")
    return repr(value)


@dataclass(frozen=True)
class Interval:
    """A numeric range; None leaves a side unbounded. `closed` says which finite ends belong to it
    ("both" by default, so Interval(1, None) means >= 1); `integer` states that the value is a
    whole number (the default's type already makes it an int; this documents it in the message)."""

    low: float | None = None
    high: float | None = None
    closed: Closed = "both"
    integer: bool = False

    def __post_init__(self) -> None:
        if self.closed not in ("left", "right", "both", "neither"):
            raise BenchError(f"Interval closed={self.closed!r}; choose one of left, right, both, neither")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise BenchError(f"Interval low={show(self.low)} is above high={show(self.high)}; swap them")

    def accepts(self, value: Any) -> bool:
        left_in = self.closed in ("left", "both")
        right_in = self.closed in ("right", "both")
        above_low = self.low is None or (value >= self.low if left_in else value > self.low)
        below_high = self.high is None or (value <= self.high if right_in else value < self.high)
        return above_low and below_high

    def requirement(self) -> str:
        """What an accepted value is, in words: ">= 0", "in (0, 1]", "an integer >= 1"."""
        left_in = self.closed in ("left", "both")
        right_in = self.closed in ("right", "both")
        if self.low is not None and self.high is not None:
            text = f"in {'[' if left_in else '('}{show(self.low)}, {show(self.high)}{']' if right_in else ')'}"
        elif self.low is not None:
            text = f"{'>=' if left_in else '>'} {show(self.low)}"
        elif self.high is not None:
            text = f"{'<=' if right_in else '<'} {show(self.high)}"
        else:
            text = "any number"
        return f"an integer {text}" if self.integer else text

    def problem(self, value: Any) -> str | None:
        return None if self.accepts(value) else f"is out of range; it must be {self.requirement()}"


class Options:
    """A string hyperparameter that takes one of a fixed set of values."""

    def __init__(self, *values: str):
        if not values or not all(isinstance(v, str) for v in values):
            raise BenchError(f"Options needs one or more strings, got {values!r}")
        self.values: tuple[str, ...] = values

    def __repr__(self) -> str:
        return f"Options{self.values!r}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Options) and other.values == self.values

    def __hash__(self) -> int:
        return hash(self.values)

    def accepts(self, value: Any) -> bool:
        return value in self.values

    def problem(self, value: Any) -> str | None:
        return None if self.accepts(value) else f"is not valid; choose one of {', '.join(self.values)}"


Constraint = Interval | Options


def check(method: str, param: str, value: Any, constraint: Constraint) -> None:
    """Raise the one-line error for a value that breaks its constraint."""
    problem = constraint.problem(value)
    if problem is not None:
        raise BenchError(f"{method}.{param}={show(value)} {problem}")


def check_declaration(owner: str, defaults: dict[str, Any], constraints: dict[str, Constraint]) -> None:
    """At class definition: every constraint names a hyperparameter of a fitting type, and every
    default satisfies its constraint (a bad declaration fails on import, not at the first run)."""
    for param, constraint in constraints.items():
        if param not in defaults:
            raise BenchError(
                f"{owner}.constraints names {param!r}, which is not a hyperparameter; declare it in hparams first"
            )
        default = defaults[param]
        if isinstance(constraint, Interval):
            numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
            if not numeric or (constraint.integer and not isinstance(default, int)):
                kind = "an int" if constraint.integer else "a number"
                raise BenchError(
                    f"{owner}.constraints[{param!r}] is an Interval but the default {show(default)} "
                    f"is not {kind}; change the default or the constraint"
                )
        elif isinstance(constraint, Options):
            if not isinstance(default, str):
                raise BenchError(
                    f"{owner}.constraints[{param!r}] is Options but the default {show(default)} "
                    f"is not a string; change the default or the constraint"
                )
        else:
            raise BenchError(f"{owner}.constraints[{param!r}] = {constraint!r}; use Interval(...) or Options(...)")
        problem = constraint.problem(default)
        if problem is not None:
            raise BenchError(f"{owner}: the default {param}={show(default)} {problem}")
