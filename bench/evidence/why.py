"""Why is a score what it is? What a trained VAE-family model encodes, factor by factor.

    python -m disentbench.bench.evidence.why CHECKPOINT [--samples 10000] [--seed 0]

For a checkpoint (a cell's `checkpoint.pt` or a kept `checkpoints/step-N.pt`), on i.i.d. factor
draws of the cell's dataset: each latent's mean KL to the prior (which latents are active), the
mutual information of each (discretised, 20 bins, as MIG) latent with each factor normalised by the
factor's entropy, and per factor the latent holding most of it, the runner-up and the gap (MIG's
terms). A low MIG then reads as one of: a factor no latent holds (top MI small), a factor split over
two latents (top and runner-up both large: e.g. position encoded in a rotated pair), or one latent
holding several factors (a latent's column large for several factors).

    python -m disentbench.bench.evidence.why CHECKPOINT --align scale,posX,posY

adds the MIG the same codes would score after the best rotation of the active latents onto the named
factors (an oracle: it reads the labels, so it is a diagnosis, never a score). A large rise means the
information is there but rotated (no pressure aligned the latents with the factors); no rise means
no linear mixture of the latents holds the factors better. It also reports how much of each named
factor the active latents hold together (normalised MI between the factor and its prediction from
them by gradient-boosted trees, on a held-out quarter): high there and low in every latent and after the
rotation means the factor is held, but spread non-linearly over several latents.

    python -m disentbench.bench.evidence.why CHECKPOINT --profile z3:posY

prints the mean and spread of one latent's posterior mean at each value of one factor: where along
the factor the latent moves, where it is flat (the values it leaves to other latents) or folds back.

    python -m disentbench.bench.evidence.why CHECKPOINT --jacobian [--align scale,posX,posY]

asks whether the code sits in the basis its objective prefers. A VAE with a diagonal posterior is
pushed towards latents whose decoder Jacobian columns are orthogonal in the decoder's local metric
(Rolinek et al., "Variational Autoencoders Pursue PCA Directions (by Accident)", CVPR 2019); for
the Bernoulli decoder that metric is the Fisher information, J^T diag(p(1-p)) J. It reports the mean
|cosine| between those columns of the active latents (0: orthogonal) at the posterior means of the
first JACOBIAN_POINTS draws, in the model's own basis, after random rotations of the active latents
(the level of a basis with no preference), and with --align in the oracle-aligned basis. Own basis
well below random and the aligned one near random means the objective's pressure has acted and
selects a basis that is not the factors': more training of the same objective is not expected to
turn the code towards them.

Given a cell folder instead of a checkpoint, it reports every kept checkpoint (`checkpoints/`) and
the final one, in step order, and ends with one markdown table of them (MIG, and with --align the
MIG after the rotation, what the active latents hold together and what the best single latent holds).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from disentbench.metrics.utils import discrete_entropy, discrete_mutual_info, histogram_discretize


def encode_stats(method, dataset, factors: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances of the images of `factors` (VAE-family encoders)."""
    means, logvars = [], []
    method.eval()
    with torch.no_grad():
        for start in range(0, len(factors), batch):
            x = dataset.observations(factors[start : start + batch])
            mu, logvar = method.encoder(x)
            means.append(mu.float().cpu().numpy())
            logvars.append(logvar.float().cpu().numpy())
    return np.concatenate(means), np.concatenate(logvars)


