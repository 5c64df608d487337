"""`bench.evidence.why`: what each latent holds, on representations with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from disentbench.bench.evidence.why import (
    aligned_report,
    factor_report,
    latent_profile,
    parse_profile,
    render,
    summary_table,
)
from disentbench.metrics.mig import mutual_information_gap

NAMES = ["a", "b"]


def _factors(n: int = 4000) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.stack([rng.integers(0, 10, n), rng.integers(0, 10, n)], axis=1)


def test_an_axis_aligned_code_puts_each_factor_in_its_own_latent():
    f = _factors()
    noise = np.random.default_rng(1).normal(size=(len(f), 1))
    mu = np.concatenate([f.astype(float), noise], axis=1)  # z0 = a, z1 = b, z2 = noise
    report = factor_report(mu, np.zeros_like(mu), f, NAMES)
    (a, b) = report["factors"]
    assert (a["top_latent"], b["top_latent"]) == (0, 1)
    assert a["top_mi"] > 0.99 and a["gap"] > 0.95 and b["gap"] > 0.95
    # the gaps are MIG's terms: their mean is the metric itself
    assert np.isclose(np.mean([x["gap"] for x in report["factors"]]), mutual_information_gap(mu, f)["mig"])
    assert "MIG (mean gap)" in render(report, NAMES)


def test_a_rotated_pair_splits_both_factors_and_the_kl_finds_the_inactive_latent():
    f = _factors().astype(float)
    mu = np.stack([f[:, 0] + f[:, 1], f[:, 0] - f[:, 1], np.zeros(len(f))], axis=1)
    logvar = np.zeros_like(mu)
    report = factor_report(mu / 5, logvar, f.astype(int), NAMES)
    for x in report["factors"]:
        assert x["second_mi"] > 0.15 and x["gap"] < 0.05  # held equally by two latents: no gap
    kl = report["kl_per_latent"]
    assert kl[2] == 0.0 and min(kl[:2]) > 0.1  # the constant latent at the prior's mean carries nothing


def _rotated_pair(n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Two factors coded at 45 degrees in z0/z1, an inactive z2 at the prior's mean."""
    f = _factors(n)
    a, b = f[:, 0].astype(float), f[:, 1].astype(float)
    mu = np.stack([(a + b) / 2, (a - b) / 2, np.zeros(n)], axis=1)
    return mu, f


def test_the_oracle_rotation_recovers_a_rotated_code():
    mu, f = _rotated_pair()
    raw = factor_report(mu, np.zeros_like(mu), f, NAMES)
    aligned = aligned_report(mu, np.zeros_like(mu), f, NAMES, targets=["a", "b"])
    assert max(x["gap"] for x in raw["factors"]) < 0.05
    assert aligned["active_latents"] == [0, 1]  # z2 carries no KL and is left alone
    # the same code unrotated (each factor alone in its latent) scores what the oracle recovers
    axis_aligned = mutual_information_gap(f.astype(float), f)["mig"]
    assert axis_aligned > 0.9 and abs(aligned["mig"] - axis_aligned) < 0.03
    line = render({**raw, "aligned": aligned}, NAMES).splitlines()[-1]
    assert line.startswith("aligned to a,b") and f"MIG {aligned['mig']:.3f}" in line


def test_the_oracle_rotation_leaves_an_aligned_code_aligned_and_cannot_create_information():
    f = _factors()
    rng = np.random.default_rng(2)
    aligned_code = f.astype(float) + 0.01 * rng.normal(size=f.shape)
    before = mutual_information_gap(aligned_code, f)["mig"]
    after = aligned_report(aligned_code, np.zeros_like(aligned_code), f, NAMES, targets=["a", "b"])["mig"]
    assert abs(after - before) < 0.03
    noise = rng.normal(size=(len(f), 3))
    assert aligned_report(noise, np.full_like(noise, -2.0), f, NAMES, targets=["a", "b"])["mig"] < 0.03


def test_aligning_to_an_unknown_factor_names_the_known_ones():
    mu, f = _rotated_pair(500)
    with pytest.raises(ValueError, match="unknown factor.*posX.*this dataset's factors: a, b"):
        aligned_report(mu, np.zeros_like(mu), f, NAMES, targets=["a", "posX"])
    with pytest.raises(ValueError, match="2 active latent.*cannot be aligned to 3"):
        aligned_report(mu, np.zeros_like(mu), np.concatenate([f, f[:, :1]], axis=1), NAMES + ["c"], ["a", "b", "c"])


def test_the_active_latents_together_hold_a_rotated_code_and_not_noise():
    mu, f = _rotated_pair()
    held = aligned_report(mu, np.zeros_like(mu), f, NAMES, targets=["a", "b"])["whole_code_mi"]
    assert min(held.values()) > 0.95  # both factors fully recoverable from the pair, though no latent holds either
    noise = np.random.default_rng(3).normal(size=(len(f), 3))
    held = aligned_report(noise, np.full_like(noise, -2.0), f, NAMES, targets=["a", "b"])["whole_code_mi"]
    assert max(held.values()) < 0.05


