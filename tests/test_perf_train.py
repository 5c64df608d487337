"""Trainer speed options and the `bench.perf train` script (tiny sizes; no timed assertions)."""

import json
import math
import subprocess
import warnings

import pytest
import torch

from disentbench import datasets, methods
from disentbench.bench import training
from disentbench.bench.errors import BenchError
from disentbench.bench.perf import train as perf_train
from disentbench.bench.training import RunSeeds, SpeedOptions, TrainOptions, train
from tests.conftest import REPO

CPU = torch.device("cpu")


def _fresh(name="betavae", seed=0):
    ds = datasets.create("dsprites", source="procedural")
    return ds, methods.create(name, observation_shape=ds.observation_shape, seed=RunSeeds.from_seed(seed).init)


def _params(m):
    return torch.cat([p.detach().flatten() for p in m.parameters()])


def _run(name="betavae", steps=3, **kw):
    ds, m = _fresh(name)
    before = _params(m).clone()
    result = train(
        m, ds, TrainOptions(steps=steps, batch_size=8, seed=0, log_every=steps), device=CPU, speed=SpeedOptions(**kw)
    )
    return m, before, result


def test_perf_script_last_line_is_json_with_consistent_figures(capsys):
    argv = [
        "--methods",
        "betavae",
        "--datasets",
        "dsprites",
        "--source",
        "procedural",
        "--steps",
        "1",
        "--warmup",
        "1",
        "--repeats",
        "2",
        "--batch",
        "4",
        "--concurrency",
        "1",
        "--threads",
        "1",
        "--peak-size",
        "256",
    ]
    assert perf_train.main(argv) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("device", "methods", "concurrency", "paper_grid", "loadavg_start", "loadavg_end"):
        assert key in out
    row = out["methods"]["dsprites/betavae"]
    for key in (
        "ours_steps_s",
        "ours_img_s",
        "minimal_steps_s",
        "minimal_img_s",
        "ratio",
        "batch_share",
        "peak_mem_mb",
    ):
        assert math.isfinite(row[key]) and row[key] > 0
    assert row["ours_img_s"] == pytest.approx(4 * row["ours_steps_s"], rel=1e-3)
    paired = [o / m for o, m in zip(row["ours_runs_steps_s"], row["minimal_runs_steps_s"])]
    assert row["ratio"] == pytest.approx(sum(paired) / 2, rel=1e-3)  # median of two paired ratios
    assert len(row["ours_runs_steps_s"]) == 2
    hours = 50 * 300_000 / row["ours_steps_s"] / 3600  # one measured method: its own time, 50 times
    assert out["paper_grid"]["sequential_hours"] == pytest.approx(hours, rel=1e-3)
    assert out["concurrency"]["1"]["aggregate_steps_s"] > 0


def test_perf_script_plain_mode_and_bad_method(capsys):
    argv = [
        "--methods",
        "vae",
        "--datasets",
        "dsprites",
        "--source",
        "procedural",
        "--plain-steps",
        "2",
        "--warmup",
        "0",
        "--batch",
        "4",
    ]
    assert perf_train.main(argv) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["plain_steps"] == 2 and out["methods"]["dsprites/vae"]["ours_steps_s"] > 0
    assert perf_train.main(["--methods", "nosuchmethod"]) == 2
    assert "nosuchmethod" in capsys.readouterr().out


def test_profile_by_shape_names_each_layers_convolutions(capsys):
    """--by-shape keeps the layers apart: the first convolution's input has the image's one channel
    and the last transposed convolution's weight has it as its output channel."""
    argv = ["--methods", "betavae", "--datasets", "dsprites", "--source", "procedural", "--batch", "4"]
    argv += ["--profile-steps", "1", "--warmup", "1", "--threads", "1", "--peak-size", "256", "--by-shape"]
    argv += ["--profile-top", "40"]
    assert perf_train.main(argv) == 0
    text = capsys.readouterr().out
    assert "convolutions by input shape" in text
    rows = json.loads(text.strip().splitlines()[-1])["profile"]["dsprites/betavae"]["by_shape"]
    shapes = [r["shapes"] for r in rows]
    assert any(s.startswith("[[4, 1, 64, 64], [32, 1, 4, 4]") for s in shapes)  # the first layer, forward
    assert any("[32, 1, 4, 4], [1]" in s for s in shapes)  # the last layer (32 -> 1 channel), forward
    assert all(0 <= r["share"] < 1 and r["self_cpu_ms_per_step"] >= 0 for r in rows)  # a wrapper op: 0 self time
    assert sum(r["share"] for r in rows) > 0


def test_bf16_changes_the_arithmetic_but_stays_finite_and_close():
    ref, before, r32 = _run()
    m, _, r16 = _run(precision="bf16")
    assert all(math.isfinite(v) for v in r16.last_losses.values())
    assert torch.isfinite(_params(m)).all() and not torch.equal(_params(m), before)
    assert r16.last_losses["loss"] != r32.last_losses["loss"]  # autocast really ran
    assert r16.last_losses["loss"] == pytest.approx(r32.last_losses["loss"], rel=2e-2)
    assert all(p.dtype == torch.float32 for p in m.parameters())


