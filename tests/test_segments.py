"""bench.segments: which hosts trained a cell, from step to step, in its result row."""

import json

import pytest

from disentbench.bench import segments
from disentbench.bench.perf import host


@pytest.mark.parametrize(
    "flags, expected",
    [
        ("flags : fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile", "amx"),
        ("flags : fpu avx2 avx512f avx512_bf16", "avx512_bf16"),
        ("flags : fpu avx2 avx512f avx512bw", "avx512"),
        ("flags : fpu sse2 avx avx2 fma", "avx2"),
        ("flags : fpu sse2 avx", ""),
        ("Features : fp asimd", ""),
    ],
)
def test_vector_units_name_the_widest_class(flags, expected):
    assert host.vector_units_from_flags(flags) == expected


def test_host_label_names_the_cpu_and_its_units(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text("model name\t: AMD EPYC\nflags\t\t: fpu avx2 fma\n")
    monkeypatch.setattr(host, "CPUINFO", info)
    assert host.host_label("cpu") == "AMD EPYC [avx2]"


def test_segments_record_each_host_and_the_step_it_took_over(tmp_path, monkeypatch):
    labels = iter(["AMD EPYC [avx512_bf16]", "AMD EPYC [avx512_bf16]", "AMD EPYC [avx512_bf16]", "AMD EPYC [avx2]"])
    monkeypatch.setattr(segments, "host_label", lambda device: next(labels))
    segments.note_segment(tmp_path, 0, "cpu", channels_last=False)
    segments.note_segment(tmp_path, 0, "cpu")  # a restart before any progress replaces the segment
    segments.note_segment(tmp_path, 5000, "cpu")  # a resume on the same host adds one
    trained = segments.note_segment(tmp_path, 130000, "cpu", channels_last=True)
    assert [s["from_step"] for s in trained] == [0, 5000, 130000]
    assert json.loads((tmp_path / segments.SEGMENTS).read_text()) == trained
    assert trained[-1]["channels_last"] is True and trained[-1]["device"] == "cpu"
    assert segments.describe(trained) == "AMD EPYC [avx512_bf16] from step 0; AMD EPYC [avx2] from step 130,000"
    assert segments.describe(trained[:2]) == "AMD EPYC [avx512_bf16]"
    # a cell begun before segments were recorded
    assert (
        segments.describe(trained[1:]) == "unrecorded to step 5,000; AMD EPYC [avx512_bf16] from step 5,000; "
        "AMD EPYC [avx2] from step 130,000"
    )
    assert segments.describe([]) == ""