def test_a_latent_profile_shows_where_it_moves_and_where_it_is_flat():
    f = _factors()
    a = f[:, 0].astype(float)
    saturated = np.clip(a, 3, 9)  # moves with a from 3 on, flat below: values 0-2 left to another latent
    mu = np.stack([saturated, f[:, 1].astype(float)], axis=1)
    rows = latent_profile(mu, f, latent=0, factor=0)
    assert [r["value"] for r in rows] == list(range(10)) and sum(r["count"] for r in rows) == len(f)
    means = [r["mean"] for r in rows]
    assert means[:4] == [3.0, 3.0, 3.0, 3.0] and means[3:] == list(range(3, 10))
    assert all(r["std"] == 0.0 for r in rows)  # z0 depends on a alone
    assert latent_profile(mu, f, latent=1, factor=0)[0]["std"] > 2  # z1 ignores a: spread over b
    text = render(
        {**factor_report(mu, np.zeros_like(mu), f, NAMES), "profile": {"latent": 0, "factor": "a", "rows": rows}}, NAMES
    )
    assert text.splitlines()[-1].startswith("0: +3.00+-0.00  1: +3.00")


def test_a_profile_spec_is_latent_colon_factor():
    assert parse_profile("z1:b", 3, NAMES) == (1, 1)
    for bad in ("z3:a", "1:a", "z1:c", "z1", "zz:a"):
        with pytest.raises(ValueError, match="give LATENT:FACTOR with LATENT z0..z2 and FACTOR one of a, b"):
            parse_profile(bad, 3, NAMES)


