"""The GAN-family evidence script at tiny sizes: every arm trains, draws, scores; a rerun continues."""

import csv
import json

import pytest

from disentbench.bench.evidence import gan_family

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def small_diagnostics(monkeypatch):
    """Fewer held codes in the GAN diagnostics: the same path, test-sized."""
    from disentbench.methods.gan import GANMethod

    for name, value in (("n_diagnostic_codes", 16), ("n_gradient_codes", 4), ("n_diagnostic_pairs", 2)):
        monkeypatch.setattr(GANMethod, name, value)


TINY = ["--steps", "2", "--chunk", "1", "--batch", "2", "--log-every", "1", "--score-every", "2"]
TINY += ["--metrics", "mig,sap", "--metric-scale", "tiny", "--threads", "1"]


def _log_steps(out, arm):
    return [int(r["step"]) for r in csv.DictReader(open(out / "cells" / arm / "train_log.csv"))]


def test_round_robin_resumes_and_writes_everything(tmp_path, capsys):
    out = tmp_path / "gan"
    args = ["--out", str(out), "--arms", "did_literal,infogancr", *TINY]
    assert gan_family.main(args + ["--rounds", "1"]) == 0  # one chunk each, then stop
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["did_literal"]["step"] == 1 and first["infogancr"]["step"] == 1
    assert first["did_literal"]["scores"] == {}  # not yet at a scoring step

    assert gan_family.main(args) == 0  # the same command continues where each arm stands
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for arm, method in (("did_literal", "did"), ("infogancr", "infogancr")):
        entry = summary[arm]
        assert entry["step"] == 2 and entry["method"] == method and entry["hparams"]["horizon"] == 2
        assert set(entry["scores"]) >= {"mig", "sap", "step"} and entry["scores"]["step"] == 2
        assert _log_steps(out, arm) == [1, 2]  # resumed, not restarted: no step logged twice
        for kind in ("samples_s1", "samples_s2", "traversal_s1", "traversal_s2", "diagnostics"):
            assert (out / "pictures" / f"{arm}_{kind}.png").is_file()
    assert (
        "grad_g_adv" in summary["did_literal"]["diagnostics"] and "cr_acc_held" in summary["infogancr"]["diagnostics"]
    )
    assert summary["did_literal"]["hparams"]["balance"] == "literal"
    from disentbench.bench.perf.host import host_label

    assert summary["infogancr"]["train_hosts"] == host_label("cpu")  # two chunks, one host
    assert "| did_literal | 2 | 2 |" in (out / "summary.md").read_text()

    assert gan_family.main(args) == 0  # nothing left to train: the summary stands
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["infogancr"]["step"] == 2


