"""DCI from regression importances (Eastwood & Williams 2018 allow any regressor with importances).

`dci` computes its importance matrix from gradient-boosted classifiers, as disentanglement_lib does
(`importance="gbt"`, the default). `importance="lasso"` or `"random_forest"` instead regresses each
standardised factor on the standardised codes, as the original DCI code (cianeastwood/qedr) and
InfoGAN-CR's `DCIMetric` do, and takes |coefficients| (Lasso) or the forest's impurity importances:

- codes and factors are standardised with the train set's mean and population std (a constant
  column is centred and left unscaled, where the source code would divide by zero);
- `lasso`: `Lasso(alpha=0.02)` per factor (InfoGAN-CR's "Lasso" setting), `random_state` explicit;
- `random_forest`: `RandomForestRegressor(n_estimators=10, max_depth=max_depth[k])` per factor,
  `random_state` explicit. InfoGAN-CR's "RandomForestIBGAN" depths on dSprites are (4, 2, 4, 2, 2)
  and its "RandomForest" ones (4, 5, 2, 5, 5); 10 trees is the scikit-learn default of the releases
  its code ran on (it passes none); its `oob_score=True` changes no importance and is left out.

Disentanglement and completeness are then the reference's formulas on that matrix (`dci.py`);
informativeness is the mean R^2 of the regressors (train set; test set when there is one). The keys
are prefixed by the variant's name (`dci_lasso`, `dci_random_forest`), never `dci`: these are other
metrics and are shown only in the published table (see bench/report/published.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import Lasso

from disentbench.errors import BenchError
from disentbench.metrics.dci import DCI, completeness, disentanglement
from disentbench.metrics.registry import register
from disentbench.metrics.utils import check_arrays, quiet_estimators

IMPORTANCES = ("gbt", "lasso", "random_forest")


def standardise(train: np.ndarray, other: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """(train - mean) / std with the train set's statistics (std 1 where a column is constant)."""
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (train - mean) / std, None if other is None else (other - mean) / std


def depths(max_depth, num_factors: int) -> list[int | None]:
    if max_depth is None or isinstance(max_depth, (int, np.integer)):
        return [max_depth] * num_factors
    out = [None if d is None else int(d) for d in max_depth]
    if len(out) != num_factors:
        raise BenchError(f"dci random_forest: max_depth lists {len(out)} depths for {num_factors} factors")
    return out


def regression_importance(
    codes: np.ndarray,
    factors: np.ndarray,
    importance: str,
    seed: int,
    alpha: float = 0.02,
    max_depth: int | Sequence[int] | None = None,
    n_estimators: int = 10,
    test_codes: np.ndarray | None = None,
    test_factors: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """R (D, K) = |importance| of each code for each standardised factor, and the per-factor R^2 on
    the train set (and on the test set when given)."""
    if importance not in ("lasso", "random_forest"):
        raise BenchError(f"dci importance {importance!r} is not a regression; choose lasso or random_forest")
    x, xt = standardise(
        np.asarray(codes, np.float64), None if test_codes is None else np.asarray(test_codes, np.float64)
    )
    y, yt = standardise(
        np.asarray(factors, np.float64), None if test_factors is None else np.asarray(test_factors, np.float64)
    )
    depth = depths(max_depth, y.shape[1])
    columns, r2_train, r2_test = [], [], []
    for k in range(y.shape[1]):
        if importance == "lasso":
            model = Lasso(alpha=float(alpha), random_state=seed)
        else:
            model = RandomForestRegressor(n_estimators=int(n_estimators), max_depth=depth[k], random_state=seed)
        with quiet_estimators():
            model.fit(x, y[:, k])
        weights = model.coef_ if importance == "lasso" else model.feature_importances_
        columns.append(np.abs(np.asarray(weights, np.float64)))
        r2_train.append(model.score(x, y[:, k]))
        if xt is not None:
            r2_test.append(model.score(xt, yt[:, k]))
    return np.stack(columns, axis=1), np.array(r2_train), (np.array(r2_test) if xt is not None else None)


def dci_regression(
    train_codes,
    train_factors,
    test_codes=None,
    test_factors=None,
    importance: str = "lasso",
    seed: int = 0,
    alpha: float = 0.02,
    max_depth=None,
    n_estimators: int = 10,
    prefix: str | None = None,
) -> dict[str, float]:
    prefix = prefix or f"dci_{importance}"
    train_codes, train_factors = check_arrays(train_codes, train_factors, "train", True)
    if test_codes is not None and test_factors is not None:
        test_codes, test_factors = check_arrays(test_codes, test_factors, "test", True)
    else:
        test_codes = test_factors = None
    r, r2_train, r2_test = regression_importance(
        train_codes, train_factors, importance, seed, alpha, max_depth, n_estimators, test_codes, test_factors
    )
    out = {
        prefix: disentanglement(r),
        f"{prefix}_completeness": completeness(r),
        f"{prefix}_informativeness_train": float(np.mean(r2_train)),
    }
    if r2_test is not None:
        out[f"{prefix}_informativeness_test"] = float(np.mean(r2_test))
    return out


class _DCIVariant(DCI):
    variant_of = "dci"
    num_train = 73_728
    num_test = 0


@register("dci_lasso")
class DCILasso(_DCIVariant):
    """InfoGAN-CR's "Lasso" DCI: Lasso(alpha=0.02) on 73,728 standardised points."""

    params = {**DCI.params, "importance": "lasso"}


@register("dci_random_forest")
class DCIRandomForest(_DCIVariant):
    """InfoGAN-CR's "RandomForestIBGAN" DCI on dSprites: 10 trees, depths (4, 2, 4, 2, 2)."""

    params = {**DCI.params, "importance": "random_forest", "max_depth": (4, 2, 4, 2, 2)}