def mean_kl(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Each latent's KL to the N(0, 1) prior, averaged over the draws."""
    return 0.5 * (mu**2 + np.exp(logvar) - logvar - 1).mean(axis=0)


def active_latents(mu: np.ndarray, logvar: np.ndarray, active_kl: float = 0.5) -> np.ndarray:
    """The latents whose mean KL to the prior is above `active_kl` (the ones the model uses)."""
    return np.flatnonzero(mean_kl(mu, logvar) > active_kl)


def check_targets(targets: list[str], names: list[str]) -> None:
    """A one-line error naming the dataset's factors when a factor to align to is not one of them."""
    unknown = [t for t in targets if t not in names]
    if unknown:
        raise ValueError(f"--align: unknown factor(s) {', '.join(unknown)}; this dataset's factors: {', '.join(names)}")


def factor_report(mu: np.ndarray, logvar: np.ndarray, factors: np.ndarray, names: list[str]) -> dict:
    """KL per latent, normalised MI (latents x factors), and per factor: top latent, runner-up, gap."""
    kl = mean_kl(mu, logvar)
    mi = discrete_mutual_info(histogram_discretize(mu, 20), factors)  # (D, K)
    entropy = discrete_entropy(factors)
    normalised = mi / np.where(entropy > 0, entropy, np.nan)
    per_factor = []
    for k, name in enumerate(names):
        order = np.argsort(normalised[:, k])[::-1]
        top, second = int(order[0]), int(order[1]) if len(order) > 1 else None
        per_factor.append(
            {
                "factor": name,
                "top_latent": top,
                "top_mi": float(normalised[top, k]),
                "second_latent": second,
                "second_mi": float(normalised[second, k]) if second is not None else 0.0,
                "gap": float(normalised[top, k] - (normalised[second, k] if second is not None else 0.0)),
            }
        )
    return {"kl_per_latent": kl.tolist(), "normalised_mi": normalised.tolist(), "factors": per_factor}


def aligned_report(
    mu: np.ndarray,
    logvar: np.ndarray,
    factors: np.ndarray,
    names: list[str],
    targets: list[str],
    active_kl: float = 0.5,
) -> dict:
    """MIG's per-factor gaps after rotating the active latents (mean KL above `active_kl`) onto the
    `targets` factors: the orthogonal matrix closest, in least squares, to mapping the standardised
    latents onto the standardised factor values (orthogonal Procrustes). Inactive latents stay as
    they are. A rotation neither adds nor removes information, only moves it between latents."""
    check_targets(targets, names)
    active = active_latents(mu, logvar, active_kl)
    columns = [names.index(t) for t in targets]
    if len(active) < len(columns):
        raise ValueError(
            f"{len(active)} active latent(s) (mean KL > {active_kl}) cannot be aligned to {len(columns)} factors"
        )
    z = _standardised(mu[:, active])
    rotation = oracle_rotation(z, factors[:, columns])
    codes = mu.astype(float).copy()
    codes[:, active] = z @ rotation
    report = factor_report(codes, np.zeros_like(codes), factors, names)
    gaps = [f["gap"] for f in report["factors"]]
    held = {t: whole_code_information(z, factors[:, c]) for t, c in zip(targets, columns)}
    return {
        "targets": list(targets),
        "active_latents": active.tolist(),
        "gaps": gaps,
        "mig": float(np.mean(gaps)),
        "whole_code_mi": held,
    }


def oracle_rotation(z: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The orthogonal matrix R (k x k) that best maps the standardised latents `z` (n x k) onto the
    standardised `targets` (n x t, t <= k) in their first t columns (orthogonal Procrustes)."""
    target = np.zeros_like(z)
    target[:, : targets.shape[1]] = _standardised(targets.astype(float))
    u, _, vt = np.linalg.svd(z.T @ target)
    return u @ vt


JACOBIAN_POINTS = 256
JACOBIAN_ROTATIONS = 20


def decoder_metric(method, mu: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Per point (rows of `mu`), the Bernoulli decoder's Fisher metric restricted to the `active`
    latents, J^T diag(p(1-p)) J (points x k x k), J being the Jacobian of the decoder's logits at the
    point: one forward-mode pass per active latent for all points at once."""
    decoder = getattr(method, "decoder", None)
    if not isinstance(decoder, torch.nn.Module):
        raise ValueError(f"--jacobian needs a VAE-family model with a decoder; {type(method).__name__} has none")
    method.eval()
    z = torch.as_tensor(mu, dtype=torch.float32)
    with torch.no_grad():
        p = torch.sigmoid(decoder(z)).reshape(len(z), -1)
    weight = (p * (1 - p)).double()
    columns = []
    for j in active:
        tangent = torch.zeros_like(z)
        tangent[:, j] = 1.0
        _, column = torch.func.jvp(decoder, (z,), (tangent,))
        columns.append(column.detach().reshape(len(z), -1).double())
    jac = torch.stack(columns, dim=2)
    return torch.einsum("npi,np,npj->nij", jac, weight, jac).numpy()


def mean_abs_cosine(metric: np.ndarray, basis: np.ndarray) -> float:
    """Mean |cosine| between distinct Jacobian columns after the change of basis z = basis @ c, over
    the points of `metric` (points x k x k): 0 when the columns are orthogonal at every point."""
    k = metric.shape[1]
    if k < 2:
        return 0.0
    g = np.einsum("ai,naj,jb->nib", basis, metric, basis)
    d = np.sqrt(np.einsum("nii->ni", g))
    cos = np.abs(g / d[:, :, None] / d[:, None, :])
    return float(((cos.sum(axis=(1, 2)) - k) / (k * (k - 1))).mean())


def jacobian_report(
    method,
    mu: np.ndarray,
    logvar: np.ndarray,
    factors: np.ndarray,
    names: list[str],
    targets: list[str],
    seed: int = 0,
    points: int = JACOBIAN_POINTS,
    active_kl: float = 0.5,
) -> dict:
    """Local orthogonality of the decoder's Jacobian columns (mean_abs_cosine) in the model's own
    basis of the active latents, after JACOBIAN_ROTATIONS random rotations of them, and, given
    `targets`, in the oracle-aligned basis (oracle_rotation, in the latents' own units)."""
    active = active_latents(mu, logvar, active_kl)
    k = len(active)
    if k < 2:  # no pair of columns: nothing to be orthogonal
        nan = float("nan")
        return {"active_latents": active.tolist(), "points": 0, "own": nan, "random": nan, "random_min": nan}
    metric = decoder_metric(method, mu[:points], active)
    rng = np.random.default_rng(seed)
    randoms = [mean_abs_cosine(metric, np.linalg.qr(rng.standard_normal((k, k)))[0]) for _ in range(JACOBIAN_ROTATIONS)]
    out = {
        "active_latents": active.tolist(),
        "points": int(len(metric)),
        "own": mean_abs_cosine(metric, np.eye(k)),
        "random": float(np.mean(randoms)),
        "random_min": float(np.min(randoms)),
    }
    if targets and k >= len(targets):
        rotation = oracle_rotation(_standardised(mu[:, active]), factors[:, [names.index(t) for t in targets]])
        out["aligned"] = mean_abs_cosine(metric, np.diag(mu[:, active].std(axis=0)) @ rotation)
    return out


def whole_code_information(z: np.ndarray, factor: np.ndarray, random_state: int = 0) -> float:
    """A lower bound on I(factor; z) / H(factor): the normalised MI between the factor's values on
    the last quarter of the rows and their prediction (rounded to the nearest value index) by
    gradient-boosted trees fitted on the first three quarters (trees ignore latents that do not
    bear on the factor, which a distance-based predictor would not)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    cut = len(z) * 3 // 4
    model = HistGradientBoostingRegressor(random_state=random_state)
    predicted = model.fit(z[:cut], factor[:cut]).predict(z[cut:])
    predicted = np.clip(np.rint(predicted), factor.min(), factor.max()).astype(int)
    test = factor[cut:, None]
    return float(discrete_mutual_info(predicted[:, None], test)[0, 0] / discrete_entropy(test)[0])


def latent_profile(mu: np.ndarray, factors: np.ndarray, latent: int, factor: int) -> list[dict]:
    """For each value index of `factor` present: the mean and standard deviation of latent `latent`'s
    posterior mean over the draws with that value, and how many draws there were."""
    rows = []
    for value in np.unique(factors[:, factor]):
        z = mu[factors[:, factor] == value, latent]
        rows.append({"value": int(value), "mean": float(z.mean()), "std": float(z.std()), "count": int(len(z))})
    return rows


def parse_profile(spec: str, latent_dim: int, names: list[str]) -> tuple[int, int]:
    """'z3:posY' -> (3, index of posY); a one-line error for anything else."""
    latent, _, factor = spec.partition(":")
    if not (latent.startswith("z") and latent[1:].isdigit() and int(latent[1:]) < latent_dim) or factor not in names:
        raise ValueError(
            f"--profile {spec!r}: give LATENT:FACTOR with LATENT z0..z{latent_dim - 1} and FACTOR one of {', '.join(names)}"
        )
    return int(latent[1:]), names.index(factor)


def _standardised(x: np.ndarray) -> np.ndarray:
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)


def render(report: dict, names: list[str]) -> str:
    kl = np.asarray(report["kl_per_latent"])
    mi = np.asarray(report["normalised_mi"])
    lines = ["latent  KL     " + " ".join(f"{n[:8]:>8}" for n in names)]
    for d in np.argsort(kl)[::-1]:
        lines.append(f"z{d:<5} {kl[d]:6.3f} " + " ".join(f"{v:8.3f}" for v in mi[d]))
    lines.append("")
    lines.append("factor       top (MI)       runner-up (MI)   gap")
    for f in report["factors"]:
        lines.append(
            f"{f['factor'][:12]:<12} z{f['top_latent']} ({f['top_mi']:.3f})    z{f['second_latent']} "
            f"({f['second_mi']:.3f})     {f['gap']:.3f}"
        )
    lines.append(f"MIG (mean gap): {np.mean([f['gap'] for f in report['factors']]):.3f}")
    aligned = report.get("aligned")
    if aligned:
        gaps = " ".join(f"{n[:8]} {g:.3f}" for n, g in zip(names, aligned["gaps"]))
        held = " ".join(f"{n} {v:.3f}" for n, v in aligned["whole_code_mi"].items())
        lines.append(f"held by the active latents together (normalised MI, boosted trees): {held}")
        lines.append(
            f"aligned to {','.join(aligned['targets'])} (oracle rotation of {len(aligned['active_latents'])} "
            f"active latents): gaps {gaps}; MIG {aligned['mig']:.3f}"
        )
    jac = report.get("jacobian")
    if jac and not jac["points"]:
        lines.append(
            f"decoder Jacobian: {len(jac['active_latents'])} active latent(s), no pair whose orthogonality to measure"
        )
    elif jac:
        aligned_text = f", oracle-aligned basis {jac['aligned']:.3f}" if "aligned" in jac else ""
        lines.append(
            f"decoder Jacobian columns of the {len(jac['active_latents'])} active latents (Fisher-weighted, mean "
            f"|cos| over {jac['points']} points, 0 = orthogonal): own basis {jac['own']:.3f}{aligned_text}, "
            f"random rotations {jac['random']:.3f} (min {jac['random_min']:.3f})"
        )
    profile = report.get("profile")
    if profile:
        lines.append(f"z{profile['latent']} by {profile['factor']} (value: mean +- std):")
        lines.append("  ".join(f"{r['value']}: {r['mean']:+.2f}+-{r['std']:.2f}" for r in profile["rows"]))
    return "\n".join(lines)


def summary_table(reports: list[dict]) -> str:
    """One markdown row per report, in the order given: step, MIG and, where the reports were
    aligned, the MIG after the rotation and per aligned factor what the active latents hold together
    and what its best single latent holds (normalised MI)."""
    targets = reports[0].get("aligned", {}).get("targets", []) if reports else []
    head = ["step", "MIG"]
    if targets:
        head += ["MIG after the oracle rotation", "held together: " + " / ".join(targets)]
        head += ["best single latent: " + " / ".join(targets)]
    jacobian = bool(reports) and "jacobian" in reports[0]
    if jacobian:
        head += ["Jacobian |cos|: own / " + ("aligned / " if targets else "") + "random"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in reports:
        row = [f"{r['step']:,}", f"{np.mean([f['gap'] for f in r['factors']]):.3f}"]
        if targets:
            top = {f["factor"]: f["top_mi"] for f in r["factors"]}
            held = r["aligned"]["whole_code_mi"]
            row += [f"{r['aligned']['mig']:.3f}", " / ".join(f"{held[t]:.2f}" for t in targets)]
            row += [" / ".join(f"{top[t]:.2f}" for t in targets)]
        if jacobian:
            jac = r["jacobian"]
            parts = [jac["own"], *([jac["aligned"]] if "aligned" in jac else []), jac["random"]]
            row += [" / ".join(f"{v:.2f}" for v in parts)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def checkpoints_of(path: Path) -> list[Path]:
    """A checkpoint file as given; for a cell folder its kept checkpoints and its latest one (a
    running cell's too) in step order."""
    from disentbench.bench.checkpoint import cell_checkpoints

    return list(cell_checkpoints(path).values()) if path.is_dir() else [path]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m disentbench.bench.evidence.why", description=__doc__.splitlines()[0])
    p.add_argument(
        "checkpoint", type=Path, help="a checkpoint file, or a cell folder: every kept checkpoint and the final one"
    )
    p.add_argument("--samples", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the report as JSON (a list for a cell folder)")
    p.add_argument("--profile", default="", help="LATENT:FACTOR, e.g. z3:posY: the latent's mean at each factor value")
    p.add_argument(
        "--align", default="", help="comma-separated factor names: also report MIG after the oracle rotation onto them"
    )
    p.add_argument(
        "--jacobian",
        action="store_true",
        help="also report how orthogonal the decoder's Jacobian columns are in the model's own, random and "
        "(with --align) the oracle-aligned basis",
    )
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        reports = diagnose_all(checkpoints_of(args.checkpoint), args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(reports if args.checkpoint.is_dir() else reports[0]))
        return 0
    for report in reports:
        print(f"step {report['step']}\n" + render(report, report["factor_names"]) + "\n")
    if args.checkpoint.is_dir():
        print(summary_table(reports))
    return 0


def diagnose_all(paths: list[Path], args: argparse.Namespace) -> list[dict]:
    """The reports of one cell's checkpoints (checkpoints_of: one per step) for the command's
    options, on the same factor draws. ValueError for a misspelt option, before anything is encoded."""
    from disentbench import datasets
    from disentbench.bench.checkpoint import KEPT_DIR, load_method
    from disentbench.bench.runner import CONFIG

    cell = paths[0].parent.parent if paths[0].parent.name == KEPT_DIR else paths[0].parent
    config = json.loads((cell / CONFIG).read_text())
    dataset = datasets.create(config["dataset"], source=config["data_source"])
    names = list(dataset.factor_names)
    targets = args.align.split(",") if args.align else []
    check_targets(targets, names)
    factors = None
    reports: list[dict] = []
    for path in paths:
        method, state = load_method(path)
        profile = parse_profile(args.profile, method.latent_dim, names) if args.profile else None
        if factors is None:
            factors = dataset.sample_factors(args.samples, np.random.default_rng(args.seed))
        mu, logvar = encode_stats(method, dataset, factors)
        report = factor_report(mu, logvar, factors, names)
        if targets:
            report["aligned"] = aligned_report(mu, logvar, factors, names, targets)
        if getattr(args, "jacobian", False):
            report["jacobian"] = jacobian_report(method, mu, logvar, factors, names, targets, args.seed)
        if profile:
            latent, factor = profile
            report["profile"] = {
                "latent": latent,
                "factor": names[factor],
                "rows": latent_profile(mu, factors, latent, factor),
            }
        reports.append({**report, "step": int(state["step"]), "factor_names": names})
    return reports


if __name__ == "__main__":
    sys.exit(main())