def test_bad_input_is_one_line(tmp_path, capsys):
    out = tmp_path / "gan"
    assert gan_family.main(["--out", str(out), "--arms", "did_nothing", *TINY]) == 2
    assert capsys.readouterr().err.strip().startswith("error: unknown arm(s) did_nothing; choose from")
    (out).mkdir()
    (out / gan_family.PLAN).write_text(json.dumps({"steps": 5, "batch_size": 2, "seed": 0, "source": "procedural"}))
    assert gan_family.main(["--out", str(out), "--arms", "did_lh0", *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {out} holds runs planned with --steps 5, not 2;") and "\n" not in err
    assert gan_family.main(["--out", str(out), *TINY, "--chunk", "0"]) == 2
    assert "--chunk must be >= 1" in capsys.readouterr().err


def _fake_arm(out, name, step, scores, log_rows):
    """An arm's score file at `step` and its train_log rows [(step, r2_enc_mean, h_centroid_acc)]."""
    (out / "cells" / name).mkdir(parents=True, exist_ok=True)
    (out / "scores").mkdir(exist_ok=True)
    mig, dci, sap = scores
    (out / "scores" / f"{name}_s{step}.json").write_text(json.dumps({"mig": mig, "dci": dci, "sap": sap, "step": step}))
    lines = ["step,r2_enc_mean,h_centroid_acc"] + [f"{s},{r},{h}" for s, r, h in log_rows]
    (out / "cells" / name / "train_log.csv").write_text("\n".join(lines) + "\n")


LITERAL_LOG = [(100, 0.0, 0.1), (150, 0.1, 0.1), (200, 0.2, 0.1), (250, 0.3, 0.1)]


def test_balance_decision_switches_only_for_a_remedy_clearly_better_on_most_measures(tmp_path):
    out = tmp_path / "gan"
    assert gan_family.balance_decision(out) is None  # nothing yet
    _fake_arm(out, "did_literal", 200, (0.10, 0.10, 0.10), LITERAL_LOG)
    assert gan_family.balance_decision(out) is None  # no remedy to compare with
    # adaptive: better beyond the margins on MIG, DCI, SAP (+0.05 each), equal R^2, H's accuracy +0.03
    # (inside the 0.04 margin): 3 of 5 measures, most of them
    _fake_arm(out, "did_adaptive", 200, (0.15, 0.15, 0.15), [(100, 0.0, 0.13), (150, 0.1, 0.13), (200, 0.2, 0.13)])
    decision = gan_family.balance_decision(out)
    assert decision["step"] == 200 and decision["chosen"] == "adaptive"
    assert decision["wins_over_literal"] == {"did_adaptive": ["mig", "dci", "sap"]}
    # the literal arm's log row at step 250 lies beyond the common step: the last 3 rows up to 200
    assert decision["measures"]["did_literal"]["r2_enc_mean"] == pytest.approx(0.1)


def test_balance_decision_keeps_the_literal_form_within_noise_and_compares_at_the_common_step(tmp_path):
    out = tmp_path / "gan"
    _fake_arm(out, "did_literal", 200, (0.10, 0.10, 0.10), LITERAL_LOG)
    _fake_arm(out, "did_literal", 400, (0.10, 0.10, 0.10), LITERAL_LOG)
    # warmup: two measures clearly better (MIG, R^2), the rest within margins: not most of five
    _fake_arm(out, "did_warmup", 200, (0.13, 0.11, 0.09), [(100, 0.1, 0.1), (150, 0.2, 0.1), (200, 0.3, 0.11)])
    # adaptive was scored at 400 only, a step warmup has not reached: it cannot be compared yet
    _fake_arm(out, "did_adaptive", 400, (0.9, 0.9, 0.9), [(400, 0.9, 0.9)])
    decision = gan_family.balance_decision(out)
    assert decision is None  # no step scored by all three balance arms
    (out / "scores" / "did_adaptive_s200.json").write_text(json.dumps({"mig": 0.1, "dci": 0.1, "sap": 0.1}))
    decision = gan_family.balance_decision(out)
    assert decision["step"] == 200 and decision["chosen"] == "literal"
    assert decision["wins_over_literal"]["did_warmup"] == ["mig", "r2_enc_mean"]


def test_a_resumed_arm_must_keep_its_settings(tmp_path, capsys):
    out = tmp_path / "gan"
    out.mkdir()
    plan = {"steps": 2, "batch_size": 2, "seed": 0, "source": "procedural"}
    arms = {"did_default": {"method": "did", "hparams": {"balance": "adaptive", "horizon": 2}}}
    (out / gan_family.PLAN).write_text(json.dumps({**plan, "arms": arms}))
    with pytest.raises(gan_family.BenchError, match="holds arm did_default planned as"):
        gan_family.check_plan(out, {**plan, "arms": {"did_default": {"method": "did", "hparams": {"horizon": 2}}}})
    gan_family.check_plan(out, {**plan, "arms": arms})  # the same settings continue


def test_an_arm_trained_under_other_defaults_is_refused_in_one_line(tmp_path, capsys):
    import torch

    from disentbench.bench.checkpoint import CHECKPOINT

    out = tmp_path / "gan"
    assert gan_family.main(["--out", str(out), "--arms", "did_lh0", *TINY, "--rounds", "1"]) == 0
    path = out / "cells" / "did_lh0" / CHECKPOINT
    state = torch.load(path, weights_only=False)
    state["hparams"]["g_norm"] = "none"  # as if trained before the generator was batch-normalised
    torch.save(state, path)
    capsys.readouterr()
    assert gan_family.main(["--out", str(out), "--arms", "did_lh0", *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "g_norm: 'none' in the checkpoint, 'batch' now" in err


def test_a_stop_signal_checkpoints_mid_chunk_and_the_rerun_keeps_the_chunk_ends(tmp_path, capsys, monkeypatch):
    import os
    import signal

    from disentbench.methods.did import DiD

    plain_step = DiD.train_step

    def signalled_at_three(self, x, step, generator):
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return plain_step(self, x, step, generator)

    out = tmp_path / "gan"
    args = ["--out", str(out), "--arms", "did_lh0", *TINY, "--steps", "6", "--chunk", "2"]
    monkeypatch.setattr(DiD, "train_step", signalled_at_three)
    assert gan_family.main(args) == 143  # SIGTERM: 128 + 15, after step 3's checkpoint
    assert "rerun the same command to resume" in capsys.readouterr().err
    assert _log_steps(out, "did_lh0") == [1, 2, 3]
    assert gan_family._scored_steps(out, "did_lh0") == {2}

    monkeypatch.setattr(DiD, "train_step", plain_step)
    assert gan_family.main(args + ["--channels-last"]) == 0  # a speed option: the arm resumes with it
    assert _log_steps(out, "did_lh0") == [1, 2, 3, 4, 5, 6]
    assert gan_family._scored_steps(out, "did_lh0") == {2, 4, 6}  # chunks 3 -> 4 -> 6, not 3 -> 5 -> 6


def test_a_checkpointed_scoring_step_without_its_score_is_scored_on_the_rerun(tmp_path):
    out = tmp_path / "gan"
    args = ["--out", str(out), "--arms", "did_lh0", *TINY, "--steps", "4", "--chunk", "2"]
    assert gan_family.main(args + ["--rounds", "1"]) == 0
    (out / "scores" / "did_lh0_s2.json").unlink()  # as if the stop had come between step 2's checkpoint and score
    assert gan_family.main(args) == 0
    assert gan_family._scored_steps(out, "did_lh0") == {2, 4}
