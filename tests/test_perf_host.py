"""bench.perf.host (bf16 hardware, matmul peak, counted FLOPs) and the FLOP / options-ab figures of
`bench.perf train` (tiny sizes; no timed assertions)."""

import json
import math

import numpy as np
import pytest
import torch

from disentbench import datasets
from disentbench.bench import training
from disentbench.bench.perf import host
from disentbench.bench.perf import train as perf_train

CPU = torch.device("cpu")

CPUINFO_AMX = """\
processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu vme sse sse2 avx avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8
bugs\t\t: spectre_v1

processor\t: 1
flags\t\t: fpu vme sse sse2 avx avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8
"""
LSCPU_ZEN4 = "Model name:   AMD EPYC\nFlags:        fpu sse2 avx2 avx512f avx512bw avx512_bf16 avx512_vnni gfni\n"


@pytest.mark.parametrize(
    "text, expected",
    [
        (CPUINFO_AMX, "amx"),
        (LSCPU_ZEN4, "avx512_bf16"),
        ("flags : fpu sse2 avx2 fma avx512f avx512_vnni", "none"),
        ("fpu sse2 avx512_bf16", "avx512_bf16"),  # a bare list
        ("flags : fpu xamx_bf16 avx512_bf16x", "none"),  # whole flags only
        ("model name : amx_bf16 avx512_bf16 lookalike\nflags : fpu avx2\n", "none"),  # flags lines only
        ("", "none"),
    ],
)
def test_bf16_capability_parses_flag_text(text, expected):
    assert host.bf16_capability_from_flags(text) == expected


