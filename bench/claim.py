"""The claim a run tests: which method is the challenger, its ablation, and the metrics.

A profile names it (`claim: {method: did, ablation: {lambda_h: 0}, metrics: [mig, dci, sap]}`), so
any registered method can be the challenger and the report code holds no method name. Types are
checked with the rest of the profile (bench/config.py); names against the registries before any
training (`check_claim`), each problem a one-line error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from disentbench.errors import BenchError

DEFAULT_METHOD = "did"
DEFAULT_ABLATION: dict[str, Any] = {"lambda_h": 0}
DEFAULT_METRICS = ("mig", "dci", "sap")
KEYS = ("method", "ablation", "metrics", "run_ablation")


@dataclass(frozen=True)
class ClaimSpec:
    """challenger `method`; `ablation` = the hyperparameters that switch its idea off (empty: no
    ablation); `metrics` = the result keys the claim is about; `run_ablation` = the plan adds the
    ablation's cells (the challenger's defaults with the ablation applied) next to its other settings."""

    method: str = DEFAULT_METHOD
    ablation: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_ABLATION))
    metrics: tuple[str, ...] = DEFAULT_METRICS
    run_ablation: bool = False

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | None) -> ClaimSpec:
        """From a profile's (or a run.json's) `claim` mapping; missing keys take the defaults."""
        cfg = dict(cfg or {})
        return cls(
            method=str(cfg.get("method", DEFAULT_METHOD)),
            ablation=dict(cfg["ablation"] or {}) if "ablation" in cfg else dict(DEFAULT_ABLATION),
            metrics=tuple(cfg.get("metrics", DEFAULT_METRICS)),
            run_ablation=bool(cfg.get("run_ablation", False)),
        )

    def as_config(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "ablation": dict(self.ablation),
            "metrics": list(self.metrics),
            "run_ablation": self.run_ablation,
        }

    def ablation_text(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(self.ablation.items()))


def check_types(where: str, cfg: Any) -> None:
    """The profile-level checks (no registry needed): a mapping of known keys with the right types."""
    if not isinstance(cfg, dict):
        raise BenchError(f"{where}: claim must be a mapping with keys {', '.join(KEYS)}, got {cfg!r}")
    unknown = sorted(set(cfg) - set(KEYS))
    if unknown:
        raise BenchError(f"{where}: claim has unknown key {unknown[0]!r}; allowed keys: {', '.join(KEYS)}")
    if "method" in cfg and not isinstance(cfg["method"], str):
        raise BenchError(f"{where}: claim.method must be a method name, got {cfg['method']!r}")
    if cfg.get("ablation") is not None and not isinstance(cfg["ablation"], dict):
        raise BenchError(f"{where}: claim.ablation must be a mapping parameter -> value, got {cfg['ablation']!r}")
    metrics = cfg.get("metrics", list(DEFAULT_METRICS))
    if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) for m in metrics):
        raise BenchError(f"{where}: claim.metrics must be a non-empty list of metric names, got {metrics!r}")
    if "run_ablation" in cfg and not isinstance(cfg["run_ablation"], bool):
        raise BenchError(f"{where}: claim.run_ablation must be true or false, got {cfg['run_ablation']!r}")


def check_claim(spec: ClaimSpec) -> dict[str, Any]:
    """Names against the registries, before any training. Returns the ablation's typed overrides.
    (A claim metric the profile does not measure is not an error: the report tests the claim on the
    metrics that were measured and says which were not.)"""
    from disentbench import methods, metrics

    registered = methods.list_methods()
    if spec.method not in registered:
        raise BenchError(f"claim.method {spec.method!r} is not registered; registered methods: {', '.join(registered)}")
    cls = methods.get(spec.method)
    for key in spec.ablation:
        if key not in cls.defaults:
            raise BenchError(
                f"claim.ablation: {spec.method} has no hyperparameter {key!r}; its hyperparameters: "
                f"{', '.join(sorted(cls.defaults))}"
            )
    typed = cls.validate_hparams(spec.ablation)  # a bad value -> the method's one-line error
    known = metrics.list_metrics()
    for name in spec.metrics:
        if name not in known:
            raise BenchError(f"claim.metrics: unknown metric {name!r}; registered metrics: {', '.join(known)}")
    return {k: typed[k] for k in spec.ablation}