def test_channels_last_feeds_nhwc_batches_and_restores_the_layout(monkeypatch):
    ds, m = _fresh()
    seen = []
    step = m.train_step

    def spy(x, i, g):
        seen.append(
            (
                x.is_contiguous(memory_format=torch.channels_last),
                m.encoder.trunk.net[0].weight.is_contiguous(memory_format=torch.channels_last),
            )
        )
        return step(x, i, g)

    monkeypatch.setattr(m, "train_step", spy)
    result = train(
        m,
        ds,
        TrainOptions(steps=3, batch_size=8, seed=0, log_every=3),
        device=CPU,
        speed=SpeedOptions(channels_last=True),
    )
    assert seen == [(True, True)] * 3
    assert all(p.is_contiguous() for p in m.parameters())
    _, _, plain = _run()
    assert result.last_losses["loss"] == pytest.approx(plain.last_losses["loss"], rel=1e-4)
    assert all(math.isfinite(v) for v in result.last_losses.values())


def test_compile_failure_falls_back_to_the_exact_uncompiled_run(monkeypatch):
    def broken_compile(fn, **options):
        def call(*args, **kwargs):
            raise RuntimeError("simulated backend failure")

        return call

    monkeypatch.setattr(training.torch, "compile", broken_compile)
    plain, _, _ = _run("factorvae")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fallen, _, result = _run("factorvae", compile=True)
    assert any("torch.compile failed" in str(w.message) for w in caught)
    assert torch.equal(_params(fallen), _params(plain))  # the partial first step was undone
    assert all("forward" not in net.__dict__ for net in training.networks(fallen))


def test_compile_that_raises_eagerly_also_falls_back(monkeypatch):
    def refusing_compile(fn, **options):
        raise RuntimeError("simulated: compile unsupported here")

    monkeypatch.setattr(training.torch, "compile", refusing_compile)
    plain, _, _ = _run()
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        m, _, _ = _run(compile=True)
    assert torch.equal(_params(m), _params(plain))


def test_compile_wraps_every_network_and_unwraps_after(monkeypatch):
    calls = []

    def counting_compile(fn, **options):
        def call(*args, **kwargs):
            calls.append(fn.__self__.__class__.__name__)
            return fn(*args, **kwargs)

        return call

    monkeypatch.setattr(training.torch, "compile", counting_compile)
    plain, _, _ = _run("factorvae", steps=2)
    m, _, _ = _run("factorvae", steps=2, compile=True)
    assert set(calls) == {"GaussianEncoder", "ConvDecoder", "Discriminator"}
    assert torch.equal(_params(m), _params(plain))
    assert all("forward" not in net.__dict__ for net in training.networks(m))


def test_prefetch_keeps_the_data_stream_and_exact_resume(tmp_path):
    plain, _, _ = _run(steps=8)
    chunked, _, _ = _run(steps=8, prefetch_steps=3)
    assert torch.equal(_params(plain), _params(chunked))

    class Stop(Exception):
        pass

    def stop_at_six(step, losses):
        if step == 6:
            raise Stop

    ds, part = _fresh()
    with pytest.raises(Stop):  # checkpoint at step 4 falls inside the chunk of steps 4-6
        train(
            part,
            ds,
            TrainOptions(steps=8, batch_size=8, seed=0, log_every=2, checkpoint_every=4),
            device=CPU,
            cell_dir=tmp_path,
            speed=SpeedOptions(prefetch_steps=3),
            progress=stop_at_six,
        )
    ds, resumed = _fresh()
    result = train(
        resumed,
        ds,
        TrainOptions(steps=8, batch_size=8, seed=0, log_every=2, checkpoint_every=4),
        device=CPU,
        cell_dir=tmp_path,
        speed=SpeedOptions(prefetch_steps=3),
    )
    assert result.resumed_from == 4
    assert torch.equal(_params(resumed), _params(plain))


def test_bad_speed_options_raise_one_line_errors():
    ds, m = _fresh()
    with pytest.raises(BenchError, match="precision"):
        train(m, ds, TrainOptions(steps=1, batch_size=4, seed=0), device=CPU, speed=SpeedOptions(precision="fp8"))
    with pytest.raises(BenchError, match="prefetch_steps"):
        train(m, ds, TrainOptions(steps=1, batch_size=4, seed=0), device=CPU, speed=SpeedOptions(prefetch_steps=0))


def test_auto_prefetch_is_off_on_cpu_and_bounded_on_cuda():
    ds, _ = _fresh()
    assert training.auto_prefetch_steps(CPU, ds, 64) == 1
    n = training.auto_prefetch_steps(torch.device("cuda"), ds, 64)  # no GPU needed: arithmetic only
    assert n == min(training.MAX_PREFETCH_STEPS, training.PREFETCH_BYTES // (64 * 64 * 64 * 4))
    assert training.auto_prefetch_steps(torch.device("cuda"), ds, 10**7) == 1


def test_gpu_check_script_parses():
    subprocess.run(["bash", "-n", str(REPO / "bench" / "perf" / "gpu_check.sh")], check=True)


def test_compile_modes_reach_torch_compile_and_unknown_ones_are_refused(monkeypatch):
    seen = []

    def recording_compile(fn, **options):
        seen.append(options)
        return fn

    monkeypatch.setattr(training.torch, "compile", recording_compile)
    _run("vae", steps=1, compile="reduce-overhead")  # CUDA graphs on a GPU
    _run("vae", steps=1, compile=True)
    assert seen[0] == {"mode": "reduce-overhead"} and seen[-1] == {}
    with pytest.raises(ValueError, match="choose one of: default, reduce-overhead"):
        _run("vae", steps=1, compile="turbo")