def test_bf16_capability_and_fast_bf16_read_cpuinfo_and_cuda(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    monkeypatch.setattr(host, "CPUINFO", info)
    info.write_text(CPUINFO_AMX)
    assert host.bf16_capability("cpu") == "amx" and host.fast_bf16(CPU)
    assert host.cpu_model() == "Intel(R) Xeon(R) Platinum 8480+"
    info.write_text("model name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    assert host.bf16_capability(CPU) == "avx512_bf16" and not host.fast_bf16(CPU)
    info.write_text("flags\t\t: fpu avx2\n")
    assert host.bf16_capability(CPU) == "none" and not host.fast_bf16(CPU)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert host.bf16_capability("cuda") == "cuda_bf16" and host.fast_bf16("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert host.bf16_capability("cuda") == "none" and not host.fast_bf16("cuda")


def test_count_flops_of_a_linear_layer_forward_and_backward():
    batch, n_in, n_out = 7, 3, 5
    lin = torch.nn.Linear(n_in, n_out)
    x = torch.randn(batch, n_in, requires_grad=True)
    mm = 2 * batch * n_in * n_out  # one (batch x in) @ (in x out) product, 2 FLOPs per multiply-add
    assert host.count_flops(lambda: lin(x)) == mm
    # backward: grad of the input (batch x out @ out x in) and of the weight (out x batch @ batch x in)
    assert host.count_flops(lambda: lin(x).sum().backward()) == 3 * mm
    x.requires_grad_(False)
    assert host.count_flops(lambda: lin(x).sum().backward()) == 2 * mm


def test_count_flops_of_a_convolution_and_of_a_double_backward():
    conv = torch.nn.Conv2d(2, 4, 3)
    x = torch.randn(1, 2, 6, 6, requires_grad=True)
    forward = 2 * 1 * 4 * (4 * 4) * 2 * 3 * 3  # 2 * N * Cout * Hout * Wout * Cin * kh * kw
    assert host.count_flops(lambda: conv(x)) == forward

    def penalty():  # autograd.grad on a leaf with create_graph, as DiD's gradient penalty does
        (g,) = torch.autograd.grad(conv(x).sum(), x, create_graph=True)
        g.pow(2).sum().backward()

    assert host.count_flops(penalty) > 2 * forward


class _LinearMethod(torch.nn.Module):
    """A stand-in method: one linear layer on the flattened batch, updated by Adam."""

    batches_per_step = 1

    def __init__(self, n_out=2):
        super().__init__()
        self.lin = torch.nn.Linear(64 * 64, n_out)
        self.optimizers = {"vae": torch.optim.Adam(self.lin.parameters(), lr=1e-3)}

    def train_step(self, x, step, generator):
        loss = self.lin(x.flatten(1)).pow(2).mean()
        opt = self.optimizers["vae"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.detach()}


def test_step_flops_counts_one_train_step_on_a_real_batch():
    ds = datasets.create("dsprites", source="procedural")
    m = _LinearMethod(n_out=2)
    forward = 2 * 8 * 64 * 64 * 2
    assert perf_train.step_flops(m, ds, 8, CPU) == 2 * forward  # forward + the weight's gradient
    assert perf_train.step_flops(m, ds, 8, CPU, precision="bf16") == 2 * forward  # same count in bf16


def test_efficiency_is_flops_over_seconds_against_the_peak():
    assert perf_train.efficiency(4e9, 0.5, 16.0) == pytest.approx((8.0, 0.5))
    assert perf_train.efficiency(4e9, 0.5, None) == (pytest.approx(8.0), None)
    assert perf_train.efficiency(None, 0.5, 16.0) == (None, None)


def test_matmul_peak_is_a_finite_rate_and_host_figures_name_both_precisions():
    rate = host.matmul_peak_gflop_s(torch.float32, n=64, repeats=2)
    assert math.isfinite(rate) and rate > 0
    figures = host.host_figures(CPU, n=64, repeats=1)
    assert set(figures["peak_gflop_s"]) == {"fp32", "bf16"}
    assert figures["bf16_capability"] in host.CAPABILITIES
    assert host.host_figures(CPU, n=0)["peak_gflop_s"] == {}
    assert figures["matmul_n_used"] == {"fp32": 64, "bf16": 64}  # 64 is below the smallest size tried


def test_matmul_peak_shrinks_a_product_that_would_overrun_its_budget():
    # No budget: the product is halved down to the floor. A budget no product can overrun: the size asked.
    rate, size = host.matmul_peak(torch.float32, n=1024, repeats=1, budget_s=0.0)
    assert size == host.MIN_PEAK_N and math.isfinite(rate) and rate > 0
    assert host.matmul_peak(torch.float32, n=256, repeats=1, budget_s=math.inf)[1] == 256
    # the printed host line says so
    figures = {"matmul_n": 1024, "matmul_n_used": {"fp32": 1024, "bf16": 128}}
    assert perf_train._shrunk(figures, "fp32") == ""
    assert "at 128x128" in perf_train._shrunk(figures, "bf16")


def test_fused_optimisers_step_like_the_plain_ones_and_are_put_back():
    ds = datasets.create("dsprites", source="procedural")
    x = ds.observations(ds.sample_factors(8, np.random.default_rng(0)))
    plain, fused = _LinearMethod(), _LinearMethod()
    fused.load_state_dict(plain.state_dict())
    original = fused.optimizers["vae"]
    for step in (1, 2):
        plain.train_step(x, step, None)
    fused.train_step(x, 1, None)  # one plain step first: its state must carry into the fused optimiser
    with perf_train.fused_optimisers(fused) as names:
        assert names == ["vae"] and fused.optimizers["vae"] is not original
        assert fused.optimizers["vae"].param_groups[0]["fused"] is True
        assert fused.optimizers["vae"].param_groups[0]["lr"] == original.param_groups[0]["lr"]
        fused.train_step(x, 2, None)
    assert fused.optimizers["vae"] is original
    assert float(original.state[fused.lin.weight]["step"]) == 2
    torch.testing.assert_close(fused.lin.weight, plain.lin.weight, rtol=1e-5, atol=1e-6)


_TINY = ["--datasets", "dsprites", "--source", "procedural", "--batch", "4", "--threads", "1"]
_TINY += ["--peak-size", "64", "--peak-repeats", "1", "--concurrency", ""]


def test_main_table_and_json_carry_host_peaks_and_counted_flops(capsys):
    argv = ["--methods", "vae", "--steps", "1", "--warmup", "1", "--repeats", "1", *_TINY]
    assert perf_train.main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    out = json.loads(lines[-1])
    header = next(i for i, ln in enumerate(lines) if ln.startswith("dataset/method"))
    assert any(ln.startswith("# host:") and "matmul peak" in ln for ln in lines[:header])
    assert "GFLOP/s" in lines[header] and "%peak" in lines[header]
    peak = out["host"]["peak_gflop_s"]["fp32"]
    assert peak > 0 and out["host"]["bf16_capability"] in host.CAPABILITIES
    row = out["methods"]["dsprites/vae"]
    assert row["step_flops"] > 0
    assert row["gflop_s"] == pytest.approx(row["step_flops"] / 1e9 * row["ours_steps_s"], rel=1e-3)
    assert row["peak_fraction"] == pytest.approx(row["gflop_s"] / peak, rel=1e-3)
    assert "FlopCounterMode" in out["flops_counted"]


def test_options_ab_measures_every_combination_against_fp32(capsys, monkeypatch):
    monkeypatch.setattr(training.torch, "compile", lambda fn, **options: fn)  # no real compile: seconds
    argv = ["--methods", "betavae", "--steps", "1", "--repeats", "2", "--options-ab", *_TINY]
    assert perf_train.main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    out = json.loads(lines[-1])
    combos = ["fp32", "bf16", "bf16+cl", "bf16+cl+compile", "bf16+cl+fused_adam"]
    assert list(perf_train.AB_COMBINATIONS) == combos and out["ab_variants"] == combos
    row = out["ab"]["dsprites/betavae"]
    assert list(row) == combos
    for name in combos:
        assert any(ln.split()[:1] == [name] for ln in lines), name  # a printed table line each
        r = row[name]
        assert r["steps_s"] > 0 and r["ms_step"] == pytest.approx(1e3 / r["steps_s"], rel=1e-3)
        assert len(r["runs_ms"]) == 2 and r["vs_default"] == r["speedup_vs_fp32"] > 0
        peak = out["host"]["peak_gflop_s"]["bf16" if name != "fp32" else "fp32"]
        assert r["gflop_s"] == pytest.approx(r["step_gflop"] * r["steps_s"], rel=1e-3)
        assert r["peak_fraction"] == pytest.approx(r["gflop_s"] / peak, rel=1e-3)
    assert row["fp32"]["speedup_vs_fp32"] == 1.0 and row["bf16+cl+compile"]["fell_back"] is False
    assert len({r["step_gflop"] for r in row.values()}) == 1
    fused = row["bf16+cl+fused_adam"]["paired_gain"]["fused_adam"]
    assert fused["against"] == "bf16+cl"  # what fused Adam adds, paired round by round
    rounds = [a / b for a, b in zip(row["bf16+cl"]["runs_ms"], row["bf16+cl+fused_adam"]["runs_ms"])]
    assert fused["ratio"] == pytest.approx(sum(rounds) / 2, rel=1e-3)  # median of two
    assert row["bf16+cl+compile"]["paired_gain"]["compile"]["against"] == "bf16+cl"


def test_options_ab_takes_chosen_variants_and_refuses_unknown_ones(capsys):
    argv = ["--methods", "vae", "--steps", "1", "--repeats", "1", "--options-ab", *_TINY]
    assert perf_train.main([*argv, "--ab-variants", "fused_adam,threads_1"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(out["ab"]["dsprites/vae"]) == ["fp32", "fused_adam", "threads_1"]
    assert perf_train.main([*argv, "--ab-variants", "bf16,turbo"]) == 2
    assert "turbo" in capsys.readouterr().out
