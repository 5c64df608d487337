"""Reports on a synthetic runs.csv with known orderings: leaderboard numbers against independent
pandas/numpy computations, claim verdicts, figures, the HTML page and the CLI."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from disentbench.bench.errors import BenchError
from disentbench.bench.report import build_report, load_runs, main, write_leaderboard
from disentbench.bench.report.claims import claim_rows, compare, min_two_sided_p
from disentbench.bench.report.html import leaderboard_html
from disentbench.bench.report.leaderboard import console_summary, make_boards
from disentbench.bench.report.runs import split_metrics

# method -> {hparams: {metric: centre}}; noise is small, so orderings are known by construction
CENTRES = {
    "did": {'{"lambda_h": 1.0}': {"dci": 0.80, "mig": 0.50, "sap": 0.05, "unsupervised": 3.0}},
    "betavae": {
        '{"beta": 1.0}': {"dci": 0.40, "mig": 0.20, "sap": 0.20, "unsupervised": 1.0},
        '{"beta": 4.0}': {"dci": 0.60, "mig": 0.30, "sap": 0.30, "unsupervised": 2.0},
    },
    "factorvae": {'{"gamma": 10.0}': {"dci": 0.50, "mig": 0.25, "sap": 0.40, "unsupervised": 0.5}},
    "vae": {"{}": {"dci": 0.30, "mig": 0.10, "sap": 0.10, "unsupervised": 4.0}},
}
SEEDS = 5
PIXELS = {
    "scores": (700, 400),
    "paper": (1200, 400),
    "sensitivity": (1200, 350),
    "curves": (1200, 600),
    "rank_corr": (700, 600),
    "traversal": (800, 800),
    "recon": (800, 260),
}


def synthetic_rows(
    dataset: str = "dsprites", centres=CENTRES, seeds: int = SEEDS, noise_seed: int = 0, prefix: str = ""
) -> list[dict]:
    rng = np.random.default_rng(noise_seed)
    rows = []
    for method, settings in centres.items():
        for index, (hparams, metrics) in enumerate(settings.items()):
            for seed in range(seeds):
                cell = f"{prefix}{dataset}-{method}-{index}-s{seed}"
                for metric, centre in metrics.items():
                    rows.append(
                        {
                            "cell_id": cell,
                            "profile": "test",
                            "dataset": dataset,
                            "data_source": "procedural",
                            "data_verified": False,
                            "method": method,
                            "hparams": hparams,
                            "seed": seed,
                            "steps": 10,
                            "metric": metric,
                            "value": centre + rng.normal(0, 0.005),
                            "train_seconds": 1.0,
                            "eval_seconds": 0.5,
                            "device": "cpu",
                            "git_commit": "abc123",
                            "torch_version": "2.x",
                            "numpy_version": "1.x",
                            "sklearn_version": "1.x",
                            "python_version": "3.11",
                            "config": "{}",
                        }
                    )
    return rows


def write_run(path: Path, rows: list[dict], run_json: dict | None = None, logs: bool = True) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    frame.to_csv(path / "runs.csv", index=False)
    if run_json is not None:
        (path / "run.json").write_text(json.dumps(run_json))
    if logs:
        for cell in frame.loc[frame["dataset"] == "dsprites", "cell_id"].unique():
            cell_dir = path / "cells" / cell
            cell_dir.mkdir(parents=True, exist_ok=True)
            steps = np.arange(1, 11)
            pd.DataFrame(
                {
                    "step": steps,
                    "elapsed_seconds": steps * 0.1,
                    "loss": 100.0 / steps,
                    "recon": 90.0 / steps,
                    "kl": np.log1p(steps),
                }
            ).to_csv(cell_dir / "train_log.csv", index=False)
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    rows = synthetic_rows()
    # a second, smaller dataset where DiD is absent (no training logs there)
    # (data_verified not recorded there: an empty CSV field)
    rows += [
        dict(r, data_verified=None)
        for r in synthetic_rows(
            "shapes3d", {"betavae": CENTRES["betavae"], "vae": CENTRES["vae"]}, seeds=2, noise_seed=1
        )
        if r["metric"] in ("mig", "dci")
    ]
    info = {
        "profile": "test",
        "primary_metric": "dci",
        "argv": ["run", "--profile", "test"],
        "started_at": "2025-01-01T00:00:00+00:00",
        "finished_at": "2025-01-01T00:10:00+00:00",
        "wall_seconds": 600.0,
        "device": "cpu",
        "git_commit": "abc123",
        "versions": {"torch_version": "2.x"},
        "config": {"profile": "test", "seeds": SEEDS},
    }
    return write_run(tmp_path_factory.mktemp("run"), rows, info)


@pytest.fixture(scope="module")
def report(run_dir) -> Path:
    return build_report([run_dir], run_dir / "report")


# --- load_runs ---------------------------------------------------------------------------------
def test_load_runs_without_runs_csv_is_a_one_line_error(tmp_path):
    with pytest.raises(BenchError) as err:
        load_runs([tmp_path])
    assert "runs.csv" in str(err.value) and "\n" not in str(err.value)


def test_load_runs_merges_and_later_folder_wins(tmp_path):
    rows = synthetic_rows(seeds=1)
    a = write_run(tmp_path / "a", rows, logs=False)
    changed = [dict(r, value=r["value"] + 10.0) for r in rows[:3]]
    extra = [dict(rows[0], cell_id="new-cell")]
    b = write_run(tmp_path / "b", changed + extra, logs=False)
    merged = load_runs([a, b])
    assert len(merged) == len(rows) + 1
    for r in changed:
        got = merged[(merged["cell_id"] == r["cell_id"]) & (merged["metric"] == r["metric"])]
        assert len(got) == 1 and got["value"].iloc[0] == pytest.approx(r["value"])
        assert got["run_dir"].iloc[0] == str(b)


# --- leaderboard -------------------------------------------------------------------------------
def test_leaderboard_means_stds_and_order_match_pandas(run_dir, tmp_path):
    runs = load_runs([run_dir])
    text = write_leaderboard(runs, tmp_path, "dci")
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert (tmp_path / "leaderboard.md").read_text().strip() == text.strip()
    raw = pd.DataFrame(synthetic_rows())
    got = board[(board["view"] == "setting") & (board["dataset"] == "dsprites")]
    for (method, hparams, metric), values in raw.groupby(["method", "hparams", "metric"])["value"]:
        row = got[
            (got["method"] == method)
            & (got["hparams"] == json.dumps(json.loads(hparams), sort_keys=True))
            & (got["metric"] == metric)
        ]
        assert len(row) == 1
        assert row["mean"].iloc[0] == pytest.approx(np.mean(values.to_numpy()), abs=1e-12)
        assert row["std"].iloc[0] == pytest.approx(np.std(values.to_numpy(), ddof=1), abs=1e-12)
        assert row["n"].iloc[0] == SEEDS
    # ranking by dci, descending, by construction of CENTRES
    dci = got[got["metric"] == "dci"].sort_values("rank")
    assert list(zip(dci["method"], dci["rank"])) == [
        ("did", 1),
        ("betavae", 2),
        ("factorvae", 3),
        ("betavae", 4),
        ("vae", 5),
    ]
    assert json.loads(dci["hparams"].iloc[1]) == {"beta": 4.0}
    # best marks: max for higher-is-better, min for the unsupervised total correlation
    best = got[got["best"]].set_index("metric")["method"].to_dict()
    assert best == {"dci": "did", "mig": "did", "sap": "factorvae", "unsupervised": "factorvae"}
    # the markdown lists the rows in rank order with the winner bold
    section = text.split("## dsprites")[1].split("### Best setting")[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("| ") and not ln.startswith("| rank")]
    assert [ln.split("|")[2].strip() for ln in lines] == ["did", "betavae", "factorvae", "betavae", "vae"]
    assert lines[0].count("**") == 4  # did is best on dci and mig only


def test_best_setting_per_method_view(run_dir, tmp_path):
    write_leaderboard(load_runs([run_dir]), tmp_path, "dci")
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    best = board[(board["view"] == "best_per_method") & (board["dataset"] == "dsprites") & (board["metric"] == "dci")]
    assert sorted(best["method"]) == ["betavae", "did", "factorvae", "vae"]
    assert json.loads(best[best["method"] == "betavae"]["hparams"].iloc[0]) == {"beta": 4.0}
    assert list(best.sort_values("rank")["method"]) == ["did", "betavae", "factorvae", "vae"]


def test_leaderboard_with_one_seed_and_missing_primary(tmp_path):
    rows = [r for r in synthetic_rows(seeds=1) if r["metric"] == "mig"]
    rows += [dict(r, metric="unsupervised_num_active_dims", value=float(i)) for i, r in enumerate(rows)]
    runs = load_runs([write_run(tmp_path / "r", rows, logs=False)])
    text = write_leaderboard(runs, tmp_path / "out", "dci")
    board = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    assert board["std"].isna().all() and (board["n"] == 1).all()
    assert "± — (n=1)" in text and "ranked by `mig` instead" in text
    setting = board[(board["view"] == "setting") & (board["metric"] == "mig")].sort_values("rank")
    assert setting["mean"].is_monotonic_decreasing and setting["best"].sum() == 1
    # a count of active latents has no better direction: never marked best
    assert not board.loc[board["metric"] == "unsupervised_num_active_dims", "best"].any()
    assert "unsupervised_num_active_dims (count)" in text


# --- layout: headline metrics first, secondary keys apart -----------------------------------------
#: one headline key per registered metric, in the expected column order (claim metrics first)
HEADLINE = ["mig", "dci", "sap", "beta_vae", "factor_vae", "modularity", "irs", "dci_hist", "unsupervised"]
#: their other keys, grouped by family in headline order
SECONDARY = [
    "dci_completeness",
    "dci_informativeness_test",
    "dci_informativeness_train",
    "beta_vae_train_accuracy",
    "factor_vae_num_active_dims",
    "factor_vae_train_accuracy",
    "modularity_explicitness",
    "modularity_explicitness_train",
    "irs_num_active_dims",
    "dci_hist_completeness",
    "dci_hist_informativeness_test",
    "unsupervised_mutual_info",
    "unsupervised_num_active_dims",
    "unsupervised_wasserstein_correlation",
]


@pytest.fixture(scope="module")
def every_key_runs(tmp_path_factory) -> pd.DataFrame:
    """Two methods scored on every key, listed in an order unlike the expected one."""
    keys = sorted(HEADLINE + SECONDARY, reverse=True)
    centres = {
        "did": {'{"lambda_h": 1.0}': {k: 0.6 + 0.001 * i for i, k in enumerate(keys)}},
        "betavae": {'{"beta": 4.0}': {k: 0.4 + 0.001 * i for i, k in enumerate(keys)}},
    }
    return load_runs([write_run(tmp_path_factory.mktemp("keys"), synthetic_rows(centres=centres, seeds=2), logs=False)])


def _md_headers(text: str) -> dict[str, list[str]]:
    """Heading -> metric columns of the table under it (suffixes such as (↓) removed)."""
    out, heading = {}, None
    for line in text.splitlines():
        if line.startswith("### "):
            heading = line[4:]
        elif line.startswith("| rank |") and heading is not None:
            cells = [c.strip() for c in line.strip("|").split("|")]
            out[heading] = [c.split(" (")[0] for c in cells[3:]]
            heading = None
    return out


def test_leaderboard_headline_table_leads_with_the_claim_metrics(every_key_runs, tmp_path):
    text = write_leaderboard(every_key_runs, tmp_path, "dci")
    tables = _md_headers(text)
    assert tables == {
        "Headline metrics": HEADLINE,
        "Best setting per method (chosen by `dci`): headline metrics": HEADLINE,
        "Secondary keys and diagnostics": SECONDARY,
    }
    assert text.index("### Headline metrics") < text.index("### Secondary keys and diagnostics")
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    for (view, method), rows in board.groupby(["view", "method"], sort=False):
        assert list(rows["metric"]) == HEADLINE + SECONDARY, (view, method)
        assert list(rows["kind"]) == ["headline"] * len(HEADLINE) + ["secondary"] * len(SECONDARY)


def test_console_shows_the_headline_table_only(every_key_runs):
    text = console_summary(every_key_runs, "dci")
    header = next(line for line in text.splitlines() if line.startswith("| rank |"))
    assert [c.strip().split(" (")[0] for c in header.strip("|").split("|")][3:] == HEADLINE
    assert [key for key in SECONDARY if key in text] == []


def test_ranking_metric_follows_the_claim_metrics(every_key_runs, tmp_path):
    boards = make_boards(every_key_runs, "factor_vae")
    assert boards[0].headline == [
        "mig",
        "dci",
        "sap",
        "factor_vae",
        "beta_vae",
        "modularity",
        "irs",
        "dci_hist",
        "unsupervised",
    ]
    # a secondary key chosen as primary is shown in the headline table, not twice
    board = make_boards(every_key_runs, "dci_completeness")[0]
    assert board.headline == ["mig", "dci", "sap", "dci_completeness", *HEADLINE[3:]]
    assert board.secondary == [k for k in SECONDARY if k != "dci_completeness"]
    assert "dci_completeness" in console_summary(every_key_runs, "dci_completeness")


def test_claim_metrics_come_from_the_headline_module(every_key_runs, monkeypatch):
    from disentbench.bench.report import claims, headline

    assert claims.CLAIM_METRICS is headline.CLAIM_METRICS  # the old import path still works
    monkeypatch.setattr(headline, "CLAIM_METRICS", ("sap", "mig"))
    assert make_boards(every_key_runs, "dci")[0].headline == ["sap", "mig", "dci", *HEADLINE[3:]]


def test_metric_keys_of_unloaded_plugins_split_by_prefix():
    headline, secondary = split_metrics(
        ["foo_extra_train", "foo_extra", "bar", "mig", "foo", "dci_hist_completeness", "dci_hist"],
        registered=frozenset({"mig", "dci", "dci_hist"}),
    )
    assert headline == ["mig", "bar", "dci_hist", "foo"]
    assert secondary == ["dci_hist_completeness", "foo_extra", "foo_extra_train"]


def test_html_leaderboard_has_the_secondary_table(every_key_runs):
    page = leaderboard_html(make_boards(every_key_runs, "dci"), "dci")
    parser = _Counter()
    parser.feed(page)
    assert parser.tables == {"leaderboard": 3}
    assert page.index("<h4>Headline metrics</h4>") < page.index("<h4>Secondary keys and diagnostics</h4>")


# --- claims ------------------------------------------------------------------------------------
def test_compare_clear_win_clear_loss_and_ties():
    rng = np.random.default_rng(0)
    low, high = rng.normal(0.3, 0.01, 6), rng.normal(0.6, 0.01, 6)
    assert compare(high, low).verdict == "supported"
    assert compare(low, high).verdict == "not supported"
    same = rng.normal(0.5, 0.01, 6)
    tie = compare(same, same[::-1].copy())  # equal means, summed in another order
    assert tie.margin == 0.0 and tie.verdict == "not supported"
    assert compare(same[:2], same[:2]).verdict == "inconclusive (n=2 seeds)"
    # a clear-looking win on 2 seeds cannot be significant: 2 / C(4, 2) = 1/3
    assert compare(high[:2], low[:2]).verdict == "inconclusive (n=2 seeds)"
    assert min_two_sided_p(2, 2) == pytest.approx(1 / 3)
    assert min_two_sided_p(4, 4) == pytest.approx(2 / 70)


def test_claim_rows_on_synthetic_runs(run_dir):
    tables = claim_rows(load_runs([run_dir]), held_out=False)
    verdicts = {r["metric"]: r["verdict"] for r in tables.best if r["dataset"].startswith("dsprites")}
    assert verdicts == {"MIG": "supported", "DCI disentanglement": "supported", "SAP": "not supported"}
    sap = next(r for r in tables.best if r["metric"] == "SAP")
    assert sap["rival"].startswith("factorvae") and sap["challenger rank"] == "4 of 4"
    assert "same seeds" in sap["selection"]
    assert not tables.ablations
    assert any("shapes3d" in n and "not run" in n for n in tables.notes)
    # held out: 5 seeds split 2 (choose) / 3 (test); 3 against 3 cannot reach p < 0.05
    held = claim_rows(load_runs([run_dir]))
    assert {r["verdict"] for r in held.best} == {"inconclusive (n=3 seeds)"}
    assert all(r["selection"] == "setting chosen on seeds 0,1, tested on seeds 2-4" for r in held.best)


# --- figures, HTML, CLI --------------------------------------------------------------------------
class _Counter(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables: dict[str, int] = {}
        self.images: list[str] = []
        self.scripts = 0
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables[attrs.get("class", "")] = self.tables.get(attrs.get("class", ""), 0) + 1
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            if key in attrs and not attrs[key].startswith(("data:", "#")):
                self.external.append(attrs[key])


def test_every_figure_exists_has_its_size_and_is_not_blank(report):
    pngs = sorted((report.parent / "figures").glob("*.png"))
    kinds = {p.name.split("_")[0] for p in pngs}
    assert {"scores", "paper", "sensitivity", "curves", "rankcorr"} <= kinds
    for png in pngs:
        image = imread(png)
        kind = {"rankcorr": "rank_corr"}.get(png.name.split("_")[0], png.name.split("_")[0])
        assert (image.shape[1], image.shape[0]) == PIXELS[kind], png.name
        assert image[..., :3].var() > 0, png.name
    # one score distribution per dataset x metric (4 + 2), one sensitivity plot (betavae's beta)
    # per dataset, training curves per method where logs exist (dsprites only)
    assert sum(p.name.startswith("scores_") for p in pngs) == 6
    assert sum(p.name.startswith("sensitivity_") for p in pngs) == 2
    assert sorted(p.name for p in pngs if p.name.startswith("curves_")) == [
        f"curves_dsprites_procedural_{m}.png" for m in ("betavae", "did", "factorvae", "vae")
    ]


def test_html_is_self_contained_and_holds_every_table_and_figure(report):
    page = report.read_text(encoding="utf-8")
    parser = _Counter()
    parser.feed(page)
    parser.close()
    pngs = list((report.parent / "figures").glob("*.png"))
    assert len(parser.images) == len(pngs) > 0
    assert all(src.startswith("data:image/png;base64,") for src in parser.images)
    assert parser.scripts == 0 and parser.external == []
    # 2 datasets x 2 views; claims (a) and (b); the published numbers beside the dsprites board
    assert parser.tables == {"provenance": 1, "leaderboard": 4, "claims": 2, "published": 1}
    assert "no checkpoint.pt" in page  # pictures of models skipped with a note
    assert "no train_log.csv for betavae" in page
    for name in ("leaderboard.md", "leaderboard.csv", "claims.md"):
        assert (report.parent / name).is_file()
    assert "supported" in (report.parent / "claims.md").read_text()


def test_main_on_one_dir_and_on_two_dirs_merged(tmp_path, capsys, monkeypatch):
    small = {m: {h: {"dci": c["dci"]} for h, c in CENTRES[m].items()} for m in ("vae", "did")}
    cpu = write_run(tmp_path / "cpu", synthetic_rows("dsprites", small, seeds=2, prefix="cpu-"), logs=False)
    gpu = write_run(
        tmp_path / "gpu", synthetic_rows("dsprites", small, seeds=3, noise_seed=3, prefix="gpu-"), logs=False
    )
    assert main([str(gpu), "--no-models"]) == 0
    assert capsys.readouterr().out.strip() == str(gpu / "report" / "report.html")
    assert (gpu / "report" / "report.html").is_file()
    monkeypatch.chdir(tmp_path)
    assert main([str(cpu), str(gpu)]) == 0
    out = Path(capsys.readouterr().out.strip())
    assert out == Path("report-merged") / "report.html" and out.is_file()
    merged = pd.read_csv(tmp_path / "report-merged" / "leaderboard.csv")
    vae = merged[(merged["view"] == "setting") & (merged["method"] == "vae") & (merged["metric"] == "dci")]
    assert vae["n"].iloc[0] == 2 + 3
    assert main([str(tmp_path / "nothing-here")]) == 2
    assert "runs.csv" in capsys.readouterr().err


def test_figures_and_tables_say_when_cells_are_shorter_than_the_reference(report):
    page = (report / "report.html").read_text() if report.is_dir() else report.read_text()
    assert "[not comparable: " in page and "did 10 of 300,000 steps" in page  # figure captions
    assert "trained for less than the reference length" in page  # leaderboard and claims notes


def test_full_length_runs_carry_no_length_warning(tmp_path):
    from disentbench import methods

    rows = [dict(r, steps=methods.get(r["method"]).reference_steps) for r in synthetic_rows()]
    run = write_run(tmp_path / "full", rows, logs=False)
    html = build_report([run], run / "report")
    page = html.read_text() if html.is_file() else (html / "report.html").read_text()
    assert "not comparable" not in page and "reference length" not in page