def test_the_command_reports_a_trained_cell_and_refuses_a_bad_profile_in_one_line(tmp_path, tiny_profile, capsys):
    from disentbench.bench.cli import main as run
    from disentbench.bench.evidence.why import main as why
    from tests.helpers import tiny_cpu_args

    profile = tmp_path / "curve.yaml"
    profile.write_text(f"extends: {tiny_profile}\nscore_steps: [3]\n")
    assert run(tiny_cpu_args(profile, tmp_path / "run", "--methods", "betavae", "--datasets", "dsprites")) == 0
    checkpoint = next((tmp_path / "run" / "cells").glob("*/checkpoint.pt"))
    capsys.readouterr()
    args = [str(checkpoint), "--samples", "400", "--profile", "z0:posX", "--json"]
    assert why(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["profile"]["factor"] == "posX" and len(report["profile"]["rows"]) == 32
    assert why([str(checkpoint), "--samples", "400", "--jacobian"]) == 0
    assert "active latent(s), no pair whose orthogonality to measure" in capsys.readouterr().out
    # six steps leave no latent above the activity threshold: the rotation says so in one line
    assert why([*args[:-1], "--align", "scale,posX"]) == 2
    assert capsys.readouterr().err.strip() == "error: 0 active latent(s) (mean KL > 0.5) cannot be aligned to 2 factors"
    for bad, message in (
        ("--profile", "FACTOR one of shape, scale, orientation, posX, posY"),
        ("--align", "factors: shape"),
    ):
        assert why([str(checkpoint), bad, "z0:size" if bad == "--profile" else "size"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err

    # a cell folder: the kept checkpoint (step 3) and the final one (step 6), then one table of both
    assert why([str(checkpoint.parent), "--samples", "400", "--json"]) == 0
    reports = json.loads(capsys.readouterr().out)
    assert [r["step"] for r in reports] == [3, 6]
    assert why([str(checkpoint.parent), "--samples", "400"]) == 0
    table = capsys.readouterr().out.strip().splitlines()[-4:]
    assert table[0] == "| step | MIG |" and table[2].startswith("| 3 | ") and table[3].startswith("| 6 | ")
    # each row's MIG is the mean of that checkpoint's gaps, as the report on it alone gives
    alone = []
    for path in sorted((checkpoint.parent / "checkpoints").glob("*.pt")) + [checkpoint]:
        assert why([str(path), "--samples", "400", "--json"]) == 0
        alone.append(json.loads(capsys.readouterr().out))
    assert [summary_table([r]).splitlines()[2] for r in alone] == table[2:]
    empty = tmp_path / "empty-cell"
    empty.mkdir()
    assert why([str(empty)]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"error: {empty}: no checkpoint.pt and no kept checkpoints in {empty / 'checkpoints'}"
    )


def test_the_summary_table_has_one_row_per_report_with_the_aligned_columns():
    mu, f = _rotated_pair()
    reports = []
    for step, code in ((100, mu), (200, f.astype(float))):  # rotated, then axis-aligned
        report = factor_report(code, np.zeros_like(code), f, NAMES)
        report["aligned"] = aligned_report(code, np.full_like(code, -1.0), f, NAMES, ["a", "b"])
        reports.append({**report, "step": step})
    lines = summary_table(reports).splitlines()
    assert (
        lines[0] == "| step | MIG | MIG after the oracle rotation | held together: a / b | best single latent: a / b |"
    )
    first, second = (line.strip("| ").split(" | ") for line in lines[2:])
    assert first[0] == "100" and float(first[1]) < 0.05 and float(first[2]) > 0.9  # rotated: the oracle recovers it
    assert second[0] == "200" and float(second[1]) > 0.9 and float(second[4].split(" / ")[0]) > 0.9


class _Decoding:
    """A stand-in model: only the decoder (logits) matters to the Jacobian diagnostic."""

    def __init__(self, decoder):
        self.decoder = decoder

    def eval(self):
        self.decoder.eval()


def test_the_decoder_metric_equals_a_brute_force_jacobian():
    import torch

    from disentbench.bench.evidence.why import decoder_metric

    torch.manual_seed(0)  # the module's initial weights only; no draw below uses the global state
    decoder = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 6))
    mu = np.random.default_rng(0).normal(size=(5, 3))
    active = np.array([0, 2])
    got = decoder_metric(_Decoding(decoder), mu, active)
    for i in range(len(mu)):
        z = torch.tensor(mu[i], dtype=torch.float32)
        jac = torch.autograd.functional.jacobian(decoder, z).double()[:, active]  # 6 x 2
        p = torch.sigmoid(decoder(z)).double().detach()
        expected = jac.T @ torch.diag(p * (1 - p)) @ jac
        np.testing.assert_allclose(got[i], expected.numpy(), rtol=1e-5, atol=1e-9)


def test_mean_abs_cosine_known_answers():
    from disentbench.bench.evidence.why import mean_abs_cosine

    metric = np.array([np.diag([4.0, 1.0])])  # orthogonal columns of lengths 2 and 1
    assert mean_abs_cosine(metric, np.eye(2)) == pytest.approx(0.0)
    c = np.sqrt(0.5)
    # 45 degrees: R^T diag(4, 1) R = [[2.5, 1.5], [1.5, 2.5]], |cos| = 1.5 / 2.5
    assert mean_abs_cosine(metric, np.array([[c, -c], [c, c]])) == pytest.approx(0.6)


def _linear_model(rotation: np.ndarray):
    """Logits = W z, W's two columns on disjoint pixels (orthogonal under any pixel weighting), of
    lengths 2 and 1, composed with `rotation`: the images of z = rotation^T a are those of a."""
    import torch

    weight = np.zeros((6, 2))
    weight[:3, 0] = 2 / np.sqrt(3)
    weight[3:, 1] = 1 / np.sqrt(3)
    decoder = torch.nn.Linear(2, 6, bias=False)
    with torch.no_grad():
        decoder.weight.copy_(torch.tensor(weight @ rotation, dtype=torch.float32))
    return _Decoding(decoder)


def test_the_jacobian_report_tells_the_preferred_basis_from_the_factors():
    from disentbench.bench.evidence.why import jacobian_report

    f = _factors(2000)
    a = (f - f.mean(0)) / 3.0  # the code in the factors' basis
    logvar = np.full_like(a, -2.0)  # both latents active (KL > 0.5)
    # the decoder's orthogonal basis is the factors' basis: own, aligned ~ 0, a random basis is not
    aligned = jacobian_report(_linear_model(np.eye(2)), a, logvar, f, NAMES, ["a", "b"], points=64)
    assert aligned["own"] < 0.01 and aligned["aligned"] < 0.01 and aligned["random"] > 0.1
    # the same images from a code rotated by 45 degrees: its own basis is no longer orthogonal, the
    # oracle rotation back onto the factors is
    c = np.sqrt(0.5)
    rotation = np.array([[c, -c], [c, c]])
    rotated = jacobian_report(_linear_model(rotation), a @ rotation, logvar, f, NAMES, ["a", "b"], points=64)
    # closed form at 45 degrees: the factor basis's metric is diag(d1, d2) with d1 = 4/3 and d2 = 1/3
    # times the summed p(1-p) of each column's pixels, and the rotated basis's |cos| is |d1-d2|/(d1+d2)
    p = 1 / (
        1 + np.exp(-np.concatenate([np.repeat(a[:64, :1] * 2, 3, 1), np.repeat(a[:64, 1:], 3, 1)], 1) / np.sqrt(3))
    )
    w = p * (1 - p)
    d1, d2 = 4 / 3 * w[:, :3].sum(1), 1 / 3 * w[:, 3:].sum(1)
    assert rotated["own"] == pytest.approx(np.mean(np.abs(d1 - d2) / (d1 + d2)), rel=1e-4)
    assert rotated["own"] > 0.3 and rotated["aligned"] < 0.05  # the oracle is fitted on finite draws
    # fewer than two active latents: nothing to measure, said so
    one_active = a * np.array([2.0, 0.01])  # with unit posterior variance: KL ~1.8 and ~0
    lone = jacobian_report(_linear_model(np.eye(2)), one_active, np.zeros_like(a), f, NAMES, [], points=64)
    assert lone["active_latents"] == [0] and lone["points"] == 0 and np.isnan(lone["own"])
