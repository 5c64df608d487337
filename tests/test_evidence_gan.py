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
