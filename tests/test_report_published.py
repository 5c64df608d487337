"""Published numbers beside ours: the data table's facts, the matching of settings, and that the
external rows never enter the ranking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from disentbench.bench.errors import BenchError
from disentbench.bench.report import write_leaderboard
from disentbench.bench.report.html import published_html
from disentbench.bench.report.leaderboard import make_boards
from disentbench.bench.report.published import CSV_NAME, beside_ours, load_published, parse_setting
from disentbench.bench.report.runs import registered_metrics
from tests.test_report import synthetic_rows

# InfoGAN-CR (Lin et al., ICML 2020), Table 1, dSprites, as the issue states it: the table must hold these
STATED = {
    ("factorvae", "gamma=10"): {"factor_vae": 0.83, "dci": 0.70, "sap": 0.57, "mig": 0.40, "beta_vae": 0.83},
    ("infogancr", ""): {"factor_vae": 0.88, "dci": 0.71, "sap": 0.58, "mig": 0.37, "beta_vae": 0.95},
    ("infogan", "modified"): {"factor_vae": 0.82, "dci": 0.60, "sap": 0.41, "mig": 0.22, "beta_vae": 0.87},
}

CENTRES = {
    "factorvae": {
        '{"gamma": 10.0}': {"mig": 0.20, "dci": 0.30},
        '{"gamma": 40.0}': {"mig": 0.35, "dci": 0.50},
    },
    "betavae": {'{"beta": 1.0}': {"mig": 0.05, "dci": 0.10}, '{"beta": 4.0}': {"mig": 0.15, "dci": 0.20}},
}


def test_the_table_holds_the_stated_rows_with_sources():
    table = load_published()
    for (method, setting), scores in STATED.items():
        rows = table[(table["method"] == method) & (table["setting"] == setting) & (table["dataset"] == "dsprites")]
        assert dict(zip(rows["metric"], rows["value"])) == scores
    assert table["source"].str.len().gt(0).all() and table["table"].str.len().gt(0).all()
    assert table["statistic"].str.len().gt(0).all()
    assert table["value"].between(0, 1).all()
    assert set(table["metric"]) <= registered_metrics()
    assert not table.duplicated(["method", "setting", "dataset", "metric"]).any()


def test_parse_setting():
    assert parse_setting("gamma=10") == {"gamma": 10.0}
    assert parse_setting("beta=4, lr=0.001") == {"beta": 4.0, "lr": 0.001}
    assert parse_setting("modified") is None and parse_setting("") is None


def _boards():
    runs = pd.DataFrame(synthetic_rows(centres=CENTRES, seeds=3))
    return runs, make_boards(runs, "dci")


def test_ours_at_the_papers_setting_else_our_best():
    runs, boards = _boards()
    rows, notes = beside_ours(boards[0], load_published())
    by = {(r["method"], r["published_setting"], r["metric"]): r for r in rows}
    fv10 = by[("factorvae", "gamma=10", "mig")]
    expected = runs[(runs["method"] == "factorvae") & runs["hparams"].str.contains("10") & (runs["metric"] == "mig")]
    assert fv10["matched"] == "same setting"
    assert fv10["our_mean"] == pytest.approx(expected["value"].mean())
    assert fv10["our_std"] == pytest.approx(expected["value"].std(ddof=1))
    assert fv10["published_value"] == 0.40 and fv10["our_n"] == 3
    # beta-VAE's literature row names no setting: ours is our best setting by the rank metric (beta 4)
    bv = by[("betavae", "", "mig")]
    assert bv["matched"] == "our best setting" and bv["our_hparams"] == "beta=4"
    assert bv["our_mean"] == pytest.approx(0.15, abs=0.02)
    # metrics we did not measure (SAP) and methods we did not run have no row; the latter are named
    assert not any(r["metric"] == "sap" for r in rows)
    assert any("infogan, infogancr, vae" in n for n in notes)
    assert any("procedural" in n for n in notes)


def test_published_rows_are_written_beside_never_ranked(tmp_path):
    runs, _ = _boards()
    text = write_leaderboard(runs, tmp_path, "dci")
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert set(board["method"]) == {"factorvae", "betavae"}  # nothing external in the ranking
    assert np.isclose(board["mean"], 0.83).sum() == 0
    assert "Published numbers beside ours (external, not ranked)" in text
    assert "Lin et al., InfoGAN-CR and ModelCentrality (ICML 2020), Table 1" in text
    assert "10 of 150,000" in text  # our short training is said next to the published number
    side = pd.read_csv(tmp_path / CSV_NAME)
    assert len(side) == 2 * 2 + 2 * 1  # factorvae gamma 10 and 40 on mig, dci; betavae's mig, dci
    assert "Published numbers beside ours" in published_html(make_boards(runs, "dci"))


def test_no_published_rows_for_a_dataset_without_any(tmp_path):
    runs = pd.DataFrame(synthetic_rows(dataset="shapes3d", centres=CENTRES, seeds=2))
    text = write_leaderboard(runs, tmp_path, "dci")
    assert "Published numbers" not in text
    assert published_html(make_boards(runs, "dci")) == ""


def test_a_table_without_its_columns_is_a_one_line_error(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("method,value\nvae,0.5\n")
    with pytest.raises(BenchError, match="missing column"):
        load_published(path)
